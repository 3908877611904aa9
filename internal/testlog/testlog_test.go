package testlog_test

import (
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/imageservice/imageservice/internal/testlog"
)

// Writers and a reader at once, under -race: every line arrives whole.
func TestBufferTakesConcurrentWriters(t *testing.T) {
	var logs testlog.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 50 {
				log.Info("line", "writer", i, "n", j)
				_ = logs.String()
			}
		})
	}
	wg.Wait()
	for i := range 8 {
		if got := strings.Count(logs.String(), fmt.Sprintf("writer=%d ", i)); got != 50 {
			t.Errorf("writer %d: %d lines, want 50", i, got)
		}
	}
}
