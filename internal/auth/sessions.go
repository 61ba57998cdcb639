package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"time"
)

// Session is a login: who signed in, and until when. Its secret is the
// access cookie's value, kept in the store only as a hash.
type Session struct {
	User    string    `json:"user"`
	Expires time.Time `json:"expires"`
}

// token is an access token: which session it speaks for, to which web
// origin it was given, and until when. Its value is random and unrelated
// to the session's cookie, and kept in the store only as a hash.
type token struct {
	Session string    `json:"session"` // the session's store key
	Origin  string    `json:"origin"`
	Expires time.Time `json:"expires"`
}

// grace is how long an expired session or token stays in the store, so
// that using it is refused as expired (expiredAspect) rather than as
// unknown.
const grace = time.Hour

// secret returns 32 random bytes in hex.
func secret() string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// storeKey is the key of a secret in the store: a kind and the secret's
// SHA-256, so that whoever reads the store learns no usable secret.
func storeKey(kind, secret string) string {
	h := sha256.Sum256([]byte(secret))
	return kind + ":" + hex.EncodeToString(h[:])
}

// The reasons a session or token is refused; each is one of the
// Authorization Flow API's error profiles.
var (
	errMissing = &aspectError{profile: "missingAspect", reason: "you are not signed in"}
	errInvalid = &aspectError{profile: "invalidAspect", reason: "your sign-in is not known here (signed out, or never valid)"}
	errExpired = &aspectError{profile: "expiredAspect", reason: "your sign-in has expired; sign in again"}
)

// aspectError says why a credential (cookie or token) was refused.
type aspectError struct {
	profile string
	reason  string
}

func (e *aspectError) Error() string { return e.reason }

// newSession signs user in and returns the session's secret, the access
// cookie's value.
func (a *Auth) newSession(ctx context.Context, user string) (string, Session, error) {
	s := Session{User: user, Expires: a.now().Add(a.cfg.SessionTTL)}
	b, _ := json.Marshal(s)
	sec := secret()
	if err := a.cfg.Store.Put(ctx, storeKey("s", sec), b, a.cfg.SessionTTL+grace); err != nil {
		return "", s, err
	}
	return sec, s, nil
}

// session returns the live session whose secret is cookie, and its store
// key.
func (a *Auth) session(ctx context.Context, cookie string) (Session, string, error) {
	if cookie == "" {
		return Session{}, "", errMissing
	}
	key := storeKey("s", cookie)
	s, err := a.sessionAt(ctx, key)
	return s, key, err
}

func (a *Auth) sessionAt(ctx context.Context, key string) (Session, error) {
	b, err := a.cfg.Store.Get(ctx, key)
	if err != nil {
		return Session{}, err
	}
	var s Session
	if b == nil || json.Unmarshal(b, &s) != nil {
		return Session{}, errInvalid
	}
	if !a.now().Before(s.Expires) {
		return Session{}, errExpired
	}
	return s, nil
}

// mintToken gives the session at key a new access token for origin and
// returns it with its lifetime in seconds. A token never outlives its
// session.
func (a *Auth) mintToken(ctx context.Context, key string, s Session, origin string) (string, int, error) {
	exp := a.now().Add(a.cfg.TokenTTL)
	if s.Expires.Before(exp) {
		exp = s.Expires
	}
	b, _ := json.Marshal(token{Session: key, Origin: origin, Expires: exp})
	tok := secret()
	tkey := storeKey("t", tok)
	if err := a.cfg.Store.Put(ctx, tkey, b, exp.Sub(a.now())+grace); err != nil {
		return "", 0, err
	}
	// The session's tokens are listed, so that signing out revokes them.
	if err := a.cfg.Store.Link(ctx, "st:"+key, tkey, s.Expires.Sub(a.now())+grace); err != nil {
		return "", 0, err
	}
	return tok, int(exp.Sub(a.now()).Round(time.Second) / time.Second), nil
}

// errOtherOrigin refuses a token used from another web origin than the
// one it was given to.
var errOtherOrigin = &aspectError{profile: "invalidOrigin", reason: "this access token was given to another web origin"}

// tokenSession returns the session an access token speaks for. origin is
// the request's Origin header: when the browser sends one, it must be
// the token's.
func (a *Auth) tokenSession(ctx context.Context, tok, origin string) (Session, error) {
	b, err := a.cfg.Store.Get(ctx, storeKey("t", tok))
	if err != nil {
		return Session{}, err
	}
	var t token
	if b == nil || json.Unmarshal(b, &t) != nil {
		return Session{}, &aspectError{profile: "invalidAspect", reason: "this access token is not known here (revoked by signing out, or never valid)"}
	}
	if !a.now().Before(t.Expires) {
		return Session{}, &aspectError{profile: "expiredAspect", reason: "this access token has expired; get a new one from the token service"}
	}
	if origin != "" && origin != t.Origin {
		return Session{}, errOtherOrigin
	}
	s, err := a.sessionAt(ctx, t.Session)
	var ae *aspectError
	if errors.As(err, &ae) {
		// The session behind the token ended (revoked or expired).
		return Session{}, &aspectError{profile: ae.profile, reason: "the sign-in behind this access token has ended: " + ae.reason}
	}
	return s, err
}

// revoke ends the session at key and every token it was given.
func (a *Auth) revoke(ctx context.Context, key string) error {
	toks, err := a.cfg.Store.Members(ctx, "st:"+key)
	if err != nil {
		return err
	}
	return a.cfg.Store.Del(ctx, append(toks, key, "st:"+key)...)
}
