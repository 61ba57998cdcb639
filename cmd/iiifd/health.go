package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/iiifd/iiifd/internal/config"
)

// health asks a running server's /healthz (or /readyz) and exits 0 when it
// answers 200. It is the container's HEALTHCHECK: the runtime image has
// no curl or wget, and the command finds the port the server was told to
// listen on from the same IIIFD_ADDR the server reads.
func health(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("iiifd health", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", envOr(config.EnvName("addr"), config.Default().Addr), "`HOST:PORT` the server listens on (default: $IIIFD_ADDR or :8080)")
	path := fs.String("path", "/healthz", "`path` to ask: /healthz (alive) or /readyz (taking traffic)")
	timeout := fs.Duration("timeout", 3*time.Second, "time allowed for the answer")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	host, port, err := net.SplitHostPort(*addr)
	if err != nil {
		fmt.Fprintf(stderr, "iiifd health: --addr %q: %v\n", *addr, err)
		return 2
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(host, port)+*path, nil)
	if err != nil {
		fmt.Fprintf(stderr, "iiifd health: %v\n", err)
		return 2
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "iiifd health: %v\n", err)
		return 1
	}
	resp.Body.Close()
	fmt.Fprintln(stdout, resp.Status)
	if resp.StatusCode != http.StatusOK {
		return 1
	}
	return 0
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
