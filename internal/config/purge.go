package config

import (
	"errors"
	"flag"
	"fmt"
	"net/url"
	"strings"
)

// Purge lists the shared caches in front of the server (CDNs, caching
// proxies) that DELETE /admin/cache/{identifier} purges by the image's
// tag, after the server's own tiers.
type Purge struct {
	// URLs are Varnish purge endpoints (xkey; see deploy/varnish).
	URLs []string
	// FastlyService and FastlyToken: Fastly's purge by surrogate key.
	FastlyService, FastlyToken string
	// CloudflareZone and CloudflareToken: Cloudflare's purge by
	// Cache-Tag.
	CloudflareZone, CloudflareToken string
}

func (p *Purge) validate() []error {
	var errs []error
	for _, s := range p.URLs {
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("purge-url: %q is not an http(s) URL", s))
		}
	}
	if (p.FastlyService == "") != (p.FastlyToken == "") {
		errs = append(errs, errors.New("purge-fastly-service, purge-fastly-token: give both or neither"))
	}
	if (p.CloudflareZone == "") != (p.CloudflareToken == "") {
		errs = append(errs, errors.New("purge-cloudflare-zone, purge-cloudflare-token: give both or neither"))
	}
	return errs
}

// bind registers the purge flags on fs.
func (p *Purge) bind(fs *flag.FlagSet) {
	fs.Var(urlList{&p.URLs}, "purge-url", "on DELETE /admin/cache/{identifier}, also purge this Varnish by the image's tag: a PURGE request with header xkey-purge (`URL`, repeatable; comma-separated in IIIFD_PURGE_URL)")
	fs.StringVar(&p.FastlyService, "purge-fastly-service", p.FastlyService, "on purge, also purge this Fastly `service` id by surrogate key (with --purge-fastly-token)")
	fs.StringVar(&p.FastlyToken, "purge-fastly-token", p.FastlyToken, "Fastly API `token` with purge rights (better set as IIIFD_PURGE_FASTLY_TOKEN)")
	fs.StringVar(&p.CloudflareZone, "purge-cloudflare-zone", p.CloudflareZone, "on purge, also purge this Cloudflare `zone` id by Cache-Tag (with --purge-cloudflare-token)")
	fs.StringVar(&p.CloudflareToken, "purge-cloudflare-token", p.CloudflareToken, "Cloudflare API `token` with the Cache Purge permission (better set as IIIFD_PURGE_CLOUDFLARE_TOKEN)")
}

// urlList is a repeatable flag of URLs; one setting may hold several,
// comma-separated, as an environment variable must.
type urlList struct{ urls *[]string }

func (v urlList) String() string {
	if v.urls == nil {
		return ""
	}
	return strings.Join(*v.urls, ",")
}

func (v urlList) Set(s string) error {
	for _, u := range strings.Split(s, ",") {
		if u = strings.TrimSpace(u); u != "" {
			*v.urls = append(*v.urls, u)
		}
	}
	return nil
}
