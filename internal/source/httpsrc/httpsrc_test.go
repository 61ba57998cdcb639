package httpsrc

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iiifd/iiifd/internal/fault"
	"github.com/iiifd/iiifd/internal/source"
	"github.com/iiifd/iiifd/internal/source/ranged"
	"github.com/iiifd/iiifd/internal/source/remote"
	"github.com/iiifd/iiifd/internal/source/remote/remotetest"
	"github.com/iiifd/iiifd/internal/source/sourcetest"
	"github.com/iiifd/iiifd/internal/source/spool"
)

// origin is a real HTTP server on loopback serving files from memory.
type origin struct {
	files     map[string][]byte
	mod       time.Time
	noRanges  bool // answer every GET with the whole file
	truncate  atomic.Bool
	gets      atomic.Int64
	wholeGets atomic.Int64
}

func (o *origin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, ok := o.files[strings.TrimPrefix(r.URL.Path, "/images/")]
	if !ok || !strings.HasPrefix(r.URL.Path, "/images/") {
		http.NotFound(w, r)
		return
	}
	sum := sha256.Sum256(b)
	w.Header().Set("ETag", `"`+hex.EncodeToString(sum[:8])+`"`)
	if r.Method == http.MethodGet {
		o.gets.Add(1)
		if r.Header.Get("Range") == "" {
			o.wholeGets.Add(1)
		}
	}
	if o.truncate.Load() && r.Method == http.MethodGet {
		// Announce the bytes asked for, send half of them.
		var from, to int
		if _, err := fmt.Sscanf(r.Header.Get("Range"), "bytes=%d-%d", &from, &to); err == nil {
			w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", from, to, len(b)))
			w.Header().Set("Content-Length", strconv.Itoa(to-from+1))
			w.WriteHeader(http.StatusPartialContent)
			w.Write(b[from : from+(to-from+1)/2])
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		w.WriteHeader(http.StatusOK)
		w.Write(b[:len(b)/2])
		return
	}
	if o.noRanges {
		if r.Method == http.MethodGet && r.Header.Get("Range") != "" {
			o.wholeGets.Add(1)
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		w.Write(b)
		return
	}
	http.ServeContent(w, r, "", o.mod, bytes.NewReader(b))
}

// serve starts srv on ln (or a free loopback port) and returns its address.
func serve(t *testing.T, h http.Handler, addr string) (string, *http.Server) {
	t.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String(), srv
}

func testPolicy() remote.Policy {
	p := remote.DefaultPolicy()
	p.ConnectTimeout = 300 * time.Millisecond
	p.ReadTimeout = 500 * time.Millisecond
	p.Backoff = 10 * time.Millisecond
	p.BreakerCooldown = 200 * time.Millisecond
	return p
}

func newSource(t *testing.T, base string, withSpool bool) *Source {
	t.Helper()
	var sp *spool.Spool
	if withSpool {
		var err error
		if sp, err = spool.New(t.TempDir(), 64<<20); err != nil {
			t.Fatal(err)
		}
	}
	s, err := New(Config{
		Base: base, Policy: testPolicy(), Spool: sp,
		Store: ranged.NewStore(ranged.Config{Cache: ranged.NewCache(16 << 20)}),
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	for _, tc := range []struct {
		name      string
		noRanges  bool
		withSpool bool
	}{
		{"ranges", false, false},
		{"ranges+spool", false, true},
		{"origin ignoring Range", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := 0
			var origins []*origin
			sourcetest.RunWith(t, func(t *testing.T, files map[string][]byte) source.Source {
				n++
				o := &origin{files: files, mod: time.Unix(1_700_000_000+int64(n), 0), noRanges: tc.noRanges}
				origins = append(origins, o)
				addr, _ := serve(t, o, "")
				return newSource(t, "http://"+addr+"/images", tc.withSpool)
			}, sourcetest.Options{Unlisted: true})
			if tc.noRanges && origins[0].wholeGets.Load() > 3+int64(len(origins[0].files)) {
				t.Errorf("origin ignoring Range: %d whole downloads", origins[0].wholeGets.Load())
			}
		})
	}
}

func TestBaseURL(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"http://h/p", "http://h/p/", true},
		{"https://h:8443/a/b/", "https://h:8443/a/b/", true},
		{"http://h", "http://h/", true},
		{"ftp://h/p", "", false},
		{"http:///p", "", false},
		{"http://h/p?x=1", "", false},
		{"http://u:p@h/", "", false},
	} {
		u, err := ParseBase(tc.in)
		if (err == nil) != tc.ok || (err == nil && u.String() != tc.want) {
			t.Errorf("ParseBase(%q) = %v, %v", tc.in, u, err)
		}
	}
	a := &accessor{base: mustBase(t, "http://h/img/")}
	for key, want := range map[string]string{
		"a b/c?.jpg":     "http://h/img/a%20b/c%3F.jpg",
		"x#y/%2e%2e.tif": "http://h/img/x%23y/%252e%252e.tif",
	} {
		if got := a.url(key); got != want {
			t.Errorf("url(%q) = %s, want %s", key, got, want)
		}
	}
}

func mustBase(t *testing.T, s string) *url.URL {
	u, err := ParseBase(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func kind(err error) fault.Kind {
	var fe *fault.Error
	if errors.As(err, &fe) {
		return fe.Kind
	}
	return -1
}

// TestStoreStopped: an origin that goes away gives 503s within a second,
// the breaker then refuses at once, and reads succeed again as soon as the
// origin is back.
func TestStoreStopped(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789"), 100_000)
	o := &origin{files: map[string][]byte{"x.tif": data}, mod: time.Now()}
	addr, _ := serve(t, o, "")
	p := remotetest.Start(t, addr)
	s := newSource(t, "http://"+p.Addr()+"/images/", false)
	ctx := context.Background()
	obj, err := s.Open(ctx, "x.tif")
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	buf := make([]byte, 1000)
	if _, err := obj.ReadAt(buf, 0); err != nil {
		t.Fatal(err)
	}
	p.Stop()
	for i := 0; i < 8; i++ {
		_, err := obj.ReadAt(buf, int64(10_000*(i+1)))
		if k := kind(err); k != fault.Unavailable {
			t.Fatalf("read %d with the store away: %v (kind %d), want 503", i, err, k)
		}
	}
	if !s.Backend().Breaker().Open() {
		t.Error("breaker still closed after consecutive failures")
	}
	if _, err := s.Open(ctx, "other.tif"); kind(err) != fault.Unavailable {
		t.Errorf("open with the breaker open: %v, want 503", err)
	}
	p.Restart()
	sourcetest.ReadEventually(t, obj, 500_000, data[500_000:501_000], 3*time.Second)
}

// TestSlowStore: a store slower than the read timeout gives 504s (the
// timeout's doing: without it the read would succeed after the delay); a
// store with 20 ms of latency works.
func TestSlowStore(t *testing.T) {
	data := bytes.Repeat([]byte("abcdefgh"), 50_000)
	o := &origin{files: map[string][]byte{"x.tif": data}, mod: time.Now()}
	addr, _ := serve(t, o, "")
	p := remotetest.Start(t, addr)
	s := newSource(t, "http://"+p.Addr()+"/images/", false)
	p.SetDelay(20 * time.Millisecond)
	obj, err := s.Open(context.Background(), "x.tif")
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	buf := make([]byte, 100)
	if _, err := obj.ReadAt(buf, 0); err != nil {
		t.Fatalf("20 ms latency: %v", err)
	}
	p.SetDelay(2 * time.Second)
	_, err = obj.ReadAt(buf, 200_000)
	if kind(err) != fault.GatewayTimeout {
		t.Errorf("slow store: %v, want 504", err)
	}
}

// TestTruncated: answers cut short are retried, then reported as 502.
func TestTruncated(t *testing.T) {
	data := bytes.Repeat([]byte("abcdefgh"), 50_000)
	o := &origin{files: map[string][]byte{"x.tif": data, "y.jpg": data}, mod: time.Now()}
	addr, _ := serve(t, o, "")
	for _, key := range []string{"x.tif", "y.jpg"} {
		s := newSource(t, "http://"+addr+"/images/", true)
		obj, err := s.Open(context.Background(), key)
		if err != nil {
			t.Fatal(err)
		}
		o.truncate.Store(true)
		before := o.gets.Load()
		_, err = obj.ReadAt(make([]byte, 100_000), 100)
		if kind(err) != fault.BadGateway {
			t.Errorf("%s: truncated answer: %v, want 502", key, err)
		}
		if n := o.gets.Load() - before; n != 3 {
			t.Errorf("%s: %d attempts, want 3", key, n)
		}
		o.truncate.Store(false)
		obj.Close()
	}
}

// TestChanged: an object replaced after it was opened is not read half
// old, half new.
func TestChanged(t *testing.T) {
	o := &origin{files: map[string][]byte{"x.tif": bytes.Repeat([]byte("a"), 10000)}, mod: time.Now()}
	addr, _ := serve(t, o, "")
	s := newSource(t, "http://"+addr+"/images/", false)
	obj, err := s.Open(context.Background(), "x.tif")
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	o.files["x.tif"] = bytes.Repeat([]byte("b"), 10000)
	if _, err := obj.ReadAt(make([]byte, 10), 0); kind(err) != fault.Unavailable {
		t.Errorf("read of a replaced object: %v", err)
	}
}

func TestNotFoundAndHidden(t *testing.T) {
	o := &origin{files: map[string][]byte{"a.jpg": []byte("x")}, mod: time.Now()}
	addr, _ := serve(t, o, "")
	s := newSource(t, "http://"+addr+"/images/", false)
	for _, key := range []string{"b.jpg", "../a.jpg", "/a.jpg", "a.jpg/", ""} {
		if _, err := s.Open(context.Background(), key); !errors.Is(err, source.ErrNotFound) {
			t.Errorf("Open(%q): %v", key, err)
		}
	}
}

// TestFlatImagesSpooled: a flat image is read by range for its header,
// then downloaded once into the source cache, which later opens share.
// So is JPEG 2000, which OpenJPEG reads nearly whole for any region; TIFF
// is read by range.
func TestFlatImagesSpooled(t *testing.T) {
	data := bytes.Repeat([]byte("jpegdata"), 40_000)
	o := &origin{files: map[string][]byte{"p.jpg": data, "t.tif": data, "z.jp2": data}, mod: time.Now()}
	addr, _ := serve(t, o, "")
	s := newSource(t, "http://"+addr+"/images/", true)
	for round := 0; round < 3; round++ {
		for _, key := range []string{"p.jpg", "t.tif", "z.jp2"} {
			obj, err := s.Open(context.Background(), key)
			if err != nil {
				t.Fatal(err)
			}
			head := make([]byte, 4096)
			if _, err := obj.ReadAt(head, 0); err != nil {
				t.Fatal(err)
			}
			for off := int64(0); off < int64(len(data)); off += 100_000 {
				buf := make([]byte, min(100_000, int64(len(data))-off))
				if _, err := obj.ReadAt(buf, off); err != nil || !bytes.Equal(buf, data[off:off+int64(len(buf))]) {
					t.Fatalf("%s: read at %d: %v", key, off, err)
				}
			}
			obj.Close()
		}
	}
	if got := o.wholeGets.Load(); got != 2 {
		t.Errorf("%d whole downloads, want 2 (the JPEG and the JPEG 2000, once each)", got)
	}
}

func FuzzParseBase(f *testing.F) {
	f.Add("http://h/p")
	f.Add("https://u@h:1/a?b#c")
	f.Fuzz(func(t *testing.T, s string) {
		u, err := ParseBase(s)
		if err != nil {
			return
		}
		if !strings.HasSuffix(u.Path, "/") || u.Host == "" || u.RawQuery != "" {
			t.Errorf("ParseBase(%q) accepted %v", s, u)
		}
		a := &accessor{base: u}
		if got := a.url("a/b c.tif"); !strings.HasPrefix(got, u.String()) {
			t.Errorf("key escaped the base: %s", got)
		}
	})
}

// gate is an origin in front of another that answers after a delay (or
// when the client leaves), or with a fixed status, and counts requests.
type gate struct {
	h        http.Handler
	delay    time.Duration
	status   atomic.Int32 // non-zero: answer with it
	requests atomic.Int64
	left     atomic.Int64 // requests whose client went away while waiting
}

func (g *gate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.requests.Add(1)
	select {
	case <-time.After(g.delay):
	case <-r.Context().Done():
		g.left.Add(1)
		return
	}
	if st := g.status.Load(); st != 0 {
		w.WriteHeader(int(st))
		return
	}
	g.h.ServeHTTP(w, r)
}

// openAll opens key from n goroutines at once with contexts from ctxFor
// and returns their errors.
func openAll(s *Source, key string, n int, ctxFor func(i int) context.Context) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			obj, err := s.Open(ctxFor(i), key)
			if err == nil {
				obj.Close()
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	return errs
}

// TestConcurrentOpens: opens of one object at once (the tiles of a
// viewer's first screen) send one HEAD, or one first GET, between them.
func TestConcurrentOpens(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789"), 20_000)
	o := &origin{files: map[string][]byte{"x.tif": data, "y.jpg": data}, mod: time.Now()}
	g := &gate{h: o, delay: 100 * time.Millisecond}
	addr, _ := serve(t, g, "")
	s := newSource(t, "http://"+addr+"/images/", false)
	bg := func(int) context.Context { return context.Background() }
	for _, key := range []string{"x.tif", "y.jpg"} {
		before, primed := g.requests.Load(), s.Stats().Requests
		for i, err := range openAll(s, key, 16, bg) {
			if err != nil {
				t.Fatalf("%s: open %d: %v", key, i, err)
			}
		}
		if n := g.requests.Load() - before; n != 1 {
			t.Errorf("%s: 16 concurrent opens sent %d requests, want 1", key, n)
		}
		if key == "y.jpg" {
			if n := s.Stats().Requests - primed; n != 1 {
				t.Errorf("%s: first bytes counted %d times, want 1", key, n)
			}
		}
	}
}

// TestOpenWaitersLeave: a caller that gives up waiting for a shared open
// returns at once without stopping it for the others; once every caller
// has gone the request is cancelled, and the next open starts afresh.
func TestOpenWaitersLeave(t *testing.T) {
	o := &origin{files: map[string][]byte{"x.tif": []byte("tiff"), "y.tif": []byte("tiff")}, mod: time.Now()}
	g := &gate{h: o, delay: 300 * time.Millisecond}
	addr, _ := serve(t, g, "")
	s := newSource(t, "http://"+addr+"/images/", false)
	errs := openAll(s, "x.tif", 2, func(i int) context.Context {
		if i == 0 {
			return context.Background()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
		t.Cleanup(cancel)
		return ctx
	})
	if errs[0] != nil || !errors.Is(errs[1], context.DeadlineExceeded) {
		t.Fatalf("patient caller: %v; impatient caller: %v", errs[0], errs[1])
	}
	if n := g.requests.Load(); n != 1 || g.left.Load() != 0 {
		t.Errorf("%d requests, %d abandoned; want 1, 0", n, g.left.Load())
	}

	// Every caller leaves: the request is abandoned, nothing is kept.
	// Each ends with its own deadline's error: none waited for the
	// origin, which answers only when released.
	errs = openAll(s, "y.tif", 3, func(int) context.Context {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
		t.Cleanup(cancel)
		return ctx
	})
	for _, err := range errs {
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("open with a 30 ms deadline: %v", err)
		}
	}
	for deadline := time.Now().Add(2 * time.Second); g.left.Load() != 1; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d requests abandoned by the origin's client, want 1", g.left.Load(), g.requests.Load()-1)
		}
	}
	before := g.requests.Load()
	if _, err := s.Open(context.Background(), "y.tif"); err != nil {
		t.Fatal(err)
	}
	if n := g.requests.Load() - before; n != 1 {
		t.Errorf("open after an abandoned one: %d requests, want 1", n)
	}
}

// TestOpenFailureNotKept: concurrent opens that fail share the failure
// (one request and its retries), and the next open asks again.
func TestOpenFailureNotKept(t *testing.T) {
	o := &origin{files: map[string][]byte{"x.tif": []byte("tiff")}, mod: time.Now()}
	g := &gate{h: o, delay: 50 * time.Millisecond}
	g.status.Store(http.StatusServiceUnavailable)
	addr, _ := serve(t, g, "")
	s := newSource(t, "http://"+addr+"/images/", false)
	for i, err := range openAll(s, "x.tif", 8, func(int) context.Context { return context.Background() }) {
		if kind(err) != fault.Unavailable {
			t.Fatalf("open %d of a failing origin: %v, want 503", i, err)
		}
	}
	if n := g.requests.Load(); n != 3 {
		t.Errorf("8 concurrent failing opens: %d requests, want 3 (one and its 2 retries)", n)
	}
	g.status.Store(0)
	if _, err := s.Open(context.Background(), "x.tif"); err != nil {
		t.Errorf("open once the origin is back: %v", err)
	}
}

// TestRedirectsNotFollowed: an origin's redirect, to another path of the
// origin or to another host, is not followed (issue 14 item 5): an open
// redirect on the origin would otherwise let iiifd fetch and serve any
// URL it can reach. The answer is a 502 that says why, and the other
// host sees no request.
func TestRedirectsNotFollowed(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789"), 1000)
	var elsewhere atomic.Int64
	other, _ := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere.Add(1)
		http.ServeContent(w, r, "", time.Now(), bytes.NewReader(data))
	}), "")
	var samePath atomic.Int64
	addr, _ := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/images/path.jpg":
			http.Redirect(w, r, "/images/real.jpg", http.StatusFound)
		case "/images/host.jpg":
			http.Redirect(w, r, "http://"+other+"/x.jpg", http.StatusFound)
		case "/images/keep.jpg":
			http.Redirect(w, r, "http://"+other+"/x.jpg", http.StatusTemporaryRedirect)
		case "/images/real.jpg":
			samePath.Add(1)
			http.ServeContent(w, r, "", time.Now(), bytes.NewReader(data))
		default:
			http.NotFound(w, r)
		}
	}), "")
	s := newSource(t, "http://"+addr+"/images/", false)
	for _, key := range []string{"path.jpg", "host.jpg", "keep.jpg"} {
		obj, err := s.Open(context.Background(), key)
		if err == nil {
			obj.Close()
			t.Errorf("%s: opened through a redirect", key)
			continue
		}
		status, msg := fault.Status(err)
		if status != http.StatusBadGateway || !strings.Contains(msg, "redirect") {
			t.Errorf("%s: %d %q, want 502 saying redirect", key, status, msg)
		}
	}
	if n := elsewhere.Load(); n != 0 {
		t.Errorf("the other host got %d requests", n)
	}
	if n := samePath.Load(); n != 0 {
		t.Errorf("the redirect target got %d requests", n)
	}
}
