package httpapi_test

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/iiifd/iiifd/internal/config"
	"github.com/iiifd/iiifd/internal/purge"
)

// TestCacheTags: every response about an image carries its tag for
// shared caches, whichever spelling of the identifier was asked, and a
// purge through the admin route purges the configured proxies by that
// tag after the server's own tiers.
func TestCacheTags(t *testing.T) {
	const token = "s3cret-token-for-tests"
	var mu sync.Mutex
	var purged []string
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		purged = append(purged, r.Method+" "+r.Header.Get("Xkey-Purge"))
		mu.Unlock()
	}))
	defer proxy.Close()
	srv, _ := server(t, func(c *config.Config) {
		c.AdminToken = token
		c.Purge.URLs = []string{proxy.URL + "/a", proxy.URL + "/b"}
	})
	want := purge.Tag("julia")
	for _, u := range []string{
		"/iiif/3/julia/full/100,/0/default.jpg",
		"/iiif/3/julia/full/100,/0/default.jpg", // a memory hit, then a remembered one
		"/iiif/3/julia/full/100,/0/default.jpg",
		"/iiif/2/julia.jpg/0,0,64,64/full/0/default.png",
		"/iiif/3/julia/info.json",
	} {
		r := get(t, srv.URL+u)
		if r.status != http.StatusOK || r.header.Get("Surrogate-Key") != want || r.header.Get("Cache-Tag") != want {
			t.Errorf("%s: %d Surrogate-Key %q Cache-Tag %q, want %q", u, r.status, r.header.Get("Surrogate-Key"), r.header.Get("Cache-Tag"), want)
		}
	}
	if r := get(t, srv.URL+"/iiif/3/nosuch/full/100,/0/default.jpg"); r.header.Get("Surrogate-Key") != "" {
		t.Errorf("an error is tagged: %q", r.header.Get("Surrogate-Key"))
	}
	if r := do(t, "DELETE", srv.URL+"/admin/cache/julia.jpg", map[string]string{"Authorization": "Bearer " + token}); r.status != http.StatusNoContent {
		t.Fatalf("purge: %d %s", r.status, r.body)
	}
	mu.Lock()
	got := append([]string(nil), purged...)
	mu.Unlock()
	if len(got) != 2 || got[0] != "PURGE "+want || got[1] != "PURGE "+want {
		t.Errorf("proxies were sent %q, want two PURGE %s", got, want)
	}
	// A proxy that refuses the purge: the admin answer says so.
	proxy.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusForbidden) })
	if r := do(t, "DELETE", srv.URL+"/admin/cache/julia", map[string]string{"Authorization": "Bearer " + token}); r.status != http.StatusBadGateway {
		t.Errorf("purge with a refusing proxy: %d, want 502", r.status)
	}
}
