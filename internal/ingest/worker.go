package ingest

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/iiifd/iiifd/internal/pixels"
)

// The worker protocol: the child gets the options as flags and SRC OUT,
// and writes lines to its stdout: "progress N" as it goes, and
// "error MESSAGE" before it exits 1. Anything else it prints is ignored.
const (
	lineProgress = "progress "
	lineError    = "error "
)

// Subprocess returns a Builder that runs the build in a child process,
// command followed by the worker's flags and SRC OUT; the child must run
// ServeWorker with those arguments. Isolation is worth a process start:
// libvips 8.14 crashes when a pyramidal TIFF save fails part-way, and a
// killed child stops at once and leaves nothing behind but files in its
// work directory, which is also its TMPDIR (libvips' temporary files go
// there).
//
// The worker runs under DefaultLimits; see SubprocessWith.
func Subprocess(command ...string) Builder { return SubprocessWith(DefaultLimits, command...) }

// Limits are the resource limits an ingest worker runs under, so that a
// runaway in libvips (memory, a loop, leaked descriptors) ends in the
// worker, which fails, rather than in the server. Zero fields leave the
// inherited limit.
type Limits struct {
	AddressSpace int64         // bytes of virtual memory (RLIMIT_AS)
	CPUTime      time.Duration // processor time, whole seconds (RLIMIT_CPU)
	OpenFiles    int           // open file descriptors (RLIMIT_NOFILE)
}

// DefaultLimits are generous for any ingest: the worker streams its
// source, so it holds a band of rows, not the image; its glibc malloc
// arenas are bounded (MALLOC_ARENA_MAX) so that its virtual size does not
// grow with the number of libvips threads; and a gigapixel image takes
// minutes of processor time, not hours.
var DefaultLimits = Limits{AddressSpace: 8 << 30, CPUTime: 2 * time.Hour, OpenFiles: 1024}

// limitsEnv passes the limits to the worker, which sets them on itself
// before it starts libvips (see ServeWorker).
const limitsEnv = "IIIFD_WORKER_LIMITS"

// String is the limits as limitsEnv carries them: "as=N,cpu=N,nofile=N"
// in bytes, seconds and descriptors; zero fields are left out.
func (l Limits) String() string {
	var parts []string
	if l.AddressSpace > 0 {
		parts = append(parts, "as="+strconv.FormatInt(l.AddressSpace, 10))
	}
	if s := int64(l.CPUTime / time.Second); s > 0 {
		parts = append(parts, "cpu="+strconv.FormatInt(s, 10))
	}
	if l.OpenFiles > 0 {
		parts = append(parts, "nofile="+strconv.Itoa(l.OpenFiles))
	}
	return strings.Join(parts, ",")
}

// parseLimits reads what Limits.String writes.
func parseLimits(s string) (Limits, error) {
	var l Limits
	if s == "" {
		return l, nil
	}
	for _, part := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(part, "=")
		n, err := strconv.ParseInt(v, 10, 64)
		if !ok || err != nil || n <= 0 {
			return Limits{}, fmt.Errorf("worker limits: %q is not NAME=N with N > 0", part)
		}
		switch k {
		case "as":
			l.AddressSpace = n
		case "cpu":
			if n > int64(math.MaxInt64/time.Second) {
				return Limits{}, fmt.Errorf("worker limits: cpu %d is too large", n)
			}
			l.CPUTime = time.Duration(n) * time.Second
		case "nofile":
			if n > math.MaxInt32 {
				return Limits{}, fmt.Errorf("worker limits: nofile %d is too large", n)
			}
			l.OpenFiles = int(n)
		default:
			return Limits{}, fmt.Errorf("worker limits: unknown limit %q", k)
		}
	}
	return l, nil
}

// applyLimitsFromEnv sets the limits limitsEnv names on this process.
func applyLimitsFromEnv() error {
	l, err := parseLimits(os.Getenv(limitsEnv))
	if err != nil {
		return err
	}
	return setOwnLimits(l)
}

