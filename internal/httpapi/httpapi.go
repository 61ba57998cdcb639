// Package httpapi is the HTTP edge of iiifd: routes, middleware (request
// ids, panics, access logs, CORS), conditional requests, and the one place
// where errors become status codes and public messages.
package httpapi

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/iiifd/iiifd/internal/fault"
	"github.com/iiifd/iiifd/internal/iiif"
	"github.com/iiifd/iiifd/internal/limit"
	"github.com/iiifd/iiifd/internal/purge"
	"github.com/iiifd/iiifd/internal/resolve"
	"github.com/iiifd/iiifd/internal/service"
)

// Images is the pipeline the handlers call.
type Images interface {
	Info(ctx context.Context, v iiif.Version, id, base string) (*service.Info, error)
	Image(ctx context.Context, id string, req iiif.Request) (*service.Job, error)
	Purge(ctx context.Context, id string) error
	// Peek returns the bytes of an entry a Job held (see Job.Held) while
	// the memory tier still has them.
	Peek(h service.Held) ([]byte, bool)
}

// Options configure the handler.
type Options struct {
	// BaseURL is the public URL of the server (before /iiif/); empty
	// derives it from each request.
	BaseURL string
	// CacheControl is sent with successful image responses, and
	// InfoCacheControl with info.json.
	CacheControl, InfoCacheControl string
	Logger                         *slog.Logger
	// Ready reports whether the server takes traffic (/readyz); nil means
	// always.
	Ready func() bool
	// AdminToken, when set, enables the admin routes for requests that
	// carry it as a bearer token.
	AdminToken string
	// Metrics, when set, is served at GET /metrics.
	Metrics http.Handler
	// Observe, when set, is told about every answered request (after
	// it is logged): its route (obs.Route), status, body bytes, duration
	// and X-Cache.
	Observe func(route string, status int, bytes int64, d time.Duration, xcache string)
	// ClientIPHeader, when set, names the header whose last
	// comma-separated value is the client's address (X-Forwarded-For
	// behind one trusted proxy); otherwise the peer's address is used.
	// The address is the client of the admission's per-client share.
	ClientIPHeader string
	// ClientShares says the admission controller limits work per client,
	// which then needs each request's client address.
	ClientShares bool
	// Web, when set, serves every path no other route takes (the web
	// pages, assets, Presentation API documents and upload routes) and
	// /iiif/presentation/. It finds the public base URL of each request
	// with BaseURL.
	Web http.Handler
	// Private says responses depend on who asks (plugins authorize
	// requests): images and info.json are sent with Cache-Control
	// private and Vary: Authorization, Cookie, so that shared caches
	// never hand them to another client.
	Private bool
	// Vary, when set, says what responses depend on besides the request
	// and credentials (overlay plugins that declared client fields):
	// header names to add to Vary, and whether only the client may keep
	// them (Cache-Control private, as with Private).
	Vary func() (vary string, private bool)
	// Plugins says WebAssembly plugins are loaded: requests then carry
	// the facts of their client (method, headers, address) for the hooks.
	Plugins bool
	// RequestTimeout bounds the work of each request: when it passes,
	// the request's context ends, the pipeline stops, and the client
	// gets a 503. Zero means no bound.
	RequestTimeout time.Duration
	// HotFor is how long an image request answered from the memory tier
	// is answered again without the pipeline (see hotRequests): no longer
	// than the sources reuse an object's metadata. Zero turns it off; it
	// is always off with plugins.
	HotFor time.Duration
	// CDN, when set, purges the shared caches in front of the server
	// (Varnish, Fastly, Cloudflare) by the identifier's tag after
	// DELETE /admin/cache/{identifier} purged the server's own tiers.
	CDN interface {
		Purge(ctx context.Context, id string) error
	}
}

// hotEntries bounds the remembered request lines (a few hundred bytes
// each).
const hotEntries = 8192

