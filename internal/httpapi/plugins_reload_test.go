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

// holdCall is a log handler that holds the first call of the announce
// plugin that prints a line starting with prefix ("overlay " or "info
// "; the host logs a guest's output while the call runs) until release
// is closed, and tells of every module loaded.
type holdCall struct {
	prefix  string
	held    chan struct{}
	release chan struct{}
	once    *sync.Once
	loaded  chan string
}

func (h holdCall) Enabled(context.Context, slog.Level) bool { return true }
func (h holdCall) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h holdCall) WithGroup(string) slog.Handler            { return h }
func (h holdCall) Handle(_ context.Context, r slog.Record) error {
	switch r.Message {
	case "plugin output":
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "line" && strings.HasPrefix(a.Value.String(), h.prefix) {
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

// heldServer is a server with plugins whose files are watched, and whose
// first announce call printing a line starting with prefix is held.
type heldServer struct {
	t       *testing.T
	url     string
	files   []string // the plugins' files, in the order of names
	hold    holdCall
	release func()
}

func startHeld(t *testing.T, root, prefix string, names ...string) *heldServer {
	return startHeldWith(t, root, prefix, names, nil)
}

// startHeldWith is startHeld with the plugins' settings ("name.key=value").
func startHeldWith(t *testing.T, root, prefix string, names, settings []string) *heldServer {
	t.Helper()
	cfg := config.Default()
	cfg.Root = root
	withPlugins(t, names, settings...)(&cfg)
	cfg.PluginReload = 10 * time.Millisecond
	// The call is held while modules compile, on a shared and slow
	// machine: neither the call's nor the request's time limit may end
	// it first.
	cfg.PluginTimeout = 10 * time.Minute
	cfg.RequestTimeout = 0
	hs := &heldServer{t: t, files: cfg.Plugins.Files,
		hold: holdCall{prefix: prefix, held: make(chan struct{}), release: make(chan struct{}), once: new(sync.Once), loaded: make(chan string, 8)}}
	released := false
	hs.release = func() {
		if !released {
			released = true
			close(hs.hold.release)
		}
	}
	t.Cleanup(hs.release)
	ap, err := app.New(cfg, slog.New(hs.hold))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ap.Close() })
	srv := httptest.NewServer(ap.Handler())
	t.Cleanup(srv.Close)
	hs.url = srv.URL
	return hs
}

// loaded waits for the next module loaded and returns its hash.
func (hs *heldServer) loaded(what string) string {
	hs.t.Helper()
	select {
	case v := <-hs.hold.loaded:
		return v
	case <-time.After(3 * time.Minute):
		hs.t.Fatalf("timed out waiting for %s", what)
		return ""
	}
}

// install writes bin over the file of plugin i as a deployment does: a
// new file renamed over the old one.
func (hs *heldServer) install(i int, bin []byte) {
	hs.t.Helper()
	tmp := filepath.Join(filepath.Dir(hs.files[i]), "tmp")
	if err := os.WriteFile(tmp, bin, 0o644); err != nil {
		hs.t.Fatal(err)
	}
	if err := os.Rename(tmp, hs.files[i]); err != nil {
		hs.t.Fatal(err)
	}
}

// replace installs bin over plugin i, which runs the module hashed old,
// and waits until the new module is loaded.
func (hs *heldServer) replace(i int, bin []byte, old string) {
	hs.t.Helper()
	hs.install(i, bin)
	if h := hs.loaded("the new module loaded"); h == old {
		hs.t.Fatalf("the new module has the old one's hash %s", h)
	}
}

// getHeld starts a GET of url and returns once its call is held, with
// the channel its response will come on.
func (hs *heldServer) getHeld(url string) <-chan resp {
	hs.t.Helper()
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
	case <-hs.hold.held:
	case r := <-done:
		hs.t.Fatalf("the request ended before its call was held: %d %s", r.status, r.body)
	case <-time.After(3 * time.Minute):
		hs.t.Fatal("timed out waiting for the held call")
	}
	return done
}

