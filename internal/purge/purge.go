// Package purge tags responses by the image they derive from and purges
// shared caches in front of the server (a Varnish with the xkey module,
// Fastly, Cloudflare) by that tag, so that one image's derivatives leave
// every cache in one request whatever URLs they were asked under.
//
// A tag is derived from the identifier by a hash rather than spelled out:
// identifiers may hold spaces, commas and any Unicode, which Surrogate-Key
// (space-separated) and Cache-Tag (comma-separated, case-insensitive)
// cannot carry, and a fixed-length tag keeps under every CDN's length
// limit.
package purge

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/iiifd/iiifd/internal/fault"
	"github.com/iiifd/iiifd/internal/resolve"
)

// TagPrefix starts every tag, so that iiifd's tags are told apart from
// other tags a CDN holds for the same site.
const TagPrefix = "iiifd-"

// Tag returns the cache tag of identifier id: TagPrefix and 32 lower-case
// hex digits of the SHA-256 of the identifier without its image file
// extension. It is sent in the Surrogate-Key and Cache-Tag headers of
// every response about the image and is what Purge removes.
//
// The extension goes because one image answers to both spellings
// ("photo" and "photo.tif" resolve to the same file), and a purge by
// either must reach the URLs of both. Two different files that differ
// only by extension share a tag, so purging one also purges the other
// from the shared caches: a wasted refetch, never a stale image.
func Tag(id string) string {
	if ext := path.Ext(id); ext != "" && resolve.ImageExtensions[strings.ToLower(ext[1:])] {
		id = strings.TrimSuffix(id, ext)
	}
	sum := sha256.Sum256([]byte(id))
	return TagPrefix + hex.EncodeToString(sum[:16])
}

// Target is one shared cache that can be purged by tag.
type Target interface {
	// Purge removes every object tagged tag.
	Purge(ctx context.Context, tag string) error
	// String names the target for errors and logs (never its secret).
	String() string
}

// Config lists the caches to purge.
type Config struct {
	// URLs are Varnish (xkey) purge endpoints: each purge is a request
	// PURGE URL with the header xkey-purge: TAG, which the VCL in
	// deploy/varnish turns into xkey.purge.
	URLs []string
	// FastlyService and FastlyToken enable Fastly's purge by surrogate
	// key (POST /service/{id}/purge/{key} with a Fastly-Key header).
	FastlyService, FastlyToken string
	// CloudflareZone and CloudflareToken enable Cloudflare's purge by
	// Cache-Tag (POST /zones/{zone}/purge_cache with {"tags": [...]}).
	CloudflareZone, CloudflareToken string
	// FastlyAPI and CloudflareAPI replace the public API base URLs
	// (tests and API gateways); empty means the public ones.
	FastlyAPI, CloudflareAPI string
	// Timeout bounds each purge request; zero means 10 seconds.
	Timeout time.Duration
	// Client sends the requests; nil means a client of its own.
	Client *http.Client
}

// Public API base URLs.
const (
	FastlyAPI     = "https://api.fastly.com"
	CloudflareAPI = "https://api.cloudflare.com/client/v4"
)