// clientIP is the address of the client of r: the peer, or the last value
// of the configured forwarding header.
func (h *Handler) clientIP(r *http.Request) string {
	if h.opt.ClientIPHeader != "" {
		if v := r.Header.Values(h.opt.ClientIPHeader); len(v) > 0 {
			last := v[len(v)-1]
			if i := strings.LastIndexByte(last, ','); i >= 0 {
				last = last[i+1:]
			}
			if last = strings.TrimSpace(last); last != "" {
				return last
			}
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// Handler serves the IIIF routes and the health check.
type Handler struct {
	images Images
	opt    Options
	log    *slog.Logger
	mux    *http.ServeMux
	hot    *hotRequests // nil when off
}

// New returns the HTTP handler of the server, middleware included.
func New(images Images, opt Options) http.Handler {
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	opt.BaseURL = strings.TrimSuffix(opt.BaseURL, "/")
	h := &Handler{images: images, opt: opt, log: opt.Logger, mux: http.NewServeMux()}
	if !opt.Plugins {
		h.hot = newHotRequests(opt.HotFor, hotEntries)
	}
	h.mux.HandleFunc("/iiif/", h.serveIIIF)
	h.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		plain(w, http.StatusOK, "ok")
	})
	if opt.AdminToken != "" {
		h.mux.HandleFunc("DELETE /admin/cache/", h.purge)
	}
	h.mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if opt.Ready != nil && !opt.Ready() {
			plain(w, http.StatusServiceUnavailable, "not ready: shutting down")
			return
		}
		plain(w, http.StatusOK, "ready")
	})
	if opt.Metrics != nil {
		h.mux.Handle("GET /metrics", opt.Metrics)
	}
	if opt.Web != nil {
		web := h.withBase(opt.Web)
		h.mux.Handle("/", web)
		h.mux.Handle("/iiif/presentation/", web)
	}
	// Remembered request lines are answered before routing (each went
	// through the mux to serveImage when it was remembered) and without
	// a deadline: they only copy bytes held in memory.
	var fast func(http.ResponseWriter, *http.Request) bool
	if h.hot != nil {
		fast = func(w http.ResponseWriter, r *http.Request) bool { return h.hot.serve(h, w, r) }
	}
	return &front{h: h, Handler: wrap(h.log, opt.Observe, fast, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d := opt.RequestTimeout; d > 0 {
			ctx, cancel := context.WithTimeout(r.Context(), d)
			defer cancel()
			r = r.WithContext(ctx)
		}
		h.mux.ServeHTTP(w, r)
	}))}
}

