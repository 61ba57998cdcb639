// Package edge is the IIIF Image API host of the edge worker: it takes a
// request (method, path, headers), reads images from a Store by range
// (an HTTP origin or an R2 bucket, implemented in JavaScript), keeps
// outputs in a Cache (the Workers Cache API), and answers as the native
// server does: the same routes, statuses, headers, canonical links and
// info.json, from the same pure packages (iiif, plan, probe, describe,
// tiles, source/pyramid, answer). It is pure Go without net/http, so that
// it builds for WebAssembly; cmd/iiifd-edge binds it to JavaScript.
//
// It serves IIIF level-0 tile directories and pyramidal TIFFs with JPEG
// tiles, reading only the stored tiles a request needs, and flat JPEG and
// PNG files up to Settings.MaxFlatBytes. Plugins, the web front,
// uploads, the admin routes and the other source formats stay with the
// native server.
package edge

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/iiifd/iiifd/internal/answer"
	"github.com/iiifd/iiifd/internal/describe"
	"github.com/iiifd/iiifd/internal/engine"
	"github.com/iiifd/iiifd/internal/fault"
	"github.com/iiifd/iiifd/internal/iiif"
	"github.com/iiifd/iiifd/internal/plan"
	"github.com/iiifd/iiifd/internal/resolve"
)

// Engine renders pixels: the subset of service.Engine the edge uses,
// implemented by the pure-Go engine.
type Engine interface {
	Render(ctx context.Context, in engine.Input, p *plan.Plan, w io.Writer) error
	RenderMosaic(ctx context.Context, m engine.Mosaic, p *plan.Plan, w io.Writer) error
	Formats() []iiif.Format
}

// Request is what the host needs of an HTTP request.
type Request struct {
	Method string
	// Path is the URL's path as sent, still percent-encoded.
	Path string
	// Origin is the scheme and host of the URL ("https://example.org"),
	// the base of ids when Settings.BaseURL is empty.
	Origin string
	// Header returns a request header by its canonical name, "" when
	// absent.
	Header func(canonicalKey string) string
}

// Response is the host's answer. Headers keep their order.
type Response struct {
	Status int
	Header [][2]string
	Body   []byte
}

// Get returns the value of the header named k, "" when absent.
func (r *Response) Get(k string) string {
	for _, h := range r.Header {
		if h[0] == k {
			return h[1]
		}
	}
	return ""
}

func (r *Response) set(k, v string) {
	for i, h := range r.Header {
		if h[0] == k {
			r.Header[i][1] = v
			return
		}
	}
	r.Header = append(r.Header, [2]string{k, v})
}

func (r *Response) del(ks ...string) {
	r.Header = slices.DeleteFunc(r.Header, func(h [2]string) bool { return slices.Contains(ks, h[0]) })
}

// Host answers IIIF requests.
type Host struct {
	set     Settings
	store   Store
	cache   Cache // nil: none
	eng     Engine
	formats []iiif.Format
	variant string
	heads   heads
}

// New returns a host serving from store with eng; cache may be nil.
func New(set Settings, store Store, cache Cache, eng Engine) *Host {
	return &Host{
		set: set, store: store, cache: cache, eng: eng, formats: eng.Formats(),
		// Everything besides the request and the source that output
		// bytes depend on, in every ETag and cache key.
		variant: "edge\x00jpeg=" + strconv.Itoa(set.JPEGQuality) + "\x00" + describe.LimitsKey(set.Limits),
	}
}

// Serve answers r. It never panics: a failure is a response.
func (h *Host) Serve(ctx context.Context, r Request) (resp *Response) {
	resp = &Response{Status: 200}
	id := r.Header("X-Request-Id")
	if !saneID(id) {
		var b [8]byte
		rand.Read(b[:])
		id = hex.EncodeToString(b[:])
	}
	resp.set("X-Request-Id", id)
	resp.set("Access-Control-Allow-Origin", answer.AllowOrigin)
	resp.set("Access-Control-Expose-Headers", answer.ExposeHeaders)
	if r.Method == "OPTIONS" {
		resp.set("Access-Control-Allow-Methods", answer.AllowMethods)
		if ah := r.Header("Access-Control-Request-Headers"); ah != "" {
			resp.set("Access-Control-Allow-Headers", ah)
		}
		resp.set("Access-Control-Max-Age", answer.MaxAge)
	}
	defer func() {
		if v := recover(); v != nil {
			resp.del("ETag", "Last-Modified", "Link", "Content-Length", "X-Cache")
			h.fail(resp, r, fault.Wrap(fault.Internal, fmt.Errorf("panic: %v", v), "internal server error"))
		}
	}()
	if !strings.HasPrefix(r.Path, "/iiif/") {
		h.fail(resp, r, fault.New(fault.NotFound, "not found; the IIIF Image API is under /iiif/3/ and /iiif/2/"))
		return resp
	}
	h.serveIIIF(ctx, resp, r)
	return resp
}

// serveIIIF routes /iiif/{2|3}/... as the native server does: the
// parameters are the last four segments, and identifiers may hold
// encoded slashes.
func (h *Host) serveIIIF(ctx context.Context, resp *Response, r Request) {
	if r.Method == "OPTIONS" {
		resp.set("Allow", "GET, HEAD, OPTIONS")
		resp.Status = 204
		return
	}
	if r.Method != "GET" && r.Method != "HEAD" {
		resp.set("Allow", "GET, HEAD, OPTIONS")
		h.fail(resp, r, fault.New(fault.MethodNotAllowed, "method %s is not allowed; use GET or HEAD", r.Method))
		return
	}
	rt, err := answer.ParseRoute(strings.TrimPrefix(r.Path, "/iiif/"))
	if err != nil {
		h.fail(resp, r, err)
		return
	}
	switch rt.Kind {
	case answer.Info:
		h.serveInfo(ctx, resp, r, rt.Version, rt.ID)
	case answer.Image:
		h.serveImage(ctx, resp, r, rt.Version, rt.ID, rt.Region, rt.Size, rt.Rotation, rt.QualityFormat)
	default:
		if !resolve.ValidIdentifier(rt.ID) {
			h.fail(resp, r, resolve.ErrInvalidIdentifier)
			return
		}
		resp.set("Location", iiif.ServiceID(h.base(r), rt.Version, rt.ID)+"/info.json")
		resp.Status = 303
	}
}

