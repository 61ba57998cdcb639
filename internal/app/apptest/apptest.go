// Package apptest serves the whole server (internal/app) on a loopback
// httptest server, for the tests of other packages.
package apptest

import (
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"

	"github.com/iiifd/iiifd/internal/app"
	"github.com/iiifd/iiifd/internal/config"
	"github.com/iiifd/iiifd/internal/samples"
)

// Serve builds the app from cfg, with its logs discarded, and serves it
// until the test ends; the server closes before the app.
func Serve(t testing.TB, cfg config.Config) (*app.App, *httptest.Server) {
	t.Helper()
	a, err := app.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)
	return a, srv
}

// Samples is the default configuration serving a fresh copy of the
// embedded sample images, removed when the test ends.
func Samples(t testing.TB) config.Config {
	t.Helper()
	root := t.TempDir()
	if err := samples.Extract(root); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Root = root
	return cfg
}
