package app

import (
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"

	"github.com/iiifd/iiifd/internal/config"
)

// serve builds the app from cfg, with its logs discarded, and serves it on
// loopback until the test ends (the server closes before the app). It is
// apptest.Serve for this package's own tests, which cannot import
// apptest (apptest imports app).
func serve(t testing.TB, cfg config.Config) (*App, *httptest.Server) {
	t.Helper()
	a, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	hs := httptest.NewServer(a.Handler())
	t.Cleanup(hs.Close)
	return a, hs
}
