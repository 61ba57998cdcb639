package httpapi_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	_ "image/jpeg"
	"image/png"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/iiifd/iiifd/internal/app/apptest"
	"github.com/iiifd/iiifd/internal/config"
	"github.com/iiifd/iiifd/internal/httpapi"
	"github.com/iiifd/iiifd/internal/samples"
)

// server starts the real server (every layer, libvips included) on a root
// with the sample images, a generated chart in a subfolder, a file that is
// not an image, and a symbolic link that leads out of the root.
func server(t *testing.T, mutate func(*config.Config)) (*httptest.Server, string) {
	t.Helper()
	root := t.TempDir()
	if err := samples.Extract(root); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(root, "sub", "dir"), 0o755)
	writePNG(t, filepath.Join(root, "sub", "dir", "chart.png"), 300, 200)
	os.WriteFile(filepath.Join(root, "notes.txt"), []byte("not an image"), 0o644)
	outside := t.TempDir()
	writePNG(t, filepath.Join(outside, "secret.png"), 10, 10)
	os.Symlink(filepath.Join(outside, "secret.png"), filepath.Join(root, "escape.png"))

	cfg := config.Default()
	cfg.Root = root
	if mutate != nil {
		mutate(&cfg)
	}
	_, srv := apptest.Serve(t, cfg)
	return srv, root
}