// purge serves DELETE /admin/cache/{identifier}: every cached derivative
// and the info.json of the identifier go, in every tier.
func (h *Handler) purge(w http.ResponseWriter, r *http.Request) {
	if err := CheckAdminToken(r, h.opt.AdminToken); err != nil {
		h.fail(w, r, err)
		return
	}
	id, err := url.PathUnescape(strings.TrimPrefix(r.URL.EscapedPath(), "/admin/cache/"))
	if err != nil || id == "" {
		h.fail(w, r, fault.New(fault.BadRequest, "give the identifier to purge: DELETE /admin/cache/{identifier}"))
		return
	}
	err = h.images.Purge(r.Context(), id)
	// The purge took the bytes from the memory tier, which alone sends
	// remembered requests back through the pipeline; forgetting them
	// too frees their memory now.
	h.hot.forget()
	if err != nil {
		h.fail(w, r, err)
		return
	}
	// The shared caches in front go last: purged first, they could
	// fetch the old bytes again from this server's tiers.
	if h.opt.CDN != nil {
		if err := h.opt.CDN.Purge(r.Context(), id); err != nil {
			h.fail(w, r, err)
			return
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}

// plain writes a short uncacheable text answer (health checks).
func plain(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	fmt.Fprintln(w, msg)
}

// serveIIIF routes /iiif/{2|3}/... by hand rather than through ServeMux
// patterns, because identifiers may hold encoded slashes (%2F) that must
// stay inside one segment, and clients that do not encode them are served
// too: the parameters are always the last four segments.
func (h *Handler) serveIIIF(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodOptions {
		w.Header().Set("Allow", "GET, HEAD, OPTIONS")
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD, OPTIONS")
		h.fail(w, r, fault.New(fault.MethodNotAllowed, "method %s is not allowed; use GET or HEAD", r.Method))
		return
	}
	r = h.withClient(r)
	rest := strings.TrimPrefix(r.URL.EscapedPath(), "/iiif/")
	verStr, rest, _ := strings.Cut(rest, "/")
	var v iiif.Version
	switch verStr {
	case "3":
		v = iiif.V3
	case "2":
		v = iiif.V2
	default:
		h.fail(w, r, fault.New(fault.NotFound, "no such API version; use /iiif/3/ or /iiif/2/"))
		return
	}
	raw := strings.Split(rest, "/")
	segs := make([]string, len(raw))
	for i, s := range raw {
		u, err := url.PathUnescape(s)
		if err != nil {
			h.fail(w, r, fault.New(fault.BadRequest, "malformed percent-encoding in the URL path"))
			return
		}
		segs[i] = u
	}
	if len(segs) > 1 && segs[len(segs)-1] == "" {
		segs = segs[:len(segs)-1] // a trailing slash is forgiven
	}
	n := len(segs)
	switch {
	case n == 0 || segs[0] == "":
		h.fail(w, r, fault.New(fault.NotFound, "no identifier in the URL"))
	case n >= 2 && segs[n-1] == "info.json":
		h.serveInfo(w, r, v, strings.Join(segs[:n-1], "/"))
	case n >= 5:
		// An image request; an identifier with unencoded slashes is
		// everything before the last four segments.
		h.serveImage(w, r, v, strings.Join(segs[:n-4], "/"), segs[n-4], segs[n-3], segs[n-2], segs[n-1])
	default:
		// The base URI of an image redirects to its info.json.
		id := strings.Join(segs, "/")
		if !resolve.ValidIdentifier(id) {
			h.fail(w, r, resolve.ErrInvalidIdentifier)
			return
		}
		h.varyForwarded(w.Header())
		w.Header().Set("Location", service.ServiceID(h.base(r), v, id)+"/info.json")
		w.WriteHeader(http.StatusSeeOther)
	}
}

func (h *Handler) serveInfo(w http.ResponseWriter, r *http.Request, v iiif.Version, id string) {
	info, err := h.images.Info(r.Context(), v, id, h.base(r))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", infoContentType(v, r.Header.Get("Accept")))
	hd.Add("Vary", "Accept")
	h.varyForwarded(hd)
	hd.Set("Link", fmt.Sprintf("<%s>;rel=\"profile\"", iiif.ProfileURI(v)))
	cacheTags(hd, id)
	validators(hd, info.ETag, info.ModTime, h.opt.InfoCacheControl)
	h.private(hd)
	if status := preconditions(r, info.ETag, info.ModTime); status != 0 {
		w.WriteHeader(status)
		return
	}
	hd.Set("Content-Length", strconv.Itoa(len(info.Body)))
	hd.Set("X-Cache", info.CacheStatus)
	if r.Method == http.MethodHead {
		return
	}
	w.Write(info.Body)
}

// infoContentType negotiates JSON-LD. Version 3 (§5.1) answers JSON-LD
// with the context as profile unless the client asks for plain JSON only;
// version 2.1 (§5.1) must answer application/json unless the client asks
// for JSON-LD.
func infoContentType(v iiif.Version, accept string) string {
	var ld, plain bool
	for _, part := range strings.Split(accept, ",") {
		mt, params, _ := strings.Cut(part, ";")
		if refused(params) {
			continue
		}
		switch strings.ToLower(strings.TrimSpace(mt)) {
		case "application/ld+json":
			ld = true
		case "application/json":
			plain = true
		}
	}
	switch {
	case ld:
		return iiif.JSONLDMediaType(v)
	case v == iiif.V3 && !plain:
		return iiif.MediaTypeJSONLD3
	}
	return iiif.MediaTypeJSON
}

// refused reports whether media-type parameters carry q=0, which RFC 9110
// §12.4.2 defines as "not acceptable".
func refused(params string) bool {
	for _, p := range strings.Split(params, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		if strings.EqualFold(k, "q") {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return err == nil && f == 0
		}
	}
	return false
}

func (h *Handler) serveImage(w http.ResponseWriter, r *http.Request, v iiif.Version, id, region, size, rotation, qf string) {
	req, err := iiif.ParseImage(v, region, size, rotation, qf)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	job, err := h.images.Image(r.Context(), id, req)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	defer job.Close()
	base := h.base(r)
	hd := w.Header()
	hd.Set("Content-Type", job.ContentType)
	hd.Set("Link", "<"+service.ServiceID(base, v, id)+"/"+job.Canonical+">;rel=\"canonical\", <"+iiif.ProfileURI(v)+">;rel=\"profile\"")
	hd.Set("X-Content-Type-Options", "nosniff")
	cacheTags(hd, id)
	h.varyForwarded(hd)
	validators(hd, job.ETag, job.ModTime, h.opt.CacheControl)
	h.private(hd)
	if status := preconditions(r, job.ETag, job.ModTime); status != 0 {
		w.WriteHeader(status)
		return
	}
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return
	}
	cw := &committingWriter{w: w, before: func() {
		hd.Set("X-Cache", job.CacheStatus)
		if job.Size > 0 {
			// A known length spares chunked encoding: fewer writes.
			hd.Set("Content-Length", strconv.FormatInt(job.Size, 10))
		}
	}}
	ctx := r.Context()
	if h.opt.ClientShares {
		ctx = limit.WithClient(ctx, h.clientIP(r))
	}
	if err := job.Render(ctx, cw); err != nil {
		if !cw.started {
			hd.Del("ETag")
			hd.Del("Last-Modified")
			hd.Del("Cache-Control")
			hd.Del("Link")
			h.fail(w, r, err)
			return
		}
		// The status line is gone; abort the connection so that the client
		// sees a broken response rather than a short image it might cache.
		// A client that hung up (viewers cancel tiles all the time while
		// panning) is not a fault of ours.
		if r.Context().Err() == nil && !cw.writeFailed {
			logFailure(h.log, r, err)
		}
		panic(http.ErrAbortHandler)
	}
	h.hot.remember(r, base, job, hd)
}

// committingWriter records whether any byte reached the client, after
// which an error can no longer change the status.
type committingWriter struct {
	w           http.ResponseWriter
	before      func() // sets headers known only once the body starts
	started     bool
	writeFailed bool // the client connection failed
}

func (c *committingWriter) Write(p []byte) (int, error) {
	if len(p) > 0 && !c.started {
		c.started = true
		if c.before != nil {
			c.before()
		}
	}
	n, err := c.w.Write(p)
	if err != nil {
		c.writeFailed = true
	}
	return n, err
}

// cacheTags tags a response about image id for shared caches: Varnish
// (xkey, fed from Surrogate-Key by its VCL) and Fastly read
// Surrogate-Key, Cloudflare reads Cache-Tag. A purge of id (Options.CDN)
// then removes every URL of the image at once.
func cacheTags(hd http.Header, id string) {
	tag := []string{purge.Tag(id)}
	hd["Surrogate-Key"] = tag
	hd["Cache-Tag"] = tag
}

func validators(hd http.Header, etag string, mod time.Time, cacheControl string) {
	hd.Set("ETag", etag)
	if !mod.IsZero() {
		hd.Set("Last-Modified", mod.UTC().Format(http.TimeFormat))
	}
	if cacheControl != "" {
		hd.Set("Cache-Control", cacheControl)
	}
}

// private marks a response as depending on the client's credentials.
func (h *Handler) private(hd http.Header) {
	private := h.opt.Private
	if h.opt.Vary != nil {
		vary, p := h.opt.Vary()
		if vary != "" {
			hd.Add("Vary", vary)
		}
		private = private || p
	}
	if private {
		hd.Set("Cache-Control", "private, no-cache")
		hd.Add("Vary", "Authorization, Cookie")
	}
}

// preconditions evaluates the conditional headers of a GET or HEAD in the
// order of RFC 9110 §13.2.2 and returns 412 or 304 when one decides the
// response, 0 when the full response is due.
func preconditions(r *http.Request, etag string, mod time.Time) int {
	mod = mod.Truncate(time.Second)
	if im := headerValue(r.Header, "If-Match"); im != "" {
		// Strong comparison (§13.1.1).
		if !matchETag(im, etag, false) {
			return http.StatusPreconditionFailed
		}
	} else if ius := headerValue(r.Header, "If-Unmodified-Since"); ius != "" && !mod.IsZero() {
		if t, err := http.ParseTime(ius); err == nil && mod.After(t) {
			return http.StatusPreconditionFailed
		}
	}
	if inm := headerValue(r.Header, "If-None-Match"); inm != "" {
		// Weak comparison (§13.1.2); If-Modified-Since is then ignored.
		if matchETag(inm, etag, true) {
			return http.StatusNotModified
		}
		return 0
	}
	if ims := headerValue(r.Header, "If-Modified-Since"); ims != "" && !mod.IsZero() {
		if t, err := http.ParseTime(ims); err == nil && !mod.After(t) {
			return http.StatusNotModified
		}
	}
	return 0
}

// matchETag reports whether the list of entity tags in a conditional
// header matches etag ("*" matches any).
func matchETag(list, etag string, weak bool) bool {
	for _, t := range strings.Split(list, ",") {
		t = strings.TrimSpace(t)
		if t == "*" {
			return true
		}
		if weak {
			t = strings.TrimPrefix(t, "W/")
		}
		if t == etag {
			return true
		}
	}
	return false
}

// varyForwarded declares that a response built from the request's own
// address varies with the forwarding headers, so that a shared cache
// never serves ids made from one client's headers to another client.
func (h *Handler) varyForwarded(hd http.Header) {
	if h.opt.BaseURL == "" {
		hd.Add("Vary", "X-Forwarded-Proto, X-Forwarded-Host, X-Forwarded-Prefix")
	}
}

// base returns the public URL of the server for r: the configured one, or
// one built from X-Forwarded-Proto/Host/Prefix and Host.
func (h *Handler) base(r *http.Request) string {
	if h.opt.BaseURL != "" {
		return h.opt.BaseURL
	}
	scheme, host, prefix := baseParts(r)
	return scheme + "://" + host + prefix
}

// sameBase reports whether base is the public URL of the server for r,
// without building it.
func (h *Handler) sameBase(r *http.Request, base string) bool {
	var scheme, host, prefix string
	if h.opt.BaseURL == "" {
		scheme, host, prefix = baseParts(r)
	}
	return h.sameBaseOf(base, scheme, host, prefix)
}

// sameBaseOf reports whether base is the public URL of the server for a
// request whose own base URL has these parts (not needed, and not
// looked at, when the base URL is configured).
func (h *Handler) sameBaseOf(base, scheme, host, prefix string) bool {
	if h.opt.BaseURL != "" {
		return base == h.opt.BaseURL
	}
	rest, ok := strings.CutPrefix(base, scheme)
	if !ok {
		return false
	}
	if rest, ok = strings.CutPrefix(rest, "://"); !ok {
		return false
	}
	rest, ok = strings.CutPrefix(rest, host)
	return ok && rest == prefix
}

// baseParts are the scheme, host and path prefix of the public URL of
// the server for r, from the request and its forwarding headers.
func baseParts(r *http.Request) (scheme, host, prefix string) {
	return basePartsOf(r.TLS != nil, r.Host, headerValue(r.Header, "X-Forwarded-Proto"),
		headerValue(r.Header, "X-Forwarded-Host"), headerValue(r.Header, "X-Forwarded-Prefix"))
}

// basePartsOf is baseParts from the facts of a request: whether it came
// over TLS, its Host, and its first X-Forwarded-Proto, -Host and -Prefix
// values.
func basePartsOf(tls bool, reqHost, fproto, fhost, fprefix string) (scheme, host, prefix string) {
	scheme = "http"
	if tls {
		scheme = "https"
	}
	if p := firstValue(fproto); p == "http" || p == "https" {
		scheme = p
	}
	host = reqHost
	if fh := firstValue(fhost); fh != "" && validHost(fh) {
		host = fh
	}
	if !validHost(host) {
		host = "localhost"
	}
	prefix = strings.TrimSuffix(firstValue(fprefix), "/")
	if !validPrefix(prefix) {
		prefix = ""
	}
	return scheme, host, prefix
}

// headerValue is h.Get for a key already in canonical form (as request
// headers are stored), without canonicalizing it again on every call.
func headerValue(h http.Header, canonicalKey string) string {
	if v := h[canonicalKey]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// validPrefix accepts an absolute URL path of RFC 3986 path characters (no
// query, fragment, quotes or angle brackets), or the empty prefix.
func validPrefix(p string) bool {
	if p == "" {
		return true
	}
	if !strings.HasPrefix(p, "/") || strings.Contains(p, "//") || len(p) > 512 {
		return false
	}
	for _, c := range p {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.ContainsRune("/-._~%!$&'()*+,;=:@", c):
		default:
			return false
		}
	}
	return true
}

func firstValue(s string) string {
	s, _, _ = strings.Cut(s, ",")
	return strings.TrimSpace(s)
}

// validHost accepts host[:port] made of the characters a host can have,
// so that a forged header cannot inject markup or a second URL into ids.
func validHost(h string) bool {
	if h == "" || len(h) > 255 {
		return false
	}
	for _, c := range h {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.ContainsRune(".-:[]_", c):
		default:
			return false
		}
	}
	return true
}

