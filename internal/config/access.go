package config

import (
	"errors"
	"flag"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Access policies of an access rule.
const (
	PolicyPublic   = "public"   // anyone sees the image in full
	PolicyLogin    = "login"    // signed-in users only
	PolicyDegraded = "degraded" // others see it at most Max pixels on the long side
)

// AccessRule restricts the images whose identifiers match Match
// (patterns as in [[roots]]: "*" within a segment, "**" across).
type AccessRule struct {
	Match  string
	Policy string
	// Max is the long side, in pixels, that users who are not signed in
	// may see of a degraded image.
	Max int
}

// String returns the rule as ParseAccessRule reads it.
func (r AccessRule) String() string {
	s := r.Match + "=" + r.Policy
	if r.Max > 0 {
		s += ":" + strconv.Itoa(r.Max)
	}
	return s
}

// ParseAccessRule parses PATTERN=POLICY[:MAX], the form of --access and
// of an [[access]] table (match, policy, max) of the config file.
func ParseAccessRule(s string) (AccessRule, error) {
	i := strings.LastIndexByte(s, '=')
	if i <= 0 {
		return AccessRule{}, fmt.Errorf("%q: want PATTERN=POLICY[:MAX]", s)
	}
	r := AccessRule{Match: s[:i]}
	policy, max, hasMax := strings.Cut(s[i+1:], ":")
	r.Policy = policy
	if hasMax {
		n, err := strconv.Atoi(max)
		if err != nil || n <= 0 || n > 1<<20 {
			return AccessRule{}, fmt.Errorf("%q: max must be a positive number of pixels", s)
		}
		r.Max = n
	}
	switch r.Policy {
	case PolicyPublic, PolicyLogin:
		if hasMax {
			return AccessRule{}, fmt.Errorf("%q: max is for the degraded policy only", s)
		}
	case PolicyDegraded:
		if !hasMax {
			return AccessRule{}, fmt.Errorf("%q: the degraded policy needs max (the long side others may see)", s)
		}
	default:
		return AccessRule{}, fmt.Errorf("%q: policy must be public, login or degraded", s)
	}
	return r, nil
}

// accessRules is the flag.Value of --access: each use adds one rule.
type accessRules struct{ r *[]AccessRule }

func (v accessRules) String() string {
	if v.r == nil {
		return ""
	}
	parts := make([]string, len(*v.r))
	for i, r := range *v.r {
		parts[i] = r.String()
	}
	return strings.Join(parts, " ")
}

func (v accessRules) Set(s string) error {
	r, err := ParseAccessRule(strings.TrimSpace(s))
	if err != nil {
		return err
	}
	*v.r = append(*v.r, r)
	return nil
}

// Auth configures restricted images (the IIIF Authorization Flow API 2.0).
type Auth struct {
	// Rules decide each identifier's policy: the first that matches; no
	// match is public.
	Rules []AccessRule
	// Users is the file of the built-in login's users: name:hash lines.
	Users string
	// Profile is the access service declared in info.json: active (a
	// login page), kiosk or external.
	Profile string
	// Origins are the web origins the token service answers; "*" (the
	// default) is any.
	Origins string
	// SessionTTL is how long a login lasts; TokenTTL how long an access
	// token does.
	SessionTTL, TokenTTL time.Duration
	// OIDCIssuer, OIDCClientID and OIDCClientSecret offer a login at an
	// OpenID Connect provider on the login page.
	OIDCIssuer, OIDCClientID, OIDCClientSecret string
	// KioskNetworks are the client networks (CIDR) the kiosk profile
	// signs in without a question.
	KioskNetworks string
	// ExternalCookie and ExternalHeader name the cookie or the header
	// (set by a trusted front) that the external profile takes as a
	// login.
	ExternalCookie, ExternalHeader string
	// LoginRate is how many failed logins one client address or user
	// name may have per minute.
	LoginRate int
}

// DefaultAuth returns the defaults of the auth settings.
func DefaultAuth() Auth {
	return Auth{Profile: "active", Origins: "*", SessionTTL: 12 * time.Hour, TokenTTL: 5 * time.Minute, LoginRate: 10}
}

// Restricted reports whether any rule restricts images.
func (a *Auth) Restricted() bool {
	for _, r := range a.Rules {
		if r.Policy != PolicyPublic {
			return true
		}
	}
	return false
}

func (a *Auth) bind(fs *flag.FlagSet) {
	fs.Var(accessRules{&a.Rules}, "access", "restrict identifiers matching a pattern, `PATTERN=POLICY[:MAX]` with policy public, login or degraded (MAX: the long side in pixels others see); repeatable, first match wins; in the config file: [[access]] tables with match, policy and max")
	fs.StringVar(&a.Users, "auth-users", a.Users, "users of the built-in login, a `file` of name:hash lines (bcrypt or argon2id hashes)")
	fs.StringVar(&a.Profile, "auth-profile", a.Profile, "access service `profile` restricted images declare: active (login page), kiosk or external")
	fs.StringVar(&a.Origins, "auth-origins", a.Origins, "web `origins` (comma-separated) the token service gives tokens to; * = any")
	fs.DurationVar(&a.SessionTTL, "auth-session-ttl", a.SessionTTL, "how long a login lasts")
	fs.DurationVar(&a.TokenTTL, "auth-token-ttl", a.TokenTTL, "how long an access token lasts")
	fs.StringVar(&a.OIDCIssuer, "auth-oidc-issuer", a.OIDCIssuer, "OpenID Connect provider `URL` offered on the login page (empty = none)")
	fs.StringVar(&a.OIDCClientID, "auth-oidc-client-id", a.OIDCClientID, "client `id` at the OpenID Connect provider")
	fs.StringVar(&a.OIDCClientSecret, "auth-oidc-client-secret", a.OIDCClientSecret, "client `secret` at the OpenID Connect provider")
	fs.StringVar(&a.KioskNetworks, "auth-kiosk-networks", a.KioskNetworks, "client `networks` (comma-separated CIDR) the kiosk profile signs in")
	fs.StringVar(&a.ExternalCookie, "auth-external-cookie", a.ExternalCookie, "`cookie` a trusted front sets for signed-in users (external profile)")
	fs.StringVar(&a.ExternalHeader, "auth-external-header", a.ExternalHeader, "`header` a trusted front sets to the signed-in user's name (external profile)")
	fs.IntVar(&a.LoginRate, "auth-login-rate", a.LoginRate, "failed logins per minute allowed per client address and per user name")
}

func (a *Auth) validate() []error {
	var errs []error
	if !a.Restricted() {
		return nil
	}
	if a.SessionTTL <= 0 || a.TokenTTL <= 0 {
		errs = append(errs, errors.New("auth-session-ttl, auth-token-ttl: must be positive"))
	}
	if a.LoginRate < 1 {
		errs = append(errs, errors.New("auth-login-rate: must be at least 1"))
	}
	switch a.Profile {
	case "active":
		if a.Users == "" && a.OIDCIssuer == "" {
			errs = append(errs, errors.New("auth-profile active: needs auth-users or auth-oidc-issuer, or nobody can sign in"))
		}
	case "kiosk":
		if a.KioskNetworks == "" {
			errs = append(errs, errors.New("auth-profile kiosk: needs auth-kiosk-networks"))
		}
	case "external":
		if a.ExternalCookie == "" && a.ExternalHeader == "" {
			errs = append(errs, errors.New("auth-profile external: needs auth-external-cookie or auth-external-header"))
		}
	default:
		errs = append(errs, fmt.Errorf("auth-profile: %q is not active, kiosk or external", a.Profile))
	}
	if a.OIDCIssuer != "" {
		if u, err := url.Parse(a.OIDCIssuer); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("auth-oidc-issuer: %q is not an http(s) URL", a.OIDCIssuer))
		}
		if a.OIDCClientID == "" {
			errs = append(errs, errors.New("auth-oidc-client-id: needed with auth-oidc-issuer"))
		}
	}
	return errs
}

// accessTable turns an [[access]] table of the config file into the
// form of --access.
func accessTable(v map[string]any) (string, error) {
	m, mok := v["match"].(string)
	p, pok := v["policy"].(string)
	if !mok || !pok {
		return "", errors.New("want a table with match, policy and (for degraded) max")
	}
	s := m + "=" + p
	for k, val := range v {
		switch k {
		case "match", "policy":
		case "max":
			n, ok := val.(int64)
			if !ok {
				return "", errors.New("max must be a whole number of pixels")
			}
			s += ":" + strconv.FormatInt(n, 10)
		default:
			return "", fmt.Errorf("unknown key %q in the table (want match, policy, max)", k)
		}
	}
	return s, nil
}
