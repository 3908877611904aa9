package projections

import (
	"fmt"
	"io"
	"strings"
)

// barWidth is the number of cells of the progress bar.
const barWidth = 40

// ProgressBar returns a progress callback for a rebuild that draws a text
// bar on w, redrawn in place with a carriage return, and prints the final
// count and rate on its own line once done reaches total.
func ProgressBar(w io.Writer) func(done, total int64, rate float64) {
	finished := false
	return func(done, total int64, rate float64) {
		if finished {
			return
		}
		fmt.Fprintf(w, "\r%s", barLine(done, total, rate))
		if done >= total {
			finished = true
			fmt.Fprintf(w, "\n%d events replayed at %.0f events/s\n", done, rate)
		}
	}
}

// barLine formats one state of the bar.
func barLine(done, total int64, rate float64) string {
	frac := 1.0
	if total > 0 {
		frac = min(max(float64(done)/float64(total), 0), 1)
	}
	filled := int(frac * barWidth)
	bar := strings.Repeat("#", filled) + strings.Repeat(".", barWidth-filled)
	return fmt.Sprintf("[%s] %3.0f%% %d/%d events %.0f/s", bar, frac*100, done, total, rate)
}
