package auth

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"html/template"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Cookie names. The access cookie is the session's secret; the CSRF
// cookie pairs the login form with the browser that asked for it; the
// OIDC cookie pairs a provider's callback with the browser that started
// the login.
const (
	accessCookie = "iiifd_access"
	csrfCookie   = "iiifd_csrf"
	oidcCookie   = "iiifd_oidc"
)

func (a *Auth) routes() {
	m := http.NewServeMux()
	m.HandleFunc("GET /auth/v2/probe/", a.serveProbe)
	m.HandleFunc("OPTIONS /auth/v2/probe/", func(w http.ResponseWriter, r *http.Request) {
		// The CORS preflight of a probe with an Authorization header;
		// the middleware adds the Access-Control-* headers.
		w.WriteHeader(http.StatusNoContent)
	})
	m.HandleFunc("GET /auth/v2/access/{name}", a.serveAccess)
	m.HandleFunc("POST /auth/v2/access/login", a.serveLogin)
	m.HandleFunc("GET /auth/v2/access/login/oidc", a.serveOIDCStart)
	m.HandleFunc("GET /auth/v2/access/login/callback", a.serveOIDCCallback)
	m.HandleFunc("GET /auth/v2/token", a.serveToken)
	m.HandleFunc("GET /auth/v2/logout", a.serveLogout)
	m.HandleFunc("/auth/v2/", func(w http.ResponseWriter, r *http.Request) {
		a.page(w, http.StatusNotFound, "Not found", "There is no such auth service. The services are /auth/v2/probe/{identifier}, /auth/v2/access/{name}, /auth/v2/token and /auth/v2/logout.", "")
	})
	a.mux = m
}

// ServeHTTP serves the /auth/v2/ routes.
func (a *Auth) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	a.mux.ServeHTTP(w, r)
}

// serveProbe serves GET /auth/v2/probe/{identifier}: always 200, with an
// AuthProbeResult2 whose status is what the request's bearer token gets
// for the image.
func (a *Auth) serveProbe(w http.ResponseWriter, r *http.Request) {
	id, err := url.PathUnescape(strings.TrimPrefix(r.URL.EscapedPath(), "/auth/v2/probe/"))
	base := a.cfg.BaseURL(r)
	status, why := 200, ""
	switch {
	case err != nil || id == "":
		status, why = 404, "no identifier"
	case a.cfg.Exists != nil && a.cfg.Exists(r.Context(), id) != nil:
		status = 404
	case a.rule(id).Policy != Public:
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok {
			err = &aspectError{profile: "missingAspect", reason: "no access token was sent"}
		} else {
			_, err = a.tokenSession(r.Context(), strings.TrimSpace(tok), r.Header.Get("Origin"))
		}
		var ae *aspectError
		switch {
		case err == nil:
		case errors.As(err, &ae):
			status, why = 401, ae.reason
		default:
			a.cfg.Logger.Error("auth store failed", "error", err)
			status, why = 503, "the session store is unavailable"
		}
	}
	writeJSON(w, a.probeResult(base, id, status, why))
}

func writeJSON(w http.ResponseWriter, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.Write(b)
}

// serveAccess serves GET /auth/v2/access/{name}: the login page (login),
// the kiosk's sign-in (kiosk), or the trusted front's (external).
func (a *Auth) serveAccess(w http.ResponseWriter, r *http.Request) {
	switch name := r.PathValue("name"); name {
	case "login":
		if a.cfg.Users == nil && a.oidc == nil {
			a.page(w, http.StatusNotFound, "No login here", "This server has no login page: neither users nor an OpenID Connect provider are configured.", "")
			return
		}
		a.loginForm(w, r, http.StatusOK, "")
	case "kiosk":
		ip, err := netip.ParseAddr(a.clientIP(r))
		allowed := false
		for _, p := range a.cfg.KioskNetworks {
			if err == nil && p.Contains(ip.Unmap()) {
				allowed = true
			}
		}
		if !allowed {
			a.page(w, http.StatusForbidden, "Not on site", "On-site access is given only on the institution's own network, and this browser is not on it.", "")
			return
		}
		a.signIn(w, r, "kiosk")
	case "external":
		user := ""
		if a.cfg.Profile == ProfileExternal {
			user = a.external(r.Header)
		}
		if user == "" {
			a.page(w, http.StatusUnauthorized, "Not signed in", "Sign in on the institution's site first; this server takes the sign-in it sets.", "")
			return
		}
		a.signIn(w, r, user)
	default:
		a.page(w, http.StatusNotFound, "Unknown access service", "There is no access service "+strconv.Quote(name)+"; this server's is "+accessName(a.cfg.Profile)+".", "")
	}
}

