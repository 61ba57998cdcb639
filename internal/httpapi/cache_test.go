package httpapi_test

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iiifd/iiifd/internal/app/apptest"
	"github.com/iiifd/iiifd/internal/cache/redis/redistest"
	"github.com/iiifd/iiifd/internal/config"
	"github.com/iiifd/iiifd/internal/httpapi"
	"github.com/iiifd/iiifd/internal/source/fs"
)

func TestCacheHitsAndCanonicalSharing(t *testing.T) {
	srv, _ := server(t, nil)
	a := get(t, srv.URL+"/iiif/3/julia/full/max/0/default.jpg")
	b := get(t, srv.URL+"/iiif/3/julia.jpg/0,0,2400,1600/2400,/0/default.jpg")
	if a.header.Get("X-Cache") != "MISS" || b.header.Get("X-Cache") != "HIT memory" {
		t.Errorf("X-Cache %q then %q, want MISS then HIT memory (one canonical entry)", a.header.Get("X-Cache"), b.header.Get("X-Cache"))
	}
	if !bytes.Equal(a.body, b.body) {
		t.Error("the hit differs from the computed image")
	}
	if cl := b.header.Get("Content-Length"); cl != fmt.Sprint(len(b.body)) {
		t.Errorf("a hit's Content-Length %q, body %d bytes", cl, len(b.body))
	}
	i1 := get(t, srv.URL+"/iiif/3/julia/info.json")
	i2 := get(t, srv.URL+"/iiif/3/julia/info.json")
	if i1.header.Get("X-Cache") != "MISS" || i2.header.Get("X-Cache") != "HIT memory" || !bytes.Equal(i1.body, i2.body) {
		t.Errorf("info.json X-Cache %q then %q", i1.header.Get("X-Cache"), i2.header.Get("X-Cache"))
	}
}

// TestCacheStaleSource replaces a source in place: the next request is a
// miss with the new pixels, never the old derivative.
func TestCacheStaleSource(t *testing.T) {
	srv, root := server(t, nil)
	path := srv.URL + "/iiif/3/sub%2Fdir%2Fchart/full/max/0/default.png"
	first := get(t, path)
	writePNG(t, filepath.Join(root, "sub", "dir", "chart.png"), 320, 200)
	later := time.Now().Add(time.Minute)
	os.Chtimes(filepath.Join(root, "sub", "dir", "chart.png"), later, later)
	time.Sleep(fs.OpenFor + 100*time.Millisecond) // opened files are shared for OpenFor
	second := get(t, path)
	if second.header.Get("X-Cache") != "MISS" || decode(t, second.body).Bounds().Dx() != 320 {
		t.Errorf("after replacing the source: X-Cache %q, width %d", second.header.Get("X-Cache"), decode(t, second.body).Bounds().Dx())
	}
	if first.header.Get("ETag") == second.header.Get("ETag") {
		t.Error("the ETag did not change with the source")
	}
}

// TestStampede sends many identical requests for a new derivative at once:
// it is computed once, every client gets the same bytes.
func TestStampede(t *testing.T) {
	srv, _ := server(t, nil)
	const n = 12
	var wg sync.WaitGroup
	res := make([]resp, n)
	for i := range n {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			res[i] = get(t, srv.URL+"/iiif/3/julia/full/1800,/90/default.png")
		}(i)
	}
	wg.Wait()
	misses := 0
	for _, r := range res {
		if r.status != 200 {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		if r.header.Get("X-Cache") == "MISS" {
			misses++
		}
		if !bytes.Equal(r.body, res[0].body) {
			t.Error("clients got different bytes")
		}
	}
	if misses != 1 {
		t.Errorf("%d computations for %d identical concurrent requests, want 1", misses, n)
	}
}