// TestPluginOverlayReloadedMeanwhile: an image request sees the plugins
// as they were when it began. Its overlay plugin is reloaded from A to
// B (a module that makes another overlay: none on this small image) and
// back to A while its overlay runs on A: the image is still A's, made
// by A and stored under A's key with A's ETag, never mixed with B's. A
// request while B runs gets B's image under B's key; once A is back,
// A's entry (the held request's) answers.
func TestPluginOverlayReloadedMeanwhile(t *testing.T) {
	a, err := os.ReadFile(plugintest.Build(t, "announce"))
	if err != nil {
		t.Fatal(err)
	}
	// B: watermark, which draws nothing on images under 400 pixels.
	b, err := os.ReadFile(plugintest.Build(t, "watermark"))
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	writePNG(t, filepath.Join(root, "chart.png"), 300, 200)
	hs := startHeld(t, root, "overlay ", "announce")
	hashA := hs.loaded("A loaded")
	overlaid := func(body []byte) bool {
		r, g, b, _ := decode(t, body).At(2, 2).RGBA()
		return r|g|b == 0 // announce's black square
	}

	url := hs.url + "/iiif/3/chart.png/full/max/0/default.png"
	done := hs.getHeld(url)
	hs.replace(0, b, hashA)
	rb := get(t, url)
	if rb.status != 200 || rb.header.Get("X-Cache") != "MISS" || overlaid(rb.body) {
		t.Fatalf("image while B runs: %d X-Cache %q overlaid %v, want 200 MISS without A's overlay", rb.status, rb.header.Get("X-Cache"), rb.status == 200 && overlaid(rb.body))
	}
	etagB := rb.header.Get("ETag")
	hs.install(0, a)
	if h := hs.loaded("A loaded again"); h != hashA {
		t.Fatalf("A loaded again with hash %s, want %s", h, hashA)
	}
	hs.release()
	r := <-done
	if r.status != 200 || r.header.Get("X-Cache") != "MISS" {
		t.Fatalf("image whose overlay plugin was reloaded A→B→A meanwhile: %d X-Cache %q %.200q, want 200 MISS", r.status, r.header.Get("X-Cache"), r.body)
	}
	if !overlaid(r.body) {
		t.Error("the held image has no overlay of A (pixel 2,2 is not black)")
	}
	etagA := r.header.Get("ETag")
	if etagA == "" || etagA == etagB {
		t.Fatalf("the held image's ETag %q, B's %q: want A's own", etagA, etagB)
	}
	// A's key holds what A made: the held request's image answers.
	for i := range 2 {
		r := get(t, url)
		if r.status != 200 || !strings.HasPrefix(r.header.Get("X-Cache"), "HIT") || r.header.Get("ETag") != etagA {
			t.Fatalf("request %d after the reloads: %d X-Cache %q ETag %s, want 200 HIT with the held image's ETag %s", i, r.status, r.header.Get("X-Cache"), r.header.Get("ETag"), etagA)
		}
		if !overlaid(r.body) {
			t.Errorf("request %d: no overlay of A (pixel 2,2 is not black)", i)
		}
	}
}

// TestPluginVaryReloadedMeanwhile: the Vary and Cache-Control of a
// response come from the plugins its request began with, not from those
// running when its headers are written. Plugin A (which makes responses
// depend on nothing but the request) is replaced, while an info.json
// request is held in A's info call, by B, a per-user watermark whose
// responses vary with a cookie and are the client's only: a request while
// B runs varies with Cookie and is private; the held one, A's, neither.
func TestPluginVaryReloadedMeanwhile(t *testing.T) {
	b, err := os.ReadFile(plugintest.Build(t, "watermark"))
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	writePNG(t, filepath.Join(root, "chart.png"), 800, 600)
	// The setting is B's (B is installed under A's name); A ignores it.
	hs := startHeldWith(t, root, "info ", []string{"announce"}, []string{"announce.per-user=session"})
	hashA := hs.loaded("A loaded")
	url := hs.url + "/iiif/3/chart.png/info.json"
	done := hs.getHeld(url)
	hs.replace(0, b, hashA)
	rb := get(t, url)
	if rb.status != 200 || !strings.Contains(strings.Join(rb.header.Values("Vary"), ","), "Cookie") || !strings.HasPrefix(rb.header.Get("Cache-Control"), "private") {
		t.Fatalf("info.json while B runs: %d Vary %q Cache-Control %q, want 200 varying with Cookie, private", rb.status, rb.header.Values("Vary"), rb.header.Get("Cache-Control"))
	}
	hs.release()
	r := <-done
	if r.status != 200 {
		t.Fatalf("held info.json: %d %.200q", r.status, r.body)
	}
	if v := strings.Join(r.header.Values("Vary"), ","); strings.Contains(v, "Cookie") || strings.HasPrefix(r.header.Get("Cache-Control"), "private") {
		t.Errorf("the held info.json, A's: Vary %q Cache-Control %q, want neither B's Cookie nor private", v, r.header.Get("Cache-Control"))
	}
}

