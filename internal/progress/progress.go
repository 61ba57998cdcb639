// Package progress reports the progress of long command-line jobs: a bar
// redrawn in place on a terminal, plain lines (every 10 %) elsewhere, so
// logs of CI jobs and cron runs stay readable.
package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// Reporter prints the progress of one job. It is safe for concurrent use.
type Reporter struct {
	mu       sync.Mutex
	w        io.Writer
	label    string
	tty      bool
	lastPct  int
	lastDraw time.Time
	done     bool
}

// New returns a reporter writing to w, labelled label. It draws a bar when
// w is a terminal.
func New(w io.Writer, label string) *Reporter {
	return &Reporter{w: w, label: label, tty: IsTerminal(w), lastPct: -1}
}

// IsTerminal reports whether w is a character device (a terminal).
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// Update reports done of total units (any unit: percent, files, bytes).
func (r *Reporter) Update(done, total int64) {
	if total <= 0 {
		return
	}
	pct := int(100 * min(done, total) / total)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done || pct == r.lastPct {
		return
	}
	if r.tty {
		if pct < 100 && time.Since(r.lastDraw) < 100*time.Millisecond {
			return
		}
		const width = 30
		fill := pct * width / 100
		fmt.Fprintf(r.w, "\r%s [%s%s] %3d%% (%d/%d)", r.label, strings.Repeat("=", fill), strings.Repeat(" ", width-fill), pct, done, total)
		r.lastDraw = time.Now()
	} else {
		if pct/10 == r.lastPct/10 && pct != 100 {
			r.lastPct = pct
			return
		}
		fmt.Fprintf(r.w, "%s: %d%% (%d/%d)\n", r.label, pct, done, total)
	}
	r.lastPct = pct
}

// Done ends the report, leaving the terminal on a fresh line.
func (r *Reporter) Done() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.tty && !r.done && r.lastPct >= 0 {
		fmt.Fprintln(r.w)
	}
	r.done = true
}
