package auth

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/iiifd/iiifd/internal/cache/redis/redistest"
	"github.com/iiifd/iiifd/internal/fault"
)

// clock is a settable time for tests of expiry.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newAuth(t *testing.T, edit func(*Config)) (*Auth, *clock) {
	t.Helper()
	c := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	cfg := Config{
		Rules:      []Rule{{Match: "secret/**", Policy: Login}, {Match: "small/*", Policy: Degraded, Max: 100}},
		Profile:    ProfileActive,
		SessionTTL: time.Hour, TokenTTL: time.Minute,
		Store:   NewMemory(),
		BaseURL: func(*http.Request) string { return "https://img.test" },
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now:     c.now,
	}
	if edit != nil {
		edit(&cfg)
	}
	if m, ok := cfg.Store.(*Memory); ok {
		m.clock = c.now
	}
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a, c
}

func TestAdmit(t *testing.T) {
	a, c := newAuth(t, nil)
	ctx := context.Background()
	sec, _, err := a.newSession(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	withCookie := http.Header{"Cookie": {"a=b; iiifd_access=" + sec}}
	for _, x := range []struct {
		id         string
		image      bool
		h          http.Header
		restricted bool
		max        int
		refused    string
	}{
		{"public", true, nil, false, 0, ""},
		{"secret/a/b", true, nil, true, 0, "not signed in"},
		{"secret/a/b", false, nil, true, 0, ""}, // info.json names the probe
		{"secret/a/b", true, withCookie, true, 0, ""},
		{"secret/a/b", true, http.Header{"Cookie": {"iiifd_access=forged"}}, true, 0, "not known"},
		{"secret/a/b", true, http.Header{"Authorization": {"Bearer " + sec}}, true, 0, "token is not known"},
		{"small/x", true, nil, true, 100, ""},
		{"small/x", true, withCookie, true, 0, ""},
		{"small/x/y", true, nil, false, 0, ""}, // "*" stays within a segment
	} {
		r, max, err := a.Admit(ctx, x.id, x.image, x.h)
		if r != x.restricted || max != x.max || (err == nil) != (x.refused == "") || (err != nil && !strings.Contains(err.Error(), x.refused)) {
			t.Errorf("Admit(%q, image %v, %v) = %v, %d, %v", x.id, x.image, x.h, r, max, err)
		}
		if err != nil && (err.(*Refusal)).HTTPStatus() != 401 {
			t.Errorf("refusal status %d", err.(*Refusal).HTTPStatus())
		}
	}
	// The session expires.
	c.t = c.t.Add(2 * time.Hour)
	if _, _, err := a.Admit(ctx, "secret/a", true, withCookie); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("expired session: %v", err)
	}
}

func TestTokens(t *testing.T) {
	a, c := newAuth(t, nil)
	ctx := context.Background()
	sec, s, _ := a.newSession(ctx, "alice")
	key := storeKey("s", sec)
	tok, secs, err := a.mintToken(ctx, key, s, "https://viewer.test")
	if err != nil || secs != 60 || tok == sec {
		t.Fatalf("mint: %q %d %v", tok, secs, err)
	}
	if _, err := a.tokenSession(ctx, tok, ""); err != nil {
		t.Errorf("token without Origin: %v", err)
	}
	if _, err := a.tokenSession(ctx, tok, "https://viewer.test"); err != nil {
		t.Errorf("token from its origin: %v", err)
	}
	if _, err := a.tokenSession(ctx, tok, "https://other.test"); err != errOtherOrigin {
		t.Errorf("token from another origin: %v", err)
	}
	c.t = c.t.Add(61 * time.Second)
	if _, err := a.tokenSession(ctx, tok, ""); err == nil || err.(*aspectError).profile != "expiredAspect" {
		t.Errorf("expired token: %v", err)
	}
	// A token never outlives its session.
	c.t = s.Expires.Add(-10 * time.Second)
	if _, secs, _ := a.mintToken(ctx, key, s, "https://viewer.test"); secs != 10 {
		t.Errorf("token near the session's end lives %d s", secs)
	}
}

