package app

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/iiifd/iiifd/internal/config"
	"github.com/iiifd/iiifd/internal/samples"
	"github.com/iiifd/iiifd/internal/source/pyramid"
	"github.com/iiifd/iiifd/internal/source/s3/s3test"
)

// tilePyramid returns the files of a 1024×768 IIIF level-0 tile directory
// with 256 px tiles at scale factors 1, 2 and 4.
func tilePyramid(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	info := `{"@context":"http://iiif.io/api/image/3/context.json","id":"x","type":"ImageService3","protocol":"http://iiif.io/api/image","profile":"level0",
"width":1024,"height":768,"tiles":[{"width":256,"height":256,"scaleFactors":[1,2,4]}]}`
	p, err := pyramid.Parse([]byte(info))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{dir + "/info.json": []byte(info)}
	for _, sf := range p.ScaleFactors {
		w, h := p.Level(sf)
		for row := 0; row*256 < h; row++ {
			for col := 0; col*256 < w; col++ {
				r := p.TileRegion(sf, col, row)
				img := image.NewRGBA(image.Rect(0, 0, (r.Dx()+sf-1)/sf, (r.Dy()+sf-1)/sf))
				for i := range img.Pix {
					img.Pix[i] = byte(col*40 + row*20 + sf)
				}
				img.Set(0, 0, color.White)
				var b bytes.Buffer
				if err := jpeg.Encode(&b, img, nil); err != nil {
					t.Fatal(err)
				}
				files[dir+"/"+p.TileKey(sf, col, row)] = b.Bytes()
			}
		}
	}
	return files
}

