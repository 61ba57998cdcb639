package httpapi

import (
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/iiifd/iiifd/internal/service"
	"github.com/iiifd/iiifd/internal/tracing"
)

// hotRequests remembers, for image requests just answered from the memory
// cache tier, everything the pipeline decided: the cache entry and the
// response headers. A repeat of the same request line (for the same public
// base URL) is then answered straight from the memory tier, without
// parsing, resolving, describing or planning again, and with the header
// values already built. A popular tile is the case that matters: its
// answer is a few kilobytes, so per-request work decides the throughput.
//
// An entry stands for the source version its request saw, so it is
// reused only within the window in which sources reuse an object's
// metadata anyway (Options.HotFor, counted from when the source's
// metadata was read), after which the request goes through the pipeline
// again and, if the answer is still a memory hit, is remembered afresh.
// A purge or an eviction removes the entry's bytes from the memory tier,
// which sends the request through the pipeline at once. Nothing is
// remembered when plugins are loaded (every request must then be
// authorized), for request lines with a query or longer than
// maxHotLine, for requests without a request line (built in-process
// rather than read by net/http), or when the request is traced.
type hotRequests struct {
	ttl time.Duration
	max int64

	// m maps request lines to *hotEntry. A sync.Map, because lookups
	// (every hot request, on every core) then take no lock at all.
	m sync.Map
	n atomic.Int64 // entries in m
}

// hotEntry is one remembered answer.
type hotEntry struct {
	base    string // the public base URL its Link header was built from
	held    service.Held
	etag    string
	mod     time.Time
	xcache  []string
	size    int         // length of the body sent when remembered
	length  []string    // size as the Content-Length value
	header  []hotHeader // everything but the per-request and per-body headers
	expires time.Time
}

type hotHeader struct {
	key string
	val []string // shared by every response: never appended to in place
}

// maxHotLine bounds the request lines remembered, so that the memo's
// memory stays small (entries × (line + headers), a few MiB).
const maxHotLine = 1024

// onHot, when set (by tests), is called for each request answered from a
// remembered entry.
var onHot func()

// perResponse are headers the middleware or the body set for each
// response; they are not remembered.
var perResponse = map[string]bool{"X-Request-Id": true, "Content-Length": true, "X-Cache": true, "Date": true}

func newHotRequests(ttl time.Duration, max int) *hotRequests {
	if ttl <= 0 || max <= 0 {
		return nil
	}
	return &hotRequests{ttl: ttl, max: int64(max)}
}

// hotLine reports whether r's request line may be remembered or looked up.
func hotLine(r *http.Request) bool {
	return r.Method == http.MethodGet && r.RequestURI != "" && len(r.RequestURI) <= maxHotLine && r.URL.RawQuery == ""
}

// serve answers r from a remembered entry, and reports whether it did.
// Only plain GETs are answered; anything else goes through the pipeline.
func (hr *hotRequests) serve(h *Handler, w http.ResponseWriter, r *http.Request) bool {
	if hr == nil || !hotLine(r) {
		return false
	}
	e := hr.get(r.RequestURI, time.Now())
	if e == nil || !h.sameBase(r, e.base) {
		return false
	}
	// The validators decide a conditional request before the body is
	// looked for, as in the pipeline: a 304 touches no cache tier.
	status := preconditions(r, e.etag, e.mod)
	var body []byte
	if status == 0 {
		var ok bool
		if body, ok = h.images.Peek(e.held); !ok {
			return false
		}
	}
	if onHot != nil {
		onHot()
	}
	hd := w.Header()
	for _, kv := range e.header {
		hd[kv.key] = kv.val
	}
	if status != 0 {
		w.WriteHeader(status)
		return true
	}
	hd["X-Cache"] = e.xcache
	if len(body) == e.size {
		hd["Content-Length"] = e.length
	} else {
		hd["Content-Length"] = []string{strconv.Itoa(len(body))}
	}
	w.Write(body)
	return true
}

// get returns the entry remembered for line, unless it expired by now
// (it is then dropped). line may be a view of a buffer that changes
// later: it is not kept.
func (hr *hotRequests) get(line string, now time.Time) *hotEntry {
	v, ok := hr.m.Load(line)
	if !ok {
		return nil
	}
	e := v.(*hotEntry)
	if now.After(e.expires) {
		hr.drop(line, e)
		return nil
	}
	return e
}

// remember records the answer res just sent for r from job, when it came from
// the memory tier.
func (hr *hotRequests) remember(r *http.Request, base string, job *service.Job, res *service.Result, sent http.Header) {
	if hr == nil || !hotLine(r) || tracing.On() || len(r.Header["Traceparent"]) > 0 {
		// A traced request is never answered from the memo (its span
		// needs the pipeline), so remembering it would be wasted.
		return
	}
	held, ok := res.Held()
	if !ok {
		return
	}
	expires := held.Seen().Add(hr.ttl)
	if !time.Now().Before(expires) {
		return
	}
	e := &hotEntry{
		base: base, held: held, etag: job.ETag, mod: job.ModTime,
		xcache:  []string{res.CacheStatus},
		size:    int(res.Size),
		length:  []string{strconv.FormatInt(res.Size, 10)},
		expires: expires,
	}
	for k, v := range sent {
		if !perResponse[k] {
			e.header = append(e.header, hotHeader{k, slices.Clip(slices.Clone(v))})
		}
	}
	hr.put(r.RequestURI, e)
}

// put remembers e for line, within the bound on entries.
func (hr *hotRequests) put(line string, e *hotEntry) {
	if _, loaded := hr.m.Swap(line, e); loaded || hr.n.Add(1) <= hr.max {
		return
	}
	// Full: drop a few entries, expired or not, in the map's own order
	// (by hash of the line: unrelated to use), with no bookkeeping on
	// hits and no scan of the whole map.
	dropped := 0
	hr.m.Range(func(k, v any) bool {
		if hr.m.CompareAndDelete(k, v) {
			hr.n.Add(-1)
			dropped++
		}
		return dropped < 16
	})
}

// drop removes the expired entry e of line, unless it was replaced since.
func (hr *hotRequests) drop(line string, e *hotEntry) {
	if hr.m.CompareAndDelete(line, e) {
		hr.n.Add(-1)
	}
}

// forget drops every remembered answer (after a purge).
func (hr *hotRequests) forget() {
	if hr == nil {
		return
	}
	hr.m.Range(func(k, v any) bool {
		if hr.m.CompareAndDelete(k, v) {
			hr.n.Add(-1)
		}
		return true
	})
}
