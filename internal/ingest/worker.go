package ingest

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
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
func Subprocess(command ...string) Builder {
	return func(ctx context.Context, src, out string, opt Options) error {
		args := append(command[1:len(command):len(command)],
			"--format", string(opt.Format),
			"--tile-size", strconv.Itoa(opt.TileSize),
			"--quality", strconv.Itoa(opt.Quality),
			"--compression", string(opt.Compression),
			"--", src, out)
		cmd := exec.CommandContext(ctx, command[0], args...)
		cmd.Env = append(os.Environ(), "TMPDIR="+filepath.Dir(out))
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
