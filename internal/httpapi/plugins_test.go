package httpapi_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/iiifd/iiifd/internal/config"
	"github.com/iiifd/iiifd/internal/plugin/plugintest"
)

// withPlugins configures the example plugins names (with settings
// "NAME.KEY=VALUE"), built for the test.
func withPlugins(t testing.TB, names []string, settings ...string) func(*config.Config) {
	t.Helper()
	var files []string
	for _, n := range names {
		files = append(files, plugintest.Build(t, n))
	}
	return func(c *config.Config) {
		c.PluginTimeout = 5 * time.Second // shared, slow test machines
		c.PluginCacheDir = plugintest.CacheDir()
		for _, f := range files {
			// The plugin's name is its file name: copy to name.wasm.
			dir := t.TempDir()
			name := strings.TrimSuffix(filepath.Base(f), ".wasm")
			name = name[:strings.LastIndexByte(name, '-')]
			name = strings.TrimPrefix(name, "assemblyscript-")
			dst := filepath.Join(dir, name+".wasm")
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			os.WriteFile(dst, b, 0o644)
			c.Plugins.Files = append(c.Plugins.Files, dst)
		}
		for _, s := range settings {
			nk, v, _ := strings.Cut(s, "=")
			n, k, _ := strings.Cut(nk, ".")
			if c.Plugins.Config == nil {
				c.Plugins.Config = map[string]map[string]string{}
			}
			if c.Plugins.Config[n] == nil {
				c.Plugins.Config[n] = map[string]string{}
			}
			c.Plugins.Config[n][k] = v
		}
	}
}

// TestPluginAuthorize runs auth-token, in Go and in AssemblyScript, through
// the whole server: requests without the token are refused, before the
// cache, so a derivative cached for one client is never served to another.
func TestPluginAuthorize(t *testing.T) {
	for _, name := range []string{"auth-token", "assemblyscript/auth-token"} {
		t.Run(name, func(t *testing.T) {
			srv, _ := server(t, withPlugins(t, []string{name}, "auth-token.token=s3cret"))
			tile := srv.URL + "/iiif/3/sub%2Fdir%2Fchart.png/0,0,100,100/50,/0/default.png"
			info := srv.URL + "/iiif/3/julia/info.json"
			ok := map[string]string{"Authorization": "Bearer s3cret"}
			tests := []struct {
				url    string
				hdr    map[string]string
				status int
			}{
				{tile, ok, 200},
				{tile, ok, 200}, // a cache hit
				{tile, nil, 401},
				{tile, map[string]string{"Authorization": "Bearer letmein"}, 401},
				{info, ok, 200},
				{info, nil, 401},
				{info, map[string]string{"Authorization": "Basic czNjcmV0"}, 401},
			}
			for i, tt := range tests {
				r := do(t, "GET", tt.url, tt.hdr)
				if r.status != tt.status {
					t.Fatalf("%d: %s: %d %s, want %d", i, tt.url, r.status, r.body, tt.status)
				}
				switch tt.status {
				case 401:
					if r.header.Get("WWW-Authenticate") == "" || r.header.Get("X-Cache") != "" {
						t.Errorf("%d: 401 headers %v", i, r.header)
					}
				case 200:
					if cc := r.header.Get("Cache-Control"); !strings.Contains(cc, "private") || !strings.Contains(strings.Join(r.header.Values("Vary"), ","), "Authorization") {
						t.Errorf("%d: a response for one client is cacheable by others: %q, Vary %v", i, cc, r.header.Values("Vary"))
					}
				}
			}
		})
	}
}

