package httpapi_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iiifd/iiifd/internal/app"
	"github.com/iiifd/iiifd/internal/config"
	"github.com/iiifd/iiifd/internal/plugin/plugintest"
)

// holdOverlay is a log handler that holds the first overlay call of the
// announce plugin where it prints its line (the host logs a guest's
// output while the call runs) until release is closed, and tells of
// every module loaded.
type holdOverlay struct {
	held    chan struct{}
	release chan struct{}
	once    *sync.Once
	loaded  chan string
}

func (h holdOverlay) Enabled(context.Context, slog.Level) bool { return true }
func (h holdOverlay) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h holdOverlay) WithGroup(string) slog.Handler            { return h }
func (h holdOverlay) Handle(_ context.Context, r slog.Record) error {
	switch r.Message {
	case "plugin output":
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "line" && strings.HasPrefix(a.Value.String(), "overlay ") {
				h.once.Do(func() {
					close(h.held)
					<-h.release
				})
			}
			return true
		})
	case "plugin loaded":
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "sha256" {
				select {
				case h.loaded <- a.Value.String():
				default: // more loads than the test waits for: it fails on its own
				}
			}
			return true
		})
	}
	return nil
}

// TestPluginOverlayReloadedMeanwhile: an overlay plugin reloaded from A
// to B and back to A while an image's overlay runs on A (its
// fingerprint is A's again when the overlay returns) makes that image a
// 503, never cached under the key decided before the reloads; the next
// request is made and served as usual.
func TestPluginOverlayReloadedMeanwhile(t *testing.T) {
	a, err := os.ReadFile(plugintest.Build(t, "announce"))
	if err != nil {
		t.Fatal(err)
	}
	b := plugintest.Variant(a, "module B")
	root := t.TempDir()
	writePNG(t, filepath.Join(root, "chart.png"), 300, 200)
	cfg := config.Default()
	cfg.Root = root
	withPlugins(t, []string{"announce"})(&cfg)
	cfg.PluginReload = 10 * time.Millisecond
	// The overlay call is held while modules compile, on a shared and
	// slow machine: neither the call's nor the request's time limit may
	// end it first.
	cfg.PluginTimeout = 10 * time.Minute
	cfg.RequestTimeout = 0
	path := cfg.Plugins.Files[0]
	hold := holdOverlay{held: make(chan struct{}), release: make(chan struct{}), once: new(sync.Once), loaded: make(chan string, 8)}
	released := false
	release := func() {
		if !released {
			released = true
			close(hold.release)
		}
	}
	t.Cleanup(release)
	ap, err := app.New(cfg, slog.New(hold))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ap.Close() })
	srv := httptest.NewServer(ap.Handler())
	t.Cleanup(srv.Close)

	wait := func(what string, ch <-chan string) string {
		t.Helper()
		select {
		case v := <-ch:
			return v
		case <-time.After(3 * time.Minute):
			t.Fatalf("timed out waiting for %s", what)
			return ""
		}
	}
	hashA := wait("A loaded", hold.loaded)
	install := func(bin []byte) {
		t.Helper()
		tmp := filepath.Join(filepath.Dir(path), "tmp")
		if err := os.WriteFile(tmp, bin, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}

	url := srv.URL + "/iiif/3/chart.png/full/max/0/default.png"
	done := make(chan resp, 1)
	go func() {
		// Not get: a test may not fail from another goroutine.
		res, err := http.Get(url)
		if err != nil {
			done <- resp{status: -1, body: []byte(err.Error())}
			return
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		done <- resp{res.StatusCode, res.Header, body}
	}()
	select {
	case <-hold.held:
	case r := <-done:
		t.Fatalf("the request ended before its overlay was held: %d %s", r.status, r.body)
	case <-time.After(3 * time.Minute):
		t.Fatal("timed out waiting for the overlay call")
	}
	install(b)
	if h := wait("B loaded", hold.loaded); h == hashA {
		t.Fatalf("B has A's hash %s", h)
	}
	install(a)
	if h := wait("A loaded again", hold.loaded); h != hashA {
		t.Fatalf("A loaded again with hash %s, want %s", h, hashA)
	}
	release()
	r := <-done
	if r.status != 503 || !strings.Contains(string(r.body), "reloaded") {
		t.Fatalf("image whose overlay plugin was reloaded A→B→A meanwhile: %d %.200q, want 503 saying it was reloaded", r.status, r.body)
	}
	if x := r.header.Get("X-Cache"); strings.HasPrefix(x, "HIT") {
		t.Errorf("X-Cache %q", x)
	}
	// Made again by the module running now, and cached.
	for i, want := range []string{"MISS", "HIT"} {
		r := get(t, url)
		if r.status != 200 || !strings.HasPrefix(r.header.Get("X-Cache"), want) {
			t.Fatalf("request %d after the reloads: %d X-Cache %q %.200q, want 200 %s", i, r.status, r.header.Get("X-Cache"), r.body, want)
		}
		if r, g, b, _ := decode(t, r.body).At(2, 2).RGBA(); r|g|b != 0 {
			t.Errorf("request %d: no overlay (pixel 2,2 is not black)", i)
		}
	}
}
