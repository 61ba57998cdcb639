// Package auth restricts images with the IIIF Authorization Flow API 2.0:
// access rules decide which identifiers need a login (or show others a
// degraded version); the access service signs users in (a login page with
// built-in users and OpenID Connect, a kiosk, or a trusted front); the
// token service hands browser clients short-lived access tokens through
// postMessage; the probe service tells a client what a token gets; the
// logout service ends a session and its tokens. Sessions and tokens live
// in a Store: Redis shared by every replica, or this process's memory.
package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/iiifd/iiifd/internal/fault"
	"github.com/iiifd/iiifd/internal/source/route"
)

// Policy is what an access rule lets users who are not signed in see.
type Policy string

// The policies of access rules.
const (
	Public   Policy = "public"
	Login    Policy = "login"
	Degraded Policy = "degraded"
)

// Rule gives identifiers matching Match (route.Match patterns) a policy;
// Max is the long side others see of a degraded image.
type Rule struct {
	Match  string
	Policy Policy
	Max    int
}

// Profiles of the access service (Authorization Flow API 2.0 §2.3).
const (
	ProfileActive   = "active"
	ProfileKiosk    = "kiosk"
	ProfileExternal = "external"
)

// OIDC names an OpenID Connect provider for the login page.
type OIDC struct {
	Issuer, ClientID, ClientSecret string
}

