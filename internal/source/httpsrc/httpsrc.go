// Package httpsrc is the HTTP(S) origin source: keys are paths under a base
// URL, objects are opened with HEAD and read with ranged GETs (RFC 9110
// Range, If-Match on the ETag so that a replaced object is never read half
// old, half new). An origin that answers a range request with the whole
// object (200 instead of 206) is remembered as one that ignores Range, and
// its objects are then downloaded once into the source cache and read
// from there. Origins cannot be listed: identifiers served from them need
// their extension.
package httpsrc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/iiifd/iiifd/internal/source"
	"github.com/iiifd/iiifd/internal/source/ranged"
	"github.com/iiifd/iiifd/internal/source/remote"
	"github.com/iiifd/iiifd/internal/source/spool"
)

// Config describes an origin.
type Config struct {
	// Base is the origin's URL prefix, http(s)://HOST[:PORT]/PATH/; keys
	// are appended to it, each segment percent-encoded.
	Base   string
	Policy remote.Policy
	Store  *ranged.Store
	Spool  *spool.Spool // nil: nothing is downloaded whole
	// UserAgent is sent with every request.
	UserAgent string
}

// Source reads images from an HTTP origin.
type Source struct {
	*remote.Objects
}

var _ source.Source = (*Source)(nil)

// New returns the source for cfg.
func New(cfg Config) (*Source, error) {
	u, err := ParseBase(cfg.Base)
	if err != nil {
		return nil, err
	}
	if err := cfg.Policy.Validate(); err != nil {
		return nil, err
	}
	if cfg.Store == nil {
		return nil, errors.New("httpsrc: no block store")
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "iiifd"
	}
	acc := &accessor{base: u, client: cfg.Policy.Client(nil), ua: cfg.UserAgent}
	objs := remote.New(remote.Config{
		Name: u.String(), Accessor: acc, Backend: remote.NewBackend(cfg.Policy),
		Store: cfg.Store, Spool: cfg.Spool,
	})
	return &Source{Objects: objs}, nil
}

// ParseBase checks an origin URL: http or https, a host, no query,
// fragment or credentials; the path gets a trailing slash.
func ParseBase(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("%q is not an http(s)://HOST/PATH/ URL", s)
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
		u.RawPath = ""
	}
	return u, nil
}

type accessor struct {
	base   *url.URL
	client *http.Client
	ua     string
}

// url returns the URL of key: every segment percent-encoded, so that no
// key can add a query, a fragment or leave the base path (keys are
// source.ValidKey: no "." or ".." segments).
func (a *accessor) url(key string) string {
	segs := strings.Split(key, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return a.base.String() + strings.Join(segs, "/")
}

func (a *accessor) do(ctx context.Context, method, key string, h http.Header) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, a.url(key), nil)
	if err != nil {
		return nil, err
	}
	for k, v := range h {
		req.Header[k] = v
	}
	req.Header.Set("User-Agent", a.ua)
	return a.client.Do(req)
}

