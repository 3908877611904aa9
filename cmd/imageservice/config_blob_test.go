package main

import (
	"strings"
	"testing"
	"time"
)

// TestBlobRetention reads BLOB_RETENTION: off, a duration of at least an
// hour and longer than JOB_TIMEOUT, or an error naming the variable.
func TestBlobRetention(t *testing.T) {
	for _, c := range []struct {
		value string
		want  time.Duration
		err   string
	}{
		{"", 24 * time.Hour, ""},
		{"0", 0, ""},
		{"off", 0, ""},
		{"OFF", 0, ""},
		{"90m", 90 * time.Minute, ""},
		{"59m", 0, "BLOB_RETENTION must be"},
		{"1s", 0, "BLOB_RETENTION must be"},
		{"-24h", 0, "BLOB_RETENTION must be"},
		{"a day", 0, "BLOB_RETENTION must be"},
		{"2h", 0, "longer than JOB_TIMEOUT"},
	} {
		t.Run(c.value, func(t *testing.T) {
			t.Setenv("BLOB_RETENTION", c.value)
			got, err := blobRetention(2 * time.Hour)
			if c.value != "2h" {
				got, err = blobRetention(5 * time.Minute)
			}
			if got != c.want || (err == nil) != (c.err == "") || (err != nil && !strings.Contains(err.Error(), c.err)) {
				t.Fatalf("= %s, %v; want %s, %q", got, err, c.want, c.err)
			}
		})
	}
}

// TestServeConfigBlobSweep: serve's configuration carries the retention
// and the sweep interval, and refuses a bad interval.
func TestServeConfigBlobSweep(t *testing.T) {
	t.Setenv("BLOB_RETENTION", "48h")
	t.Setenv("BLOB_SWEEP_INTERVAL", "15m")
	cfg, err := loadServeConfig()
	if err != nil || cfg.blobRetention != 48*time.Hour || cfg.sweepInterval != 15*time.Minute {
		t.Fatalf("retention %s, interval %s, %v", cfg.blobRetention, cfg.sweepInterval, err)
	}
	for _, bad := range []string{"0", "4m59s"} {
		t.Setenv("BLOB_SWEEP_INTERVAL", bad)
		if _, err := loadServeConfig(); err == nil || !strings.Contains(err.Error(), "BLOB_SWEEP_INTERVAL") {
			t.Fatalf("interval %s: %v", bad, err)
		}
	}
}
