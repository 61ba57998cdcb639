package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/iiifd/iiifd/internal/app"
	"github.com/iiifd/iiifd/internal/config"
	"github.com/iiifd/iiifd/internal/pixels"
	"github.com/iiifd/iiifd/internal/samples"
	"github.com/iiifd/iiifd/internal/slidecheck"
	"github.com/iiifd/iiifd/internal/tracing"
)

const usage = `iiifd is a IIIF Image API 3.0 and 2.1 server.

Usage:
  iiifd serve [flags]     serve images (default: the embedded sample images)
  iiifd ingest [flags] SRC DST  convert an image to a pyramidal TIFF or IIIF tiles
  iiifd check [flags]     check every image under --root as the server would serve it
  iiifd publish [flags] OUT  write a static IIIF site (level 0, level 2 in its pages)
  iiifd warm [flags]      request URLs from a running server to fill its caches
  iiifd health [flags]    exit 0 if a running server's /healthz answers 200
  iiifd samples DIR       write the embedded sample images into DIR
  iiifd version           print the version
  iiifd help [command]    show help

Run 'iiifd serve -h' for the serve flags. Every flag can also be set with an
environment variable (--max-width → IIIFD_MAX_WIDTH) or in a TOML file given
with --config (keys are flag names); flags win over the environment, the
environment over the file.
`

// slideCheckCommand makes the process the child that checks a slide
// with OpenSlide for the server (see package slidecheck). It is not for
// people, so usage does not list it.
const slideCheckCommand = "slide-check-child"

// run is the whole command: main only adds the process around it, so
// tests drive the CLI through run.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		args = []string{"serve"}
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "serve":
		return serve(ctx, rest, stdout, stderr, nil)
	case "ingest":
		return ingestCmd(ctx, rest, stdout, stderr)
	case "check":
		return check(ctx, rest, stdout, stderr)
	case "publish":
		return publishCmd(ctx, rest, stdout, stderr)
	case "warm":
		return warm(ctx, rest, stdout, stderr)
	case "health":
		return health(ctx, rest, stdout, stderr)
	case "samples":
		return samplesCmd(rest, stderr)
	case slideCheckCommand:
		return slidecheck.Serve(rest, stdout, pixels.CheckSlide)
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, "iiifd", version())
		return 0
	case "help", "-h", "--help", "-help":
		if len(rest) > 0 && rest[0] == "serve" {
			return serve(ctx, []string{"-h"}, stdout, stderr, nil)
		}
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "iiifd: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
}

func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				return bi.Main.Version + " (" + s.Value[:12] + ")"
			}
		}
		return bi.Main.Version
	}
	return "unknown"
}

// serve runs the server until ctx is done. ready, for tests, learns the
// bound address.
func serve(ctx context.Context, args []string, stdout, stderr io.Writer, ready func(net.Addr)) int {
	cfg := config.Default()
	fs := flag.NewFlagSet("iiifd serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: iiifd serve [flags]\n\nFlags (each also IIIFD_<NAME> in the environment, or NAME in --config):\n")
		fs.PrintDefaults()
	}
	if code, ok := loadConfig(fs, &cfg, args, stderr); !ok {
		return code
	}
	log := newLogger(cfg, stderr)
	shutdownTracing, tracingOn, err := tracing.Setup(ctx, version())
	if err != nil {
		fmt.Fprintf(stderr, "iiifd serve: %v\n", err)
		return 1
	}
	if tracingOn {
		log.Info("exporting traces over OTLP", "endpoint", firstNonEmpty(os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"), os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT")))
	}
	defer func() {
		// Spans still buffered are sent before exit, within bounds.
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := shutdownTracing(sctx); err != nil {
			log.Warn("trace export at shutdown", "error", err)
		}
	}()
	// Uploads are ingested by this program run as the ingest worker, in a
	// child process, as `iiifd ingest` does.
	if exe, err := os.Executable(); err == nil {
		cfg.IngestCommand = []string{exe, "ingest", workerFlag}
		// Slides are checked by this program too, in a child process,
		// before OpenSlide reads them in this one.
		cfg.SlideCheckCommand = []string{exe, slideCheckCommand}
	}
	a, err := app.New(cfg, log)
	if err != nil {
		fmt.Fprintf(stderr, "iiifd serve: %v\n", err)
		return 1
	}
	defer a.Close()
	if err := a.Serve(ctx, ready); err != nil {
		fmt.Fprintf(stderr, "iiifd serve: %v\n", err)
		return 1
	}
	return 0
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// samplesCmd writes the embedded sample images into a directory: what
// the server shows with no configuration, as files to load into a store
// (deploy/compose.yaml ingests them into S3), without shipping them twice
// in the container image.
func samplesCmd(args []string, stderr io.Writer) int {
	if len(args) != 1 || strings.HasPrefix(args[0], "-") {
		fmt.Fprintln(stderr, "usage: iiifd samples DIR")
		return 2
	}
	if err := samples.Extract(args[0]); err != nil {
		fmt.Fprintf(stderr, "iiifd samples: %v\n", err)
		return 1
	}
	return 0
}
