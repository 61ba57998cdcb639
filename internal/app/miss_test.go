package app

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/iiifd/iiifd/internal/config"
)

// TestRemoteMissCost: on an http(s) root, an unknown identifier costs at
// most one origin request (issue 14 item 4: it cost four, two GETs of the
// key and two of key/info.json), and asking again within the time
// metadata is remembered costs none.
func TestRemoteMissCost(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]int{}
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[r.Method+" "+r.URL.Path]++
		mu.Unlock()
		http.NotFound(w, r)
	}))
	defer origin.Close()
	cfg := config.Default()
	cfg.Root = origin.URL + "/images/"
	_, hs := serve(t, cfg)
	count := func() (n int) {
		mu.Lock()
		defer mu.Unlock()
		for _, v := range seen {
			n += v
		}
		return n
	}
	for _, id := range []string{"missing.jpg", "missing", "a%2Fb.tif"} {
		before := count()
		for i := range 3 {
			resp, err := http.Get(hs.URL + "/iiif/3/" + id + "/info.json")
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 404 {
				t.Errorf("%s: %d", id, resp.StatusCode)
			}
			if n := count() - before; n > 1 {
				mu.Lock()
				t.Errorf("%s: %d origin requests after %d asks, want at most 1: %v", id, n, i+1, seen)
				mu.Unlock()
				break
			}
		}
	}
}
