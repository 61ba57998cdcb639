package app

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/iiifd/iiifd/internal/auth"
	"github.com/iiifd/iiifd/internal/config"
	"github.com/iiifd/iiifd/internal/httpapi"
	"github.com/iiifd/iiifd/internal/service"
)

// buildAuth builds the restrictions of images when an access rule
// restricts any: the users file, the session store (the Redis of
// --cache-redis, so that every replica honours a login, else this
// process's memory). exists is asked by the probe service whether an
// image exists; it is called only after the service is built.
func (a *App) buildAuth(cfg config.Config, exists func(ctx context.Context, id string) error) (*auth.Auth, error) {
	ac := cfg.Auth
	if !ac.Restricted() {
		return nil, nil
	}
	c := auth.Config{
		Profile: ac.Profile, SessionTTL: ac.SessionTTL, TokenTTL: ac.TokenTTL,
		OIDC:           auth.OIDC{Issuer: ac.OIDCIssuer, ClientID: ac.OIDCClientID, ClientSecret: ac.OIDCClientSecret},
		ExternalCookie: ac.ExternalCookie, ExternalHeader: ac.ExternalHeader,
		LoginRate: ac.LoginRate, ClientIPHeader: cfg.ClientIPHeader,
		Exists: exists, BaseURL: httpapi.BaseURL, Logger: a.log.With("component", "auth"),
	}
	for _, r := range ac.Rules {
		c.Rules = append(c.Rules, auth.Rule{Match: r.Match, Policy: auth.Policy(r.Policy), Max: r.Max})
	}
	for _, o := range strings.Split(ac.Origins, ",") {
		if o = strings.TrimSpace(o); o != "" {
			c.Origins = append(c.Origins, o)
		}
	}
	var err error
	if c.KioskNetworks, err = auth.ParseNetworks(ac.KioskNetworks); err != nil {
		return nil, fmt.Errorf("auth-kiosk-networks: %w", err)
	}
	if ac.Users != "" {
		f, err := os.Open(ac.Users)
		if err != nil {
			return nil, fmt.Errorf("auth-users: %w", err)
		}
		c.Users, err = auth.ParseUsers(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("auth-users %s: %w", ac.Users, err)
		}
	}
	if cfg.CacheRedis != "" {
		st, err := auth.NewRedis(cfg.CacheRedis, "iiifd:auth:")
		if err != nil {
			return nil, fmt.Errorf("cache-redis: %w", err)
		}
		c.Store = st
	} else {
		c.Store = auth.NewMemory()
	}
	au, err := auth.New(c)
	if err != nil {
		return nil, err
	}
	a.cleanup = append(a.cleanup, func() { au.Close() })
	return au, nil
}

// gate is the service's view of the restrictions: none without them (a
// nil *auth.Auth must not become a non-nil interface).
func gate(au *auth.Auth) service.Gate {
	if au == nil {
		return nil
	}
	return au
}

// authHandler serves the /auth/v2/ routes; nil without restrictions.
func authHandler(au *auth.Auth) http.Handler {
	if au == nil {
		return nil
	}
	return au
}
