// Package slidecheck keeps slides that would crash OpenSlide out of the
// server process. OpenSlide is C code parsing vendors' formats; iiifd
// calls it in process (kept handles, no copy of pixels), so before it
// touches a slide, a child process (this same program) opens it and reads
// what the server will read (pixels.CheckSlide: its properties, regions
// of every level, its associated images). The verdict is kept
// per version of the file; a slide whose check crashed, ran out of time
// or memory, or failed, is refused with a 500 naming the problem until
// the file changes. See docs/RATIONALE.md, "OpenSlide behind a check in
// a child process".
package slidecheck

import (
	"bufio"
	"container/list"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/iiifd/iiifd/internal/fault"
)

// The child's answer, one line on its stdout.
const (
	lineOK       = "ok"
	lineNotSlide = "not-slide"
	lineError    = "error "
)

// Defaults for Config's zero fields.
const (
	DefaultTimeout      = 30 * time.Second
	DefaultAddressSpace = 4 << 30
	DefaultVerdicts     = 4096
)

// Config says how checks run.
type Config struct {
	// Command runs the child: the program and its first arguments; the
	// slide's path is appended. The child must run Serve.
	Command []string
	// Timeout bounds a check, wall clock; the child is killed past it.
	Timeout time.Duration
	// AddressSpace bounds the child's virtual memory (RLIMIT_AS), so
	// that a slide which makes OpenSlide allocate without end fails there.
	AddressSpace int64
	// Verdicts bounds the verdicts kept (least recently used dropped).
	Verdicts int
}

// Checker runs checks and keeps their verdicts. Safe for concurrent use:
// concurrent checks of one file version share one child.
type Checker struct {
	cfg Config

	mu       sync.Mutex
	verdicts map[string]*list.Element // of *verdict
	lru      *list.List               // least recently used first
	running  map[string]*run
	children int // started, for tests and metrics
}

type verdict struct {
	key string
	err error
}

type run struct {
	done chan struct{}
	err  error
}

// New returns a Checker running cfg.Command.
func New(cfg Config) (*Checker, error) {
	if len(cfg.Command) == 0 {
		return nil, errors.New("slidecheck: no command")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.AddressSpace <= 0 {
		cfg.AddressSpace = DefaultAddressSpace
	}
	if cfg.Verdicts <= 0 {
		cfg.Verdicts = DefaultVerdicts
	}
	return &Checker{cfg: cfg, verdicts: map[string]*list.Element{}, lru: list.New(), running: map[string]*run{}}, nil
}

// Children returns how many checks have started a child process.
func (c *Checker) Children() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.children
}

