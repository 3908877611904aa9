package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every command answers -h and --help with its usage and does nothing
// else; a flag or argument a command does not take is refused with exit
// code 2 before it does anything.
func TestCommandLines(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	t.Setenv("DATA_DIR", dataDir)
	t.Setenv("DATABASE_URL", "")
	for _, c := range []struct {
		args   []string
		code   int
		stdout string // a part of the standard output
		stderr string // a part of the standard error
	}{
		{[]string{"--help"}, 0, "Commands:", ""},
		{[]string{"-h"}, 0, "Commands:", ""},
		{[]string{"serve", "--help"}, 0, "Usage: imageservice serve", ""},
		{[]string{"migrate", "--help"}, 0, "Usage: imageservice migrate", ""},
		{[]string{"replay", "-h"}, 0, "Usage: imageservice replay", ""},
		{[]string{"events", "--help"}, 0, "", "-limit"},
		{[]string{"apikey", "--help"}, 0, "Usage: imageservice apikey", ""},
		{[]string{"healthcheck", "--help"}, 0, "", "-timeout"},
		{[]string{"dither", "--help"}, 0, "", "-levels"},
		{[]string{"--bogus"}, 2, "", "takes no flags"},
		{[]string{"serve", "--port", "80"}, 2, "", "takes no flags"},
		{[]string{"migrate", "now"}, 2, "", "takes no flags"},
		{[]string{"replay", "--no-such-flag"}, 2, "", "takes no flags"},
		{[]string{"events", "--bogus"}, 2, "", "flag provided but not defined"},
		{[]string{"events", "extra"}, 2, "", "takes no arguments"},
		{[]string{"apikey"}, 2, "", "Usage: imageservice apikey"},
		{[]string{"healthcheck", "--bogus"}, 2, "", "flag provided but not defined"},
		{[]string{"dither", "--bogus", "a", "b"}, 2, "", "flag provided but not defined"},
		{[]string{"dither", "in.png"}, 2, "", "needs IN and OUT"},
	} {
		code, stdout, stderr := runCLI(c.args...)
		if code != c.code || !strings.Contains(stdout, c.stdout) || !strings.Contains(stderr, c.stderr) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit %d with %q and %q", c.args, code, stdout, stderr, c.code, c.stdout, c.stderr)
		}
		if strings.Count(stderr, "flag provided but not defined") > 1 {
			t.Errorf("%q: the error is printed twice: %q", c.args, stderr)
		}
	}
	if _, err := os.Stat(dataDir); !os.IsNotExist(err) {
		t.Errorf("DATA_DIR exists after commands that only gave help or were refused: %v", err)
	}
}

// dither refuses --levels 0, which the engine would take for the default.
func TestDitherLevelsZero(t *testing.T) {
	dir := t.TempDir()
	in := gradientPNG(t, dir, 4, 4)
	if code, _, stderr := runCLI("dither", "--levels", "0", in, filepath.Join(dir, "out.png")); code != 1 || !strings.Contains(stderr, "--levels") {
		t.Errorf("dither --levels 0: exit %d, %q; want 1 and a message about --levels", code, stderr)
	}
}

// events refuses a negative --limit.
func TestEventsLimit(t *testing.T) {
	t.Setenv("DATA_DIR", t.TempDir())
	t.Setenv("DATABASE_URL", "")
	if code, _, stderr := runCLI("events", "--limit", "-1"); code != 1 || !strings.Contains(stderr, "--limit") {
		t.Errorf("events --limit -1: exit %d, %q; want 1 and a message about --limit", code, stderr)
	}
}
