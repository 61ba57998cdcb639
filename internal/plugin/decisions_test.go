package plugin

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/iiifd/iiifd/internal/plugin/plugintest"
)

func TestDecisionCache(t *testing.T) {
	req := func(auth, region string) Fields {
		return Fields{{"id", "x"}, {"region", region}, {"header:authorization", auth}}
	}
	allow := Fields{{"action", "allow"}, {"ttl", "60"}, {"vary", "header:authorization"}}
	var c decisionCache
	if _, ok := c.get(req("a", "full")); ok {
		t.Fatal("hit in an empty cache")
	}
	c.put(req("a", "full"), allow)
	tests := []struct {
		req Fields
		hit bool
	}{
		{req("a", "full"), true},
		{req("a", "0,0,10,10"), true}, // region is not in vary
		{req("b", "full"), false},
		{Fields{{"id", "x"}}, false}, // no header at all
	}
	for i, tt := range tests {
		if _, ok := c.get(tt.req); ok != tt.hit {
			t.Errorf("%d: hit %v, want %v", i, ok, tt.hit)
		}
	}
	// Replies without ttl are not kept; expired ones are not served.
	c.put(req("c", "full"), Fields{{"action", "allow"}})
	if _, ok := c.get(req("c", "full")); ok {
		t.Error("a reply without ttl was reused")
	}
	c.put(req("d", "full"), Fields{{"action", "allow"}, {"ttl", "0.001"}, {"vary", "header:authorization"}})
	time.Sleep(5 * time.Millisecond)
	if _, ok := c.get(req("d", "full")); ok {
		t.Error("an expired reply was reused")
	}
}

// TestOverlayFields: an overlay is given the request's own fields and
// only the client fields it declared.
func TestOverlayFields(t *testing.T) {
	r := &Request{ID: "a", Version: 3, Kind: "image", Region: "full", Method: "GET", Client: "10.0.0.1:5",
		Header: http.Header{"Cookie": {"session=alice; other=x"}, "X-Institution": {"uni"}, "Authorization": {"Bearer t"}}}
	all := r.fields()
	for _, tt := range []struct {
		vary     string
		want     []string
		declined bool
	}{
		{"", nil, false},
		{"cookie:session", []string{"cookie:session"}, false},
		{"header:X-Institution, client", []string{"client", "header:x-institution"}, false},
		{"region", nil, true},
		{"cookie:", nil, true},
	} {
		vary, err := overlayVary(tt.vary)
		if (err != nil) != tt.declined {
			t.Fatalf("%q: %v", tt.vary, err)
		}
		if err != nil {
			continue
		}
		var got []string
		for _, f := range overlayFields(all, vary) {
			if clientField(f.Key) {
				got = append(got, f.Key)
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("%q: client fields %v, want %v", tt.vary, got, tt.want)
		}
		if f := overlayFields(all, vary); f.Get("id") != "a" || f.Get("region") != "full" {
			t.Errorf("%q: the request's own fields are missing", tt.vary)
		}
	}
}

// TestWazeroVersion: a test binary records no dependencies, yet finds
// the wazero version it was built with, as go.mod requires it, so tests
// share compiled code on disk (plugintest.CacheDir) across processes.
func TestWazeroVersion(t *testing.T) {
	mod, err := os.ReadFile(filepath.Join(plugintest.Root(t), "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	var want string
	for _, line := range strings.Split(string(mod), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "github.com/tetratelabs/wazero" {
			want = f[1]
		}
	}
	if got := wazeroVersion(); want == "" || got != want {
		t.Errorf("wazeroVersion() = %q, want %q (go.mod)", got, want)
	}
}

// TestOverlayVaryPrivate: an overlay that depends on a cookie, the
// client's address or any header but Accept-Language makes private
// responses; every declared header is named in Vary.
func TestOverlayVaryPrivate(t *testing.T) {
	for _, tt := range []struct {
		vary    []string
		header  string
		private bool
	}{
		{nil, "", false},
		{[]string{"header:accept-language"}, "Accept-Language", false},
		{[]string{"header:x-institution"}, "X-Institution", true},
		{[]string{"header:authorization"}, "Authorization", true},
		{[]string{"cookie:session"}, "Cookie", true},
		{[]string{"client"}, "", true},
		{[]string{"header:accept-language", "header:x-api-key"}, "Accept-Language, X-Api-Key", true},
	} {
		p := &Plugin{name: "wm"}
		st := newSet([]*module{{p: p, hash: "h", hooks: map[string]bool{HookOverlay: true}, overlayVary: tt.vary}})
		if st.overlayHeader != tt.header || st.overlayPrivate != tt.private {
			t.Errorf("%v: Vary %q private %v, want %q %v", tt.vary, st.overlayHeader, st.overlayPrivate, tt.header, tt.private)
		}
	}
}

// TestClientVaryKey: the overlay key read from the declared fields alone
// is the key of the request's whole fields.
func TestClientVaryKey(t *testing.T) {
	reqs := []*Request{
		{},
		{ID: "x", Kind: "image", Client: "10.0.0.1:5000"},
		{Client: "10.0.0.2:1", Header: http.Header{
			"Cookie":          {"session=alice; theme=dark", "bad cookie=;;=", "session=carol"},
			"Accept-Language": {"fr", "en;q=0.5"},
			"X-Institution":   {"uni"},
			"x-lower":         {"raw"},
			"X-ÄPfel":         {"unicode"},
		}},
	}
	varies := [][]string{
		{"client"},
		{"cookie:session"},
		{"cookie:theme", "cookie:session", "cookie:none"},
		{"header:accept-language", "header:x-institution"},
		{"header:cookie", "header:x-lower", "header:x-äpfel", "header:absent"},
		{"client", "cookie:session", "header:accept-language"},
	}
	for _, r := range reqs {
		for _, vary := range varies {
			if got, want := r.clientVaryKey(vary), varyKey(r.fields(), vary); got != want {
				t.Errorf("%v of %+v: %q, want %q", vary, r, got, want)
			}
		}
	}
}