func writePNG(t *testing.T, path string, w, h int) {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.Set(x, y, color.NRGBA{uint8(x), uint8(y), 128, 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

type resp struct {
	status int
	header http.Header
	body   []byte
}

func do(t *testing.T, method, url string, hdr map[string]string) resp {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		// Malformed escapes do not parse as URLs; send the path verbatim.
		scheme, rest, _ := strings.Cut(url, "://")
		host, path, _ := strings.Cut(rest, "/")
		req, err = http.NewRequest(method, scheme+"://"+host+"/", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.URL.Opaque = "/" + path
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp{res.StatusCode, res.Header, b}
}

func get(t *testing.T, url string) resp { return do(t, http.MethodGet, url, nil) }

func decode(t *testing.T, b []byte) image.Image {
	t.Helper()
	img, _, err := image.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("decoding response: %v", err)
	}
	return img
}

func TestInfoV3(t *testing.T) {
	srv, _ := server(t, nil)
	r := get(t, srv.URL+"/iiif/3/mandelbrot.tif/info.json")
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	var info map[string]any
	if err := json.Unmarshal(r.body, &info); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"@context": "http://iiif.io/api/image/3/context.json",
		"id":       srv.URL + "/iiif/3/mandelbrot.tif",
		"type":     "ImageService3",
		"protocol": "http://iiif.io/api/image",
		"profile":  "level2",
		"width":    6144.0,
		"height":   4608.0,
		"maxArea":  float64(config.DefaultMaxArea),
	}
	for k, v := range want {
		if info[k] != v {
			t.Errorf("%s = %v, want %v", k, info[k], v)
		}
	}
	tiles := info["tiles"].([]any)[0].(map[string]any)
	if tiles["width"] != 256.0 {
		t.Errorf("tiles must come from the TIFF's own tiling (256): %v", tiles)
	}
	sf := tiles["scaleFactors"].([]any)
	if sf[0] != 1.0 || sf[len(sf)-1] != 32.0 {
		t.Errorf("scaleFactors %v, want 1..32 (6144/32 <= 256)", sf)
	}
	if len(info["sizes"].([]any)) == 0 {
		t.Error("no sizes")
	}
	for _, k := range []string{"extraFormats", "extraQualities", "extraFeatures", "preferredFormats"} {
		if _, ok := info[k]; !ok {
			t.Errorf("missing %s", k)
		}
	}
	feats := strings.Join(toStrings(info["extraFeatures"]), " ")
	for _, f := range []string{"regionByPct", "regionSquare", "rotationArbitrary", "mirroring", "sizeUpscaling", "canonicalLinkHeader", "jsonldMediaType", "baseUriRedirect", "cors", "profileLinkHeader"} {
		if !strings.Contains(feats, f) {
			t.Errorf("extraFeatures lacks %s", f)
		}
	}
	for h, want := range map[string]string{
		"Access-Control-Allow-Origin": "*",
		"Link":                        `<http://iiif.io/api/image/3/level2.json>;rel="profile"`,
	} {
		if got := r.header.Get(h); got != want {
			t.Errorf("%s: %q, want %q", h, got, want)
		}
	}
	if r.header.Get("ETag") == "" || r.header.Get("Last-Modified") == "" || r.header.Get("Cache-Control") == "" {
		t.Errorf("validators missing: %v", r.header)
	}
}

func toStrings(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

func TestInfoV2(t *testing.T) {
	srv, _ := server(t, nil)
	r := get(t, srv.URL+"/iiif/2/julia/info.json")
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	var info map[string]any
	json.Unmarshal(r.body, &info)
	if info["@context"] != "http://iiif.io/api/image/2/context.json" || info["@id"] != srv.URL+"/iiif/2/julia" {
		t.Errorf("v2 context/id: %v %v", info["@context"], info["@id"])
	}
	prof := info["profile"].([]any)
	if prof[0] != "http://iiif.io/api/image/2/level2.json" {
		t.Errorf("profile %v", prof)
	}
	if info["width"] != 2400.0 || info["height"] != 1600.0 {
		t.Errorf("size %vx%v", info["width"], info["height"])
	}
	if r.header.Get("Content-Type") != "application/json" {
		t.Errorf("v2 default content type %q", r.header.Get("Content-Type"))
	}
}

func TestInfoContentNegotiation(t *testing.T) {
	srv, _ := server(t, nil)
	for _, tc := range []struct{ v, accept, want string }{
		{"3", "application/ld+json", `application/ld+json;profile="http://iiif.io/api/image/3/context.json"`},
		{"3", `application/ld+json;profile="http://iiif.io/api/image/3/context.json"`, `application/ld+json;profile="http://iiif.io/api/image/3/context.json"`},
		{"3", "application/json", "application/json"},
		{"2", "application/ld+json", "application/ld+json"},
		{"2", "", "application/json"},
		{"3", "", `application/ld+json;profile="http://iiif.io/api/image/3/context.json"`},
		{"3", "*/*", `application/ld+json;profile="http://iiif.io/api/image/3/context.json"`},
	} {
		r := do(t, "GET", srv.URL+"/iiif/"+tc.v+"/julia/info.json", map[string]string{"Accept": tc.accept})
		if got := r.header.Get("Content-Type"); got != tc.want {
			t.Errorf("v%s Accept %q: Content-Type %q, want %q", tc.v, tc.accept, got, tc.want)
		}
		if !strings.Contains(r.header.Get("Vary"), "Accept") {
			t.Errorf("no Vary: Accept")
		}
	}
}

func TestBaseURL(t *testing.T) {
	srv, _ := server(t, func(c *config.Config) { c.TrustForwarded = "true" })
	r := do(t, "GET", srv.URL+"/iiif/3/sub%2Fdir%2Fchart/info.json", map[string]string{
		"X-Forwarded-Proto": "https", "X-Forwarded-Host": "images.example.org", "X-Forwarded-Prefix": "/museum/",
	})
	var info map[string]any
	json.Unmarshal(r.body, &info)
	if want := "https://images.example.org/museum/iiif/3/sub%2Fdir%2Fchart"; info["id"] != want {
		t.Errorf("id %v, want %s", info["id"], want)
	}
	// A forged host with markup is not echoed.
	r = do(t, "GET", srv.URL+"/iiif/3/julia/info.json", map[string]string{"X-Forwarded-Host": `evil"><script>`})
	if bytes.Contains(r.body, []byte("script")) {
		t.Errorf("forged host echoed: %s", r.body)
	}

	srv2, _ := server(t, func(c *config.Config) { c.BaseURL = "https://iiif.example.net/x/" })
	r = get(t, srv2.URL+"/iiif/3/julia/info.json")
	json.Unmarshal(r.body, &info)
	if info["id"] != "https://iiif.example.net/x/iiif/3/julia" {
		t.Errorf("--base-url not used: %v", info["id"])
	}
}

func TestRedirect(t *testing.T) {
	srv, _ := server(t, nil)
	for _, path := range []string{"/iiif/3/julia", "/iiif/3/julia/", "/iiif/2/sub%2Fdir%2Fchart"} {
		r := get(t, srv.URL+path)
		if r.status != http.StatusSeeOther {
			t.Errorf("%s: status %d, want 303", path, r.status)
			continue
		}
		loc := r.header.Get("Location")
		if !strings.HasPrefix(loc, srv.URL+"/iiif/") || !strings.HasSuffix(loc, "/info.json") {
			t.Errorf("%s: Location %q", path, loc)
		}
		if r.header.Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("%s: redirect without CORS", path)
		}
	}
}

func TestImage(t *testing.T) {
	srv, _ := server(t, nil)
	cases := []struct {
		path      string
		w, h      int
		canonical string
		ctype     string
	}{
		{"/iiif/3/mandelbrot/full/max/0/default.jpg", 6144, 4608, "/iiif/3/mandelbrot/full/max/0/default.jpg", "image/jpeg"},
		{"/iiif/3/mandelbrot/0,0,6144,4608/6144,/0/default.jpg", 6144, 4608, "/iiif/3/mandelbrot/full/max/0/default.jpg", "image/jpeg"},
		{"/iiif/3/mandelbrot/256,512,256,256/256,/0/default.jpg", 256, 256, "/iiif/3/mandelbrot/256,512,256,256/max/0/default.jpg", "image/jpeg"},
		{"/iiif/3/mandelbrot/0,0,2048,2048/256,/0/default.png", 256, 256, "/iiif/3/mandelbrot/0,0,2048,2048/256,256/0/default.png", "image/png"},
		{"/iiif/3/testchart.png/full/!300,300/90/gray.png", 200, 300, "/iiif/3/testchart.png/full/300,200/90/gray.png", "image/png"},
		{"/iiif/3/julia/square/100,/!0/default.jpg", 100, 100, "/iiif/3/julia/400,0,1600,1600/100,100/!0/default.jpg", "image/jpeg"},
		{"/iiif/3/sub%2Fdir%2Fchart/full/^600,/0/default.png", 600, 400, "/iiif/3/sub%2Fdir%2Fchart/full/^600,400/0/default.png", "image/png"},
		{"/iiif/3/sub/dir/chart/full/max/0/default.png", 300, 200, "/iiif/3/sub%2Fdir%2Fchart/full/max/0/default.png", "image/png"},
		{"/iiif/2/julia/full/full/0/default.jpg", 2400, 1600, "/iiif/2/julia/full/full/0/default.jpg", "image/jpeg"},
		{"/iiif/2/julia/full/4800,/0/default.jpg", 4800, 3200, "/iiif/2/julia/full/4800,/0/default.jpg", "image/jpeg"},
		{"/iiif/3/zoneplate/full/128,/0/default.jpg", 128, 128, "/iiif/3/zoneplate/full/128,128/0/default.jpg", "image/jpeg"},
	}
	for _, tc := range cases {
		r := get(t, srv.URL+tc.path)
		if r.status != 200 {
			t.Errorf("%s: status %d: %s", tc.path, r.status, r.body)
			continue
		}
		if got := r.header.Get("Content-Type"); got != tc.ctype {
			t.Errorf("%s: Content-Type %q", tc.path, got)
		}
		b := decode(t, r.body).Bounds()
		if b.Dx() != tc.w || b.Dy() != tc.h {
			t.Errorf("%s: %dx%d, want %dx%d", tc.path, b.Dx(), b.Dy(), tc.w, tc.h)
		}
		link := r.header.Get("Link")
		if want := "<" + srv.URL + tc.canonical + `>;rel="canonical"`; !strings.Contains(link, want) {
			t.Errorf("%s: Link %q lacks %s", tc.path, link, want)
		}
		if !strings.Contains(link, `rel="profile"`) {
			t.Errorf("%s: Link %q lacks the profile", tc.path, link)
		}
		if r.header.Get("ETag") == "" || r.header.Get("Last-Modified") == "" || r.header.Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("%s: headers %v", tc.path, r.header)
		}
	}
}

// TestCanonicalETag checks that equivalent requests share one ETag.
func TestCanonicalETag(t *testing.T) {
	srv, _ := server(t, nil)
	a := do(t, "HEAD", srv.URL+"/iiif/3/julia/full/max/0/default.jpg", nil)
	b := do(t, "HEAD", srv.URL+"/iiif/3/julia.jpg/0,0,2400,1600/2400,/0/default.jpg", nil)
	if a.header.Get("ETag") == "" || a.header.Get("ETag") != b.header.Get("ETag") {
		t.Errorf("equivalent requests: ETags %q and %q", a.header.Get("ETag"), b.header.Get("ETag"))
	}
	c := do(t, "HEAD", srv.URL+"/iiif/3/julia/full/max/0/gray.jpg", nil)
	if c.header.Get("ETag") == a.header.Get("ETag") {
		t.Error("different requests share an ETag")
	}
}

func TestConditional(t *testing.T) {
	srv, _ := server(t, nil)
	for _, path := range []string{"/iiif/3/julia/full/64,/0/default.jpg", "/iiif/3/julia/info.json"} {
		r := get(t, srv.URL+path)
		etag, mod := r.header.Get("ETag"), r.header.Get("Last-Modified")
		if r.status != 200 || etag == "" || mod == "" {
			t.Fatalf("%s: %d %q %q", path, r.status, etag, mod)
		}
		for _, hdr := range []map[string]string{
			{"If-None-Match": etag},
			{"If-None-Match": `"other", ` + etag},
			{"If-Modified-Since": mod},
			{"If-Modified-Since": time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)},
		} {
			r := do(t, "GET", srv.URL+path, hdr)
			if r.status != http.StatusNotModified || len(r.body) != 0 {
				t.Errorf("%s %v: status %d, %d bytes; want 304", path, hdr, r.status, len(r.body))
			}
			if r.header.Get("ETag") != etag {
				t.Errorf("%s: 304 without the ETag", path)
			}
		}
		for _, hdr := range []map[string]string{
			{"If-None-Match": `"other"`},
			{"If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"},
			// If-None-Match wins over If-Modified-Since.
			{"If-None-Match": `"other"`, "If-Modified-Since": mod},
		} {
			if r := do(t, "GET", srv.URL+path, hdr); r.status != 200 {
				t.Errorf("%s %v: status %d, want 200", path, hdr, r.status)
			}
		}
	}
}

