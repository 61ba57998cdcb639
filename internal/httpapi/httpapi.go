// Package httpapi is the HTTP edge of iiifd: routes, middleware (request
// ids, panics, access logs, CORS), conditional requests, and the one place
// where errors become status codes and public messages.
package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/iiifd/iiifd/internal/answer"
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
	// Peek returns the bytes of an entry a Result held (see Result.MemoryHit) while
	// the memory tier still has them.
	Peek(h service.MemoryHit) ([]byte, bool)
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
	// TrustForwarded lets every peer's X-Forwarded-Proto, -Host and
	// -Prefix make the base URL (when BaseURL is empty); TrustedProxies
	// lets only these peers' do. Without either, the base URL comes from
	// the Host header alone: anyone can send those headers, and ids,
	// redirects and pages built from them would point where a client
	// says.
	TrustForwarded bool
	TrustedProxies []netip.Prefix
	// Observe, when set, is told about every answered request (after
	// it is logged): its route (metrics.Route), status, body bytes, duration
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
	// Plugins says WebAssembly plugins are loaded: requests then carry
	// the facts of their client (method, headers, address) for the hooks.
	Plugins bool
	// RequestTimeout bounds the work of each request: when it passes,
	// the request's context ends, the pipeline stops, and the client
	// gets a 503. Zero means no bound.
	RequestTimeout time.Duration
	// WriteTimeout, when set, is the server's bound on writing a whole
	// response (http.Server.WriteTimeout): an image is sent at the
	// client's pace under a write deadline per chunk (RequestTimeout),
	// which replaces the server's; the chunks' deadlines never reach
	// past WriteTimeout from the start of the delivery.
	WriteTimeout time.Duration
	// HotFor is how long an image request answered from the memory tier
	// is answered again without the pipeline (see hotRequests): no longer
	// than the sources reuse an object's metadata. Zero turns it off; it
	// is always off with plugins.
	HotFor time.Duration
	// Auth, when set, serves the IIIF Authorization Flow API's services
	// under /auth/v2/; images are then restricted by identifier, so
	// requests carry their client's headers and none is answered
	// without the pipeline (HotFor is off).
	Auth http.Handler
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

// clientIP is the address of the client of r (see ClientIP).
func (h *Handler) clientIP(r *http.Request) string { return ClientIP(r, h.opt.ClientIPHeader) }