func TestKioskAndExternal(t *testing.T) {
	lan := netip.MustParsePrefix("10.1.0.0/16")
	a, _ := newAuth(t, func(c *Config) {
		c.Profile = ProfileKiosk
		c.KioskNetworks = []netip.Prefix{lan}
		c.ClientIPHeader = "X-Forwarded-For"
	})
	get := func(a *Auth, path string, hdr ...string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", path, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			r.Header.Set(hdr[i], hdr[i+1])
		}
		w := httptest.NewRecorder()
		a.ServeHTTP(w, r)
		return w
	}
	if w := get(a, "/auth/v2/access/kiosk?origin=https://v.test", "X-Forwarded-For", "192.0.2.1"); w.Code != 403 || !strings.Contains(w.Body.String(), "network") {
		t.Errorf("kiosk off site: %d %s", w.Code, w.Body)
	}
	w := get(a, "/auth/v2/access/kiosk?origin=https://v.test", "X-Forwarded-For", "192.0.2.1, 10.1.2.3")
	if w.Code != 200 || !strings.Contains(w.Header().Get("Set-Cookie"), "iiifd_access=") || !strings.Contains(w.Body.String(), "window.close") {
		t.Errorf("kiosk on site: %d %q %s", w.Code, w.Header().Get("Set-Cookie"), w.Body)
	}
	if svc := a.Services("https://img.test", "secret/x"); svc[0].(map[string]any)["service"].([]any)[0].(map[string]any)["id"] != "https://img.test/auth/v2/access/kiosk" {
		t.Errorf("kiosk services: %v", svc)
	}
	if w := get(a, "/auth/v2/access/nosuch"); w.Code != 404 || !strings.Contains(w.Body.String(), "kiosk") {
		t.Errorf("unknown access service: %d %s", w.Code, w.Body)
	}

	e, _ := newAuth(t, func(c *Config) {
		c.Profile = ProfileExternal
		c.ExternalHeader = "X-Remote-User"
		c.ExternalCookie = "sso"
	})
	ctx := context.Background()
	for _, h := range []http.Header{{"X-Remote-User": {"carol"}}, {"Cookie": {"sso=1"}}} {
		if _, _, err := e.Admit(ctx, "secret/x", true, h); err != nil {
			t.Errorf("external %v: %v", h, err)
		}
	}
	if _, _, err := e.Admit(ctx, "secret/x", true, http.Header{"Cookie": {"other=1"}}); err == nil {
		t.Error("external without the front's sign-in was admitted")
	}
	w = get(e, "/auth/v2/token?messageId=1&origin=https://v.test", "X-Remote-User", "carol")
	if !strings.Contains(w.Body.String(), `"type":"AuthAccessToken2"`) {
		t.Errorf("external token: %s", w.Body)
	}
	if w := get(e, "/auth/v2/access/external"); w.Code != 401 {
		t.Errorf("external access without the front's sign-in: %d", w.Code)
	}
}

func TestOriginAllowList(t *testing.T) {
	a, _ := newAuth(t, func(c *Config) { c.Origins = []string{"https://viewer.test"} })
	for o, ok := range map[string]bool{
		"https://viewer.test": true, "https://viewer.test/": false, "https://evil.test": false,
		"null": false, "https://viewer.test:443": false, "https://u@viewer.test": false,
	} {
		if got := validOrigin(o) && a.originAllowed(o); got != ok {
			t.Errorf("origin %q allowed: %v", o, got)
		}
	}
	any, _ := newAuth(t, nil)
	if !any.originAllowed("https://anyone.test") {
		t.Error("the default allow list refused an origin")
	}
}

func TestLimiter(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	l := newLimiter(2, time.Minute, c.now)
	l.fail("k")
	if l.blocked("k") != 0 {
		t.Fatal("blocked after one failure of two")
	}
	l.fail("k")
	if d := l.blocked("k"); d != time.Minute {
		t.Fatalf("blocked for %v", d)
	}
	if l.blocked("other") != 0 {
		t.Fatal("another key is blocked")
	}
	c.t = c.t.Add(time.Minute)
	if l.blocked("k") != 0 {
		t.Fatal("still blocked after the window")
	}
}

