//go:build !js && !wasip1

package edge_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/iiifd/iiifd/internal/edge"
	"github.com/iiifd/iiifd/internal/engine"
	"github.com/iiifd/iiifd/internal/engine/goengine"
	"github.com/iiifd/iiifd/internal/ingest"
	"github.com/iiifd/iiifd/internal/pixels"
	"github.com/iiifd/iiifd/internal/samples"
)

func TestMain(m *testing.M) {
	if err := pixels.Startup(pixels.Config{}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// dirStore is a Store over a local folder that counts what is read: a
// real store, as an origin or bucket would answer.
type dirStore struct {
	dir    string
	mu     sync.Mutex
	opens  int
	ranges []string // key@off+n of every ReadRange
	gets   []string
}

func (s *dirStore) file(key string) ([]byte, edge.Object, error) {
	b, err := os.ReadFile(filepath.Join(s.dir, filepath.FromSlash(key)))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, edge.Object{}, edge.ErrNotFound
	}
	if err != nil {
		return nil, edge.Object{}, err
	}
	return b, edge.Object{Key: key, Size: int64(len(b)), Version: fmt.Sprint(len(b))}, nil
}

func (s *dirStore) Open(ctx context.Context, key string, head int) (edge.Object, error) {
	s.mu.Lock()
	s.opens++
	s.mu.Unlock()
	b, o, err := s.file(key)
	if err == nil {
		o.Head = b[:min(head, len(b))]
	}
	return o, err
}

func (s *dirStore) ReadRange(ctx context.Context, obj edge.Object, off, n int64) ([]byte, error) {
	s.mu.Lock()
	s.ranges = append(s.ranges, fmt.Sprintf("%s@%d+%d", obj.Key, off, n))
	s.mu.Unlock()
	b, _, err := s.file(obj.Key)
	if err != nil {
		return nil, err
	}
	return b[off : off+n], nil
}

func (s *dirStore) Get(ctx context.Context, key string, max int64) ([]byte, edge.Object, error) {
	s.mu.Lock()
	s.gets = append(s.gets, key)
	s.mu.Unlock()
	return s.file(key)
}

func (s *dirStore) reset() {
	s.mu.Lock()
	s.ranges, s.gets, s.opens = nil, nil, 0
	s.mu.Unlock()
}

// memCache is a Cache in memory.
type memCache struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (c *memCache) Get(ctx context.Context, key string) ([]byte, string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.m[key]
	return b, "", ok
}

func (c *memCache) Put(ctx context.Context, key string, body []byte, ct string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[key] = bytes.Clone(body)
}

func setup(t *testing.T) (*edge.Host, *dirStore, *memCache) {
	dir := t.TempDir()
	b, err := fs.ReadFile(samples.FS(), "julia.jpg")
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(dir, "julia.jpg")
	os.WriteFile(src, b, 0o644)
	if err := ingest.Build(context.Background(), src, filepath.Join(dir, "julia.tif"), ingest.Options{Format: ingest.FormatPTIFF, TileSize: 256}); err != nil {
		t.Fatal(err)
	}
	set, err := edge.ParseSettings(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	st := &dirStore{dir: dir}
	c := &memCache{m: map[string][]byte{}}
	return edge.New(set, st, c, goengine.New(engine.EncodeOptions{})), st, c
}

func serve(h *edge.Host, method, path string, hdr map[string]string) *edge.Response {
	return h.Serve(context.Background(), edge.Request{Method: method, Path: path, Origin: "https://edge.example",
		Header: func(k string) string { return hdr[k] }})
}

// TestTIFFReads checks that a TIFF's header and IFDs are read once per
// object version, that an aligned tile costs one read of its bytes, and
// that a rendered region reads the tiles under it in one request per
// row of adjacent tiles; both are then answered from the cache.
func TestTIFFReads(t *testing.T) {
	h, st, c := setup(t)
	r := serve(h, "GET", "/iiif/3/julia.tif/info.json", nil)
	if r.Status != 200 || !strings.Contains(string(r.Body), `"id":"https://edge.example/iiif/3/julia.tif"`) {
		t.Fatalf("info.json: %d %s", r.Status, r.Body)
	}
	headReads := len(st.ranges)
	st.reset()
	r = serve(h, "GET", "/iiif/3/julia.tif/256,256,256,256/256,256/0/default.jpg", nil)
	if r.Status != 200 || !bytes.HasPrefix(r.Body, []byte{0xFF, 0xD8}) {
		t.Fatalf("aligned tile: %d %s", r.Status, r.Body)
	}
	// One window of the offset arrays (the first tile's needs none past
	// the header), then the tile itself.
	if len(st.ranges) > 2 {
		t.Errorf("aligned tile: %d range reads %v, want the tile and at most one offset window", len(st.ranges), st.ranges)
	}
	st.reset()
	// The spliced tile is kept at the location too: a second ask reads
	// nothing.
	r = serve(h, "GET", "/iiif/3/julia.tif/256,256,256,256/256,256/0/default.jpg", nil)
	if len(st.ranges) != 0 || r.Get("X-Cache") != "HIT edge" {
		t.Errorf("aligned tile again: %d range reads %v, X-Cache %q", len(st.ranges), st.ranges, r.Get("X-Cache"))
	}
	st.reset()
	r = serve(h, "GET", "/iiif/3/julia.tif/300,300,600,300/300,/0/default.png", nil)
	if r.Status != 200 || r.Get("X-Cache") != "MISS" {
		t.Fatalf("region: %d %s %q", r.Status, r.Body, r.Get("X-Cache"))
	}
	// Level 0, tiles 1..3 across and 1..2 down: two rows of adjacent
	// tiles, two range requests (at most one more for offsets).
	if n := len(st.ranges); n < 2 || n > 3 {
		t.Errorf("region: %d range reads %v, want one per row of tiles", n, st.ranges)
	}
	st.reset()
	r = serve(h, "GET", "/iiif/3/julia.tif/300,300,600,300/300,/0/default.png", nil)
	if r.Status != 200 || r.Get("X-Cache") != "HIT edge" || len(st.ranges) != 0 || len(c.m) != 2 {
		t.Errorf("region again: %d X-Cache %q, %d reads, %d cached", r.Status, r.Get("X-Cache"), len(st.ranges), len(c.m))
	}
	t.Logf("header and IFDs: %d range reads besides the first 64 KiB", headReads)
}

// TestAnswers checks routes and statuses the host decides alone.
func TestAnswers(t *testing.T) {
	h, _, _ := setup(t)
	for _, tc := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/iiif/3/julia.tif", 303},
		{"OPTIONS", "/iiif/3/julia.tif/info.json", 204},
		{"POST", "/iiif/3/julia.tif/info.json", 405},
		{"GET", "/iiif/4/julia.tif/info.json", 404},
		{"GET", "/elsewhere", 404},
		{"GET", "/iiif/3/..%2Fjulia.tif/info.json", 400},
		{"GET", "/iiif/3/.hidden.tif/info.json", 404},
		{"GET", "/iiif/3/julia.jpg/full/max/0/default.webp", 400},
		{"GET", "/iiif/3/julia.tif/full/5000,/0/default.jpg", 400},
		{"GET", "/iiif/3/julia.tif/0,0,512,512/^4100,/0/default.jpg", 400},
		{"GET", "/iiif/3/julia.tif/0,0,512,512/^3600,/0/default.png", 400},
		{"GET", "/iiif/3/absent/info.json", 404},
	} {
		r := serve(h, tc.method, tc.path, nil)
		if r.Status != tc.status || r.Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("%s %s: %d %s, want %d", tc.method, tc.path, r.Status, r.Body, tc.status)
		}
	}
	r := serve(h, "GET", "/iiif/3/julia.tif/full/!200,200/0/default.jpg", nil)
	etag := r.Get("ETag")
	if r := serve(h, "GET", "/iiif/3/julia.tif/full/!200,200/0/default.jpg", map[string]string{"If-None-Match": etag}); r.Status != 304 || r.Body != nil {
		t.Errorf("If-None-Match: %d", r.Status)
	}
}