// TestS3EndToEnd serves info.json and tiles of a tile pyramid stored in a
// real S3 server (versitygw), configured the AWS way (environment), then
// takes the store away and brings it back.
func TestS3EndToEnd(t *testing.T) {
	srv := s3test.Start(t)
	bucket := srv.Bucket("images")
	files := tilePyramid(t, "collection/pyr")
	srv.Put(bucket, files)
	s3test.Env(t, srv.Endpoint())

	cfg := config.Default()
	cfg.Root = "s3://" + bucket + "/collection"
	cfg.CacheMemory = 0
	cfg.Stores.ConnectTimeout = 300 * time.Millisecond
	cfg.Stores.ReadTimeout = time.Second
	a, hs := serve(t, cfg)
	get := func(path string) (int, []byte) {
		resp, err := http.Get(hs.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	code, body := get("/iiif/3/pyr/info.json")
	if code != 200 || !bytes.Contains(body, []byte(`"width": 1024`)) && !bytes.Contains(body, []byte(`"width":1024`)) {
		t.Fatalf("info.json: %d %s", code, body)
	}
	code, body = get("/iiif/3/pyr/256,0,256,256/256,256/0/default.jpg")
	if want := files["collection/pyr/256,0,256,256/256,256/0/default.jpg"]; code != 200 || !bytes.Equal(body, want) {
		t.Fatalf("stored tile: %d, %d bytes (want %d)", code, len(body), len(want))
	}
	code, body = get("/iiif/3/pyr/0,0,1024,768/200,/0/default.png")
	if code != 200 || len(body) < 100 {
		t.Fatalf("stitched image: %d %s", code, body)
	}
	if code, _ = get("/iiif/3/missing/info.json"); code != 404 {
		t.Errorf("missing identifier: %d", code)
	}
	if code, _ = get("/iiif/3/..%2Fimages/info.json"); code != 400 {
		t.Errorf("escaping identifier: %d", code)
	}
	stats := a.StoreStats()[cfg.Root]
	if stats.Requests == 0 || stats.Bytes == 0 {
		t.Errorf("no bytes counted: %+v", stats)
	}
	// A stored tile not read before costs one request: opening it
	// brings its bytes.
	if code, _ = get("/iiif/3/pyr/512,256,256,256/256,256/0/default.jpg"); code != 200 {
		t.Fatalf("stored tile: %d", code)
	}
	if after := a.StoreStats()[cfg.Root]; after.Requests != stats.Requests+1 {
		t.Errorf("a stored tile took %d requests, want 1", after.Requests-stats.Requests)
	}
	stats = a.StoreStats()[cfg.Root]
	var metrics bytes.Buffer
	rec := httptest.NewRecorder()
	a.metrics.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	metrics.Write(rec.Body.Bytes())
	if want := fmt.Sprintf(`iiifd_store_bytes_total{root="root"} %d`, stats.Bytes); !strings.Contains(metrics.String(), want) {
		t.Errorf("metrics lack %s", want)
	}

	srv.Stop()
	for i := 0; i < 3; i++ {
		// Opening an identifier: the store's fault as it is (503).
		code, body := get(fmt.Sprintf("/iiif/3/other%d.tif/info.json", i))
		if code != http.StatusServiceUnavailable {
			t.Errorf("store down: %d %q, want 503", code, body)
		}
		// A stored tile of a pyramid whose info.json was read before:
		// the store's fault, as it is, quickly.
		code, body = get(fmt.Sprintf("/iiif/3/pyr/0,%d,256,256/256,256/0/default.jpg", 256*(i%3)))
		if code != http.StatusServiceUnavailable {
			t.Errorf("store down: %d %q, want 503", code, body)
		}
	}
	// The answers are quick because the root's breaker opened: later
	// requests are refused without trying the store.
	rec = httptest.NewRecorder()
	a.metrics.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if want := `iiifd_store_breaker_open{root="root"} 1`; !strings.Contains(rec.Body.String(), want) {
		t.Errorf("the root's breaker is still closed with the store down: metrics lack %s", want)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Errorf("healthz with the store down: %d", code)
	}
	srv.Restart()
	deadline := time.Now().Add(5 * time.Second)
	for {
		code, _ := get("/iiif/3/pyr/512,512,256,256/256,256/0/default.jpg")
		if code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("store back, still %d", code)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestHTTPOriginRule serves a tile pyramid from an HTTP origin through a
// [[roots]] rule, next to a local root, with the hash key layout.
func TestHTTPOriginRule(t *testing.T) {
	files := tilePyramid(t, "web/ab12cd34")
	mod := time.Now()
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The layout hash:2,2 puts web/... under we/b/... on the origin.
		key, ok := strings.CutPrefix(r.URL.Path, "/static/we/b/")
		b, found := files[key]
		if !ok || !found {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("ETag", fmt.Sprintf(`"%x"`, len(b)))
		http.ServeContent(w, r, "", mod, bytes.NewReader(b))
	}))
	defer origin.Close()
	cfg := config.Default()
	cfg.Root = t.TempDir()
	cfg.CacheMemory = 0
	cfg.Stores.KeyLayout = "hash:2,1"
	cfg.Stores.Roots = []config.RootRule{{Match: "web/**", Root: origin.URL + "/static/"}}
	_, hs := serve(t, cfg)
	for path, want := range map[string]int{
		"/iiif/3/web%2Fab12cd34/info.json":                         200,
		"/iiif/3/web%2Fab12cd34/0,0,256,256/256,256/0/default.jpg": 200,
		"/iiif/3/web%2Fab12cd34/full/128,/0/default.png":           200,
		"/iiif/3/web%2Fmissing.tif/info.json":                      404,
		"/iiif/3/local.tif/info.json":                              404,
	} {
		resp, err := http.Get(hs.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s: %d %s, want %d", path, resp.StatusCode, b, want)
		}
	}
}

// TestS3Images serves the sample images (pyramidal TIFF, JPEG, PNG,
// JPEG 2000) from S3: info.json from a few KiB, images decoded from the
// ranged reader or from the source cache.
func TestS3Images(t *testing.T) {
	srv := s3test.Start(t)
	bucket := srv.Bucket("samples")
	dir := t.TempDir()
	if err := samples.Extract(dir); err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		files[e.Name()] = b
	}
	srv.Put(bucket, files)
	s3test.Env(t, srv.Endpoint())
	cfg := config.Default()
	cfg.Root = "s3://" + bucket
	cfg.CacheMemory = 0
	cfg.Stores.SourceCacheDir = t.TempDir()
	a, hs := serve(t, cfg)
	// Image API 3 §5.1: JSON-LD with the context as profile (the client
	// sends no Accept); 2.1 §5.1: plain JSON.
	const infoV3 = `application/ld+json;profile="http://iiif.io/api/image/3/context.json"`
	for _, tc := range []struct {
		path     string
		maxBytes int64 // from the store, for this request
		ctype    string
	}{
		{"/iiif/3/mandelbrot/info.json", 64 << 10, infoV3},
		{"/iiif/3/mandelbrot/0,0,1024,1024/256,/0/default.jpg", 2 << 20, "image/jpeg"},
		{"/iiif/3/mandelbrot/full/!300,300/0/default.png", 2 << 20, "image/png"},
		{"/iiif/3/julia/info.json", 64 << 10, infoV3},
		{"/iiif/2/julia/info.json", 0, "application/json"},
		{"/iiif/3/julia/full/!200,200/0/default.jpg", int64(len(files["julia.jpg"])), "image/jpeg"},
		{"/iiif/3/julia/full/!100,100/90/default.webp", 0, "image/webp"},
		{"/iiif/3/testchart.png/full/64,/0/gray.png", int64(len(files["testchart.png"])), "image/png"},
		{"/iiif/3/zoneplate/info.json", 64 << 10, infoV3},
		{"/iiif/3/zoneplate/0,0,256,256/128,/0/default.jpg", int64(len(files["zoneplate.jp2"])), "image/jpeg"},
	} {
		before := a.StoreStats()[cfg.Root]
		resp, err := http.Get(hs.URL + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != tc.ctype {
			t.Errorf("%s: %d %s %.200s; want 200 %s", tc.path, resp.StatusCode, resp.Header.Get("Content-Type"), body, tc.ctype)
			continue
		}
		if strings.HasSuffix(tc.path, "/info.json") {
			var doc struct {
				ID            string `json:"id"`
				OldID         string `json:"@id"`
				Width, Height int
			}
			if err := json.Unmarshal(body, &doc); err != nil || doc.Width <= 0 || doc.Height <= 0 ||
				!strings.HasSuffix(doc.ID+doc.OldID, strings.TrimSuffix(tc.path, "/info.json")) {
				t.Errorf("%s: not the image's info.json (%v): %.300s", tc.path, err, body)
			}
		}
		got := a.StoreStats()[cfg.Root].Bytes - before.Bytes
		if got > tc.maxBytes {
			t.Errorf("%s: %d bytes from the store, want at most %d", tc.path, got, tc.maxBytes)
		}
		t.Logf("%s: %d bytes from the store", tc.path, got)
	}
}