// TestPluginInfoReloadedMeanwhile: an info.json request sees the plugins
// as they were when it began. An info plugin reloaded from A to B while
// the document is being made (after its key and ETag were decided from
// A's fingerprint, before the plugin's info call) does not make it: the
// document has A's additions only, is sent with A's ETag and stored
// under A's key. Nothing of B's is ever stored under A's key or sent
// with A's ETag: a request while B runs gets B's rights under B's key,
// and once A is back every client gets A's.
func TestPluginInfoReloadedMeanwhile(t *testing.T) {
	const urlB = "http://b.example/rights"
	a, err := os.ReadFile(plugintest.Build(t, "rights"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(plugintest.BuildWith(t, "rights", "-X main.url="+urlB))
	if err != nil {
		t.Fatal(err)
	}
	const urlA = "http://creativecommons.org/licenses/by/4.0/"
	root := t.TempDir()
	writePNG(t, filepath.Join(root, "chart.png"), 300, 200)
	// announce's info call comes first and is held; rights' comes
	// after it, on the module of the request's snapshot.
	hs := startHeld(t, root, "info ", "announce", "rights")
	hs.loaded("announce loaded")
	hashA := hs.loaded("rights A loaded")
	only := func(body []byte, want, not string) bool {
		return strings.Contains(string(body), want) && !strings.Contains(string(body), not)
	}

	url := hs.url + "/iiif/3/chart.png/info.json"
	done := hs.getHeld(url)
	hs.replace(1, b, hashA)
	hs.release()
	r := <-done
	if r.status != 200 || r.header.Get("X-Cache") != "MISS" || !only(r.body, urlA, urlB) {
		t.Fatalf("info.json whose info plugin was reloaded A→B meanwhile: %d X-Cache %q %.400q, want 200 MISS with A's rights only", r.status, r.header.Get("X-Cache"), r.body)
	}
	etagA := r.header.Get("ETag")
	// B running: B's document under B's key, made once.
	var etagB string
	for i, want := range []string{"MISS", "HIT"} {
		r := get(t, url)
		if r.status != 200 || !strings.HasPrefix(r.header.Get("X-Cache"), want) || !only(r.body, urlB, urlA) {
			t.Fatalf("request %d with B running: %d X-Cache %q %.400q, want 200 %s with B's rights only", i, r.status, r.header.Get("X-Cache"), r.body, want)
		}
		if etagB = r.header.Get("ETag"); etagB == etagA {
			t.Errorf("request %d with B running: A's ETag %s", i, etagA)
		}
	}
	// A back: A's key holds the held request's document, A's own.
	hs.install(1, a)
	if h := hs.loaded("rights A loaded again"); h != hashA {
		t.Fatalf("A loaded again with hash %s, want %s", h, hashA)
	}
	for i := range 2 {
		r := get(t, url)
		if r.status != 200 || !strings.HasPrefix(r.header.Get("X-Cache"), "HIT") || !only(r.body, urlA, urlB) || r.header.Get("ETag") != etagA {
			t.Fatalf("request %d with A back: %d X-Cache %q ETag %s (A's %s) %.400q, want a hit with A's rights only and A's ETag", i, r.status, r.header.Get("X-Cache"), r.header.Get("ETag"), etagA, r.body)
		}
	}
}