// signIn makes a session for user, sets the access cookie and answers a
// page that closes its window (§2.3: the client waits for it to close).
func (a *Auth) signIn(w http.ResponseWriter, r *http.Request, user string) {
	sec, s, err := a.newSession(r.Context(), user)
	if err != nil {
		a.cfg.Logger.Error("auth store failed", "error", err)
		a.page(w, http.StatusServiceUnavailable, "Try again later", "The session could not be stored.", "")
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: accessCookie, Value: sec, Path: "/", Expires: s.Expires,
		// SameSite=None: the token service is loaded in a frame of the
		// viewer's site, and images on other sites' pages carry it.
		HttpOnly: true, Secure: true, SameSite: http.SameSiteNoneMode,
	})
	a.cfg.Logger.Info("signed in", "user", user)
	a.page(w, http.StatusOK, "Signed in", "You are signed in as "+user+". This window closes by itself; if it does not, close it.", "close")
}

// loginForm shows the login page with a fresh CSRF pair.
func (a *Auth) loginForm(w http.ResponseWriter, r *http.Request, status int, msg string) {
	csrf := secret()
	http.SetCookie(w, &http.Cookie{Name: csrfCookie, Value: csrf, Path: "/auth/v2/access/", HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
	origin := r.FormValue("origin")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	loginTmpl.Execute(w, map[string]any{
		"CSRF": csrf, "Origin": origin, "Error": msg,
		"Users": a.cfg.Users.Len() > 0, "OIDC": a.oidc != nil,
		"Action":  strings.TrimSuffix(a.cfg.BaseURL(r), "/") + "/auth/v2/access/login",
		"OIDCURL": strings.TrimSuffix(a.cfg.BaseURL(r), "/") + "/auth/v2/access/login/oidc?origin=" + url.QueryEscape(origin),
	})
}

// serveLogin serves the login form's POST: CSRF-checked, rate-limited per
// client address and user name, and as slow for an unknown user as for a
// wrong password.
func (a *Auth) serveLogin(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		a.page(w, http.StatusBadRequest, "Bad form", "The login form could not be read.", "")
		return
	}
	c, err := r.Cookie(csrfCookie)
	field := r.PostForm.Get("csrf")
	if err != nil || field == "" || subtle.ConstantTimeCompare([]byte(c.Value), []byte(field)) != 1 {
		a.page(w, http.StatusForbidden, "Form expired", "This login form was not issued to this browser (CSRF check failed). Open the login page again.", "")
		return
	}
	if o := r.Header.Get("Origin"); o != "" && o != "null" && !sameOrigin(o, a.cfg.BaseURL(r)) {
		a.page(w, http.StatusForbidden, "Wrong site", "The login form was sent from another site ("+o+").", "")
		return
	}
	user, pw := r.PostForm.Get("user"), r.PostForm.Get("password")
	ipKey, userKey := "ip:"+a.clientIP(r), "user:"+user
	if d := max(a.limiter.blocked(ipKey), a.limiter.blocked(userKey)); d > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(d.Seconds())+1))
		a.page(w, http.StatusTooManyRequests, "Too many attempts", "Too many failed logins from here or for this user; try again in "+(d.Round(time.Second)).String()+".", "")
		return
	}
	if a.cfg.Users == nil || !a.cfg.Users.Verify(user, pw) {
		a.limiter.fail(ipKey)
		a.limiter.fail(userKey)
		a.loginForm(w, r, http.StatusUnauthorized, "Wrong user name or password.")
		return
	}
	a.signIn(w, r, user)
}

// sameOrigin reports whether origin (scheme://host[:port]) is base's.
func sameOrigin(origin, base string) bool {
	u, err := url.Parse(base)
	return err == nil && origin == u.Scheme+"://"+u.Host
}

// validOrigin reports whether s is a web origin: scheme://host[:port],
// nothing more.
func validOrigin(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" &&
		u.Path == "" && u.RawQuery == "" && u.Fragment == "" && u.User == nil && u.Scheme+"://"+u.Host == s
}

func (a *Auth) originAllowed(o string) bool {
	if a.anyOrig {
		return true
	}
	for _, x := range a.cfg.Origins {
		if x == o {
			return true
		}
	}
	return false
}

