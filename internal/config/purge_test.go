package config

import (
	"slices"
	"testing"
)

// TestPurgeSettings: --purge-url repeats on the command line and takes a
// comma-separated list from the environment; the CDN settings come in
// pairs.
func TestPurgeSettings(t *testing.T) {
	c, err := load(t, []string{"--purge-url", "http://a/", "--purge-url", "http://b/,http://c/"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"http://a/", "http://b/", "http://c/"}; !slices.Equal(c.Purge.URLs, want) {
		t.Errorf("flags: %q, want %q", c.Purge.URLs, want)
	}
	c, err = load(t, nil, map[string]string{
		"IIIFD_PURGE_URL":              "http://v1:80/, http://v2:80/",
		"IIIFD_PURGE_FASTLY_SERVICE":   "svc",
		"IIIFD_PURGE_FASTLY_TOKEN":     "tok",
		"IIIFD_PURGE_CLOUDFLARE_ZONE":  "zone",
		"IIIFD_PURGE_CLOUDFLARE_TOKEN": "tok2",
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"http://v1:80/", "http://v2:80/"}; !slices.Equal(c.Purge.URLs, want) || c.Purge.FastlyToken != "tok" || c.Purge.CloudflareZone != "zone" {
		t.Errorf("environment: %+v", c.Purge)
	}
	for _, args := range [][]string{
		{"--purge-url", "varnish:80"},
		{"--purge-fastly-service", "svc"},
		{"--purge-cloudflare-token", "tok"},
	} {
		if _, err := load(t, args, nil); err == nil {
			t.Errorf("%q accepted", args)
		}
	}
}
