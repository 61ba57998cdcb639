package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/iiifd/iiifd/internal/answer"
	"github.com/iiifd/iiifd/internal/obs"
	"github.com/iiifd/iiifd/internal/tracing"
)

type ctxKey int

const requestIDKey ctxKey = 0

// Request ids are a random prefix per process and a counter: unique across
// replicas and restarts for practical purposes, without a system call for
// randomness on every request.
var (
	idPrefix = func() string {
		var b [6]byte
		rand.Read(b[:])
		return hex.EncodeToString(b[:])
	}()
	idCounter atomic.Uint64
)

func newRequestID() string {
	return idPrefix + "-" + strconv.FormatUint(idCounter.Add(1), 36)
}

// RequestID returns the id of the request carried by ctx, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

// Wrap wraps next with the server's middleware, from the outside in: a
// request id (taken from a sane X-Request-Id or made), the request's trace
// span, CORS headers, panic recovery, and one access log line per request
// to log.
func Wrap(log *slog.Logger, next http.Handler) http.Handler { return wrap(log, nil, nil, next) }

// wrap is Wrap with an observer of answered requests, and a fast handler
// tried before next that reports whether it answered: it gets the
// request as it came (no request id or deadline in its context), so that
// answers from memory cost no copy of the request.
func wrap(log *slog.Logger, observe func(route string, status int, bytes int64, d time.Duration, xcache string), fast func(http.ResponseWriter, *http.Request) bool, next http.Handler) http.Handler {
	done := func(r *http.Request, rec *recorder, start time.Time, id, route string) {
		xcache := headerValue(rec.Header(), "X-Cache")
		tracing.EndRequest(trace.SpanFromContext(r.Context()), rec.statusCode(), rec.bytes, xcache)
		logRequest(log, r, rec, start, id, xcache)
		if observe != nil {
			observe(route, rec.statusCode(), rec.bytes, time.Since(start), xcache)
		}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := headerValue(r.Header, "X-Request-Id")
		if !saneID(id) {
			id = newRequestID()
		}
		route := obs.Route(r.URL.Path)
		ctx, _ := tracing.StartRequest(r, route, id)
		rec := &recorder{ResponseWriter: w}
		hd := w.Header()
		hd["X-Request-Id"] = []string{id}
		hd["Access-Control-Allow-Origin"] = allowAnyOrigin
		hd["Access-Control-Expose-Headers"] = exposeHeaders
		if r.Method == http.MethodOptions {
			hd.Set("Access-Control-Allow-Methods", answer.AllowMethods)
			if ah := r.Header.Get("Access-Control-Request-Headers"); ah != "" {
				hd.Set("Access-Control-Allow-Headers", ah)
			}
			hd.Set("Access-Control-Max-Age", answer.MaxAge)
		}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					done(r, rec, start, id, route)
					panic(v)
				}
				log.LogAttrs(r.Context(), slog.LevelError, "panic serving request",
					slog.String("request_id", id), slog.Any("panic", v), slog.String("stack", string(debug.Stack())))
				if rec.wrote {
					// Part of a response is out: abort the connection so
					// that nobody takes the torn body for a whole one.
					done(r, rec, start, id, route)
					panic(http.ErrAbortHandler)
				}
				for _, k := range []string{"ETag", "Last-Modified", "Link", "Content-Length", "Content-Disposition"} {
					hd.Del(k)
				}
				hd.Set("Cache-Control", "no-store")
				hd.Set("Content-Type", "text/plain; charset=utf-8")
				rec.WriteHeader(http.StatusInternalServerError)
				rec.Write([]byte("500 Internal Server Error: internal server error\n"))
			}
			done(r, rec, start, id, route)
		}()
		if fast != nil && ctx == r.Context() && fast(rec, r) {
			return // answered without a span (tracing is off)
		}
		r = r.WithContext(context.WithValue(ctx, requestIDKey, id))
		next.ServeHTTP(rec, r)
	})
}

// The CORS headers of every response. Values are shared by all responses,
// so they are set by assignment and never appended to in place (their
// capacity is their length, so an Add copies).
var (
	allowAnyOrigin = []string{answer.AllowOrigin}
	exposeHeaders  = []string{answer.ExposeHeaders}
)

func logRequest(log *slog.Logger, r *http.Request, rec *recorder, start time.Time, id, xcache string) {
	ctx := r.Context()
	if !log.Enabled(ctx, slog.LevelInfo) {
		return
	}
	// The trace id joins the log line to its trace (ours when tracing is
	// on, or the caller's, from its traceparent header).
	var extra []slog.Attr
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		extra = append(extra, slog.String("trace_id", sc.TraceID().String()))
	}
	logAccess(log, ctx, id, r.Method, r.URL.EscapedPath(), rec.statusCode(), xcache, rec.bytes, time.Since(start), r.RemoteAddr, extra...)
}

// logAccess writes the access log line of one request.
func logAccess(log *slog.Logger, ctx context.Context, id, method, path string, status int, xcache string, bytes int64, d time.Duration, remote string, extra ...slog.Attr) {
	attrs := []slog.Attr{
		slog.String("request_id", id),
		slog.String("method", method),
		slog.String("path", path),
		slog.Int("status", status),
		slog.String("cache", xcache),
		slog.Int64("bytes", bytes),
		slog.Duration("duration", d),
		slog.String("remote", remote),
	}
	log.LogAttrs(ctx, slog.LevelInfo, "request", append(attrs, extra...)...)
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

// statusCode is the status sent (200 when the handler wrote none).
func (r *recorder) statusCode() int {
	if r.status == 0 {
		return http.StatusOK
	}
	return r.status
}

// recorder remembers the status and counts the bytes of a response.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
	wrote  bool
}

func (r *recorder) WriteHeader(code int) {
	if !r.wrote {
		r.status = code
		r.wrote = true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(p []byte) (int, error) {
	if !r.wrote {
		r.WriteHeader(http.StatusOK)
	}
	n, err := r.ResponseWriter.Write(p)
	r.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