// ClientIP is the address of the client of r: the last value of the
// forwarding header when one is configured and present (the one the
// nearest proxy added), else the peer.
func ClientIP(r *http.Request, header string) string {
	if header != "" {
		if v := r.Header.Values(header); len(v) > 0 {
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
	if !opt.Plugins && opt.Auth == nil {
		h.hot = newHotRequests(opt.HotFor, hotEntries)
	}
	if opt.Auth != nil {
		h.mux.Handle("/auth/v2/", h.withBase(opt.Auth))
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
	return wrap(h.log, opt.Observe, fast, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d := opt.RequestTimeout; d > 0 {
			ctx, cancel := context.WithTimeout(r.Context(), d)
			defer cancel()
			r = r.WithContext(ctx)
		}
		h.mux.ServeHTTP(w, r)
	}))
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
	rt, err := answer.ParseRoute(strings.TrimPrefix(r.URL.EscapedPath(), "/iiif/"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	switch rt.Kind {
	case answer.Info:
		h.serveInfo(w, r, rt.Version, rt.ID)
	case answer.Image:
		h.serveImage(w, r, rt.Version, rt.ID, rt.Region, rt.Size, rt.Rotation, rt.QualityFormat)
	default:
		// The base URI of an image redirects to its info.json.
		if !resolve.ValidIdentifier(rt.ID) {
			h.fail(w, r, resolve.ErrInvalidIdentifier)
			return
		}
		h.varyForwarded(r, w.Header())
		w.Header().Set("Location", iiif.ServiceID(h.base(r), rt.Version, rt.ID)+"/info.json")
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
	h.varyForwarded(r, hd)
	hd.Set("Link", answer.ProfileLink(v))
	cacheTags(hd, id)
	validators(hd, info.ETag, info.ModTime, h.opt.InfoCacheControl)
	h.private(hd, info.Vary, info.ClientOnly)
	restricted(hd, info.Restricted)
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

// infoContentType negotiates JSON-LD (answer.InfoContentType).
func infoContentType(v iiif.Version, accept string) string { return answer.InfoContentType(v, accept) }

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
	hd.Set("Link", answer.ImageLink(iiif.ServiceID(base, v, id), v, job.Canonical))
	hd.Set("X-Content-Type-Options", "nosniff")
	cacheTags(hd, id)
	h.varyForwarded(r, hd)
	validators(hd, job.ETag, job.ModTime, h.opt.CacheControl)
	h.private(hd, job.Vary, job.ClientOnly)
	restricted(hd, job.Restricted)
	if status := preconditions(r, job.ETag, job.ModTime); status != 0 {
		w.WriteHeader(status)
		return
	}
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return
	}
	ctx := r.Context()
	if h.opt.ClientShares {
		ctx = limit.WithClient(ctx, h.clientIP(r))
	}
	// The image is complete before its status line is written: a render
	// that fails is a clean error status, never a 200 cut short.
	res, err := job.Render(ctx)
	job.Close()
	if err != nil {
		hd.Del("ETag")
		hd.Del("Last-Modified")
		hd.Del("Cache-Control")
		hd.Del("Link")
		h.fail(w, r, err)
		return
	}
	defer res.Close()
	hd.Set("X-Cache", res.CacheStatus)
	hd.Set("Content-Length", strconv.FormatInt(res.Size, 10))
	if err := h.deliver(w, res.Body(), res.Size, func() { res.Close() }); err != nil {
		// The status line is gone; abort the connection so that the client
		// sees a broken response rather than a short image it might cache.
		// A client that hung up or stalled (viewers cancel tiles all the
		// time while panning) is not a fault of ours.
		var we *writeError
		if !errors.As(err, &we) && r.Context().Err() == nil {
			logFailure(h.log, r, err)
		}
		panic(http.ErrAbortHandler)
	}
	h.hot.remember(r, base, job, res, hd)
}

// deliverChunk is the most bytes written to the client under one write
// deadline.
const deliverChunk = 64 << 10

// writeError is a failed write to the client, told apart from a failed
// read of the body.
type writeError struct{ err error }

func (e *writeError) Error() string { return "writing to the client: " + e.err.Error() }
func (e *writeError) Unwrap() error { return e.err }

// deliver sends the finished body at the client's pace. No worker slot
// and no render memory is held any more, but the connection, the
// goroutine and the body's buffer are: every chunk must be taken by the
// client within the request timeout (a write deadline, which the
// request's context does not give, as it does not stop a write), else
// the connection is dropped. The whole delivery is also bounded by the
// server's write timeout (Options.WriteTimeout). read is called once the body (of size bytes)
// has been read whole, before its last bytes are written: what the body
// held is given back by the time the client has them.
func (h *Handler) deliver(w http.ResponseWriter, body io.Reader, size int64, read func()) error {
	rc := http.NewResponseController(w)
	d := h.opt.RequestTimeout
	var end time.Time // the server's bound, which ours replaces
	if h.opt.WriteTimeout > 0 {
		end = time.Now().Add(h.opt.WriteTimeout)
	}
	deadline := func() {
		if d > 0 {
			t := time.Now().Add(d)
			if !end.IsZero() && t.After(end) {
				t = end
			}
			// ErrNotSupported (a writer without deadlines, as in tests)
			// leaves the server's write timeout alone in charge.
			_ = rc.SetWriteDeadline(t)
		}
	}
	buf := make([]byte, min(deliverChunk, max(size, 1)))
	var sent int64
	for {
		n, rerr := io.ReadFull(body, buf)
		sent += int64(n)
		if rerr == nil && sent >= size {
			// Read to the end: a cache tier's body commits its
			// promotion to the upper tiers there.
			var one [1]byte
			if _, err := io.ReadFull(body, one[:]); err != io.EOF {
				return fmt.Errorf("the body is longer than its %d bytes (%v)", size, err)
			}
			rerr = io.EOF
		}
		last := rerr == io.EOF || rerr == io.ErrUnexpectedEOF
		if last {
			read()
		}
		if n > 0 {
			deadline()
			if _, err := w.Write(buf[:n]); err != nil {
				return &writeError{err}
			}
		}
		switch {
		case last:
			if d > 0 {
				deadline()
				if err := rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
					return &writeError{err}
				}
				// Sent: the next response on this connection sets its
				// own deadline (the server's write timeout, if any).
				_ = rc.SetWriteDeadline(time.Time{})
			}
			return nil
		case rerr != nil:
			return rerr
		}
	}
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

// private marks a response as depending on the client's credentials
// (always, when authorization plugins may decide per client; or when the
// request's plugins say its answer is the client's only), and adds the
// header names the request's plugins make it vary with.
func (h *Handler) private(hd http.Header, vary string, clientOnly bool) {
	if vary != "" {
		hd.Add("Vary", vary)
	}
	if h.opt.Private || clientOnly {
		hd.Set("Cache-Control", "private, no-cache")
		hd.Add("Vary", "Authorization, Cookie")
	}
}

// restricted marks the answer about an image that an access rule
// restricts as the client's only: shared caches (a CDN) never keep it, so
// they never hand it to a client that may not see it.
func restricted(hd http.Header, is bool) {
	if is && hd.Get("Cache-Control") != "private, no-cache" {
		hd.Set("Cache-Control", "private, no-cache")
		hd.Add("Vary", "Authorization, Cookie")
	}
}

// preconditions evaluates the conditional headers of a GET or HEAD in the
// order of RFC 9110 §13.2.2 (answer.Preconditions) and returns 412 or 304
// when one decides the response, 0 when the full response is due.
func preconditions(r *http.Request, etag string, mod time.Time) int {
	return answer.Preconditions(func(k string) string { return headerValue(r.Header, k) }, etag, mod)
}

// varyForwarded declares that a response built from the request's own
// address varies with the forwarding headers, so that a shared cache
// never serves ids made from one client's headers to another client.
func (h *Handler) varyForwarded(r *http.Request, hd http.Header) {
	if h.opt.BaseURL == "" && h.forwardedTrusted(r) {
		hd.Add("Vary", "X-Forwarded-Proto, X-Forwarded-Host, X-Forwarded-Prefix")
	}
}

// base returns the public URL of the server for r: the configured one, or
// one built from Host and, from trusted peers, X-Forwarded-Proto/Host/Prefix.
func (h *Handler) base(r *http.Request) string {
	if h.opt.BaseURL != "" {
		return h.opt.BaseURL
	}
	scheme, host, prefix := h.baseParts(r)
	return scheme + "://" + host + prefix
}

// sameBase reports whether base is the public URL of the server for r,
// without building it.
func (h *Handler) sameBase(r *http.Request, base string) bool {
	var scheme, host, prefix string
	if h.opt.BaseURL == "" {
		scheme, host, prefix = h.baseParts(r)
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
// the server for r, from the request and, when its peer is trusted (see
// Options.TrustForwarded), its forwarding headers.
func (h *Handler) baseParts(r *http.Request) (scheme, host, prefix string) {
	if !h.forwardedTrusted(r) {
		return basePartsOf(r.TLS != nil, r.Host, "", "", "")
	}
	return basePartsOf(r.TLS != nil, r.Host, headerValue(r.Header, "X-Forwarded-Proto"),
		headerValue(r.Header, "X-Forwarded-Host"), headerValue(r.Header, "X-Forwarded-Prefix"))
}

// forwardedTrusted reports whether r's X-Forwarded-* headers count: any
// client can send them, so only when the operator says they come from a
// proxy of theirs.
func (h *Handler) forwardedTrusted(r *http.Request) bool {
	if h.opt.TrustForwarded {
		return true
	}
	if len(h.opt.TrustedProxies) == 0 {
		return false
	}
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	a := ap.Addr().Unmap()
	for _, p := range h.opt.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
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
	SetErrorHeader(hd, err, status)
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
	if !h.opt.Plugins && h.opt.Auth == nil {
		return r
	}
	return r.WithContext(service.WithClient(r.Context(), &service.Client{Method: r.Method, Header: r.Header, Addr: r.RemoteAddr}))
}

// withBase gives next the public base URL of each request (BaseURL) and
// marks responses as varying with the headers it comes from.
func (h *Handler) withBase(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.varyForwarded(r, w.Header())
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

// SetErrorHeader sets on hd the headers of the error response to err,
// whose status is status: those the error carries (a plugin's refusal: its
// WWW-Authenticate challenge or its redirect's Location, through a method
// ResponseHeader() http.Header), and Retry-After for 429 and 503. Every
// handler that answers errors maps them with fault.Response and this.
func SetErrorHeader(hd http.Header, err error, status int) {
	var withHeaders interface{ ResponseHeader() http.Header }
	if errors.As(err, &withHeaders) {
		for k, v := range withHeaders.ResponseHeader() {
			hd[k] = v
		}
	}
	if status == http.StatusServiceUnavailable || status == http.StatusTooManyRequests {
		hd.Set("Retry-After", "1")
	}
}
