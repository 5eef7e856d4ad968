// Package progress draws a one-line progress bar for long CLI operations.
package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
)

// Bar renders "stage [=====>     ]  45%" in place on a terminal, and one
// line per stage and quarter on anything else (logs, CI), so progress is
// visible without flooding. Safe for concurrent use.
type Bar struct {
	mu      sync.Mutex
	w       io.Writer
	tty     bool
	stage   string
	lastPct int
	drawn   bool
}

// NewBar writes to w (usually stderr).
func NewBar(w io.Writer) *Bar {
	tty := false
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	return &Bar{w: w, tty: tty, lastPct: -1}
}

// Update reports done of total units of stage.
func (b *Bar) Update(stage string, done, total float64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	pct := 100
	if total > 0 {
		pct = int(100 * done / total)
	}
	pct = max(0, min(100, pct))
	if stage != b.stage {
		if b.drawn && b.tty {
			fmt.Fprintln(b.w)
		}
		b.stage, b.lastPct = stage, -1
	}
	if b.tty {
		if pct == b.lastPct {
			return
		}
		const width = 30
		fill := pct * width / 100
		arrow := ""
		if fill < width {
			arrow = ">"
		}
		fmt.Fprintf(b.w, "\r%-10s [%s%s%s] %3d%%", stage, strings.Repeat("=", fill), arrow, strings.Repeat(" ", max(0, width-fill-len(arrow))), pct)
		b.drawn = true
	} else if pct/25 != b.lastPct/25 || b.lastPct < 0 {
		fmt.Fprintf(b.w, "%s: %d%%\n", stage, pct)
	}
	b.lastPct = pct
}

// Done ends the bar's line.
func (b *Bar) Done() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.drawn && b.tty {
		fmt.Fprintln(b.w)
	}
	b.drawn = false
}