func (h *Host) base(r Request) string {
	if h.set.BaseURL != "" {
		return h.set.BaseURL
	}
	return strings.TrimSuffix(r.Origin, "/")
}

func (h *Host) serveInfo(ctx context.Context, resp *Response, r Request, v iiif.Version, id string) {
	src, err := h.open(ctx, id)
	if err != nil {
		h.fail(resp, r, err)
		return
	}
	hdr, err := h.describe(ctx, src)
	if err != nil {
		h.fail(resp, r, err)
		return
	}
	body, err := iiif.MarshalInfo(v, describe.ImageInfo(iiif.ServiceID(h.base(r), v, id), hdr, h.set.Limits, h.set.TileSize, h.formats))
	if err != nil {
		h.fail(resp, r, fault.Wrap(fault.Internal, err, "info.json could not be written"))
		return
	}
	obj := src.obj
	etag := describe.ETag("info", strconv.Itoa(int(v)), id, obj.Key, obj.Version, h.variant, strconv.Itoa(h.set.TileSize))
	resp.set("Content-Type", answer.InfoContentType(v, r.Header("Accept")))
	resp.set("Vary", "Accept")
	resp.set("Link", answer.ProfileLink(v))
	h.validators(resp, etag, obj, h.set.InfoCacheControl)
	if status := answer.Preconditions(r.Header, etag, obj.ModTime); status != 0 {
		resp.Status = status
		return
	}
	resp.set("Content-Length", strconv.Itoa(len(body)))
	resp.set("X-Cache", "MISS")
	if r.Method != "HEAD" {
		resp.Body = body
	}
}

func (h *Host) validators(resp *Response, etag string, obj Object, cacheControl string) {
	resp.set("ETag", etag)
	if !obj.ModTime.IsZero() {
		resp.set("Last-Modified", obj.ModTime.UTC().Format(answer.TimeFormat))
	}
	resp.set("Cache-Control", cacheControl)
}

func (h *Host) serveImage(ctx context.Context, resp *Response, r Request, v iiif.Version, id, region, size, rotation, qf string) {
	req, err := iiif.ParseImage(v, region, size, rotation, qf)
	if err != nil {
		h.fail(resp, r, err)
		return
	}
	if !slices.Contains(h.formats, req.Format) {
		h.fail(resp, r, fault.New(fault.BadRequest, "format: %q is not supported by this server; it can write %s", string(req.Format), formatList(h.formats)))
		return
	}
	src, err := h.open(ctx, id)
	if err != nil {
		h.fail(resp, r, err)
		return
	}
	hdr, err := h.describe(ctx, src)
	if err != nil {
		h.fail(resp, r, err)
		return
	}
	p, err := plan.Make(req, hdr.Image, h.set.Limits)
	if err != nil {
		h.fail(resp, r, err)
		return
	}
	canon := p.Canonical.String()
	obj := src.obj
	etag := describe.ETag("image", obj.Key, canon, obj.Version, h.variant)
	resp.set("Content-Type", engine.ContentType(req.Format))
	resp.set("Link", answer.ImageLink(iiif.ServiceID(h.base(r), v, id), v, canon))
	resp.set("X-Content-Type-Options", "nosniff")
	h.validators(resp, etag, obj, h.set.CacheControl)
	if status := answer.Preconditions(r.Header, etag, obj.ModTime); status != 0 {
		resp.Status = status
		return
	}
	if r.Method == "HEAD" {
		return
	}
	body, xcache, err := h.produce(ctx, src, hdr, &p, etag)
	if err != nil {
		resp.del("ETag", "Last-Modified", "Cache-Control", "Link")
		h.fail(resp, r, err)
		return
	}
	resp.set("X-Cache", xcache)
	resp.set("Content-Length", strconv.Itoa(len(body)))
	resp.Body = body
}

// fail makes resp the answer to err: its status and public message, as
// the native server writes them.
func (h *Host) fail(resp *Response, r Request, err error) {
	status, msg := fault.Response(err)
	resp.Status = status
	resp.set("Content-Type", "text/plain; charset=utf-8")
	resp.set("Cache-Control", "no-store")
	resp.set("X-Content-Type-Options", "nosniff")
	resp.del("Content-Length", "X-Cache")
	if r.Method != "HEAD" {
		resp.Body = []byte(fmt.Sprintf("%d %s: %s\n", status, statusText(status), msg))
	} else {
		resp.Body = nil
	}
}

// statusText is net/http's StatusText for the statuses the host sends.
func statusText(code int) string {
	switch code {
	case 400:
		return "Bad Request"
	case 403:
		return "Forbidden"
	case 404:
		return "Not Found"
	case 405:
		return "Method Not Allowed"
	case 501:
		return "Not Implemented"
	case 502:
		return "Bad Gateway"
	case 503:
		return "Service Unavailable"
	case 504:
		return "Gateway Timeout"
	case fault.StatusClientClosed:
		return "Client Closed Request"
	}
	return "Internal Server Error"
}

func saneID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}