func TestParseSettings(t *testing.T) {
	env := map[string]string{"MAX_WIDTH": "3000", "MAX_AREA": "5000000", "FORMAT_LIMITS": "png=1000x1000", "JPEG_QUALITY": "70", "BASE_URL": "https://iiif.example/"}
	s, err := edge.ParseSettings(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if s.Limits.MaxWidth != 3000 || s.Limits.MaxArea != 5000000 || s.JPEGQuality != 70 || s.BaseURL != "https://iiif.example" ||
		s.Limits.PerFormat["png"].MaxWidth != 1000 {
		t.Errorf("%+v", s)
	}
	for k, v := range map[string]string{"MAX_WIDTH": "-1", "JPEG_QUALITY": "0", "FORMAT_LIMITS": "bmp=1x1", "BASE_URL": "ftp://x", "MAX_AREA": "lots"} {
		if _, err := edge.ParseSettings(func(n string) string {
			if n == k {
				return v
			}
			return ""
		}); err == nil {
			t.Errorf("%s=%s: no error", k, v)
		}
	}
}

func FuzzParseSettings(f *testing.F) {
	f.Add("4096", "jpg=4096x4096,png=3584x3584", "85")
	f.Add("", "gif=1x2x3", "101")
	f.Fuzz(func(t *testing.T, width, limits, quality string) {
		env := map[string]string{"MAX_WIDTH": width, "FORMAT_LIMITS": limits, "JPEG_QUALITY": quality}
		s, err := edge.ParseSettings(func(k string) string { return env[k] })
		if err != nil {
			return
		}
		if s.Limits.MaxWidth < 0 || s.JPEGQuality < 1 || s.JPEGQuality > 100 {
			t.Fatalf("%+v from %q", s, env)
		}
	})
}