// Config configures restricted images.
type Config struct {
	Rules []Rule
	// Users sign in on the login page; nil offers no password login.
	Users *Users
	// Profile is the access service info.json declares.
	Profile string
	// Origins are the web origins the token service answers; empty is any.
	Origins []string
	// SessionTTL and TokenTTL are the lifetimes of a login and a token.
	SessionTTL, TokenTTL time.Duration
	// OIDC, when its Issuer is set, adds a login at that provider.
	OIDC OIDC
	// KioskNetworks are the client networks the kiosk profile signs in.
	KioskNetworks []netip.Prefix
	// ExternalCookie and ExternalHeader name what a trusted front sets
	// for its signed-in users (the external profile).
	ExternalCookie, ExternalHeader string
	// LoginRate is how many failed logins a client address or user name
	// may have per minute.
	LoginRate int
	// ClientIPHeader, when set, names the header whose last value is the
	// client's address (behind a trusted proxy).
	ClientIPHeader string
	// Store keeps sessions and tokens.
	Store Store
	// Exists reports whether an image exists (nil error), for the probe.
	Exists func(ctx context.Context, id string) error
	// BaseURL returns the public base URL of the server for a request.
	BaseURL func(r *http.Request) string
	Logger  *slog.Logger
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

// Auth decides access to images and serves the /auth/v2/ routes.
type Auth struct {
	cfg     Config
	now     func() time.Time
	limiter *limiter
	oidc    *oidcClient
	mux     *http.ServeMux
	anyOrig bool
}

// ParseNetworks parses comma-separated CIDR prefixes (or addresses).
func ParseNetworks(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		p, err := netip.ParsePrefix(part)
		if err != nil {
			a, aerr := netip.ParseAddr(part)
			if aerr != nil {
				return nil, fmt.Errorf("%q is not a network (CIDR) or an address", part)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// New validates cfg and returns the restrictions.
func New(cfg Config) (*Auth, error) {
	for _, r := range cfg.Rules {
		if err := route.ValidPattern(r.Match); err != nil {
			return nil, fmt.Errorf("access rule %q: %v", r.Match, err)
		}
		switch r.Policy {
		case Public, Login:
		case Degraded:
			if r.Max <= 0 {
				return nil, fmt.Errorf("access rule %q: degraded needs a positive max", r.Match)
			}
		default:
			return nil, fmt.Errorf("access rule %q: unknown policy %q", r.Match, r.Policy)
		}
	}
	if cfg.Store == nil {
		return nil, errors.New("auth: a store is required")
	}
	if cfg.SessionTTL <= 0 || cfg.TokenTTL <= 0 {
		return nil, errors.New("auth: session and token lifetimes must be positive")
	}
	if cfg.LoginRate <= 0 {
		cfg.LoginRate = 10
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.BaseURL == nil {
		return nil, errors.New("auth: BaseURL is required")
	}
	a := &Auth{cfg: cfg, now: cfg.Now}
	if a.now == nil {
		a.now = time.Now
	}
	a.limiter = newLimiter(cfg.LoginRate, time.Minute, a.now)
	for _, o := range cfg.Origins {
		if o == "*" {
			a.anyOrig = true
		}
	}
	a.anyOrig = a.anyOrig || len(cfg.Origins) == 0
	if cfg.OIDC.Issuer != "" {
		a.oidc = &oidcClient{cfg: cfg.OIDC}
	}
	a.routes()
	return a, nil
}

// rule returns the rule of identifier id: the first that matches, else
// public.
func (a *Auth) rule(id string) Rule {
	for _, r := range a.cfg.Rules {
		if route.Match(r.Match, id) {
			return r
		}
	}
	return Rule{Policy: Public}
}

// Refusal is an image request refused for want of a valid login: a 401
// that says why.
type Refusal struct {
	Reason string
}

func (e *Refusal) Error() string   { return e.Reason }
func (e *Refusal) HTTPStatus() int { return http.StatusUnauthorized }

// ResponseHeader returns the challenge (RFC 6750 §3).
func (e *Refusal) ResponseHeader() http.Header {
	return http.Header{"Www-Authenticate": {`Bearer realm="iiifd", error="invalid_token", error_description=` + strconv.Quote(e.Reason)}}
}

// Admit decides a request for the image id (image: its pixels, else its
// info.json) from the request's headers: an access token (Authorization:
// Bearer), the access cookie, or, with the external profile, the trusted
// front's cookie or header. It returns whether the image is restricted
// and, for a degraded image seen by someone not signed in, the long side
// they may see (0 = all). The pixels of a login-only image without a
// valid login are refused with a *Refusal that says why; its info.json is
// not, since that is where clients find the probe service (§2.1).
func (a *Auth) Admit(ctx context.Context, id string, image bool, h http.Header) (restricted bool, max int, err error) {
	r := a.rule(id)
	if r.Policy == Public {
		return false, 0, nil
	}
	_, err = a.credential(ctx, h)
	if err == nil {
		return true, 0, nil
	}
	var ae *aspectError
	if !errors.As(err, &ae) {
		return true, 0, fault.Wrap(fault.Unavailable, err, "access cannot be checked now: the session store is unavailable; try again")
	}
	if r.Policy == Degraded {
		return true, r.Max, nil
	}
	if !image {
		return true, 0, nil
	}
	return true, 0, &Refusal{Reason: "this image needs a login: " + ae.reason}
}

// credential finds the session a request speaks for.
func (a *Auth) credential(ctx context.Context, h http.Header) (Session, error) {
	if tok, ok := strings.CutPrefix(h.Get("Authorization"), "Bearer "); ok {
		return a.tokenSession(ctx, strings.TrimSpace(tok), h.Get("Origin"))
	}
	if c := cookieValue(h, accessCookie); c != "" {
		s, _, err := a.session(ctx, c)
		return s, err
	}
	if user := a.external(h); user != "" {
		return Session{User: user, Expires: a.now().Add(a.cfg.SessionTTL)}, nil
	}
	return Session{}, errMissing
}

// external returns who the trusted front says signed in ("" = nobody),
// with the external profile only.
func (a *Auth) external(h http.Header) string {
	if a.cfg.Profile != ProfileExternal {
		return ""
	}
	if a.cfg.ExternalHeader != "" {
		if v := strings.TrimSpace(h.Get(a.cfg.ExternalHeader)); v != "" {
			return v
		}
	}
	if a.cfg.ExternalCookie != "" && cookieValue(h, a.cfg.ExternalCookie) != "" {
		return "external"
	}
	return ""
}

func cookieValue(h http.Header, name string) string {
	for _, line := range h.Values("Cookie") {
		cs, err := http.ParseCookie(line)
		if err != nil {
			continue
		}
		for _, c := range cs {
			if c.Name == name {
				return c.Value
			}
		}
	}
	return ""
}

// clientIP is the address of the client of r.
func (a *Auth) clientIP(r *http.Request) string {
	if a.cfg.ClientIPHeader != "" {
		if v := r.Header.Values(a.cfg.ClientIPHeader); len(v) > 0 {
			last := v[len(v)-1]
			if i := strings.LastIndexByte(last, ','); i >= 0 {
				last = last[i+1:]
			}
			if last = strings.TrimSpace(last); last != "" {
				return last
			}
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