// serveToken serves GET /auth/v2/token?messageId=...&origin=...: an HTML
// page for an iframe that posts an AuthAccessToken2 (or an
// AuthAccessTokenError2) to the parent window at origin (§2.4).
func (a *Auth) serveToken(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	msgID, origin := q.Get("messageId"), q.Get("origin")
	target := origin
	if !validOrigin(origin) {
		// An error only (never a token) may be posted to any window.
		target = "*"
	}
	fail := func(profile, note string) {
		a.postMessage(w, target, map[string]any{
			"@context": Context, "type": "AuthAccessTokenError2", "profile": profile, "messageId": msgID,
			"heading": lang("Access could not be given"), "note": lang(note),
		})
	}
	switch {
	case msgID == "" || origin == "":
		fail("invalidRequest", "The token service needs both messageId and origin.")
		return
	case !validOrigin(origin) || !a.originAllowed(origin):
		fail("invalidOrigin", "This image server gives tokens only to the sites it is configured for, and "+strconv.Quote(origin)+" is not one.")
		return
	}
	ctx := r.Context()
	var key string
	var s Session
	c := cookieValue(r.Header, accessCookie)
	var err error
	if c == "" && a.external(r.Header) != "" {
		// The external profile: the trusted front's sign-in becomes a
		// session here.
		var sec string
		sec, s, err = a.newSession(ctx, a.external(r.Header))
		key = storeKey("s", sec)
	} else {
		s, key, err = a.session(ctx, c)
	}
	var ae *aspectError
	switch {
	case errors.As(err, &ae):
		fail(ae.profile, "No token: "+ae.reason+".")
		return
	case err != nil:
		a.cfg.Logger.Error("auth store failed", "error", err)
		fail("unavailable", "The session store is unavailable; try again later.")
		return
	}
	tok, secs, err := a.mintToken(ctx, key, s, origin)
	if err != nil {
		a.cfg.Logger.Error("auth store failed", "error", err)
		fail("unavailable", "The session store is unavailable; try again later.")
		return
	}
	a.postMessage(w, origin, map[string]any{
		"@context": Context, "type": "AuthAccessToken2", "messageId": msgID, "accessToken": tok, "expiresIn": secs,
	})
}

// postMessage answers the token service's page. The message is JSON,
// which escapes <, > and &, so it cannot end the script element.
func (a *Auth) postMessage(w http.ResponseWriter, target string, msg map[string]any) {
	m, _ := json.Marshal(msg)
	t, _ := json.Marshal(target)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	w.Write([]byte("<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>iiifd token service</title></head><body>\n<script>window.parent.postMessage(" + string(m) + ", " + string(t) + ");</script>\n</body></html>\n"))
}

// serveLogout serves GET /auth/v2/logout: the session and every token it
// was given are revoked, and the cookie cleared.
func (a *Auth) serveLogout(w http.ResponseWriter, r *http.Request) {
	if c := cookieValue(r.Header, accessCookie); c != "" {
		if err := a.revoke(r.Context(), storeKey("s", c)); err != nil {
			a.cfg.Logger.Error("auth store failed", "error", err)
			a.page(w, http.StatusServiceUnavailable, "Try again later", "The session could not be ended: the session store is unavailable.", "")
			return
		}
	}
	http.SetCookie(w, &http.Cookie{Name: accessCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: true, SameSite: http.SameSiteNoneMode})
	a.page(w, http.StatusOK, "Signed out", "You are signed out of the image server, and the viewer's access tokens are revoked.", "close")
}

// page answers a short HTML page; close adds a script that closes the
// window (access and logout services opened by a client).
func (a *Auth) page(w http.ResponseWriter, status int, title, msg, close string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	pageTmpl.Execute(w, map[string]any{"Title": title, "Message": msg, "Close": close != ""})
}

var pageTmpl = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>{{.Title}}</title></head>
<body style="font-family:sans-serif;max-width:30em;margin:2em auto">
<h1>{{.Title}}</h1>
<p id="message">{{.Message}}</p>
{{if .Close}}<script>window.close();</script>{{end}}
</body></html>
`))

var loginTmpl = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>Sign in</title></head>
<body style="font-family:sans-serif;max-width:24em;margin:2em auto">
<h1>Sign in to see restricted images</h1>
{{if .Error}}<p id="error" role="alert" style="color:#a00">{{.Error}}</p>{{end}}
{{if .Users}}<form method="post" action="{{.Action}}">
<input type="hidden" name="csrf" value="{{.CSRF}}">
<input type="hidden" name="origin" value="{{.Origin}}">
<p><label>User name<br><input name="user" autocomplete="username" required></label></p>
<p><label>Password<br><input name="password" type="password" autocomplete="current-password" required></label></p>
<p><button type="submit">Sign in</button></p>
</form>{{end}}
{{if .OIDC}}<p><a id="oidc" href="{{.OIDCURL}}">Sign in with your institution's account (OpenID Connect)</a></p>{{end}}
</body></html>
`))

// Close releases the store's connections when it has any.
func (a *Auth) Close() error {
	if c, ok := a.cfg.Store.(interface{ Close() error }); ok {
		return c.Close()
	}
	return nil
}