func TestHeadAndOptions(t *testing.T) {
	srv, _ := server(t, nil)
	for _, path := range []string{"/iiif/3/julia/full/64,/0/default.jpg", "/iiif/3/julia/info.json", "/iiif/2/julia/info.json"} {
		r := do(t, "HEAD", srv.URL+path, nil)
		if r.status != 200 || len(r.body) != 0 || r.header.Get("Content-Type") == "" {
			t.Errorf("HEAD %s: %d, %d bytes, %v", path, r.status, len(r.body), r.header)
		}
		r = do(t, "OPTIONS", srv.URL+path, map[string]string{"Origin": "https://viewer.example", "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "accept"})
		if r.status != http.StatusNoContent || r.header.Get("Access-Control-Allow-Origin") != "*" ||
			!strings.Contains(r.header.Get("Access-Control-Allow-Methods"), "GET") || r.header.Get("Access-Control-Allow-Headers") != "accept" {
			t.Errorf("OPTIONS %s: %d %v", path, r.status, r.header)
		}
	}
	if r := do(t, "HEAD", srv.URL+"/iiif/3/nope/info.json", nil); r.status != 404 {
		t.Errorf("HEAD of a missing image: %d", r.status)
	}
}

func TestErrors(t *testing.T) {
	srv, root := server(t, func(c *config.Config) { c.MaxWidth = 4000 })
	cases := []struct {
		method, path string
		status       int
		mention      string
	}{
		{"GET", "/iiif/3/julia/nope/max/0/default.jpg", 400, "region"},
		{"GET", "/iiif/3/julia/full/abc/0/default.jpg", 400, "size"},
		{"GET", "/iiif/3/julia/full/full/0/default.jpg", 400, "size"}, // "full" is 2.x only
		{"GET", "/iiif/3/julia/full/max/361/default.jpg", 400, "rotation"},
		{"GET", "/iiif/3/julia/full/max/0/sepia.jpg", 400, "quality"},
		{"GET", "/iiif/3/julia/full/max/0/default.bmp", 400, "format"},
		{"GET", "/iiif/3/julia/full/max/0/default.pdf", 400, "pdf"},
		{"GET", "/iiif/3/julia/5000,0,10,10/max/0/default.jpg", 400, "region"},
		{"GET", "/iiif/3/julia/0,0,0,10/max/0/default.jpg", 400, "region"},
		{"GET", "/iiif/3/julia/full/4000,/0/default.jpg", 400, "size"},
		{"GET", "/iiif/2/julia/full/4500,/0/default.jpg", 404, "maxWidth"}, // 2.1 §7.2
		{"GET", "/iiif/3/julia/full/^4500,/0/default.jpg", 400, "maxWidth"},
		{"GET", "/iiif/3/julia/full/pct:0.0001/0/default.jpg", 400, "size"},
		{"GET", "/iiif/3/missing/info.json", 404, "missing"},
		{"GET", "/iiif/3/missing/full/max/0/default.jpg", 404, ""},
		{"GET", "/iiif/3/notes.txt/info.json", 404, ""},
		{"GET", "/iiif/4/julia/info.json", 404, "version"},
		{"GET", "/iiif/3/", 404, ""},
		{"POST", "/iiif/3/julia/info.json", 405, "POST"},
		{"DELETE", "/iiif/3/julia/full/max/0/default.jpg", 405, ""},
		{"GET", "/iiif/3/julia%ZZ/info.json", 400, ""}, // refused by net/http itself
		// Traversal: encoded dots and slashes, absolute paths, NUL, links.
		{"GET", "/iiif/3/..%2F..%2Fetc%2Fpasswd/info.json", 400, "identifier"},
		{"GET", "/iiif/3/%2E%2E%2Fsecret.png/info.json", 400, "identifier"},
		{"GET", "/iiif/3/%2Fetc%2Fpasswd/info.json", 400, "identifier"},
		{"GET", "/iiif/3/sub%2F..%2F..%2Fsecret/full/max/0/default.png", 400, "identifier"},
		{"GET", "/iiif/3/julia.jpg%00.png/info.json", 400, "identifier"},
		{"GET", "/iiif/3/escape.png/info.json", 404, ""},
		{"GET", "/iiif/3/escape/full/max/0/default.png", 404, ""},
		{"GET", "/iiif/3/sub%5C..%5Cjulia.jpg/info.json", 400, "identifier"},
	}
	for _, tc := range cases {
		r := do(t, tc.method, srv.URL+tc.path, nil)
		if r.status != tc.status {
			t.Errorf("%s %s: status %d, want %d (%s)", tc.method, tc.path, r.status, tc.status, r.body)
			continue
		}
		body := string(r.body)
		if tc.mention != "" && !strings.Contains(strings.ToLower(body), strings.ToLower(tc.mention)) {
			t.Errorf("%s %s: message %q does not mention %q", tc.method, tc.path, body, tc.mention)
		}
		if strings.Contains(body, root) || strings.Contains(body, "/tmp") || strings.Contains(body, "goroutine") {
			t.Errorf("%s %s: message leaks internals: %q", tc.method, tc.path, body)
		}
		if r.header.Get("Access-Control-Allow-Origin") != "*" && !strings.Contains(tc.path, "%ZZ") {
			t.Errorf("%s %s: error without CORS", tc.method, tc.path)
		}
		if r.header.Get("ETag") != "" {
			t.Errorf("%s %s: error with an ETag", tc.method, tc.path)
		}
	}
}

func TestMaxShrinksToLimits(t *testing.T) {
	srv, _ := server(t, func(c *config.Config) { c.MaxWidth, c.MaxHeight = 1000, 1000 })
	r := get(t, srv.URL+"/iiif/3/julia/full/max/0/default.jpg")
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	if b := decode(t, r.body).Bounds(); b.Dx() != 1000 || b.Dy() != 667 {
		t.Errorf("max under 1000x1000 limits: %v", b)
	}
	var info map[string]any
	json.Unmarshal(get(t, srv.URL+"/iiif/3/julia/info.json").body, &info)
	if info["maxWidth"] != 1000.0 || info["maxHeight"] != 1000.0 {
		t.Errorf("limits not published: %v %v", info["maxWidth"], info["maxHeight"])
	}
	for _, s := range info["sizes"].([]any) {
		if s.(map[string]any)["width"].(float64) > 1000 {
			t.Errorf("sizes lists %v beyond the limits", s)
		}
	}
}

func TestHealthz(t *testing.T) {
	srv, _ := server(t, nil)
	if r := get(t, srv.URL+"/healthz"); r.status != 200 {
		t.Errorf("healthz: %d", r.status)
	}
}

// TestPanicRecovered uses the middleware around a handler that panics: the
// client gets a clean 500 with no detail.
func TestPanicRecovered(t *testing.T) {
	var logs bytes.Buffer
	h := httpapi.Wrap(slog.New(slog.NewTextHandler(&logs, nil)), http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		panic("secret detail")
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/iiif/3/x/info.json", nil))
	if rec.Code != 500 || strings.Contains(rec.Body.String(), "secret") {
		t.Errorf("got %d %q", rec.Code, rec.Body.String())
	}
	if !strings.Contains(logs.String(), "secret detail") {
		t.Errorf("panic not logged: %s", logs.String())
	}
}

// TestViewerTiles requests every tile of the pyramid sample at every
// scale factor the way the spec's tile algorithm (and OpenSeadragon)
// computes them, in the 3.0 "w,h" form and the 2.1 "w," form: all must
// succeed with the size asked for, edge tiles included.
func TestViewerTiles(t *testing.T) {
	srv, _ := server(t, nil)
	var info struct {
		Width, Height int
		Tiles         []struct {
			Width        int
			ScaleFactors []int
		}
	}
	r := get(t, srv.URL+"/iiif/3/mandelbrot/info.json")
	if err := json.Unmarshal(r.body, &info); err != nil {
		t.Fatal(err)
	}
	tw := info.Tiles[0].Width
	n := 0
	for _, sf := range info.Tiles[0].ScaleFactors {
		for y := 0; y < info.Height; y += tw * sf {
			for x := 0; x < info.Width; x += tw * sf {
				w, h := min(tw*sf, info.Width-x), min(tw*sf, info.Height-y)
				sw, sh := (w+sf-1)/sf, (h+sf-1)/sf
				region := fmt.Sprintf("%d,%d,%d,%d", x, y, w, h)
				for _, tc := range []struct{ url string }{
					{fmt.Sprintf("/iiif/3/mandelbrot/%s/%d,%d/0/default.jpg", region, sw, sh)},
					{fmt.Sprintf("/iiif/2/mandelbrot/%s/%d,/0/default.jpg", region, sw)},
				} {
					n++
					if n%7 != 0 && sf == 1 {
						continue // every 7th full-resolution tile keeps the test short
					}
					r := get(t, srv.URL+tc.url)
					if r.status != 200 {
						t.Errorf("%s: %d %s", tc.url, r.status, r.body)
						continue
					}
					b := decode(t, r.body).Bounds()
					if b.Dx() != sw || b.Dy() < sh-1 || b.Dy() > sh+1 {
						t.Errorf("%s: %dx%d, want %dx%d", tc.url, b.Dx(), b.Dy(), sw, sh)
					}
				}
			}
		}
	}
}

// TestUpscalingNeedsALimit: with no maxWidth or maxArea the server may
// not upscale (3.0 §5.7), answers 501, and does not claim the feature.
func TestUpscalingNeedsALimit(t *testing.T) {
	srv, _ := server(t, func(c *config.Config) { c.MaxArea = 0 })
	if r := get(t, srv.URL+"/iiif/3/julia/full/^4800,/0/default.jpg"); r.status != http.StatusNotImplemented {
		t.Errorf("upscaling without limits: %d %s", r.status, r.body)
	}
	r := get(t, srv.URL+"/iiif/3/julia/info.json")
	if bytes.Contains(r.body, []byte("sizeUpscaling")) {
		t.Errorf("info.json claims sizeUpscaling without limits: %s", r.body)
	}
	if r := get(t, srv.URL+"/iiif/3/julia/full/max/0/default.jpg"); r.status != 200 {
		t.Errorf("max without limits: %d", r.status)
	}
}

// TestForwardedHeaders: ids built from forwarding headers of a trusted
// proxy vary with them, and a prefix that is not a plain path is ignored.
func TestForwardedHeaders(t *testing.T) {
	srv, _ := server(t, func(c *config.Config) { c.TrustForwarded = "127.0.0.0/8" })
	r := do(t, "GET", srv.URL+"/iiif/3/julia/info.json", map[string]string{"X-Forwarded-Prefix": "/x?y#z"})
	var info map[string]any
	json.Unmarshal(r.body, &info)
	if id := info["id"].(string); strings.ContainsAny(id, "?#") {
		t.Errorf("prefix with query or fragment used: %s", id)
	}
	if !strings.Contains(strings.Join(r.header.Values("Vary"), ","), "X-Forwarded-Host") {
		t.Errorf("Vary %q lacks the forwarding headers", r.header.Values("Vary"))
	}
	img := get(t, srv.URL+"/iiif/3/julia/full/32,/0/default.jpg")
	if !strings.Contains(strings.Join(img.header.Values("Vary"), ","), "X-Forwarded-Host") {
		t.Errorf("image Vary %q lacks the forwarding headers", img.header.Values("Vary"))
	}
	srv2, _ := server(t, func(c *config.Config) { c.BaseURL = "https://iiif.example.net" })
	if v := get(t, srv2.URL+"/iiif/3/julia/info.json").header.Get("Vary"); strings.Contains(v, "Forwarded") {
		t.Errorf("with --base-url nothing varies with forwarding headers: %q", v)
	}
}

func TestPreconditions(t *testing.T) {
	srv, _ := server(t, nil)
	path := srv.URL + "/iiif/3/julia/full/32,/0/default.jpg"
	etag := get(t, path).header.Get("ETag")
	for _, tc := range []struct {
		hdr    map[string]string
		status int
	}{
		{map[string]string{"If-Match": etag}, 200},
		{map[string]string{"If-Match": "*"}, 200},
		{map[string]string{"If-Match": `"nope"`}, 412},
		{map[string]string{"If-Match": "W/" + etag}, 412}, // If-Match compares strongly
		{map[string]string{"If-None-Match": "W/" + etag}, 304},
		{map[string]string{"If-Unmodified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"}, 412},
		{map[string]string{"If-Unmodified-Since": time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)}, 200},
	} {
		if r := do(t, "GET", path, tc.hdr); r.status != tc.status {
			t.Errorf("%v: %d, want %d", tc.hdr, r.status, tc.status)
		}
	}
}

func TestAcceptQZero(t *testing.T) {
	srv, _ := server(t, nil)
	r := do(t, "GET", srv.URL+"/iiif/3/julia/info.json", map[string]string{"Accept": "application/ld+json;q=0, application/json"})
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("q=0 JSON-LD still chosen: %s", ct)
	}
}

// TestHostileFiles: names the file system refuses, FIFOs, hidden files and
// loops of links are all plain 404s (or 400s), never 500s or hangs.
func TestHostileFiles(t *testing.T) {
	srv, root := server(t, nil)
	if err := syscall.Mkfifo(filepath.Join(root, "fifo.jpg"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Symlink("loop-b.jpg", filepath.Join(root, "loop-a.jpg"))
	os.Symlink("loop-a.jpg", filepath.Join(root, "loop-b.jpg"))
	os.WriteFile(filepath.Join(root, ".hidden.png"), []byte("x"), 0o644)
	for _, id := range []string{"fifo.jpg", "fifo", "loop-a.jpg", ".hidden.png", "sub%2F.hidden.png", strings.Repeat("a", 300) + ".jpg"} {
		done := make(chan resp, 1)
		go func() { done <- get(t, srv.URL+"/iiif/3/"+id+"/info.json") }()
		select {
		case r := <-done:
			if r.status != 404 && r.status != 400 {
				t.Errorf("%s: %d %s", id, r.status, r.body)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: request hangs", id)
		}
	}
}

// TestPanicAfterWriteAborts: a panic once the body has started must not
// leave a clean, cacheable, truncated 200.
func TestPanicAfterWriteAborts(t *testing.T) {
	h := httpapi.Wrap(slog.New(slog.NewTextHandler(io.Discard, nil)), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"x"`)
		w.Write([]byte("partial"))
		w.(http.Flusher).Flush()
		panic("boom")
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()
	res, err := http.Get(srv.URL)
	if err == nil {
		_, err = io.ReadAll(res.Body)
		res.Body.Close()
	}
	if err == nil {
		t.Error("a torn response was delivered as complete")
	}
	// Before any write: a clean 500 without the success headers.
	h = httpapi.Wrap(slog.New(slog.NewTextHandler(io.Discard, nil)), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"x"`)
		w.Header().Set("Cache-Control", "public, max-age=86400")
		panic("boom")
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != 500 || rec.Header().Get("ETag") != "" || rec.Header().Get("Cache-Control") != "no-store" {
		t.Errorf("500 after panic: %d %v", rec.Code, rec.Header())
	}
}

// TestOverload floods a server that admits one render at a time with one
// waiting: every answer is a 200 or a clean 503 with Retry-After, and
// passthrough tiles are served whatever the load.
func TestOverload(t *testing.T) {
	srv, _ := server(t, func(c *config.Config) {
		c.Workers, c.Queue, c.QueueTimeout = 1, 1, 50*time.Millisecond
	})
	var wg sync.WaitGroup
	var mu sync.Mutex
	counts := map[int]int{}
	for i := 0; i < 12; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			r := get(t, fmt.Sprintf("%s/iiif/3/julia/full/%d,/0/default.png", srv.URL, 2000+i))
			mu.Lock()
			counts[r.status]++
			mu.Unlock()
			if r.status == 503 && r.header.Get("Retry-After") == "" {
				t.Error("503 without Retry-After")
			}
			if r.status != 200 && r.status != 503 {
				t.Errorf("status %d: %s", r.status, r.body)
			}
		}(i)
	}
	wg.Wait()
	if counts[200] == 0 || counts[503] == 0 {
		t.Errorf("statuses %v: want some served and some refused", counts)
	}
}

func TestRequestTimeout(t *testing.T) {
	srv, _ := server(t, func(c *config.Config) { c.RequestTimeout = time.Millisecond })
	r := get(t, srv.URL+"/iiif/3/julia/full/max/90/default.png")
	if r.status != 503 || !strings.Contains(string(r.body), "too long") {
		t.Errorf("got %d %s", r.status, r.body)
	}
}
