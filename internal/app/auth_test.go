package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"image/jpeg"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/iiifd/iiifd/internal/app"
	"github.com/iiifd/iiifd/internal/app/apptest"
	"github.com/iiifd/iiifd/internal/auth"
	"github.com/iiifd/iiifd/internal/cache/redis/redistest"
	"github.com/iiifd/iiifd/internal/config"
)

// Users of the tests' users file: alice with a bcrypt hash, bob with an
// argon2id one.
const (
	alicePassword = "correct horse"
	bobPassword   = "battery staple"
)

// authConfig serves the samples with julia login-only and mandelbrot
// degraded to 300 pixels, the users alice and bob.
func authConfig(t *testing.T) config.Config {
	t.Helper()
	cfg := apptest.Samples(t)
	cfg.CacheMemory = 64 << 20
	b, err := bcrypt.GenerateFromPassword([]byte(alicePassword), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	users := filepath.Join(t.TempDir(), "users")
	if err := os.WriteFile(users, []byte("# test users\nalice:"+string(b)+"\nbob:"+auth.HashArgon2id(bobPassword)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.Auth.Users = users
	cfg.Auth.Rules = []config.AccessRule{
		{Match: "julia*", Policy: config.PolicyLogin},
		{Match: "mandelbrot*", Policy: config.PolicyDegraded, Max: 300},
	}
	return cfg
}

// serveOn builds the app from cfg and serves it on ln (or a new loopback
// listener) until the test ends.
func serveOn(t *testing.T, cfg config.Config, ln net.Listener) *httptest.Server {
	t.Helper()
	a, err := app.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	srv := httptest.NewUnstartedServer(a.Handler())
	if ln != nil {
		srv.Listener.Close()
		srv.Listener = ln
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

// client is an HTTP client that keeps no cookies by itself: the tests
// send them by hand, since the access cookie is Secure and the servers
// speak plain HTTP on loopback.
var client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func do(t *testing.T, method, u string, body io.Reader, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

func cookieOf(res *http.Response, name string) string {
	for _, c := range res.Cookies() {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// signIn logs user in through the login form and returns the access
// cookie's value ("" when refused) and the answer's status.
func signIn(t *testing.T, base, user, password string) (string, int) {
	t.Helper()
	res, _ := do(t, "GET", base+"/auth/v2/access/login?origin=http://client.test", nil)
	csrf := cookieOf(res, "iiifd_csrf")
	if res.StatusCode != 200 || csrf == "" {
		t.Fatalf("login page: %d, csrf cookie %q", res.StatusCode, csrf)
	}
	form := url.Values{"csrf": {csrf}, "user": {user}, "password": {password}}
	res, _ = do(t, "POST", base+"/auth/v2/access/login", strings.NewReader(form.Encode()),
		"Content-Type", "application/x-www-form-urlencoded", "Cookie", "iiifd_csrf="+csrf)
	return cookieOf(res, "iiifd_access"), res.StatusCode
}

var postMessageRE = regexp.MustCompile(`postMessage\((\{.*\}), "`)

// tokenMessage asks the token service and returns the message its page
// posts.
func tokenMessage(t *testing.T, base, cookie, origin string) map[string]any {
	t.Helper()
	hdr := []string{}
	if cookie != "" {
		hdr = append(hdr, "Cookie", "iiifd_access="+cookie)
	}
	res, body := do(t, "GET", base+"/auth/v2/token?messageId=m1&origin="+url.QueryEscape(origin), nil, hdr...)
	m := postMessageRE.FindStringSubmatch(body)
	if res.StatusCode != 200 || m == nil {
		t.Fatalf("token service: %d %s", res.StatusCode, body)
	}
	var msg map[string]any
	if err := json.Unmarshal([]byte(m[1]), &msg); err != nil {
		t.Fatal(err)
	}
	if msg["messageId"] != "m1" {
		t.Fatalf("token message without its messageId: %v", msg)
	}
	return msg
}

func probeStatus(t *testing.T, base, id, tok, origin string) (int, map[string]any) {
	t.Helper()
	hdr := []string{}
	if tok != "" {
		hdr = append(hdr, "Authorization", "Bearer "+tok)
	}
	if origin != "" {
		hdr = append(hdr, "Origin", origin)
	}
	res, body := do(t, "GET", base+"/auth/v2/probe/"+url.PathEscape(id), nil, hdr...)
	var r map[string]any
	if res.StatusCode != 200 || json.Unmarshal([]byte(body), &r) != nil || r["type"] != "AuthProbeResult2" {
		t.Fatalf("probe: %d %s", res.StatusCode, body)
	}
	return int(r["status"].(float64)), r
}

// TestAuthFlowHTTP runs the flow over HTTP: login (wrong password, CSRF,
// rate limit), token, probe, images by cookie and token, logout.
func TestAuthFlowHTTP(t *testing.T) {
	cfg := authConfig(t)
	cfg.Auth.LoginRate = 3
	srv := serveOn(t, cfg, nil)
	base := srv.URL
	const origin = "http://client.test"

	// Not signed in: info.json is served (it names the probe), the
	// image is a 401 that says why, the probe a 401 with a heading.
	res, body := do(t, "GET", base+"/iiif/3/julia/info.json", nil)
	if res.StatusCode != 200 || !strings.Contains(body, `"@context":["http://iiif.io/api/auth/2/context.json","http://iiif.io/api/image/3/context.json"]`) ||
		!strings.Contains(body, `"type":"AuthProbeService2"`) || res.Header.Get("Cache-Control") != "private, no-cache" {
		t.Fatalf("restricted info.json: %d %q %s", res.StatusCode, res.Header.Get("Cache-Control"), body)
	}
	res, body = do(t, "GET", base+"/iiif/3/julia/full/100,/0/default.jpg", nil)
	if res.StatusCode != 401 || !strings.Contains(body, "not signed in") || !strings.Contains(res.Header.Get("Www-Authenticate"), "Bearer") {
		t.Fatalf("image without login: %d %s", res.StatusCode, body)
	}
	if st, r := probeStatus(t, base, "julia", "", ""); st != 401 || r["heading"] == nil {
		t.Fatalf("probe without token: %d %v", st, r)
	}
	// Public images are untouched: no services, publicly cacheable.
	res, body = do(t, "GET", base+"/iiif/3/testchart/info.json", nil)
	if res.StatusCode != 200 || strings.Contains(body, "AuthProbeService2") || strings.HasPrefix(res.Header.Get("Cache-Control"), "private") {
		t.Fatalf("public info.json: %d %q %s", res.StatusCode, res.Header.Get("Cache-Control"), body)
	}
	if st, _ := probeStatus(t, base, "testchart", "", ""); st != 200 {
		t.Fatalf("probe of a public image: %d", st)
	}
	if st, _ := probeStatus(t, base, "no-such-image", "", ""); st != 404 {
		t.Fatalf("probe of a missing image: %d", st)
	}

	// The login form refuses a post without its CSRF cookie.
	form := url.Values{"csrf": {"forged"}, "user": {"alice"}, "password": {alicePassword}}
	res, body = do(t, "POST", base+"/auth/v2/access/login", strings.NewReader(form.Encode()), "Content-Type", "application/x-www-form-urlencoded")
	if res.StatusCode != 403 || cookieOf(res, "iiifd_access") != "" || !strings.Contains(body, "CSRF") {
		t.Fatalf("login without the CSRF cookie: %d %s", res.StatusCode, body)
	}
	// Wrong passwords (and unknown users) are refused; past the rate,
	// even the right password waits.
	for _, u := range []string{"alice", "nobody"} {
		if c, st := signIn(t, base, u, "wrong"); c != "" || st != 401 {
			t.Fatalf("wrong password of %s: %d, cookie %q", u, st, c)
		}
	}
	cookie, st := signIn(t, base, "bob", bobPassword) // argon2id
	if cookie == "" || st != 200 {
		t.Fatalf("bob's login: %d", st)
	}
	signIn(t, base, "alice", "wrong again")
	if c, st := signIn(t, base, "alice", alicePassword); c != "" || st != 429 {
		t.Fatalf("login past the rate: %d, cookie %q", st, c)
	}

	// Signed in: the image by cookie; the token service's token is not
	// the cookie; the probe says 200 with it; the image by token.
	res, _ = do(t, "GET", base+"/iiif/3/julia/full/100,/0/default.jpg", nil, "Cookie", "iiifd_access="+cookie)
	if res.StatusCode != 200 || res.Header.Get("Cache-Control") != "private, no-cache" {
		t.Fatalf("image with the cookie: %d %q", res.StatusCode, res.Header.Get("Cache-Control"))
	}
	msg := tokenMessage(t, base, cookie, origin)
	tok, _ := msg["accessToken"].(string)
	if msg["type"] != "AuthAccessToken2" || tok == "" || tok == cookie || msg["expiresIn"].(float64) <= 0 {
		t.Fatalf("token: %v", msg)
	}
	if st, _ := probeStatus(t, base, "julia", tok, origin); st != 200 {
		t.Fatalf("probe with the token: %d", st)
	}
	if st, r := probeStatus(t, base, "julia", tok, "http://evil.test"); st != 401 || !strings.Contains(fmt.Sprint(r["note"]), "another web origin") {
		t.Fatalf("probe with the token from another origin: %d %v", st, r)
	}
	res, _ = do(t, "GET", base+"/iiif/3/julia/full/100,/0/default.jpg", nil, "Authorization", "Bearer "+tok)
	if res.StatusCode != 200 {
		t.Fatalf("image with the token: %d", res.StatusCode)
	}
	// The cookie is no token, nor the token a cookie.
	if st, _ := probeStatus(t, base, "julia", cookie, ""); st != 401 {
		t.Fatalf("probe with the cookie's value as a token: %d", st)
	}
	if m := tokenMessage(t, base, tok, origin); m["profile"] != "invalidAspect" {
		t.Fatalf("token service with the token as the cookie: %v", m)
	}

	// The token service's errors.
	for _, c := range []struct{ q, profile string }{
		{"?origin=" + url.QueryEscape(origin), "invalidRequest"},
		{"?messageId=m1&origin=javascript:alert(1)", "invalidOrigin"},
	} {
		_, body := do(t, "GET", base+"/auth/v2/token"+c.q, nil, "Cookie", "iiifd_access="+cookie)
		if !strings.Contains(body, `"profile":"`+c.profile+`"`) || strings.Contains(body, "accessToken") {
			t.Errorf("token service %s: want %s, got %s", c.q, c.profile, body)
		}
	}
	if m := tokenMessage(t, base, "", origin); m["profile"] != "missingAspect" {
		t.Errorf("token service without a cookie: %v", m)
	}

	// Logout revokes the session and its tokens and clears the cookie.
	res, _ = do(t, "GET", base+"/auth/v2/logout", nil, "Cookie", "iiifd_access="+cookie)
	if res.StatusCode != 200 || !strings.Contains(res.Header.Get("Set-Cookie"), "iiifd_access=;") {
		t.Fatalf("logout: %d %q", res.StatusCode, res.Header.Get("Set-Cookie"))
	}
	if st, _ := probeStatus(t, base, "julia", tok, origin); st != 401 {
		t.Fatalf("probe with a revoked token: %d", st)
	}
	res, _ = do(t, "GET", base+"/iiif/3/julia/full/100,/0/default.jpg", nil, "Cookie", "iiifd_access="+cookie)
	if res.StatusCode != 401 {
		t.Fatalf("image with the cookie after logout: %d", res.StatusCode)
	}
	if m := tokenMessage(t, base, cookie, origin); m["profile"] != "invalidAspect" {
		t.Fatalf("token service with the old cookie: %v", m)
	}
}

// TestAuthNotFromCache: a restricted image cached for a signed-in user
// is not served to anyone else (authorization comes before the cache).
func TestAuthNotFromCache(t *testing.T) {
	srv := serveOn(t, authConfig(t), nil)
	cookie, _ := signIn(t, srv.URL, "alice", alicePassword)
	u := srv.URL + "/iiif/3/julia/full/120,/0/default.jpg"
	for i := range 2 {
		res, _ := do(t, "GET", u, nil, "Cookie", "iiifd_access="+cookie)
		if res.StatusCode != 200 || (i == 1 && !strings.HasPrefix(res.Header.Get("X-Cache"), "HIT")) {
			t.Fatalf("signed in, try %d: %d %q", i, res.StatusCode, res.Header.Get("X-Cache"))
		}
	}
	res, _ := do(t, "GET", u, nil)
	if res.StatusCode != 401 || res.Header.Get("X-Cache") != "" {
		t.Fatalf("the cached image to someone not signed in: %d %q", res.StatusCode, res.Header.Get("X-Cache"))
	}
}

// TestAuthDegraded: anonymous users get at most N pixels, the probe
// names the substitute, signed-in users get the whole image.
func TestAuthDegraded(t *testing.T) {
	srv := serveOn(t, authConfig(t), nil)
	base := srv.URL
	st, r := probeStatus(t, base, "mandelbrot", "", "")
	subs, _ := r["substitute"].([]any)
	if st != 401 || len(subs) != 1 {
		t.Fatalf("probe of a degraded image: %d %v", st, r)
	}
	sub := subs[0].(map[string]any)["id"].(string)
	if !strings.HasSuffix(sub, "/iiif/3/mandelbrot/full/!300,300/0/default.jpg") {
		t.Fatalf("substitute: %s", sub)
	}
	size := func(u string, hdr ...string) (int, int, int) {
		res, body := do(t, "GET", u, nil, hdr...)
		if res.StatusCode != 200 {
			return res.StatusCode, 0, 0
		}
		c, err := jpeg.DecodeConfig(strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		return 200, c.Width, c.Height
	}
	if st, w, h := size(sub); st != 200 || max(w, h) > 300 || max(w, h) < 299 {
		t.Fatalf("substitute: %d %d×%d", st, w, h)
	}
	if st, w, h := size(base + "/iiif/3/mandelbrot/full/max/0/default.jpg"); st != 200 || max(w, h) > 300 {
		t.Fatalf("anonymous max: %d %d×%d", st, w, h)
	}
	if st, _, _ := size(base + "/iiif/3/mandelbrot/full/1000,/0/default.jpg"); st != 400 && st != 403 {
		t.Fatalf("anonymous 1000 px: %d", st)
	}
	// Tiles cannot add up to more: a region at full resolution is refused.
	if st, _, _ := size(base + "/iiif/3/mandelbrot/0,0,256,256/256,/0/default.jpg"); st != 403 {
		t.Fatalf("anonymous full-resolution tile: %d", st)
	}
	res, body := do(t, "GET", base+"/iiif/3/mandelbrot/info.json", nil)
	if res.StatusCode != 200 || !strings.Contains(body, `"maxWidth":300`) {
		t.Fatalf("anonymous info.json: %s", body)
	}
	cookie, _ := signIn(t, base, "alice", alicePassword)
	if st, w, _ := size(base+"/iiif/3/mandelbrot/full/1000,/0/default.jpg", "Cookie", "iiifd_access="+cookie); st != 200 || w != 1000 {
		t.Fatalf("signed in 1000 px: %d %d", st, w)
	}
}

// TestAuthReplicas: two replicas sharing a real Redis honour each other's
// sessions, tokens and logouts.
func TestAuthReplicas(t *testing.T) {
	rs := redistest.Start(t)
	cfg := authConfig(t)
	cfg.CacheRedis = rs.URL()
	a, b := serveOn(t, cfg, nil), serveOn(t, cfg, nil)
	const origin = "http://client.test"
	cookie, st := signIn(t, a.URL, "alice", alicePassword)
	if cookie == "" {
		t.Fatalf("login on replica A: %d", st)
	}
	res, _ := do(t, "GET", b.URL+"/iiif/3/julia/full/90,/0/default.jpg", nil, "Cookie", "iiifd_access="+cookie)
	if res.StatusCode != 200 {
		t.Fatalf("replica B, A's cookie: %d", res.StatusCode)
	}
	tok, _ := tokenMessage(t, b.URL, cookie, origin)["accessToken"].(string)
	if st, _ := probeStatus(t, a.URL, "julia", tok, origin); st != 200 {
		t.Fatalf("replica A, B's token: %d", st)
	}
	do(t, "GET", b.URL+"/auth/v2/logout", nil, "Cookie", "iiifd_access="+cookie)
	if st, _ := probeStatus(t, a.URL, "julia", tok, origin); st != 401 {
		t.Fatalf("replica A after logout on B: %d", st)
	}
	res, _ = do(t, "GET", a.URL+"/iiif/3/julia/full/90,/0/default.jpg", nil, "Cookie", "iiifd_access="+cookie)
	if res.StatusCode != 401 {
		t.Fatalf("replica A, cookie after logout on B: %d", res.StatusCode)
	}
}

// toolsRequired says a missing tool fails the test (scripts/test sets it).
func toolsRequired() bool {
	return os.Getenv("IIIFD_BROWSER_TESTS") != "" || os.Getenv("IIIFD_REQUIRE_TOOLS") != "" || os.Getenv("IIIFD_TEST_TOOLS") != ""
}

// oidcProvider is the OpenID Connect provider the tests sign in at: the
// example server of the certified zitadel/oidc library, pinned, built
// from the Go module proxy. Its users include test-user@localhost with
// the password verysecure; its client "web" has the secret "secret".
const oidcProvider = "github.com/zitadel/oidc/v3@v3.52.0"

// startOIDC builds and starts the provider on a free port, accepting
// redirect as its client's redirect URI; it returns the issuer URL.
func startOIDC(t *testing.T, redirect string) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatal("go is needed to build the OpenID Connect provider")
	}
	tmp := t.TempDir()
	out, err := exec.Command(goBin, "mod", "download", "-json", oidcProvider).Output()
	var mod struct{ Dir, Error string }
	if err != nil || json.Unmarshal(out, &mod) != nil || mod.Dir == "" {
		msg := fmt.Sprintf("the OpenID Connect provider %s could not be downloaded: %v %s", oidcProvider, err, mod.Error)
		if toolsRequired() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	bin := filepath.Join(tmp, "oidc-provider")
	build := exec.Command(goBin, "build", "-o", bin, "./example/server")
	build.Dir = mod.Dir
	build.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the OpenID Connect provider: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "PORT="+port, "REDIRECT_URI="+redirect)
	logf, _ := os.Create(filepath.Join(tmp, "provider.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		logf.Close()
	})
	issuer := "http://localhost:" + port + "/"
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		res, err := http.Get("http://127.0.0.1:" + port + "/.well-known/openid-configuration")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return issuer
			}
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(tmp, "provider.log"))
			t.Fatalf("the OpenID Connect provider did not start: %v\n%s", err, b)
		}
	}
}

// TestAuthBrowser runs web/test/auth.mjs in headless Chromium: a client
// page on another loopback origin goes through the whole flow, with the
// built-in users and with OpenID Connect at a real provider, and the
// built-in viewer shows the prompt and then the image.
func TestAuthBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("browser tests are not short")
	}
	webDir, err := filepath.Abs("../../web")
	if err != nil {
		t.Fatal(err)
	}
	chromium := os.Getenv("CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	var missing []string
	node, err := exec.LookPath("node")
	if err != nil {
		missing = append(missing, "node (Debian nodejs)")
	}
	if _, err := os.Stat(chromium); err != nil {
		missing = append(missing, chromium+" (Debian chromium)")
	}
	if _, err := os.Stat(filepath.Join(webDir, "node_modules/playwright-core/package.json")); err != nil {
		missing = append(missing, "web/node_modules/playwright-core (scripts/web-assets)")
	}
	if len(missing) > 0 {
		msg := "browser tests need: " + strings.Join(missing, ", ")
		if os.Getenv("IIIFD_BROWSER_TESTS") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg + "; scripts/test installs them")
	}

	// iiifd and the client pages on other origins of one site
	// (localhost): browsers that block third-party cookies (this
	// Chromium does) send the access cookie to the token service's
	// iframe only within one site, so that is how a viewer on another
	// origin is deployed (see README, Restricted images).
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://localhost:" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	issuer := startOIDC(t, base+"/auth/v2/access/login/callback")

	clientPage := func(name string) (*httptest.Server, string) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/" {
				http.NotFound(w, r)
				return
			}
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprintf(w, `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>%s</title>
<script src="%s/assets/test/iiif-auth.js"></script></head><body><h1>%s</h1></body></html>`, name, base, name)
		}))
		return srv, "http://localhost:" + strconv.Itoa(srv.Listener.Addr().(*net.TCPAddr).Port)
	}
	cl, clURL := clientPage("client")
	foreign, foreignURL := clientPage("foreign")
	defer cl.Close()
	defer foreign.Close()

	cfg := authConfig(t)
	cfg.Auth.Origins = clURL + "," + base
	cfg.Auth.TokenTTL = 4 * time.Second
	cfg.Auth.OIDCIssuer, cfg.Auth.OIDCClientID, cfg.Auth.OIDCClientSecret = issuer, "web", "secret"
	serveOn(t, cfg, ln)

	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join(webDir, "test", "auth.mjs"))
	cmd.Env = append(os.Environ(),
		"IIIFD_URL="+base, "CLIENT_URL="+clURL+"/", "FOREIGN_URL="+foreignURL+"/",
		"IMAGE=julia", "IMAGE_DEGRADED=mandelbrot", "USER=alice", "PASSWORD="+alicePassword,
		"OIDC_USER=test-user@localhost", "OIDC_PASSWORD=verysecure",
		"TOKEN_TTL=4", "CHROMIUM="+chromium,
	)
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	t.Logf("auth.mjs:\n%s", out)
	if err != nil {
		t.Fatalf("browser flow failed: %v", err)
	}
}
