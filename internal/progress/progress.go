// Package progress reports the progress of long command-line jobs (ingest,
// check): a bar redrawn in place on a terminal, plain lines at every 10 %
// elsewhere, so that logs of CI jobs and cron runs stay readable.
package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// Reporter prints the progress of one job. It is safe for concurrent use
// (libvips reports from its own threads).
type Reporter struct {
	w     io.Writer
	label string
	tty   bool
	start time.Time

	mu    sync.Mutex
	last  int // last percentage shown (a multiple of 10 without a terminal); -1 for none
	drawn bool
	done  bool
}

// New returns a reporter writing to w, labelled label. It draws a bar when
// w is a terminal.
func New(w io.Writer, label string) *Reporter { return newReporter(w, label, IsTerminal(w)) }

func newReporter(w io.Writer, label string, tty bool) *Reporter {
	return &Reporter{w: w, label: label, tty: tty, start: time.Now(), last: -1}
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

const barWidth = 40

// Update reports done of total units (any unit: percent, files, bytes).
func (r *Reporter) Update(done, total int64) {
	if total <= 0 {
		return
	}
	done = max(0, min(done, total))
	pct := int(100 * done / total)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done {
		return
	}
	elapsed := time.Since(r.start).Round(time.Second)
	if r.tty {
		if pct == r.last {
			return
		}
		n := pct * barWidth / 100
		fmt.Fprintf(r.w, "\r%s [%s%s] %3d%%  %s ", r.label, strings.Repeat("#", n), strings.Repeat(".", barWidth-n), pct, elapsed)
		r.drawn = true
		r.last = pct
		return
	}
	step := pct / 10 * 10
	if step <= r.last {
		return
	}
	fmt.Fprintf(r.w, "%s: %d%% (%s)\n", r.label, step, elapsed)
	r.last = step
}

// Done ends the report, leaving a terminal on a fresh line; later updates
// print nothing.
func (r *Reporter) Done() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.tty && r.drawn && !r.done {
		fmt.Fprintln(r.w)
	}
	r.done = true
}
