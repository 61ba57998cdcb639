package purge_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/iiifd/iiifd/internal/fault"
	"github.com/iiifd/iiifd/internal/purge"
)

func TestTag(t *testing.T) {
	valid := regexp.MustCompile(`^iiifd-[0-9a-f]{32}$`)
	seen := map[string]string{}
	for _, id := range []string{"julia", "a b,c", "ünïcode/path", "x", "photo.png.bak"} {
		tag := purge.Tag(id)
		if !valid.MatchString(tag) {
			t.Errorf("Tag(%q) = %q: not a token every CDN accepts", id, tag)
		}
		if other, dup := seen[tag]; dup {
			t.Errorf("Tag(%q) = Tag(%q)", id, other)
		}
		seen[tag] = id
	}
	// One image, both spellings: the same tag.
	for _, id := range []string{"julia.jpg", "julia.JPG", "julia.tif"} {
		if purge.Tag(id) != purge.Tag("julia") {
			t.Errorf("Tag(%q) != Tag(julia)", id)
		}
	}
	if purge.Tag("julia.txt") == purge.Tag("julia") {
		t.Error("a non-image extension is part of the identifier")
	}
}

// received is one request a loopback server got.
type received struct {
	method, path string
	header       http.Header
	body         string
}

func recorder(t *testing.T, status func(path string) int) (*httptest.Server, func() []received) {
	var mu sync.Mutex
	var got []received
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, received{r.Method, r.URL.EscapedPath(), r.Header.Clone(), string(b)})
		mu.Unlock()
		w.WriteHeader(status(r.URL.Path))
		io.WriteString(w, `{"status":"ok"}`)
	}))
	t.Cleanup(srv.Close)
	return srv, func() []received {
		mu.Lock()
		defer mu.Unlock()
		return append([]received(nil), got...)
	}
}

// TestRequests checks what each kind of target is sent: the request a
// Varnish VCL, Fastly's API and Cloudflare's API take, sent here to a
// loopback server that records it.
func TestRequests(t *testing.T) {
	srv, got := recorder(t, func(string) int { return http.StatusOK })
	p, err := purge.New(purge.Config{
		URLs:          []string{srv.URL + "/varnish"},
		FastlyService: "SVC123", FastlyToken: "fastly-token", FastlyAPI: srv.URL + "/fastly",
		CloudflareZone: "zone9", CloudflareToken: "cf-token", CloudflareAPI: srv.URL + "/cf/",
	})
	if err != nil {
		t.Fatal(err)
	}
	if p.Len() != 3 {
		t.Fatalf("%d targets, want 3", p.Len())
	}
	if err := p.Purge(context.Background(), "some image.tif"); err != nil {
		t.Fatal(err)
	}
	tag := purge.Tag("some image")
	reqs := got()
	if len(reqs) != 3 {
		t.Fatalf("%d requests, want 3: %+v", len(reqs), reqs)
	}
	var n int
	for _, r := range reqs {
		switch {
		case r.path == "/varnish":
			n++
			if r.method != "PURGE" || r.header.Get("Xkey-Purge") != tag {
				t.Errorf("varnish: %s xkey-purge=%q", r.method, r.header.Get("Xkey-Purge"))
			}
		case strings.HasPrefix(r.path, "/fastly/"):
			n++
			if r.method != "POST" || r.path != "/fastly/service/SVC123/purge/"+tag || r.header.Get("Fastly-Key") != "fastly-token" {
				t.Errorf("fastly: %s %s key=%q", r.method, r.path, r.header.Get("Fastly-Key"))
			}
		case strings.HasPrefix(r.path, "/cf/"):
			n++
			var body struct{ Tags []string }
			json.Unmarshal([]byte(r.body), &body)
			if r.method != "POST" || r.path != "/cf/zones/zone9/purge_cache" || r.header.Get("Authorization") != "Bearer cf-token" ||
				len(body.Tags) != 1 || body.Tags[0] != tag {
				t.Errorf("cloudflare: %s %s auth=%q body=%s", r.method, r.path, r.header.Get("Authorization"), r.body)
			}
		}
	}
	if n != 3 {
		t.Errorf("requests went to the wrong places: %+v", reqs)
	}
}

// TestFailure: a target answering an error makes the purge a 502 naming
// it, and the other targets are still purged.
func TestFailure(t *testing.T) {
	srv, got := recorder(t, func(p string) int {
		if p == "/bad" {
			return http.StatusForbidden
		}
		return http.StatusOK
	})
	p, err := purge.New(purge.Config{URLs: []string{srv.URL + "/bad", srv.URL + "/good"}})
	if err != nil {
		t.Fatal(err)
	}
	err = p.Purge(context.Background(), "x")
	status, msg := fault.Response(err)
	if status != http.StatusBadGateway || !strings.Contains(msg, "/bad") || strings.Contains(msg, "/good") {
		t.Errorf("got %d %q, want a 502 naming the failed target only", status, msg)
	}
	if n := len(got()); n != 2 {
		t.Errorf("%d targets asked, want 2", n)
	}
	// A target that is not listening fails the same way.
	p, _ = purge.New(purge.Config{URLs: []string{"http://127.0.0.1:1/"}})
	if status, _ := fault.Response(p.Purge(context.Background(), "x")); status != http.StatusBadGateway {
		t.Errorf("unreachable target: %d", status)
	}
}

func TestValidate(t *testing.T) {
	for _, c := range []purge.Config{
		{URLs: []string{"ftp://x/"}},
		{URLs: []string{"not a url"}},
		{FastlyService: "s"},
		{CloudflareToken: "t"},
		{FastlyService: "a/b", FastlyToken: "t"},
		{Timeout: -1},
	} {
		if _, err := purge.New(c); err == nil {
			t.Errorf("%+v: accepted", c)
		}
	}
	var p *purge.Purger
	if err := p.Purge(context.Background(), "x"); err != nil {
		t.Errorf("nil purger: %v", err)
	}
}