// fail writes err as a response: its status and public message. Internal
// errors are logged with their cause and shown only as a generic message.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	status, msg := fault.Response(err)
	switch {
	case status == http.StatusServiceUnavailable:
		// Refusals under overload are expected and counted in the
		// metrics; logging each as an error would flood the log when it
		// matters most.
		h.log.LogAttrs(r.Context(), slog.LevelDebug, "request refused",
			slog.String("request_id", RequestID(r.Context())), slog.String("reason", msg))
	case status >= 500:
		logFailure(h.log, r, err)
	}
	hd := w.Header()
	fault.SetHeader(hd, err, status)
	hd.Set("Content-Type", "text/plain; charset=utf-8")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		text := http.StatusText(status)
		if status == statusClientClosed {
			text = "Client Closed Request"
		}
		fmt.Fprintf(w, "%d %s: %s\n", status, text, msg)
	}
}

// statusClientClosed is logged for requests whose client hung up.
const statusClientClosed = fault.StatusClientClosed

func logFailure(log *slog.Logger, r *http.Request, err error) {
	log.LogAttrs(r.Context(), slog.LevelError, "request failed",
		slog.String("request_id", RequestID(r.Context())),
		slog.String("path", r.URL.EscapedPath()),
		slog.String("error", fault.Detail(err)))
}

type baseKey struct{}

// withClient tells plugins' hooks who asks, on the IIIF routes and the
// web front alike (the viewer and manifests read info.json too); without
// plugins nobody asks, and nothing is allocated.
func (h *Handler) withClient(r *http.Request) *http.Request {
	if !h.opt.Plugins {
		return r
	}
	return r.WithContext(service.WithClient(r.Context(), &service.Client{Method: r.Method, Header: r.Header, Addr: r.RemoteAddr}))
}

// withBase gives next the public base URL of each request (BaseURL) and
// marks responses as varying with the headers it comes from.
func (h *Handler) withBase(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.varyForwarded(w.Header())
		r = h.withClient(r)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), baseKey{}, h.base(r))))
	})
}

// BaseURL returns the public base URL of the server (before /iiif/, no
// trailing slash) for a request served through Options.Web: --base-url,
// or what the request's Host and X-Forwarded-* headers say. Outside
// Options.Web it derives it from the Host header alone.
func BaseURL(r *http.Request) string {
	if b, ok := r.Context().Value(baseKey{}).(string); ok {
		return b
	}
	return (&Handler{}).base(r)
}