// Check returns nil when the file at path may be read by OpenSlide in
// this process: it is not a slide OpenSlide reads, or a child read it
// without fault. Otherwise it returns a fault (500) naming the problem.
// The verdict of a file version (device, inode, size, modification time)
// is kept; only ctx ending is not a verdict.
func (c *Checker) Check(ctx context.Context, path string) error {
	key, err := fileKey(path)
	if err != nil {
		return fault.Wrap(fault.NotFound, err, "the source image was not found")
	}
	for {
		c.mu.Lock()
		if e, ok := c.verdicts[key]; ok {
			c.lru.MoveToBack(e)
			c.mu.Unlock()
			return e.Value.(*verdict).err
		}
		r, ok := c.running[key]
		if !ok {
			r = &run{done: make(chan struct{})}
			c.running[key] = r
			c.children++
			c.mu.Unlock()
			r.err = c.run(ctx, path)
			c.mu.Lock()
			delete(c.running, key)
			if isVerdict(r.err) {
				c.remember(key, r.err)
			}
			c.mu.Unlock()
			close(r.done)
			return r.err
		}
		c.mu.Unlock()
		select {
		case <-r.done:
			if isVerdict(r.err) {
				return r.err
			}
			// That caller gave up, or the child could not be run:
			// check again for this one.
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// isVerdict reports whether err, a check's outcome, says something about
// the slide and is kept: not the caller giving up, nor a child that could
// not be run (too many processes, a broken program), which another try
// may get past.
func isVerdict(err error) bool {
	return !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, errNoChild)
}

// errNoChild marks a check that did not get a child to answer.
var errNoChild = errors.New("slidecheck: no child")

// remember keeps the verdict err for key; c.mu is held.
func (c *Checker) remember(key string, err error) {
	c.verdicts[key] = c.lru.PushBack(&verdict{key: key, err: err})
	for c.lru.Len() > c.cfg.Verdicts {
		old := c.lru.Remove(c.lru.Front()).(*verdict)
		delete(c.verdicts, old.key)
	}
}

// errTimeout marks a check that ran out of time, a verdict unlike the
// caller's own deadline.
var errTimeout = errors.New("slidecheck: timed out")

const (
	msgDamaged = "the whole-slide image is damaged or unreadable (OpenSlide reported an error reading it)"
	msgCrashed = "the whole-slide image is damaged: reading it crashed OpenSlide (%s) in a separate check, so it is not served"
	msgTimeout = "the whole-slide image could not be checked: OpenSlide did not finish reading it within %s, so it is not served"
	msgFailed  = "the whole-slide image could not be checked (the check process failed)"
)

// run checks path in a child process.
func (c *Checker) run(ctx context.Context, path string) error {
	tctx, cancel := context.WithTimeoutCause(ctx, c.cfg.Timeout, errTimeout)
	defer cancel()
	arg, file, err := childPath(path)
	if err != nil {
		return fault.Wrap(fault.NotFound, err, "the source image was not found")
	}
	if file != nil {
		defer file.Close()
	} else {
		path = arg // the file's own name, for the logs
	}
	command := c.cfg.Command
	cmd := exec.CommandContext(tctx, command[0], append(command[1:len(command):len(command)], arg)...)
	cmd.Env = append(os.Environ(), limitsEnv+"="+fmt.Sprint(c.cfg.AddressSpace), "MALLOC_ARENA_MAX=2")
	if file != nil {
		cmd.ExtraFiles = []*os.File{file}
	}
	cmd.WaitDelay = time.Second
	contain(cmd)
	var stderr strings.Builder
	cmd.Stderr = &limitedWriter{w: &stderr, n: 4096}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return fault.Wrap(fault.Internal, fmt.Errorf("%w: %w", errNoChild, err), msgFailed)
	}
	// The kernel kills the child when the thread that started it ends
	// (Pdeathsig), so the thread is kept until it is waited for.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := cmd.Start(); err != nil {
		return fault.Wrap(fault.Internal, fmt.Errorf("%w: starting the check: %w", errNoChild, err), msgFailed)
	}
	var answer string
	sc := bufio.NewScanner(io.LimitReader(stdout, 64<<10))
	for sc.Scan() {
		if l := sc.Text(); l == lineOK || l == lineNotSlide || strings.HasPrefix(l, lineError) {
			answer = l
		}
	}
	io.Copy(io.Discard, stdout)
	werr := cmd.Wait()
	if errors.Is(context.Cause(tctx), errTimeout) {
		return fault.Wrap(fault.Internal, fmt.Errorf("slidecheck: %s: %w", path, errTimeout), msgTimeout, c.cfg.Timeout)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	switch {
	case werr == nil && (answer == lineOK || answer == lineNotSlide):
		return nil
	case strings.HasPrefix(answer, lineError):
		return fault.Wrap(fault.Internal, fmt.Errorf("slidecheck: %s: OpenSlide: %s", path, answer[len(lineError):]), msgDamaged)
	}
	var ee *exec.ExitError
	if errors.As(werr, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return fault.Wrap(fault.Internal, fmt.Errorf("slidecheck: %s: the check died of %v: %s", path, ws.Signal(), firstLine(stderr.String())),
				msgCrashed, ws.Signal())
		}
		// A crash in C code shows as the Go runtime's report of the
		// signal (exit status 2); running out of memory as a failed
		// allocation.
		report := stderr.String()
		if m := goSignal.FindStringSubmatch(report); m != nil && strings.Contains(report, "signal arrived during cgo execution") {
			// The first line is what the C code said as it died
			// (GLib's "overflow allocating ..."), when it said anything.
			return fault.Wrap(fault.Internal, fmt.Errorf("slidecheck: %s: %s: %s", path, m[1], firstLine(report)), msgCrashed, m[2])
		}
		return fault.Wrap(fault.Internal, fmt.Errorf("slidecheck: %s: the check failed (%v): %s", path, werr, firstLine(report)), msgCrashed, ee.ProcessState.String())
	}
	return fault.Wrap(fault.Internal, fmt.Errorf("%w: %s: %v, answer %q", errNoChild, path, werr, answer), msgFailed)
}

// goSignal finds the Go runtime's report of a fatal signal: "SIGSEGV:
// segmentation violation", "SIGTRAP: trace trap" (GLib's g_error).
var goSignal = regexp.MustCompile(`(?m)^(SIG[A-Z]+): (.+)$`)

// childPath returns the name the child opens the slide by: its own name,
// so that OpenSlide finds the files beside it (MIRAX's data folder); or,
// for a descriptor path (/proc/self/fd/N, of the local source and the
// source cache) whose file has no name any more, the descriptor, passed
// to the child as its fd 3.
func childPath(path string) (string, *os.File, error) {
	if !strings.HasPrefix(path, "/proc/self/fd/") {
		return path, nil, nil
	}
	target, err := os.Readlink(path)
	if err == nil && filepath.IsAbs(target) && !strings.HasSuffix(target, " (deleted)") {
		if k1, e1 := fileKey(path); e1 == nil {
			if k2, e2 := fileKey(target); e2 == nil && k1 == k2 {
				return target, nil, nil
			}
		}
	}
	f, err := os.Open(path)
	if err != nil {
		return "", nil, err
	}
	return "/proc/self/fd/3", f, nil
}

// fileKey names the version of the file at path: its device, inode, size
// and modification time.
func fileKey(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return fmt.Sprint(st.Dev, " ", st.Ino, " ", fi.Size(), " ", fi.ModTime().UnixNano()), nil
	}
	return fmt.Sprint(path, " ", fi.Size(), " ", fi.ModTime().UnixNano()), nil
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// limitedWriter keeps the first n bytes written to it and drops the rest.
type limitedWriter struct {
	w io.Writer
	n int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if l.n > 0 {
		k := min(len(p), l.n)
		l.w.Write(p[:k])
		l.n -= k
	}
	return len(p), nil
}
