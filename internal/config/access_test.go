package config

import (
	"reflect"
	"strings"
	"testing"
)

func TestAccessRules(t *testing.T) {
	file := writeFile(t, `
auth-users = "/etc/iiifd/users"
[[access]]
match = "restricted/**"
policy = "login"
[[access]]
match = "previews/*"
policy = "degraded"
max = 400
[[roots]]
match = "x/**"
root = "/srv/x"
`)
	c, err := load(t, []string{"--config", file, "--access", "open/**=public"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []AccessRule{{"restricted/**", PolicyLogin, 0}, {"previews/*", PolicyDegraded, 400}, {"open/**", PolicyPublic, 0}}
	if !reflect.DeepEqual(c.Auth.Rules, want) || !c.Auth.Restricted() || len(c.Stores.Roots) != 1 {
		t.Fatalf("rules %+v, roots %+v", c.Auth.Rules, c.Stores.Roots)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ file, want string }{
		{"[[access]]\nmatch = \"a\"\npolicy = \"secret\"\n", "policy must be public, login or degraded"},
		{"[[access]]\nmatch = \"a\"\npolicy = \"degraded\"\n", "needs max"},
		{"[[access]]\nmatch = \"a\"\npolicy = \"login\"\nmax = 3\n", "degraded policy only"},
		{"[[access]]\nmatch = \"a\"\npolicy = \"degraded\"\nmax = \"big\"\n", "whole number"},
		{"[[access]]\nmatch = \"a\"\npolicy = \"login\"\nwho = 1\n", "unknown key"},
	} {
		if _, err := load(t, []string{"--config", writeFile(t, c.file)}, nil); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want %q", c.file, err, c.want)
		}
	}
}

func TestAuthValidate(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--access", "a=login"}, "needs auth-users or auth-oidc-issuer"},
		{[]string{"--access", "a=login", "--auth-profile", "kiosk"}, "needs auth-kiosk-networks"},
		{[]string{"--access", "a=login", "--auth-profile", "external"}, "needs auth-external-cookie or auth-external-header"},
		{[]string{"--access", "a=login", "--auth-profile", "magic"}, "not active, kiosk or external"},
		{[]string{"--access", "a=login", "--auth-oidc-issuer", "ftp://x"}, "not an http(s) URL"},
		{[]string{"--access", "a=login", "--auth-users", "u", "--auth-token-ttl", "0s"}, "must be positive"},
		{[]string{"--access", "a=public", "--auth-profile", "magic"}, ""}, // nothing restricted, nothing checked
	} {
		cfg, err := load(t, c.args, nil)
		if err == nil {
			err = cfg.Validate()
		}
		if (c.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%v: error %v, want %q", c.args, err, c.want)
		}
	}
}

// FuzzParseAccessRule: a parsed rule prints back to itself, and its
// policy and max are consistent.
func FuzzParseAccessRule(f *testing.F) {
	for _, s := range []string{"restricted/**=login", "p/*=degraded:400", "a=public", "a=b=login", "=login", "x=degraded:-1", "x=degraded:99999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseAccessRule(s)
		if err != nil {
			return
		}
		if r.Match == "" || (r.Policy == PolicyDegraded) != (r.Max > 0) {
			t.Fatalf("%q: inconsistent rule %+v", s, r)
		}
		back, err := ParseAccessRule(r.String())
		if err != nil || back != r {
			t.Fatalf("%q: %+v prints as %q, which parses as %+v, %v", s, r, r.String(), back, err)
		}
	})
}