func TestPurge(t *testing.T) {
	const token = "s3cret-token-for-tests"
	srv, _ := server(t, func(c *config.Config) { c.AdminToken = token })
	img := srv.URL + "/iiif/3/julia/full/100,/0/default.jpg"
	get(t, img)
	get(t, srv.URL+"/iiif/3/julia/info.json")
	if r := get(t, img); r.header.Get("X-Cache") != "HIT memory" {
		t.Fatalf("not cached: %q", r.header.Get("X-Cache"))
	}
	for _, tc := range []struct {
		auth   string
		status int
	}{
		{"", 401}, {"Bearer wrong", 401}, {"Basic " + token, 401}, {"Bearer " + token, 204},
	} {
		r := do(t, "DELETE", srv.URL+"/admin/cache/julia", map[string]string{"Authorization": tc.auth})
		if r.status != tc.status {
			t.Errorf("auth %q: %d, want %d", tc.auth, r.status, tc.status)
		}
	}
	if r := get(t, img); r.header.Get("X-Cache") != "MISS" {
		t.Errorf("after purge: %q", r.header.Get("X-Cache"))
	}
	if r := get(t, srv.URL+"/iiif/3/julia/info.json"); r.header.Get("X-Cache") != "MISS" {
		t.Errorf("info after purge: %q", r.header.Get("X-Cache"))
	}
	// Purging by another spelling of the identifier reaches the same entries.
	get(t, img)
	do(t, "DELETE", srv.URL+"/admin/cache/julia.jpg", map[string]string{"Authorization": "Bearer " + token})
	if r := get(t, img); r.header.Get("X-Cache") != "MISS" {
		t.Errorf("after purge by full name: %q", r.header.Get("X-Cache"))
	}

	// Without a token there are no admin routes at all.
	srv2, _ := server(t, nil)
	if r := do(t, "DELETE", srv2.URL+"/admin/cache/julia", map[string]string{"Authorization": "Bearer " + token}); r.status != http.StatusNotFound && r.status != http.StatusMethodNotAllowed {
		t.Errorf("admin route without a token: %d", r.status)
	}
}