// TestStores runs the same checks on both stores (Redis: a real server).
func TestStores(t *testing.T) {
	rs := redistest.Start(t)
	r, err := NewRedis(rs.URL(), "test:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	for name, s := range map[string]Store{"memory": NewMemory(), "redis": r} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			if b, err := s.Get(ctx, "k"); b != nil || err != nil {
				t.Fatalf("missing key: %q %v", b, err)
			}
			s.Put(ctx, "k", []byte("v"), time.Minute)
			if b, _ := s.Get(ctx, "k"); string(b) != "v" {
				t.Fatalf("get: %q", b)
			}
			if b, _ := s.Take(ctx, "k"); string(b) != "v" {
				t.Fatalf("take: %q", b)
			}
			if b, _ := s.Take(ctx, "k"); b != nil {
				t.Fatalf("second take: %q", b)
			}
			s.Link(ctx, "set", "a", time.Minute)
			s.Link(ctx, "set", "b", time.Minute)
			m, _ := s.Members(ctx, "set")
			slices.Sort(m)
			if !slices.Equal(m, []string{"a", "b"}) {
				t.Fatalf("members: %v", m)
			}
			s.Put(ctx, "a", []byte("1"), time.Minute)
			s.Del(ctx, "a", "set")
			if b, _ := s.Get(ctx, "a"); b != nil {
				t.Fatal("deleted key is there")
			}
			if m, _ := s.Members(ctx, "set"); len(m) != 0 {
				t.Fatalf("deleted set: %v", m)
			}
		})
	}
}

// TestStoreDown: with the session store unreachable, the token service
// says unavailable, the probe 503 (in its body), images a 5xx, never a
// grant.
func TestStoreDown(t *testing.T) {
	rs := redistest.Start(t)
	r, err := NewRedis(rs.URL(), "down:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	a, _ := newAuth(t, func(c *Config) { c.Store = r })
	rs.Stop()
	w := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/auth/v2/token?messageId=1&origin=https://v.test", nil)
	req.Header.Set("Cookie", "iiifd_access=whatever")
	a.ServeHTTP(w, req)
	if !strings.Contains(w.Body.String(), `"profile":"unavailable"`) {
		t.Errorf("token service with the store down: %s", w.Body)
	}
	w = httptest.NewRecorder()
	req = httptest.NewRequest("GET", "/auth/v2/probe/secret/x", nil)
	req.Header.Set("Authorization", "Bearer whatever")
	a.ServeHTTP(w, req)
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"status":503`) {
		t.Errorf("probe with the store down: %d %s", w.Code, w.Body)
	}
	if _, _, err := a.Admit(context.Background(), "secret/x", true, http.Header{"Cookie": {"iiifd_access=x"}}); func() int { s, _ := fault.Status(err); return s }() != http.StatusServiceUnavailable {
		t.Errorf("an image with the store down: %v", err)
	}
}

func TestParseNetworks(t *testing.T) {
	ps, err := ParseNetworks(" 10.1.2.3/16, 192.0.2.7 ,, 2001:db8::/32")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"10.1.0.0/16", "192.0.2.7/32", "2001:db8::/32"}
	for i, p := range ps {
		if p.String() != want[i] {
			t.Errorf("network %d: %v, want %s", i, p, want[i])
		}
	}
	if _, err := ParseNetworks("10.0.0.0/33"); err == nil {
		t.Error("10.0.0.0/33 parsed")
	}
}

// FuzzParseNetworks: what parses is masked, and contains its own address.
func FuzzParseNetworks(f *testing.F) {
	f.Add("10.0.0.0/8,192.0.2.1")
	f.Add("::ffff:10.0.0.1/128, fe80::1%eth0")
	f.Fuzz(func(t *testing.T, s string) {
		ps, err := ParseNetworks(s)
		if err != nil {
			return
		}
		for _, p := range ps {
			if p != p.Masked() || !p.Contains(p.Addr()) {
				t.Fatalf("%q: %v", s, p)
			}
		}
	})
}