// TestPluginDegradedAccess: auth-token with degraded=100 serves clients
// without the token at most 100 px, in info.json and in images, and
// refuses them the full resolution tile by tile too.
func TestPluginDegradedAccess(t *testing.T) {
	srv, _ := server(t, withPlugins(t, []string{"auth-token"}, "auth-token.degraded=100"))
	base := srv.URL + "/iiif/3/sub%2Fdir%2Fchart.png" // 300×200
	ok := map[string]string{"Authorization": "Bearer letmein"}

	r := get(t, base+"/full/max/0/default.png")
	if r.status != 200 {
		t.Fatalf("anonymous max: %d %s", r.status, r.body)
	}
	if b := decode(t, r.body).Bounds(); b.Dx() != 100 || b.Dy() != 67 {
		t.Errorf("anonymous max: %v, want 100×67", b)
	}
	r = do(t, "GET", base+"/full/max/0/default.png", ok)
	if b := decode(t, r.body).Bounds(); r.status != 200 || b.Dx() != 300 {
		t.Errorf("with the token: %d %v, want 300 wide", r.status, b)
	}
	if r := get(t, base+"/0,0,100,100/100,/0/default.png"); r.status != 403 {
		t.Errorf("anonymous full-resolution tile: %d, want 403", r.status)
	}
	if r := get(t, base+"/0,0,150,100/50,/0/default.png"); r.status != 200 {
		t.Errorf("anonymous half-resolution tile: %d %s, want 200", r.status, r.body)
	}
	var doc struct {
		MaxWidth int `json:"maxWidth"`
		Tiles    []struct {
			ScaleFactors []int `json:"scaleFactors"`
		} `json:"tiles"`
	}
	r = get(t, base+"/info.json")
	if err := json.Unmarshal(r.body, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.MaxWidth != 100 || len(doc.Tiles) == 0 || doc.Tiles[0].ScaleFactors[0] < 3 {
		t.Errorf("anonymous info.json: %s", r.body)
	}
	r = do(t, "GET", base+"/info.json", ok)
	doc.MaxWidth = 0
	if err := json.Unmarshal(r.body, &doc); r.status != 200 || err != nil {
		t.Fatalf("info.json with the token: %d %v %s", r.status, err, r.body)
	}
	if doc.MaxWidth == 100 {
		t.Errorf("info.json with the token: %s", r.body)
	}
}

// TestPluginResolve: hash-resolver finds images in the hash-prefix
// layout.
func TestPluginResolve(t *testing.T) {
	srv, root := server(t, withPlugins(t, []string{"hash-resolver"}))
	sum := sha256.Sum256([]byte("moved.png"))
	h := hex.EncodeToString(sum[:])
	dir := filepath.Join(root, h[:2], h[2:4])
	os.MkdirAll(dir, 0o755)
	writePNG(t, filepath.Join(dir, "moved.png"), 40, 30)
	if r := get(t, srv.URL+"/iiif/3/moved.png/full/max/0/default.png"); r.status != 200 || decode(t, r.body).Bounds().Dx() != 40 {
		t.Errorf("hashed image: %d %s", r.status, r.body)
	}
	if r := get(t, srv.URL+"/iiif/3/moved.png/info.json"); r.status != 200 {
		t.Errorf("hashed info.json: %d %s", r.status, r.body)
	}
	// Only the layout is served: julia.jpg is at the top.
	if r := get(t, srv.URL+"/iiif/3/julia.jpg/info.json"); r.status != 404 {
		t.Errorf("image outside the layout: %d", r.status)
	}
}

// TestPluginInfo: rights adds its statement to info.json, also when the
// document comes from the cache.
func TestPluginInfo(t *testing.T) {
	srv, _ := server(t, withPlugins(t, []string{"rights"}, "rights.url=http://rightsstatements.org/vocab/InC/1.0/"))
	for _, tt := range []struct{ url, field, cache string }{
		{"/iiif/3/julia/info.json", "rights", "MISS"},
		{"/iiif/3/julia/info.json", "rights", "HIT memory"},
		{"/iiif/2/julia/info.json", "license", "MISS"},
	} {
		r := get(t, srv.URL+tt.url)
		var doc map[string]any
		if err := json.Unmarshal(r.body, &doc); err != nil {
			t.Fatalf("%s: %v: %s", tt.url, err, r.body)
		}
		if doc[tt.field] != "http://rightsstatements.org/vocab/InC/1.0/" || r.header.Get("X-Cache") != tt.cache || doc["width"] == nil {
			t.Errorf("%s: %s %s", tt.url, r.header.Get("X-Cache"), r.body)
		}
	}
}

// TestPluginOverlay: watermark, in Go and in AssemblyScript, stamps
// images above its minimum size, and only those; the stamped images are
// cached apart from plain ones.
func TestPluginOverlay(t *testing.T) {
	plain, _ := server(t, nil)
	for _, name := range []string{"watermark", "assemblyscript/watermark"} {
		t.Run(name, func(t *testing.T) {
			srv, _ := server(t, withPlugins(t, []string{name}, "watermark.min-size=150", "watermark.opacity=1"))
			for _, tt := range []struct {
				path    string
				stamped bool
			}{
				{"/iiif/3/sub%2Fdir%2Fchart.png/full/max/0/default.png", true},
				{"/iiif/3/sub%2Fdir%2Fchart.png/full/max/0/default.png", true}, // cached
				{"/iiif/3/sub%2Fdir%2Fchart.png/full/100,/0/default.png", false},
				{"/iiif/3/mandelbrot/0,0,256,256/256,/0/default.jpg", true}, // a stored tile otherwise
			} {
				a, b := get(t, plain.URL+tt.path), get(t, srv.URL+tt.path)
				if a.status != 200 || b.status != 200 {
					t.Fatalf("%s: %d, %d %s", tt.path, a.status, b.status, b.body)
				}
				ia, ib := decode(t, a.body), decode(t, b.body)
				w, h := ia.Bounds().Dx(), ia.Bounds().Dy()
				side := max(min(w, h)/4, 8)
				x, y := w-side-side/8+side/2, h-side-side/8+side/2
				ra, ga, ba, _ := ia.At(x, y).RGBA()
				rb, gb, bb, _ := ib.At(x, y).RGBA()
				same := ra>>8 == rb>>8 && ga>>8 == gb>>8 && ba>>8 == bb>>8
				if same == tt.stamped {
					t.Errorf("%s: stamped %v, want %v", tt.path, !same, tt.stamped)
				}
				if tt.stamped && a.header.Get("ETag") == b.header.Get("ETag") {
					t.Errorf("%s: stamped and plain images share an ETag", tt.path)
				}
			}
		})
	}
}

// TestPluginFailures: a plugin that loops or eats memory fails the
// request that called it with a 500 naming it, within its limits, and
// the server goes on serving.
func TestPluginFailures(t *testing.T) {
	for _, name := range []string{"runaway", "memhog"} {
		t.Run(name, func(t *testing.T) {
			srv, _ := server(t, func(c *config.Config) {
				withPlugins(t, []string{name})(c)
				c.PluginTimeout = 100 * time.Millisecond
				if name == "memhog" {
					// The memory limit must stop it, long before the time
					// limit (the message says which one did).
					c.PluginTimeout = 60 * time.Second
					c.PluginMemory = 32 << 20
				}
			})
			// Each limit names itself in the message: that, not the
			// time taken, shows which one ended the call.
			for range 2 {
				r := get(t, srv.URL+"/iiif/3/julia/full/64,/0/default.jpg")
				want := map[string]string{"runaway": "time limit", "memhog": "out of memory"}[name]
				if r.status != 500 || !strings.Contains(string(r.body), "plugin "+name) || !strings.Contains(string(r.body), want) {
					t.Errorf("%d %s, want 500 naming the plugin and %q", r.status, r.body, want)
				}
			}
			if r := get(t, srv.URL+"/healthz"); r.status != 200 {
				t.Errorf("healthz: %d", r.status)
			}
		})
	}
}

// TestPluginOverlayPerUser: a watermark that differs by user (a cookie)
// is declared so, in Go and in AssemblyScript; two users never get each
// other's bytes, whether from the derivative cache or from a shared HTTP
// cache, and a user without the cookie gets the plain image. A plugin
// that declared nothing is not given cookies at all, so its output can
// be shared.
func TestPluginOverlayPerUser(t *testing.T) {
	for _, name := range []string{"watermark", "assemblyscript/watermark"} {
		t.Run(name, func(t *testing.T) {
			testOverlayPerUser(t, name)
		})
	}
}

func testOverlayPerUser(t *testing.T, name string) {
	srv, _ := server(t, withPlugins(t, []string{name}, "watermark.min-size=150", "watermark.opacity=1", "watermark.per-user=session"))
	path := srv.URL + "/iiif/3/sub%2Fdir%2Fchart.png/full/max/0/default.png"
	alice := map[string]string{"Cookie": "session=alice"}
	bob := map[string]string{"Cookie": "session=bob"}
	a1, b1, a2, anon := do(t, "GET", path, alice), do(t, "GET", path, bob), do(t, "GET", path, alice), do(t, "GET", path, nil)
	for _, r := range []resp{a1, b1, a2, anon} {
		if r.status != 200 {
			t.Fatalf("%d %s", r.status, r.body)
		}
		if cc := r.header.Get("Cache-Control"); !strings.Contains(cc, "private") {
			t.Errorf("Cache-Control %q, want private", cc)
		}
		if v := strings.Join(r.header.Values("Vary"), ","); !strings.Contains(v, "Cookie") {
			t.Errorf("Vary %q, want Cookie", v)
		}
		if x := r.header.Get("X-Cache"); strings.HasPrefix(x, "HIT") {
			t.Errorf("X-Cache %q: a per-user image came from the derivative cache", x)
		}
	}
	if string(a1.body) == string(b1.body) || a1.header.Get("ETag") == b1.header.Get("ETag") {
		t.Error("alice and bob got the same image or ETag")
	}
	if string(a1.body) != string(a2.body) || a1.header.Get("ETag") != a2.header.Get("ETag") {
		t.Error("alice got two different images")
	}
	if string(anon.body) == string(a1.body) || string(anon.body) == string(b1.body) {
		t.Error("a client without the cookie got a user's image")
	}
	// Revalidation with the user's own ETag works; another user's does not match.
	if r := do(t, "GET", path, map[string]string{"Cookie": "session=alice", "If-None-Match": a1.header.Get("ETag")}); r.status != 304 {
		t.Errorf("alice revalidating: %d, want 304", r.status)
	}
	if r := do(t, "GET", path, map[string]string{"Cookie": "session=bob", "If-None-Match": a1.header.Get("ETag")}); r.status != 200 {
		t.Errorf("bob with alice's ETag: %d, want 200", r.status)
	}

	// Without the declaration the plugin sees no cookie: it stamps
	// nobody, and the image is shared and cached as usual.
	shared, _ := server(t, withPlugins(t, []string{name}, "watermark.min-size=150", "watermark.opacity=1"))
	path = shared.URL + "/iiif/3/sub%2Fdir%2Fchart.png/full/max/0/default.png"
	s1, s2 := do(t, "GET", path, alice), do(t, "GET", path, bob)
	if s1.status != 200 || string(s1.body) != string(s2.body) || strings.Contains(s2.header.Get("Cache-Control"), "private") {
		t.Errorf("undeclared overlay: %d, same bytes %v, Cache-Control %q", s1.status, string(s1.body) == string(s2.body), s2.header.Get("Cache-Control"))
	}
	if x := s2.header.Get("X-Cache"); !strings.HasPrefix(x, "HIT") {
		t.Errorf("undeclared overlay: X-Cache %q, want a hit", x)
	}
}
