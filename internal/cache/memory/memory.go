// Package memory is the in-process cache tier: entries held as byte slices,
// bounded by their total size, evicted least recently used first.
package memory

import (
	"bytes"
	"container/list"
	"context"
	"errors"
	"io"
	"sync"

	"github.com/iiifd/iiifd/internal/cache"
)

// Config configures a memory tier.
type Config struct {
	// MaxBytes bounds the total size of the bodies held (plus a small
	// per-entry overhead).
	MaxBytes int64
	// MaxEntryFraction is the largest share of MaxBytes one entry may take;
	// larger entries are not stored, so one huge image cannot flush the
	// whole tier. Zero means 1/8.
	MaxEntryFraction float64
}

// entryOverhead approximates the bookkeeping bytes of one entry, so that
// many tiny entries still count against the bound.
const entryOverhead = 256

// Validate reports whether the configuration is usable.
func (c Config) Validate() error {
	if c.MaxBytes <= 0 {
		return errors.New("memory cache: MaxBytes must be positive")
	}
	if c.MaxEntryFraction < 0 || c.MaxEntryFraction > 1 {
		return errors.New("memory cache: MaxEntryFraction must be within [0, 1]")
	}
	return nil
}

// Tier is an in-process cache tier.
type Tier struct {
	maxBytes int64
	maxEntry int64
	counters cache.Counters

	mu    sync.Mutex
	bytes int64
	lru   *list.List // front = most recent; values are *entry
	items map[cache.Key]*list.Element
	byID  map[string]map[cache.Key]struct{}
}

type entry struct {
	key  cache.Key
	meta cache.Meta
	body []byte // never modified once stored
}

func (e *entry) cost() int64 {
	return int64(len(e.body)+len(e.key.ID)+len(e.key.Name)+len(e.meta.ContentType)+len(e.meta.ETag)) + entryOverhead
}

var _ cache.Tier = (*Tier)(nil)

// New returns an empty memory tier.
func New(cfg Config) (*Tier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Tier{
		maxBytes: cfg.MaxBytes,
		maxEntry: cache.EntryLimit(cfg.MaxBytes, cfg.MaxEntryFraction),
		lru:      list.New(),
		items:    make(map[cache.Key]*list.Element),
		byID:     make(map[string]map[cache.Key]struct{}),
	}, nil
}

// Name returns "memory".
func (t *Tier) Name() string { return "memory" }

// Get returns the entry for key, or cache.ErrMiss.
func (t *Tier) Get(_ context.Context, key cache.Key) (*cache.Hit, error) {
	body, meta, ok := t.Peek(key)
	if !ok {
		t.counters.Misses.Add(1)
		return nil, cache.ErrMiss
	}
	return &cache.Hit{Meta: meta, Body: io.NopCloser(bytes.NewReader(body)), Tier: t.Name()}, nil
}

// Peek returns the body and metadata of the entry for key without
// allocating, for the hottest path (a repeated request answered from
// memory). The body is shared and must not be modified. Found entries
// count as hits; absent ones count nothing, since the caller then asks
// through Get.
func (t *Tier) Peek(key cache.Key) ([]byte, cache.Meta, bool) {
	t.mu.Lock()
	el, ok := t.items[key]
	if !ok {
		t.mu.Unlock()
		return nil, cache.Meta{}, false
	}
	t.lru.MoveToFront(el)
	e := el.Value.(*entry)
	t.mu.Unlock()
	t.counters.Hits.Add(1)
	return e.body, e.meta, true
}

// Create starts an entry; its bytes are buffered until Commit.
func (t *Tier) Create(_ context.Context, key cache.Key) (cache.Writer, error) {
	return &writer{t: t, key: key}, nil
}

// Delete removes the entry for key.
func (t *Tier) Delete(_ context.Context, key cache.Key) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if el, ok := t.items[key]; ok {
		t.remove(el)
	}
	return nil
}

// Purge removes every entry of identifier id.
func (t *Tier) Purge(_ context.Context, id string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	for k := range t.byID[id] {
		t.remove(t.items[k])
	}
	return nil
}

// Stats returns the tier's counters.
func (t *Tier) Stats() cache.Stats {
	s := t.counters.Snapshot()
	t.mu.Lock()
	s.Entries, s.Bytes = int64(len(t.items)), t.bytes
	t.mu.Unlock()
	return s
}

// remove drops el; t.mu must be held.
func (t *Tier) remove(el *list.Element) {
	e := el.Value.(*entry)
	t.lru.Remove(el)
	delete(t.items, e.key)
	if ids := t.byID[e.key.ID]; ids != nil {
		delete(ids, e.key)
		if len(ids) == 0 {
			delete(t.byID, e.key.ID)
		}
	}
	t.bytes -= e.cost()
}

func (t *Tier) store(e *entry) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if el, ok := t.items[e.key]; ok {
		t.remove(el)
	}
	t.items[e.key] = t.lru.PushFront(e)
	ids := t.byID[e.key.ID]
	if ids == nil {
		ids = make(map[cache.Key]struct{})
		t.byID[e.key.ID] = ids
	}
	ids[e.key] = struct{}{}
	t.bytes += e.cost()
	for t.bytes > t.maxBytes && t.lru.Len() > 1 {
		t.remove(t.lru.Back())
		t.counters.Evictions.Add(1)
	}
}

type writer struct {
	t        *Tier
	key      cache.Key
	buf      bytes.Buffer
	tooLarge bool
	done     bool
}

// Write buffers p; past the entry size limit it drops the buffer and
// remembers that the entry will not be stored.
func (w *writer) Write(p []byte) (int, error) {
	if w.done {
		return 0, errors.New("memory cache: write after commit or abort")
	}
	if w.tooLarge {
		return len(p), nil
	}
	if int64(w.buf.Len()+len(p)) > w.t.maxEntry {
		w.tooLarge = true
		w.buf = bytes.Buffer{}
		return len(p), nil
	}
	return w.buf.Write(p)
}

// Commit stores the buffered entry, or returns cache.ErrTooLarge.
func (w *writer) Commit(meta cache.Meta) error {
	if w.done {
		return errors.New("memory cache: commit after commit or abort")
	}
	w.done = true
	if w.tooLarge {
		return cache.ErrTooLarge
	}
	body := bytes.Clone(w.buf.Bytes())
	w.buf = bytes.Buffer{}
	meta.Size = int64(len(body))
	w.t.store(&entry{key: w.key, meta: meta, body: body})
	w.t.counters.Puts.Add(1)
	return nil
}

// Abort discards the buffer.
func (w *writer) Abort() {
	w.done = true
	w.buf = bytes.Buffer{}
}
