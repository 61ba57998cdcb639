package httpapi

import (
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/iiifd/iiifd/internal/service"
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
// reused for no longer than sources reuse their metadata (Options.HotFor),
// after which the request goes through the pipeline again and, if the
// answer is still a memory hit, is remembered afresh. A purge or an
// eviction removes the entry's bytes from the memory tier, which sends
// the request through the pipeline at once. Nothing is remembered when
// plugins are loaded: every request must then be authorized.
type hotRequests struct {
	ttl time.Duration
	max int

	mu sync.RWMutex
	m  map[string]*hotEntry
}

// hotEntry is one remembered answer.
type hotEntry struct {
	base    string // the public base URL its Link header was built from
	held    service.Held
	etag    string
	mod     time.Time
	xcache  []string
	header  []hotHeader // everything but the per-request and per-body headers
	expires time.Time
}

type hotHeader struct {
	key string
	val []string // shared by every response: never appended to in place
}

// hotAnswered counts the requests answered from remembered entries, in
// the whole process (read by tests).
var hotAnswered atomic.Int64

// perResponse are headers the middleware or the body set for each
// response; they are not remembered.
var perResponse = map[string]bool{"X-Request-Id": true, "Content-Length": true, "X-Cache": true, "Date": true}

func newHotRequests(ttl time.Duration, max int) *hotRequests {
	if ttl <= 0 || max <= 0 {
		return nil
	}
	return &hotRequests{ttl: ttl, max: max, m: make(map[string]*hotEntry)}
}

// serve answers r from a remembered entry, and reports whether it did.
// Only plain GETs are answered; anything else goes through the pipeline.
func (hr *hotRequests) serve(h *Handler, w http.ResponseWriter, r *http.Request) bool {
	if hr == nil || r.Method != http.MethodGet {
		return false
	}
	hr.mu.RLock()
	e := hr.m[r.RequestURI]
	hr.mu.RUnlock()
	if e == nil || time.Now().After(e.expires) || !h.sameBase(r, e.base) {
		return false
	}
	body, ok := h.images.Peek(e.held)
	if !ok {
		return false
	}
	hotAnswered.Add(1)
	hd := w.Header()
	for _, kv := range e.header {
		hd[kv.key] = kv.val
	}
	if status := preconditions(r, e.etag, e.mod); status != 0 {
		w.WriteHeader(status)
		return true
	}
	hd["X-Cache"] = e.xcache
	hd["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.Write(body)
	return true
}

// remember records the answer just sent for r from job, when it came from
// the memory tier.
func (hr *hotRequests) remember(r *http.Request, base string, job *service.Job, sent http.Header) {
	if hr == nil || r.Method != http.MethodGet {
		return
	}
	held, ok := job.Held()
	if !ok {
		return
	}
	e := &hotEntry{
		base: base, held: held, etag: job.ETag, mod: job.ModTime,
		xcache:  []string{job.CacheStatus},
		expires: time.Now().Add(hr.ttl),
	}
	for k, v := range sent {
		if !perResponse[k] {
			e.header = append(e.header, hotHeader{k, slices.Clip(slices.Clone(v))})
		}
	}
	hr.mu.Lock()
	defer hr.mu.Unlock()
	if _, ok := hr.m[r.RequestURI]; !ok && len(hr.m) >= hr.max {
		// Full: drop expired entries, else any one (map order is
		// random, so this is random eviction: no bookkeeping on hits).
		now := time.Now()
		for k, old := range hr.m {
			if now.After(old.expires) {
				delete(hr.m, k)
			}
		}
		for k := range hr.m {
			if len(hr.m) < hr.max {
				break
			}
			delete(hr.m, k)
		}
	}
	hr.m[r.RequestURI] = e
}

// forget drops every remembered answer (after a purge).
func (hr *hotRequests) forget() {
	if hr == nil {
		return
	}
	hr.mu.Lock()
	clear(hr.m)
	hr.mu.Unlock()
}