// Validate reports the first unusable setting, naming its flag.
func (c Config) Validate() error {
	var errs []error
	for _, u := range c.URLs {
		if err := checkURL(u); err != nil {
			errs = append(errs, fmt.Errorf("purge-url: %v", err))
		}
	}
	if (c.FastlyService == "") != (c.FastlyToken == "") {
		errs = append(errs, errors.New("purge-fastly-service, purge-fastly-token: give both or neither"))
	}
	if (c.CloudflareZone == "") != (c.CloudflareToken == "") {
		errs = append(errs, errors.New("purge-cloudflare-zone, purge-cloudflare-token: give both or neither"))
	}
	for _, s := range []string{c.FastlyService, c.CloudflareZone} {
		if strings.ContainsAny(s, "/?#% ") {
			errs = append(errs, fmt.Errorf("%q is not a Fastly service or Cloudflare zone id", s))
		}
	}
	for _, u := range []string{c.FastlyAPI, c.CloudflareAPI} {
		if u != "" {
			if err := checkURL(u); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if c.Timeout < 0 {
		errs = append(errs, errors.New("purge timeout: must not be negative"))
	}
	return errors.Join(errs...)
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Fragment != "" {
		return fmt.Errorf("%q is not an http(s) URL", s)
	}
	return nil
}

// Purger purges every configured target.
type Purger struct {
	targets []Target
}

// New builds the targets of cfg. A Purger with no targets purges nothing.
func New(cfg Config) (*Purger, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	client := cfg.Client
	if client == nil {
		client = &http.Client{}
	}
	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	h := sender{client: client, timeout: timeout}
	p := &Purger{}
	for _, u := range cfg.URLs {
		p.targets = append(p.targets, varnish{h, u})
	}
	if cfg.FastlyService != "" {
		api := cfg.FastlyAPI
		if api == "" {
			api = FastlyAPI
		}
		p.targets = append(p.targets, fastly{h, strings.TrimSuffix(api, "/"), cfg.FastlyService, cfg.FastlyToken})
	}
	if cfg.CloudflareZone != "" {
		api := cfg.CloudflareAPI
		if api == "" {
			api = CloudflareAPI
		}
		p.targets = append(p.targets, cloudflare{h, strings.TrimSuffix(api, "/"), cfg.CloudflareZone, cfg.CloudflareToken})
	}
	return p, nil
}

// Len is the number of targets.
func (p *Purger) Len() int { return len(p.targets) }

// Purge purges the tag of identifier id from every target, all at once.
// Every target is tried; the error names those that failed, as a 502
// (the shared caches, not the client, are at fault).
func (p *Purger) Purge(ctx context.Context, id string) error {
	if p == nil || len(p.targets) == 0 {
		return nil
	}
	tag := Tag(id)
	type result struct {
		name string
		err  error
	}
	results := make(chan result, len(p.targets))
	for _, t := range p.targets {
		go func() { results <- result{t.String(), t.Purge(ctx, tag)} }()
	}
	var errs []error
	var names []string
	for range p.targets {
		if r := <-results; r.err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", r.name, r.err))
			names = append(names, r.name)
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return fault.Wrap(fault.BadGateway, errors.Join(errs...), "the image left this server's caches, but purging %s failed", strings.Join(names, ", "))
}

// sender sends one purge request and checks its status.
type sender struct {
	client  *http.Client
	timeout time.Duration
}

func (s sender) send(ctx context.Context, method, u string, header http.Header, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(msg)))
	}
	return nil
}

// varnish purges through a Varnish whose VCL answers PURGE requests with
// xkey.purge of the xkey-purge header (deploy/varnish/default.vcl).
type varnish struct {
	s   sender
	url string
}

func (v varnish) Purge(ctx context.Context, tag string) error {
	return v.s.send(ctx, "PURGE", v.url, http.Header{"Xkey-Purge": {tag}}, nil)
}

func (v varnish) String() string { return "varnish " + v.url }

// fastly purges one surrogate key through Fastly's API.
type fastly struct {
	s             sender
	api, svc, tok string
}

func (f fastly) Purge(ctx context.Context, tag string) error {
	u := f.api + "/service/" + url.PathEscape(f.svc) + "/purge/" + url.PathEscape(tag)
	return f.s.send(ctx, http.MethodPost, u, http.Header{"Fastly-Key": {f.tok}, "Accept": {"application/json"}}, nil)
}

func (f fastly) String() string { return "fastly service " + f.svc }

// cloudflare purges one cache tag through Cloudflare's API.
type cloudflare struct {
	s              sender
	api, zone, tok string
}

func (c cloudflare) Purge(ctx context.Context, tag string) error {
	body, _ := json.Marshal(map[string][]string{"tags": {tag}})
	u := c.api + "/zones/" + url.PathEscape(c.zone) + "/purge_cache"
	return c.s.send(ctx, http.MethodPost, u, http.Header{
		"Authorization": {"Bearer " + c.tok}, "Content-Type": {"application/json"},
	}, body)
}

func (c cloudflare) String() string { return "cloudflare zone " + c.zone }
