package plugin

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iiifd/iiifd/internal/plugin/plugintest"
)

// testTimeout is the call limit of tests that are not about it: the
// machines running tests are shared and slow at times.
const testTimeout = 5 * time.Second

func newHost(t testing.TB, opt Options, specs ...Spec) *Host {
	t.Helper()
	if opt.Timeout == 0 {
		opt.Timeout = testTimeout
	}
	opt.CacheDir = plugintest.CacheDir()
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.NewTextHandler(&testWriter{t}, nil))
	}
	h, err := New(context.Background(), specs, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

type testWriter struct{ t testing.TB }

func (w *testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

func bearer(token string) http.Header {
	h := http.Header{}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	return h
}

func TestAuthorizeAuthToken(t *testing.T) {
	wasm := plugintest.Build(t, "auth-token")
	def := newHost(t, Options{}, Spec{Path: wasm})
	custom := newHost(t, Options{}, Spec{Path: wasm, Config: map[string]string{"token": "s3cret"}})
	tests := []struct {
		name   string
		h      *Host
		header http.Header
		status int // 0 = allowed
	}{
		{"no header", def, nil, 401},
		{"default token", def, bearer("letmein"), 0},
		{"wrong token", def, bearer("letmeout"), 401},
		{"basic auth", def, http.Header{"Authorization": {"Basic bGV0bWVpbg=="}}, 401},
		{"configured token", custom, bearer("s3cret"), 0},
		{"default token when configured", custom, bearer("letmein"), 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.h.Authorize(context.Background(), &Request{ID: "x", Kind: "image", Method: "GET", Header: tt.header})
			var d *Denied
			switch {
			case tt.status == 0 && err != nil:
				t.Fatalf("denied: %v", err)
			case tt.status != 0 && !errors.As(err, &d):
				t.Fatalf("got %v, want a denial", err)
			case tt.status != 0 && (d.Status != tt.status || d.ResponseHeader().Get("WWW-Authenticate") == ""):
				t.Fatalf("got %d %v, want %d with a challenge", d.Status, d.ResponseHeader(), tt.status)
			}
		})
	}
}

func TestConfigurationRefused(t *testing.T) {
	_, err := New(context.Background(), []Spec{{Path: plugintest.Build(t, "hash-resolver"), Config: map[string]string{"depth": "12"}}}, Options{})
	if err == nil || !strings.Contains(err.Error(), "depth") {
		t.Fatalf("got %v, want the configuration refused", err)
	}
}

func TestResolveHashResolver(t *testing.T) {
	h := newHost(t, Options{}, Spec{Path: plugintest.Build(t, "hash-resolver")})
	for _, id := range []string{"photo", "a/b.tif", "ü"} {
		sum := sha256.Sum256([]byte(id))
		hx := hex.EncodeToString(sum[:])
		got, err := h.Resolve(context.Background(), id)
		if want := hx[:2] + "/" + hx[2:4] + "/" + id; err != nil || got != want {
			t.Errorf("Resolve(%q) = %q, %v, want %q", id, got, err, want)
		}
	}
	h3 := newHost(t, Options{}, Spec{Path: plugintest.Build(t, "hash-resolver"), Config: map[string]string{"depth": "3"}})
	if got, _ := h3.Resolve(context.Background(), "photo"); got != "55/c6/4d/photo" {
		t.Errorf("depth 3: %q", got)
	}
}

func TestInfoRights(t *testing.T) {
	h := newHost(t, Options{}, Spec{Path: plugintest.Build(t, "rights"), Config: map[string]string{"url": "https://rightsstatements.org/vocab/InC/1.0/"}})
	for v, field := range map[int]string{3: "rights", 2: "license"} {
		extra, err := h.Info(context.Background(), "x", v, []byte(`{"id":"x"}`))
		if err != nil {
			t.Fatal(err)
		}
		if got := string(extra[field]); got != `"https://rightsstatements.org/vocab/InC/1.0/"` || len(extra) != 1 {
			t.Errorf("v%d: %v", v, extra)
		}
	}
}

// TestOverlayWatermark runs watermark, in Go and in AssemblyScript: no
// overlay on small images, a square in the bottom-right corner at the
// configured opacity on large ones.
func TestOverlayWatermark(t *testing.T) {
	for _, name := range []string{"watermark", "assemblyscript/watermark"} {
		t.Run(name, func(t *testing.T) {
			h := newHost(t, Options{}, Spec{Path: plugintest.Build(t, name), Config: map[string]string{"min-size": "300", "opacity": "0.25"}})
			r := &Request{ID: "x", Kind: "image"}
			o, err := h.Overlay(context.Background(), r, 200, 150)
			if err != nil || o != nil {
				t.Fatalf("small image: %v %v, want no overlay", o, err)
			}
			o, err = h.Overlay(context.Background(), r, 800, 600)
			if err != nil || o == nil {
				t.Fatalf("large image: %v %v", o, err)
			}
			img, err := png.Decode(bytes.NewReader(o.PNG))
			if err != nil {
				t.Fatal(err)
			}
			if b := img.Bounds(); b.Dx() != 150 || b.Dy() != 150 || o.X != 800-150-18 || o.Y != 600-150-18 || o.Opacity != 0.25 {
				t.Errorf("overlay %v at %d,%d opacity %v", b, o.X, o.Y, o.Opacity)
			}
			snap := h.Snapshot()
			defer snap.Release()
			if vary, private := snap.OverlayVary(); vary != "" || private || len(h.set.Load().overlayVary) != 0 {
				t.Errorf("declared %q %v %v without per-user", vary, private, h.set.Load().overlayVary)
			}
		})
	}
}

// TestOverlayOpacityNaN: an overlay opacity that is not a number is not
// in 0..1 either; the call fails rather than composite with it. (Go's
// watermark accepts opacity=NaN and answers it.)
func TestOverlayOpacityNaN(t *testing.T) {
	h := newHost(t, Options{}, Spec{Path: plugintest.Build(t, "watermark"), Config: map[string]string{"opacity": "NaN"}})
	o, err := h.Overlay(context.Background(), &Request{ID: "x", Kind: "image"}, 800, 600)
	if err == nil || !strings.Contains(err.Error(), "opacity") {
		t.Fatalf("got an overlay (%v) and %v; want an error about the opacity", o != nil, err)
	}
}

// TestOverlayVaryPerUser: watermark with per-user, in Go and in
// AssemblyScript, declares in its configure reply (overlay-vary) the
// cookie its overlay depends on, is given it, and draws stripes of each
// user's own colour, the same pixels in both languages; a request
// without the cookie gets none. A setting out of range refuses the
// module.
func TestOverlayVaryPerUser(t *testing.T) {
	cfg := map[string]string{"min-size": "100", "opacity": "1", "per-user": "session"}
	users := []string{"alice", "bob"}
	drawn := map[string][]image.Image{}
	for _, name := range []string{"watermark", "assemblyscript/watermark"} {
		h := newHost(t, Options{}, Spec{Path: plugintest.Build(t, name), Config: cfg})
		if got := h.set.Load().overlayVary; !slices.Equal(got, []string{"cookie:session"}) {
			t.Errorf("%s: declared %q, want cookie:session", name, got)
		}
		snap := h.Snapshot()
		vary, private := snap.OverlayVary()
		snap.Release()
		if vary != "Cookie" || !private {
			t.Errorf("%s: Vary %q private %v, want Cookie, true", name, vary, private)
		}
		for _, u := range users {
			r := &Request{ID: "x", Kind: "image", Header: http.Header{"Cookie": {"theme=dark; session=" + u}}}
			o, err := h.Overlay(context.Background(), r, 400, 300)
			if err != nil || o == nil {
				t.Fatalf("%s, %s: %v %v", name, u, o, err)
			}
			img, err := png.Decode(bytes.NewReader(o.PNG))
			if err != nil {
				t.Fatalf("%s, %s: %v", name, u, err)
			}
			if b := img.Bounds(); b.Dx() != 75 || o.X != 400-75-9 || o.Y != 300-75-9 || o.Opacity != 1 {
				t.Errorf("%s, %s: overlay %v at %d,%d opacity %v", name, u, b, o.X, o.Y, o.Opacity)
			}
			drawn[name] = append(drawn[name], img)
		}
		if k := h.OverlayKey(&Request{Header: http.Header{"Cookie": {"session=alice"}}}); k == h.OverlayKey(&Request{Header: http.Header{"Cookie": {"session=bob"}}}) {
			t.Errorf("%s: alice and bob share the overlay key %q", name, k)
		}
		if o, err := h.Overlay(context.Background(), &Request{ID: "x", Kind: "image"}, 400, 300); err != nil || o != nil {
			t.Errorf("%s without the cookie: %v %v, want no overlay", name, o, err)
		}
	}
	for i, u := range users {
		if d := imageDiff(drawn["watermark"][i], drawn["assemblyscript/watermark"][i]); d != "" {
			t.Errorf("%s: Go and AssemblyScript watermarks differ: %s", u, d)
		}
	}
	if imageDiff(drawn["assemblyscript/watermark"][0], drawn["assemblyscript/watermark"][1]) == "" {
		t.Error("alice and bob got the same stripes")
	}
	_, err := New(context.Background(), []Spec{{Path: plugintest.Build(t, "assemblyscript/watermark"), Config: map[string]string{"opacity": "2"}}}, Options{CacheDir: plugintest.CacheDir()})
	if err == nil || !strings.Contains(err.Error(), "opacity") {
		t.Errorf("opacity 2: %v, want the configuration refused", err)
	}
}

// imageDiff describes the first difference between a and b, "" when
// they have the same size and colours.
func imageDiff(a, b image.Image) string {
	if a.Bounds() != b.Bounds() {
		return fmt.Sprintf("bounds %v and %v", a.Bounds(), b.Bounds())
	}
	r := a.Bounds()
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			ca, cb := color.NRGBAModel.Convert(a.At(x, y)), color.NRGBAModel.Convert(b.At(x, y))
			if ca != cb {
				return fmt.Sprintf("at %d,%d: %v and %v", x, y, ca, cb)
			}
		}
	}
	return ""
}

