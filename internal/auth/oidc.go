package auth

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// oidcClient signs users in at an OpenID Connect provider with the
// authorization code flow, PKCE and a nonce. The provider's metadata is
// discovered on first use (and again after a failure), so that iiifd
// starts when the provider is down.
type oidcClient struct {
	cfg OIDC

	mu       sync.Mutex
	provider *oidc.Provider
}

func (o *oidcClient) discover(ctx context.Context) (*oidc.Provider, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.provider != nil {
		return o.provider, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	p, err := oidc.NewProvider(ctx, o.cfg.Issuer)
	if err != nil {
		return nil, err
	}
	o.provider = p
	return p, nil
}

func (o *oidcClient) oauth(p *oidc.Provider, redirect string) *oauth2.Config {
	return &oauth2.Config{
		ClientID: o.cfg.ClientID, ClientSecret: o.cfg.ClientSecret,
		Endpoint: p.Endpoint(), RedirectURL: redirect,
		Scopes: []string{oidc.ScopeOpenID, "profile", "email"},
	}
}

// oidcFlow is a login started at the provider, kept in the store under
// its state until the callback takes it (once).
type oidcFlow struct {
	Verifier string `json:"verifier"`
	Nonce    string `json:"nonce"`
	Origin   string `json:"origin"`
}

// flowTTL bounds the time a user may spend at the provider's login.
const flowTTL = 10 * time.Minute

func (a *Auth) callbackURL(r *http.Request) string {
	return strings.TrimSuffix(a.cfg.BaseURL(r), "/") + "/auth/v2/access/login/callback"
}

// serveOIDCStart sends the browser to the provider's login.
func (a *Auth) serveOIDCStart(w http.ResponseWriter, r *http.Request) {
	if a.oidc == nil {
		a.page(w, http.StatusNotFound, "No OpenID Connect login", "This server has no OpenID Connect provider configured.", "")
		return
	}
	p, err := a.oidc.discover(r.Context())
	if err != nil {
		a.cfg.Logger.Error("OpenID Connect discovery failed", "issuer", a.oidc.cfg.Issuer, "error", err)
		a.page(w, http.StatusBadGateway, "Sign-in provider unavailable", "The OpenID Connect provider could not be reached; try again later.", "")
		return
	}
	state := secret()
	f := oidcFlow{Verifier: oauth2.GenerateVerifier(), Nonce: secret(), Origin: r.URL.Query().Get("origin")}
	b, _ := json.Marshal(f)
	if err := a.cfg.Store.Put(r.Context(), storeKey("f", state), b, flowTTL); err != nil {
		a.cfg.Logger.Error("auth store failed", "error", err)
		a.page(w, http.StatusServiceUnavailable, "Try again later", "The login could not be started: the session store is unavailable.", "")
		return
	}
	// The state is also a cookie of this browser: a callback carrying a
	// state started in another browser (login CSRF) is refused. Lax, so
	// that the provider's redirect back (a top-level navigation) has it.
	http.SetCookie(w, &http.Cookie{Name: oidcCookie, Value: state, Path: "/auth/v2/access/login/", MaxAge: int(flowTTL.Seconds()), HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode})
	u := a.oidc.oauth(p, a.callbackURL(r)).AuthCodeURL(state, oidc.Nonce(f.Nonce), oauth2.S256ChallengeOption(f.Verifier))
	http.Redirect(w, r, u, http.StatusFound)
}

// serveOIDCCallback finishes a login at the provider: the code is
// exchanged, the ID token verified (signature, issuer, audience, expiry,
// nonce), and the user signed in.
func (a *Auth) serveOIDCCallback(w http.ResponseWriter, r *http.Request) {
	if a.oidc == nil {
		a.page(w, http.StatusNotFound, "No OpenID Connect login", "This server has no OpenID Connect provider configured.", "")
		return
	}
	q := r.URL.Query()
	if e := q.Get("error"); e != "" {
		a.page(w, http.StatusUnauthorized, "Sign-in refused", "The provider refused the sign-in: "+e+" "+q.Get("error_description"), "")
		return
	}
	state := q.Get("state")
	c, err := r.Cookie(oidcCookie)
	if err != nil || state == "" || subtle.ConstantTimeCompare([]byte(c.Value), []byte(state)) != 1 {
		a.page(w, http.StatusForbidden, "Sign-in not started here", "This sign-in was not started in this browser (state mismatch). Open the login page again.", "")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: oidcCookie, Value: "", Path: "/auth/v2/access/login/", MaxAge: -1, HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode})
	b, err := a.cfg.Store.Take(r.Context(), storeKey("f", state))
	var f oidcFlow
	if err != nil || b == nil || json.Unmarshal(b, &f) != nil {
		a.page(w, http.StatusForbidden, "Sign-in expired", "This sign-in is unknown or took too long. Open the login page again.", "")
		return
	}
	p, err := a.oidc.discover(r.Context())
	if err != nil {
		a.page(w, http.StatusBadGateway, "Sign-in provider unavailable", "The OpenID Connect provider could not be reached; try again later.", "")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
	defer cancel()
	tok, err := a.oidc.oauth(p, a.callbackURL(r)).Exchange(ctx, q.Get("code"), oauth2.VerifierOption(f.Verifier))
	if err != nil {
		a.cfg.Logger.Warn("OpenID Connect code exchange failed", "error", err)
		a.page(w, http.StatusUnauthorized, "Sign-in failed", "The provider did not confirm the sign-in (the code exchange failed).", "")
		return
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := p.Verifier(&oidc.Config{ClientID: a.oidc.cfg.ClientID}).Verify(ctx, raw)
	if err != nil || subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(f.Nonce)) != 1 {
		a.cfg.Logger.Warn("OpenID Connect ID token refused", "error", err)
		a.page(w, http.StatusUnauthorized, "Sign-in failed", "The provider's ID token could not be verified.", "")
		return
	}
	var claims struct {
		Name  string `json:"preferred_username"`
		Email string `json:"email"`
	}
	idt.Claims(&claims)
	user := claims.Name
	if user == "" {
		user = claims.Email
	}
	if user == "" {
		user = idt.Subject
	}
	a.signIn(w, r, "oidc:"+user)
}