func (a *accessor) Head(ctx context.Context, key string) (remote.Meta, error) {
	resp, err := a.do(ctx, http.MethodHead, key, nil)
	if err != nil {
		return remote.Meta{}, err
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusMethodNotAllowed || resp.StatusCode == http.StatusNotImplemented {
		return a.headByGet(ctx, key)
	}
	if err := remote.CheckStatus("HEAD", resp.StatusCode, http.StatusOK); err != nil {
		return remote.Meta{}, err
	}
	if resp.ContentLength < 0 {
		return a.headByGet(ctx, key)
	}
	return meta(resp, resp.ContentLength), nil
}

// headByGet learns the size from the Content-Range of a one-byte range,
// for origins that refuse HEAD or do not say the length.
func (a *accessor) headByGet(ctx context.Context, key string) (remote.Meta, error) {
	resp, err := a.do(ctx, http.MethodGet, key, http.Header{"Range": {"bytes=0-0"}})
	if err != nil {
		return remote.Meta{}, err
	}
	defer resp.Body.Close()
	if err := remote.CheckStatus("GET", resp.StatusCode, http.StatusPartialContent); err != nil {
		return remote.Meta{}, err
	}
	_, total, ok := strings.Cut(resp.Header.Get("Content-Range"), "/")
	size, err := strconv.ParseInt(total, 10, 64)
	if !ok || err != nil || size < 0 {
		return remote.Meta{}, fmt.Errorf("GET: no object size in Content-Range %q", resp.Header.Get("Content-Range"))
	}
	return meta(resp, size), nil
}

func meta(resp *http.Response, size int64) remote.Meta {
	m := remote.Meta{Size: size, ETag: resp.Header.Get("ETag")}
	if t, err := http.ParseTime(resp.Header.Get("Last-Modified")); err == nil {
		m.ModTime = t.UTC()
	}
	return m
}

// conditions are the headers that make a read fail rather than return
// bytes of another version than m.
func conditions(m remote.Meta) http.Header {
	h := http.Header{}
	if m.ETag != "" && !strings.HasPrefix(m.ETag, "W/") {
		h.Set("If-Match", m.ETag)
	} else if !m.ModTime.IsZero() {
		h.Set("If-Unmodified-Since", m.ModTime.Format(http.TimeFormat))
	}
	return h
}

func (a *accessor) Range(ctx context.Context, key string, m remote.Meta, off int64, p []byte) error {
	h := conditions(m)
	h.Set("Range", fmt.Sprintf("bytes=%d-%d", off, off+int64(len(p))-1))
	resp, err := a.do(ctx, http.MethodGet, key, h)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusPartialContent:
		var start, end int64
		if _, err := fmt.Sscanf(resp.Header.Get("Content-Range"), "bytes %d-%d/", &start, &end); err != nil || start != off || end != off+int64(len(p))-1 {
			return fmt.Errorf("GET: Content-Range %q for bytes %d-%d", resp.Header.Get("Content-Range"), off, off+int64(len(p))-1)
		}
	case http.StatusOK:
		if off != 0 || int64(len(p)) != m.Size {
			return remote.ErrNoRanges
		}
	case http.StatusRequestedRangeNotSatisfiable:
		return fmt.Errorf("%w: range not satisfiable", remote.ErrChanged)
	default:
		return remote.CheckStatus("GET", resp.StatusCode)
	}
	if _, err := io.ReadFull(resp.Body, p); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("GET: %w", err)
	}
	return nil
}

func (a *accessor) Whole(ctx context.Context, key string, m remote.Meta, w io.Writer) error {
	resp, err := a.do(ctx, http.MethodGet, key, conditions(m))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := remote.CheckStatus("GET", resp.StatusCode, http.StatusOK); err != nil {
		return err
	}
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return fmt.Errorf("GET: %w", err)
	}
	if n != m.Size {
		return fmt.Errorf("GET: %w: %d of %d bytes", io.ErrUnexpectedEOF, n, m.Size)
	}
	return nil
}

// Start opens key with a GET of its first n bytes.
func (a *accessor) Start(ctx context.Context, key string, n int) (remote.Meta, []byte, error) {
	resp, err := a.do(ctx, http.MethodGet, key, http.Header{"Range": {fmt.Sprintf("bytes=0-%d", n-1)}})
	if err != nil {
		return remote.Meta{}, nil, err
	}
	defer resp.Body.Close()
	var size int64
	switch resp.StatusCode {
	case http.StatusPartialContent:
		var end int64
		if _, err := fmt.Sscanf(resp.Header.Get("Content-Range"), "bytes 0-%d/%d", &end, &size); err != nil || end >= size || end >= int64(n) {
			return remote.Meta{}, nil, fmt.Errorf("GET: Content-Range %q for bytes 0-%d", resp.Header.Get("Content-Range"), n-1)
		}
	case http.StatusOK:
		// The whole object: fine if it is small, else the origin
		// ignores Range.
		if resp.ContentLength < 0 || resp.ContentLength > int64(n) {
			return remote.Meta{}, nil, remote.ErrNoRanges
		}
		size = resp.ContentLength
	case http.StatusRequestedRangeNotSatisfiable:
		// An empty object.
		m, err := a.Head(ctx, key)
		return m, nil, err
	default:
		return remote.Meta{}, nil, remote.CheckStatus("GET", resp.StatusCode)
	}
	data := make([]byte, min(size, int64(n)))
	if _, err := io.ReadFull(resp.Body, data); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return remote.Meta{}, nil, fmt.Errorf("GET: %w", err)
	}
	return meta(resp, size), data, nil
}