// SubprocessWith is Subprocess with the worker under lim. They are set
// twice: by the parent on the started process (prlimit), which reaches
// any worker command, and by iiifd's worker on itself as it starts
// (ServeWorker, from limitsEnv), which is certain to precede its work.
// Go cannot set limits between fork and exec, and the parent's prlimit
// comes a moment after the exec.
func SubprocessWith(lim Limits, command ...string) Builder {
	return func(ctx context.Context, src, out string, opt Options) error {
		args := append(command[1:len(command):len(command)],
			"--format", string(opt.Format),
			"--tile-size", strconv.Itoa(opt.TileSize),
			"--quality", strconv.Itoa(opt.Quality),
			"--compression", string(opt.Compression),
			"--", src, out)
		cmd := exec.CommandContext(ctx, command[0], args...)
		cmd.Env = append(os.Environ(), "TMPDIR="+filepath.Dir(out), limitsEnv+"="+lim.String(), "MALLOC_ARENA_MAX=2")
		cmd.WaitDelay = 5 * time.Second
		contain(cmd)
		var stderr strings.Builder
		cmd.Stderr = &limitedWriter{w: &stderr, n: 4096}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			return err
		}
		runtime.LockOSThread() // see contain
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("starting the ingest worker: %w", err)
		}
		if err := limitProcess(cmd.Process.Pid, lim); err != nil {
			cmd.Cancel()
			cmd.Wait()
			reap(cmd)
			return fmt.Errorf("limiting the ingest worker: %w", err)
		}
		var message string
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, lineProgress):
				if p, err := strconv.Atoi(line[len(lineProgress):]); err == nil && opt.Progress != nil {
					opt.Progress(p)
				}
			case strings.HasPrefix(line, lineError):
				message = line[len(lineError):]
			}
		}
		io.Copy(io.Discard, stdout)
		err = cmd.Wait()
		// Whatever the worker started and left running goes with it.
		reap(cmd)
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		if err == nil {
			return nil
		}
		if message != "" {
			return errors.New(message)
		}
		// No message: the worker died. A crash in C shows as the Go
		// runtime's report of the signal on stderr (and exit status 2);
		// in practice libvips crashing on a source it could not decode
		// to the end.
		report := strings.TrimSpace(stderr.String())
		if strings.Contains(report, "signal arrived during cgo execution") {
			return fmt.Errorf("%s: the source image could not be decoded (libvips crashed: %s)", src, firstLine(report))
		}
		if report != "" {
			return fmt.Errorf("the ingest worker failed (%v): %s", err, firstLine(report))
		}
		return fmt.Errorf("the ingest worker failed: %v", err)
	}
}

// ServeWorker is the child side of Subprocess: it parses args, starts
// libvips, runs Build and reports on stdout. It returns the exit code.
// It ignores SIGINT, which a terminal sends to the parent too: stopping
// is the parent's decision, made by killing the worker.
func ServeWorker(ctx context.Context, args []string, stdout io.Writer) int {
	signal.Ignore(os.Interrupt)
	if err := applyLimitsFromEnv(); err != nil {
		fmt.Fprintf(stdout, "%s%s\n", lineError, firstLine(err.Error()))
		return 1
	}
	fs := flag.NewFlagSet("ingest worker", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var opt Options
	var format, compression string
	fs.StringVar(&format, "format", "", "")
	fs.IntVar(&opt.TileSize, "tile-size", 0, "")
	fs.IntVar(&opt.Quality, "quality", 0, "")
	fs.StringVar(&compression, "compression", "", "")
	var mu sync.Mutex
	fail := func(err error) int {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(stdout, "%s%s\n", lineError, firstLine(err.Error()))
		return 1
	}
	if err := fs.Parse(args); err != nil {
		return fail(err)
	}
	if fs.NArg() != 2 {
		return fail(fmt.Errorf("ingest worker: want SRC OUT, got %q", fs.Args()))
	}
	opt.Format, opt.Compression = Format(format), Compression(compression)
	if err := opt.Validate(); err != nil {
		return fail(err)
	}
	opt = opt.withDefaults()
	opt.Progress = func(p int) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(stdout, "%s%d\n", lineProgress, p)
	}
	if err := pixels.Startup(pixels.Config{}); err != nil {
		return fail(err)
	}
	if err := Build(ctx, fs.Arg(0), fs.Arg(1), opt); err != nil {
		return fail(err)
	}
	return 0
}

func firstLine(s string) string {
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