// trapModule is a hand-assembled module whose authorize executes
// unreachable: a real WebAssembly trap, with no SDK in between.
var trapModule = []byte{
	0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
	0x01, 0x0c, 0x02, 0x60, 0x01, 0x7f, 0x01, 0x7f, 0x60, 0x02, 0x7f, 0x7f, 0x01, 0x7e, // types
	0x03, 0x03, 0x02, 0x00, 0x01, // functions
	0x05, 0x03, 0x01, 0x00, 0x01, // memory: one page
	0x07, 0x24, 0x03, // exports
	0x06, 'm', 'e', 'm', 'o', 'r', 'y', 0x02, 0x00,
	0x0b, 'i', 'i', 'i', 'f', 'd', '_', 'a', 'l', 'l', 'o', 'c', 0x00, 0x00,
	0x09, 'a', 'u', 't', 'h', 'o', 'r', 'i', 'z', 'e', 0x00, 0x01,
	0x0a, 0x0a, 0x02, 0x04, 0x00, 0x41, 0x10, 0x0b, 0x03, 0x00, 0x00, 0x0b, // code
}

// TestSandbox checks that a guest that traps, runs forever or eats memory
// fails only its own call, within bounds, and that the host goes on.
func TestSandbox(t *testing.T) {
	dir := t.TempDir()
	trap := filepath.Join(dir, "trap.wasm")
	if err := os.WriteFile(trap, trapModule, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		plugin  string
		timeout time.Duration
		msg     string
	}{
		{plugintest.Build(t, "runaway"), 50 * time.Millisecond, "time limit"},
		// The time limit is long here, so that the memory limit stops it.
		{plugintest.Build(t, "memhog"), 60 * time.Second, "out of memory"},
		{trap, time.Second, "trapped"},
	}
	for _, tt := range tests {
		name := strings.TrimSuffix(filepath.Base(tt.plugin), ".wasm")
		t.Run(name, func(t *testing.T) {
			var failed failures
			h2 := newHost(t, Options{Timeout: tt.timeout, MemoryLimit: 32 << 20, Logger: slog.New(failureLog{&failed})}, Spec{Path: tt.plugin})
			for range 3 { // and again on fresh instances
				// The error names the limit that stopped the module,
				// which is what is asserted: not how long it ran.
				_, err := h2.Authorize(context.Background(), &Request{ID: "x", Kind: "image"})
				if err == nil || !strings.Contains(err.Error(), tt.msg) {
					t.Fatalf("got %v, want an error saying %q", err, tt.msg)
				}
				if status := err.(interface{ HTTPStatus() int }).HTTPStatus(); status != 500 {
					t.Errorf("status %d, want 500", status)
				}
			}
			// Each failed instance was discarded, and its memory, as
			// the log reports it, never went past the limit.
			failed.mu.Lock()
			defer failed.mu.Unlock()
			if len(failed.memory) != 3 {
				t.Fatalf("%d failures logged with their memory, want 3", len(failed.memory))
			}
			for _, size := range failed.memory {
				if size <= 0 || size > 32<<20 {
					t.Errorf("a failed instance had %d bytes of memory; the limit is %d", size, 32<<20)
				}
			}
		})
	}
	// A caller that goes away stops the guest too, with its own error.
	h := newHost(t, Options{Timeout: 10 * time.Second}, Spec{Path: plugintest.Build(t, "runaway")})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if _, err := h.Authorize(ctx, &Request{ID: "x"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("caller's deadline: got %v", err)
	}
}

// TestConcurrentCalls calls one plugin from many goroutines: every call
// gets its own answer.
func TestConcurrentCalls(t *testing.T) {
	h := newHost(t, Options{Pool: 4}, Spec{Path: plugintest.Build(t, "hash-resolver")})
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				id := fmt.Sprintf("img-%d-%d", g, i)
				key, err := h.Resolve(context.Background(), id)
				if err != nil || !strings.HasSuffix(key, "/"+id) || len(key) != len(id)+6 {
					errs <- fmt.Errorf("Resolve(%q) = %q, %v", id, key, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestHotReload replaces a plugin's file under concurrent load: calls
// never fail, the new module takes over, and a file that does not compile
// leaves the running module in place.
func TestHotReload(t *testing.T) {
	oldWasm := plugintest.Build(t, "auth-token")
	newWasm := plugintest.BuildWith(t, "auth-token", "-X main.token=rotated")
	dir := t.TempDir()
	path := filepath.Join(dir, "auth-token.wasm")
	install := func(src []byte) {
		tmp := filepath.Join(dir, "tmp")
		if err := os.WriteFile(tmp, src, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	read := func(p string) []byte {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	install(read(oldWasm))
	h := newHost(t, Options{Reload: 10 * time.Millisecond}, Spec{Path: path})
	first := h.Fingerprint(HookAuthorize)

	allowed := func(token string) (bool, error) {
		_, err := h.Authorize(context.Background(), &Request{ID: "x", Header: bearer(token)})
		var d *Denied
		if errors.As(err, &d) {
			return false, nil
		}
		return err == nil, err
	}
	stop := make(chan struct{})
	var calls atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				for _, tok := range []string{"letmein", "rotated"} {
					if _, err := allowed(tok); err != nil {
						errs <- err
						return
					}
					calls.Add(1)
				}
			}
		}()
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		// Compiling a new module takes long under the race detector.
		deadline := time.Now().Add(3 * time.Minute)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitFor("load", func() bool { return calls.Load() > 100 })
	install(read(newWasm))
	waitFor("the new module", func() bool { ok, _ := allowed("rotated"); return ok })
	if ok, _ := allowed("letmein"); ok {
		t.Error("the old token is still allowed after the reload")
	}
	if h.Fingerprint(HookAuthorize) == first {
		t.Error("the fingerprint did not change")
	}
	// A broken file: the running module stays.
	before := calls.Load()
	install([]byte("not wasm at all"))
	time.Sleep(100 * time.Millisecond)
	waitFor("more calls", func() bool { return calls.Load() > before+100 })
	if ok, _ := allowed("rotated"); !ok {
		t.Error("a broken file replaced the running module")
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("call failed during reload: %v", err)
	}
	t.Logf("%d calls during the reloads", calls.Load())
}

// failures collects the memory size that each "instance discarded" log
// record reports.
type failures struct {
	mu     sync.Mutex
	memory []int64
}

type failureLog struct{ f *failures }

func (l failureLog) Enabled(context.Context, slog.Level) bool { return true }
func (l failureLog) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l failureLog) WithGroup(string) slog.Handler            { return l }
func (l failureLog) Handle(_ context.Context, r slog.Record) error {
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "memory" {
			l.f.mu.Lock()
			l.f.memory = append(l.f.memory, a.Value.Int64())
			l.f.mu.Unlock()
		}
		return true
	})
	return nil
}

// TestSnapshotReloadBack: a snapshot keeps the modules running when it
// was taken. Reloads from A to B and back to A during it change neither
// its fingerprint nor the modules its hooks run on: the A it holds is
// the first one, replaced twice but still open, which closes only when
// the snapshot is released. A reload of unchanged bytes swaps nothing;
// a reload of another plugin leaves the overlay's fingerprint alone.
func TestSnapshotReloadBack(t *testing.T) {
	a, err := os.ReadFile(plugintest.Build(t, "announce"))
	if err != nil {
		t.Fatal(err)
	}
	b := plugintest.Variant(a, "module B")
	dir := t.TempDir()
	path := filepath.Join(dir, "announce.wasm")
	other := filepath.Join(dir, "auth-token.wasm")
	auth, err := os.ReadFile(plugintest.Build(t, "auth-token"))
	if err != nil {
		t.Fatal(err)
	}
	for p, bin := range map[string][]byte{path: a, other: auth} {
		if err := os.WriteFile(p, bin, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	h := newHost(t, Options{Reload: -1}, Spec{Path: path}, Spec{Path: other})
	ov, auths := h.Plugins()[0], h.Plugins()[1]
	load := func(p *Plugin, path string, bin []byte) {
		t.Helper()
		if err := os.WriteFile(path, bin, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := p.load(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	closed := func(m *module) bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		return m.closed
	}
	req := &Request{ID: "x", Kind: "image"}

	snap := h.Snapshot()
	first := snap.set.mods[0]
	fp, authFP := snap.Fingerprint(HookOverlay), snap.Fingerprint(HookAuthorize)
	if fp == "" || fp != h.Fingerprint(HookOverlay) {
		t.Fatalf("after New: snapshot fingerprint %q, host's %q", fp, h.Fingerprint(HookOverlay))
	}
	load(ov, path, b)
	if h.Fingerprint(HookOverlay) == fp || ov.current() == first {
		t.Errorf("A to B: the host's fingerprint or module unchanged")
	}
	during := h.Snapshot()
	load(ov, path, a)
	if got := h.Fingerprint(HookOverlay); got != fp {
		t.Errorf("back to A: fingerprint %q, want A's %q", got, fp)
	}
	if ov.current() == first {
		t.Fatal("back to A: the first module is running again, want a new one")
	}
	if snap.Fingerprint(HookOverlay) != fp || snap.set.mods[0] != first {
		t.Errorf("A to B to A: the snapshot's fingerprint or module changed")
	}
	if closed(first) {
		t.Fatal("the first A closed while a snapshot holds it")
	}
	// The snapshot's hooks run on the first A, replaced twice.
	if o, err := snap.Overlay(context.Background(), req, 40, 30); err != nil || o == nil {
		t.Fatalf("overlay of the snapshot taken before the reloads: %v %v", o, err)
	}
	// B is held by the snapshot taken while it ran, and only by it.
	mb := during.set.mods[0]
	if during.Fingerprint(HookOverlay) == fp || closed(mb) {
		t.Errorf("B's snapshot: fingerprint %q (A's %q), closed %v", during.Fingerprint(HookOverlay), fp, closed(mb))
	}
	during.Release()
	during.Release() // a second release does nothing
	if !closed(mb) {
		t.Error("B stays open after the last snapshot holding it was released")
	}
	if closed(first) {
		t.Error("the first A closed while a snapshot still holds it")
	}
	snap.Release()
	if !closed(first) {
		t.Error("the first A stays open after its last snapshot was released")
	}
	if closed(ov.current()) {
		t.Error("the running A closed")
	}
	// Changing bytes of the authorize plugin touch only its fingerprint.
	load(auths, other, plugintest.Variant(auth, "v2"))
	if h.Fingerprint(HookAuthorize) == authFP || h.Fingerprint(HookOverlay) != fp {
		t.Errorf("an authorize reload: authorize fingerprint changed %v, overlay's %q (want %q)", h.Fingerprint(HookAuthorize) != authFP, h.Fingerprint(HookOverlay), fp)
	}
	// The same bytes again swap nothing.
	running := ov.current()
	load(ov, path, a)
	if ov.current() != running {
		t.Error("a reload of unchanged bytes swapped the module")
	}
	if o, err := h.Overlay(context.Background(), req, 40, 30); err != nil || o == nil {
		t.Fatalf("overlay after the reloads: %v %v", o, err)
	}
}

// TestSnapshotAfterClose: a request that takes its snapshot after the
// host was closed fails its calls rather than running without plugins.
func TestSnapshotAfterClose(t *testing.T) {
	h, err := New(context.Background(), []Spec{{Path: plugintest.Build(t, "auth-token")}}, Options{Timeout: testTimeout, CacheDir: plugintest.CacheDir(), Reload: -1})
	if err != nil {
		t.Fatal(err)
	}
	h.Close()
	s := h.Snapshot()
	defer s.Release()
	if _, err := s.Authorize(context.Background(), &Request{ID: "x", Kind: "image"}); err == nil {
		t.Fatal("authorize after Close allowed the request")
	}
}
