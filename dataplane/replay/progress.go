package replay

import (
	"fmt"
	"io"
	"path/filepath"
	"time"
)

// progressBar draws one line, redrawn in place, on a terminal.
type progressBar struct {
	start time.Time
}

func (b *progressBar) draw(w io.Writer, path string, done, size int64, packets uint64) {
	if b.start.IsZero() {
		b.start = time.Now()
	}
	const width = 30
	frac := 0.0
	if size > 0 {
		frac = min(float64(done)/float64(size), 1)
	}
	filled := int(frac * width)
	bar := make([]byte, width)
	for i := range bar {
		switch {
		case i < filled:
			bar[i] = '='
		case i == filled:
			bar[i] = '>'
		default:
			bar[i] = ' '
		}
	}
	rate := 0.0
	if el := time.Since(b.start).Seconds(); el > 0 {
		rate = float64(packets) / el / 1e6
	}
	fmt.Fprintf(w, "\r\033[K%s [%s] %3.0f%%  %d packets  %.1f Mpps", filepath.Base(path), bar, frac*100, packets, rate)
}