// TestDiskCacheSurvivesRestart: a second server on the same cache
// directory serves the first one's derivative from disk.
func TestDiskCacheSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	mut := func(c *config.Config) { c.CacheMemory, c.CacheDir, c.CacheSize = 0, dir, 1<<30 }
	srv, _ := server(t, mut)
	path := "/iiif/3/julia/full/200,/0/default.jpg"
	a := get(t, srv.URL+path)
	srv.Close()
	srv2, _ := server(t, mut)
	var b resp
	for i := 0; i < 50; i++ { // the index of the directory is built in the background
		if b = get(t, srv2.URL+path); b.header.Get("X-Cache") == "HIT disk" {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if b.header.Get("X-Cache") != "HIT disk" || !bytes.Equal(a.body, b.body) {
		t.Errorf("after restart: %q", b.header.Get("X-Cache"))
	}
	if !strings.HasPrefix(fmt.Sprint(b.header.Get("Content-Type")), "image/jpeg") {
		t.Errorf("content type of the hit: %q", b.header.Get("Content-Type"))
	}
}

func TestMetrics(t *testing.T) {
	srv, _ := server(t, nil)
	get(t, srv.URL+"/iiif/3/julia/full/64,/0/default.jpg")
	get(t, srv.URL+"/iiif/3/julia/full/64,/0/default.jpg")
	get(t, srv.URL+"/iiif/3/julia/info.json")
	get(t, srv.URL+"/iiif/3/nope/info.json")
	r := get(t, srv.URL+"/metrics")
	if r.status != 200 {
		t.Fatalf("metrics: %d", r.status)
	}
	body := string(r.body)
	for _, want := range []string{
		`iiifd_http_requests_total{code="200",route="image"} 2`,
		`iiifd_http_requests_total{code="404",route="info"} 1`,
		`iiifd_responses_by_cache_total{cache="hit_memory",route="image"} 1`,
		`iiifd_responses_by_cache_total{cache="miss",route="image"} 1`,
		`iiifd_cache_hits_total{tier="memory"}`,
		`iiifd_cache_evictions_total{tier="memory"}`,
		"iiifd_http_request_duration_seconds_bucket",
		"iiifd_work_running", "iiifd_work_waiting", "iiifd_vips_memory_bytes", "go_goroutines", "process_resident_memory_bytes",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(body, "julia") || strings.Contains(body, "nope") {
		t.Error("identifiers leak into metric labels")
	}
}

// TestPurgeAcrossReplicas runs two servers sharing one real Redis (each
// with its own memory tier): a purge sent to one clears the derivative on
// both.
func TestPurgeAcrossReplicas(t *testing.T) {
	rs := redistest.Start(t)
	const token = "shared-admin-token-123"
	mut := func(c *config.Config) { c.CacheRedis, c.AdminToken = rs.URL(), token }
	// The replicas read the same storage (one root).
	a, root := server(t, mut)
	b, _ := server(t, func(c *config.Config) { mut(c); c.Root = root })
	path := "/iiif/3/julia/full/120,/0/default.jpg"
	if x := get(t, a.URL+path).header.Get("X-Cache"); x != "MISS" {
		t.Fatalf("first request on a: %q", x)
	}
	if x := get(t, b.URL+path).header.Get("X-Cache"); x != "HIT redis" {
		t.Fatalf("replica b did not find a's derivative in Redis: %q", x)
	}
	if x := get(t, b.URL+path).header.Get("X-Cache"); x != "HIT memory" {
		t.Fatalf("the Redis hit was not promoted to b's memory: %q", x)
	}
	if r := do(t, "DELETE", a.URL+"/admin/cache/julia", map[string]string{"Authorization": "Bearer " + token}); r.status != 204 {
		t.Fatalf("purge: %d", r.status)
	}
	// b learns of the purge through Redis pub/sub.
	var x string
	for i := 0; i < 100; i++ {
		if x = get(t, b.URL+path).header.Get("X-Cache"); x == "MISS" {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if x != "MISS" {
		t.Errorf("after a purge on replica a, replica b still answers %q", x)
	}
}

// TestPurgeGoneSource purges the derivatives of an image whose file was
// removed since, then restored: they must not come back from the cache.
func TestPurgeGoneSource(t *testing.T) {
	const token = "s3cret-token-for-tests"
	srv, root := server(t, func(c *config.Config) { c.AdminToken = token; c.TrustForwarded = "true" })
	img := srv.URL + "/iiif/3/julia/full/90,/0/default.jpg"
	get(t, img)
	src, moved := filepath.Join(root, "julia.jpg"), filepath.Join(t.TempDir(), "julia.jpg")
	if err := os.Rename(src, moved); err != nil {
		t.Fatal(err)
	}
	if r := do(t, "DELETE", srv.URL+"/admin/cache/julia", map[string]string{"Authorization": "Bearer " + token}); r.status != 204 {
		t.Fatalf("purge: %d", r.status)
	}
	if err := os.Rename(moved, src); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2100 * time.Millisecond) // past the resolver's memory of "julia"
	if x := get(t, img).header.Get("X-Cache"); x != "MISS" {
		t.Errorf("a purged derivative came back: %q", x)
	}
}

// TestInfoCacheIgnoresHost: info.json for many Host headers is one cache
// entry, each answer with its own id.
func TestInfoCacheIgnoresHost(t *testing.T) {
	srv, _ := server(t, nil)
	get(t, srv.URL+"/iiif/3/julia/info.json")
	r := do(t, "GET", srv.URL+"/iiif/3/julia/info.json", map[string]string{"Host": "other.example:8080"})
	if x := r.header.Get("X-Cache"); x != "HIT memory" {
		t.Errorf("another Host made a new entry: %q", x)
	}
	if !strings.Contains(string(r.body), `"id":"http://other.example:8080/iiif/3/julia"`) {
		t.Errorf("id not filled in for the Host: %s", r.body)
	}
}

// TestHotRequests: a request line answered from the memory tier is
// answered again without the pipeline, with the same headers and bytes;
// a changed base URL, a purge and a replaced source all go through the
// pipeline again.
func TestHotRequests(t *testing.T) {
	const token = "hot-requests-token"
	srv, root := server(t, func(c *config.Config) { c.AdminToken = token; c.TrustForwarded = "true" })
	img := srv.URL + "/iiif/3/sub%2Fdir%2Fchart/0,0,100,100/50,/0/default.png"
	if r := get(t, img); r.header.Get("X-Cache") != "MISS" {
		t.Fatalf("first request: X-Cache %q", r.header.Get("X-Cache"))
	}
	slow := get(t, img) // a memory hit through the pipeline, remembered
	before := httpapi.HotAnswered()
	fast := get(t, img)
	if httpapi.HotAnswered() == before {
		t.Fatal("the repeated memory hit went through the pipeline")
	}
	if fast.status != 200 || !bytes.Equal(fast.body, slow.body) {
		t.Fatalf("remembered answer: status %d, %d bytes; pipeline sent %d bytes", fast.status, len(fast.body), len(slow.body))
	}
	for _, h := range []http.Header{slow.header, fast.header} {
		h.Del("X-Request-Id")
		h.Del("Date")
	}
	if fmt.Sprint(fast.header) != fmt.Sprint(slow.header) {
		t.Errorf("remembered answer's headers differ:\n got %v\nwant %v", fast.header, slow.header)
	}

	// Conditional requests are answered from the entry too.
	before = httpapi.HotAnswered()
	r := do(t, "GET", img, map[string]string{"If-None-Match": slow.header.Get("ETag")})
	if r.status != http.StatusNotModified || len(r.body) != 0 || r.header.Get("ETag") != slow.header.Get("ETag") {
		t.Errorf("If-None-Match: status %d, %d bytes, ETag %q", r.status, len(r.body), r.header.Get("ETag"))
	}
	if httpapi.HotAnswered() == before {
		t.Error("the conditional request went through the pipeline")
	}
	// HEAD and request lines with a query go through the pipeline.
	before = httpapi.HotAnswered()
	if r := do(t, "HEAD", img, nil); r.status != 200 || len(r.body) != 0 {
		t.Errorf("HEAD: status %d, %d bytes", r.status, len(r.body))
	}
	for range 3 {
		if r := get(t, img+"?v=1"); r.status != 200 || !bytes.Equal(r.body, slow.body) {
			t.Errorf("with a query: status %d", r.status)
		}
	}
	if httpapi.HotAnswered() != before {
		t.Error("HEAD or a request line with a query was answered from the memo")
	}

	// Another public base URL (a trusted proxy's) gets its own Link, not
	// the remembered one.
	r = do(t, "GET", img, map[string]string{"X-Forwarded-Host": "images.example.org"})
	if !strings.Contains(r.header.Get("Link"), "//images.example.org/iiif/3/") {
		t.Errorf("Link behind a proxy: %q", r.header.Get("Link"))
	}
	if r := get(t, img); strings.Contains(r.header.Get("Link"), "images.example.org") {
		t.Errorf("Link without the proxy: %q", r.header.Get("Link"))
	}

	// A purge sends the request through the pipeline at once.
	get(t, img)
	if r := do(t, "DELETE", srv.URL+"/admin/cache/sub%2Fdir%2Fchart", map[string]string{"Authorization": "Bearer " + token}); r.status != 204 {
		t.Fatalf("purge: %d", r.status)
	}
	if r := get(t, img); r.header.Get("X-Cache") != "MISS" {
		t.Errorf("after a purge: X-Cache %q", r.header.Get("X-Cache"))
	}

	// A replaced source is noticed as soon as through the pipeline:
	// once sources stop reusing its metadata, counted from when they
	// read it (here: the miss opens the file at t0, the hit remembered
	// at t0+0.7 s must not outlive t0+OpenFor). The purge and the pause
	// make the miss at t0 open the file afresh.
	do(t, "DELETE", srv.URL+"/admin/cache/sub%2Fdir%2Fchart", map[string]string{"Authorization": "Bearer " + token})
	time.Sleep(fs.OpenFor + 100*time.Millisecond)
	if r := get(t, img); r.header.Get("X-Cache") != "MISS" {
		t.Fatalf("after a purge: X-Cache %q", r.header.Get("X-Cache"))
	}
	time.Sleep(fs.OpenFor * 7 / 10)
	before = httpapi.HotAnswered()
	if r := get(t, img); r.header.Get("X-Cache") != "HIT memory" || httpapi.HotAnswered() != before {
		t.Fatalf("second request: X-Cache %q, answered from the memo: %v", r.header.Get("X-Cache"), httpapi.HotAnswered() != before)
	}
	writePNG(t, filepath.Join(root, "sub", "dir", "chart.png"), 320, 200)
	later := time.Now().Add(time.Minute)
	os.Chtimes(filepath.Join(root, "sub", "dir", "chart.png"), later, later)
	time.Sleep(fs.OpenFor*3/10 + 100*time.Millisecond)
	if r := get(t, img); r.header.Get("X-Cache") != "MISS" || r.header.Get("ETag") == slow.header.Get("ETag") {
		t.Errorf("after replacing the source: X-Cache %q, ETag %q (was %q)", r.header.Get("X-Cache"), r.header.Get("ETag"), slow.header.Get("ETag"))
	}
}

// TestHotRequestsInProcess: requests built in-process (no request line,
// as adapters for serverless platforms make them) are never answered
// from another request's remembered entry.
func TestHotRequestsInProcess(t *testing.T) {
	a, _ := apptest.Serve(t, apptest.Samples(t))
	call := func(path string) *httptest.ResponseRecorder {
		req, err := http.NewRequest("GET", "http://iiif.example"+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		a.Handler().ServeHTTP(rec, req)
		return rec
	}
	pa := "/iiif/3/julia/0,0,64,64/64,/0/default.png"
	pb := "/iiif/3/mandelbrot/0,0,64,64/64,/0/default.png"
	call(pa)
	call(pa)
	before := httpapi.HotAnswered()
	b := call(pb)
	if !strings.Contains(b.Header().Get("Link"), "/mandelbrot/") || httpapi.HotAnswered() != before {
		t.Errorf("a request for mandelbrot was answered with %q", b.Header().Get("Link"))
	}
}
