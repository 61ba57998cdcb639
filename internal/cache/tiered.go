package cache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// Config configures a Cache.
type Config struct {
	// ShareLimit bounds the bytes of one fill kept in memory for the
	// requests waiting on it; waiters of a larger fill read it back from
	// the tiers instead. Zero means 16 MiB; negative means never share
	// through memory.
	ShareLimit int64
	// OnError, if set, is told about tier faults that Cache turned into
	// misses (op is "get", "create", "write", "commit", "delete", "purge").
	// It is called on the request's goroutine and should be quick; a tier
	// backing off after a fault (ErrUnavailable) is not reported again.
	OnError func(tier, op string, key Key, err error)
	// LockTTL is how long a replica's claim to compute an entry lasts in
	// a shared tier that is a Locker; other replicas missing the same key
	// wait for the entry up to this long, then compute it themselves.
	// Zero means 15 seconds; negative turns cross-replica locking off.
	LockTTL time.Duration
}

// Locker is implemented by shared tiers that let replicas claim the
// computation of an entry, so that a burst of identical misses across
// replicas is computed once. It is best effort: a claim expires, and any
// fault means computing anyway.
type Locker interface {
	// Lock tries to claim key for ttl. held is false when another
	// replica holds the claim. unlock gives up a held claim.
	Lock(ctx context.Context, key Key, ttl time.Duration) (unlock func(), held bool, err error)
	// Locked reports whether some replica holds key's claim.
	Locked(ctx context.Context, key Key) (bool, error)
}

// Cache composes tiers, fastest first. Lookups try the tiers in order and
// promote a hit into the tiers above the one that answered; a miss is filled
// into every tier at once. Concurrent Lookups of one key share a single
// fill. Cache with no tiers still coalesces concurrent misses.
type Cache struct {
	tiers      []Tier
	shareLimit int64
	onError    func(tier, op string, key Key, err error)
	locker     Locker // the first tier that is one, or nil
	lockerTier Tier
	lockTTL    time.Duration
	peeker     Peeker // the first tier, if it is one

	mu      sync.Mutex
	flights map[Key]*flight

	// purgeMu orders commits against purges: commits hold it shared,
	// Purge exclusively; epoch counts purges, so that a fill or promotion
	// that began before a purge is never committed after it.
	purgeMu sync.RWMutex
	epoch   atomic.Uint64

	coalesced atomic.Int64
	fills     atomic.Int64
	remote    atomic.Int64 // entries another replica computed while we waited
	// releases counts finished fills, so that a Lookup that missed while a
	// fill of its key was committing looks at the tiers again.
	releases atomic.Uint64
}

// New returns a Cache over tiers, fastest first.
func New(cfg Config, tiers ...Tier) (*Cache, error) {
	for i, t := range tiers {
		if t == nil {
			return nil, fmt.Errorf("cache: tier %d is nil", i)
		}
	}
	limit := cfg.ShareLimit
	if limit == 0 {
		limit = 16 << 20
	}
	c := &Cache{
		tiers:      tiers,
		shareLimit: limit,
		onError:    cfg.OnError,
		flights:    make(map[Key]*flight),
		lockTTL:    cfg.LockTTL,
	}
	if c.lockTTL == 0 {
		c.lockTTL = 15 * time.Second
	}
	if len(tiers) > 0 {
		c.peeker, _ = tiers[0].(Peeker)
	}
	if c.lockTTL > 0 {
		for _, t := range tiers {
			if l, ok := t.(Locker); ok {
				c.locker, c.lockerTier = l, t
				break
			}
		}
	}
	return c, nil
}

// flight is one fill in progress, shared by the requests waiting on it.
type flight struct {
	done chan struct{}
	// Set before done is closed.
	meta  Meta
	body  []byte // the whole body, or nil when it was too large to share
	err   error  // the fill's failure, for waiters; nil on success
	retry bool   // the filler gave up for its own reasons: waiters try again
}

// Lookup returns the entry for key, in one of three ways.
//
// A hit returns (hit, nil, nil); the caller streams hit.Body and closes it.
// When another Lookup of the same key is filling it, Lookup waits for that
// fill and returns its bytes as a hit with Tier Coalesced, or the error the
// fill was aborted with.
// Otherwise the caller becomes the one computing the entry: Lookup returns
// (nil, fill, nil), the caller writes the encoded bytes to fill (iiifd's
// pipeline copies them from its finished output buffer) and must end with fill.Commit,
// fill.Abort or fill.Fail, which release the waiters.
//
// The only errors are ctx's and those passed to Fill.Fail; tier faults are
// misses (reported to Config.OnError).
func (c *Cache) Lookup(ctx context.Context, key Key) (*Hit, *Fill, error) {
	rechecked := false
	for {
		seen := c.releases.Load()
		if h := c.get(ctx, key); h != nil {
			return h, nil, nil
		}
		c.mu.Lock()
		f, ok := c.flights[key]
		if !ok && !rechecked && c.releases.Load() != seen {
			// A fill finished since the tiers were asked; it may have
			// been this key's.
			c.mu.Unlock()
			rechecked = true
			continue
		}
		if !ok {
			f = &flight{done: make(chan struct{})}
			c.flights[key] = f
			c.mu.Unlock()
			var unlock func()
			if c.locker != nil {
				h, u, err := c.claim(ctx, key)
				if h != nil || err != nil {
					// Another replica computed it (or our client
					// left while waiting): local waiters look again.
					c.releaseFlight(key, f)
					return h, nil, err
				}
				unlock = u
			}
			fill := c.newFill(ctx, key, f)
			fill.unlock = unlock
			return nil, fill, nil
		}
		c.mu.Unlock()
		select {
		case <-f.done:
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		}
		switch {
		case f.retry:
			continue // the filler went away; try again, perhaps as the filler
		case f.err != nil:
			return nil, nil, f.err
		case f.body != nil:
			c.coalesced.Add(1)
			return &Hit{Meta: f.meta, Body: io.NopCloser(bytes.NewReader(f.body)), Tier: Coalesced}, nil, nil
		}
		// The body was too large to share: read it from the tiers, or fill
		// it again if none kept it.
	}
}

// Peeker is a tier that can hand out an entry's bytes without copying or
// allocating (the memory tier).
type Peeker interface {
	Peek(key Key) (body []byte, meta Meta, ok bool)
}

// Peek returns the entry for key when the first tier holds it and is a
// Peeker, without allocating; it never waits, fills or promotes. The
// body is shared and must not be modified.
func (c *Cache) Peek(key Key) ([]byte, Meta, bool) {
	if c.peeker == nil {
		return nil, Meta{}, false
	}
	return c.peeker.Peek(key)
}

// PeekTier names the tier Peek reads, or "" when Peek always misses.
func (c *Cache) PeekTier() string {
	if c.peeker == nil {
		return ""
	}
	return c.tiers[0].Name()
}

// claim takes the shared claim on computing key, or waits while another
// replica holds it and returns the entry once that replica stored it. It
// returns the hit found; or nothing and the unlock of a held claim (nil
// when locking failed or timed out: the caller computes anyway); or ctx's
// error.
func (c *Cache) claim(ctx context.Context, key Key) (*Hit, func(), error) {
	deadline := time.Now().Add(c.lockTTL)
	pause := 10 * time.Millisecond
	for {
		unlock, held, err := c.locker.Lock(ctx, key, c.lockTTL)
		switch {
		case err != nil:
			c.report(c.lockerTier, "lock", key, err)
			return nil, nil, nil
		case held:
			// The entry may have been stored between our miss and
			// the claim.
			if h := c.get(ctx, key); h != nil {
				unlock()
				return h, nil, nil
			}
			return nil, unlock, nil
		}
		// Another replica computes it: wait for the entry, or for its
		// claim to end without one (it failed), then try again.
		for {
			if time.Now().After(deadline) {
				return nil, nil, nil
			}
			t := time.NewTimer(pause)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil, nil, ctx.Err()
			case <-t.C:
			}
			pause = min(2*pause, 200*time.Millisecond)
			if h := c.get(ctx, key); h != nil {
				c.remote.Add(1)
				return h, nil, nil
			}
			if locked, err := c.locker.Locked(ctx, key); err != nil || !locked {
				break
			}
		}
	}
}

// releaseFlight ends a flight that made no fill: its waiters look again.
func (c *Cache) releaseFlight(key Key, f *flight) {
	c.mu.Lock()
	delete(c.flights, key)
	c.mu.Unlock()
	f.retry = true
	c.releases.Add(1)
	close(f.done)
}

// get tries the tiers in order and arranges promotion of a hit.
func (c *Cache) get(ctx context.Context, key Key) *Hit {
	epoch := c.epoch.Load()
	for i, t := range c.tiers {
		h, err := t.Get(ctx, key)
		if err != nil {
			if !errors.Is(err, ErrMiss) {
				c.report(t, "get", key, err)
			}
			continue
		}
		h.Tier = t.Name()
		if i > 0 {
			h.Body = c.promote(ctx, key, h, epoch, c.tiers[:i])
		}
		return h
	}
	return nil
}

// promote returns h's body wrapped so that reading it to the end also
// commits it to the upper tiers.
func (c *Cache) promote(ctx context.Context, key Key, h *Hit, epoch uint64, upper []Tier) io.ReadCloser {
	var ws []tierWriter
	for _, t := range upper {
		w, err := t.Create(ctx, key)
		if err != nil {
			c.report(t, "create", key, err)
			continue
		}
		ws = append(ws, tierWriter{t, w})
	}
	if len(ws) == 0 {
		return h.Body
	}
	return &promoter{c: c, key: key, meta: h.Meta, epoch: epoch, body: h.Body, ws: ws}
}

type tierWriter struct {
	t Tier
	w Writer
}

// promoter tees a lower tier's body into writers of the upper tiers and
// commits them once the body was read completely.
type promoter struct {
	c     *Cache
	key   Key
	meta  Meta
	epoch uint64
	body  io.ReadCloser
	ws    []tierWriter
	n     int64
	ended bool
}

func (p *promoter) Read(b []byte) (int, error) {
	n, err := p.body.Read(b)
	if n > 0 {
		p.n += int64(n)
		p.ws = p.c.write(p.key, p.ws, b[:n])
	}
	if err == io.EOF && !p.ended {
		p.ended = true
		if p.n == p.meta.Size {
			p.c.commit(p.key, p.ws, p.meta, p.epoch)
		} else {
			abortAll(p.ws)
		}
		p.ws = nil
	}
	return n, err
}

func (p *promoter) Close() error {
	if !p.ended {
		p.ended = true
		abortAll(p.ws)
		p.ws = nil
	}
	return p.body.Close()
}

// write writes b to every writer and drops (and aborts) the ones failing.
func (c *Cache) write(key Key, ws []tierWriter, b []byte) []tierWriter {
	kept := ws[:0]
	for _, tw := range ws {
		if _, err := tw.w.Write(b); err != nil {
			c.report(tw.t, "write", key, err)
			tw.w.Abort()
			continue
		}
		kept = append(kept, tw)
	}
	return kept
}

// commit commits every writer unless a purge happened since epoch.
func (c *Cache) commit(key Key, ws []tierWriter, meta Meta, epoch uint64) error {
	c.purgeMu.RLock()
	defer c.purgeMu.RUnlock()
	if c.epoch.Load() != epoch {
		abortAll(ws)
		return nil
	}
	var errs []error
	for _, tw := range ws {
		if err := tw.w.Commit(meta); err != nil && !errors.Is(err, ErrTooLarge) {
			c.report(tw.t, "commit", key, err)
			errs = append(errs, fmt.Errorf("%s: %w", tw.t.Name(), err))
		}
	}
	return errors.Join(errs...)
}

func abortAll(ws []tierWriter) {
	for _, tw := range ws {
		tw.w.Abort()
	}
}

// report passes a tier fault to OnError; ErrUnavailable is not reported,
// since the fault that made the tier back off was.
func (c *Cache) report(t Tier, op string, key Key, err error) {
	if c.onError != nil && !errors.Is(err, ErrUnavailable) {
		c.onError(t.Name(), op, key, err)
	}
}

// Fill is the writer of an entry that a Lookup missed. Its Write never
// fails, whatever the tiers do, so it can sit in an io.MultiWriter next to
// the client's response. Exactly one of Commit, Abort or Fail must be
// called, by the goroutine that writes: a Fill is not safe for concurrent
// use.
type Fill struct {
	c     *Cache
	key   Key
	f     *flight
	epoch uint64
	ws    []tierWriter
	buf   bytes.Buffer
	n     int64
	share bool // still collecting the body for waiters
	ended bool
	// unlock gives up the cross-replica claim on computing the entry,
	// once it is committed or abandoned; nil when none is held.
	unlock func()
}

func (c *Cache) newFill(ctx context.Context, key Key, f *flight) *Fill {
	fl := &Fill{c: c, key: key, f: f, epoch: c.epoch.Load(), share: c.shareLimit > 0}
	c.fills.Add(1)
	for _, t := range c.tiers {
		w, err := t.Create(ctx, key)
		if err != nil {
			c.report(t, "create", key, err)
			continue
		}
		fl.ws = append(fl.ws, tierWriter{t, w})
	}
	return fl
}

// Write passes p to every tier; it always returns len(p), nil.
func (f *Fill) Write(p []byte) (int, error) {
	if f.ended {
		return 0, errors.New("cache: write after commit or abort")
	}
	f.n += int64(len(p))
	f.ws = f.c.write(f.key, f.ws, p)
	if f.share {
		if f.n > f.c.shareLimit {
			f.share = false
			f.buf = bytes.Buffer{}
		} else {
			f.buf.Write(p)
		}
	}
	return len(p), nil
}

// Commit makes the entry visible in every tier that accepted it and hands
// the bytes to the waiting Lookups. meta.Size is set from the bytes written.
// The error reports tier faults only: the entry was still delivered to the
// waiters and the caller's response is unaffected.
func (f *Fill) Commit(meta Meta) error {
	if f.ended {
		return errors.New("cache: commit after commit or abort")
	}
	f.ended = true
	meta.Size = f.n
	err := f.c.commit(f.key, f.ws, meta, f.epoch)
	f.ws = nil
	f.f.meta = meta
	if f.share {
		f.f.body = bytes.Clone(f.buf.Bytes())
		f.buf = bytes.Buffer{}
	}
	f.release()
	return err
}

// Abort discards the entry because the filler gave up for reasons of its
// own (its client went away, its deadline passed, writing the response
// failed). The waiting Lookups try again, and one of them becomes the new
// filler. Abort after Commit, Abort or Fail does nothing, so it can be
// deferred.
func (f *Fill) Abort() { f.end(nil) }

// Fail discards the entry because computing it failed in a way every
// request for it would (a damaged source, a plan the server cannot
// render): the waiting Lookups return err instead of trying again. A nil
// err is the same as Abort.
func (f *Fill) Fail(err error) { f.end(err) }

func (f *Fill) end(err error) {
	if f.ended {
		return
	}
	f.ended = true
	abortAll(f.ws)
	f.ws = nil
	f.buf = bytes.Buffer{}
	f.f.err = err
	f.f.retry = err == nil
	f.release()
}

func (f *Fill) release() {
	if f.unlock != nil {
		f.unlock()
		f.unlock = nil
	}
	f.c.mu.Lock()
	delete(f.c.flights, f.key)
	f.c.mu.Unlock()
	f.c.releases.Add(1)
	close(f.f.done)
}

// Delete removes key from every tier. Faults are reported to OnError and
// returned joined.
func (c *Cache) Delete(ctx context.Context, key Key) error {
	var errs []error
	for _, t := range c.tiers {
		if err := t.Delete(ctx, key); err != nil {
			c.report(t, "delete", key, err)
			errs = append(errs, fmt.Errorf("%s: %w", t.Name(), err))
		}
	}
	return errors.Join(errs...)
}

// Purge removes every entry of identifier id from every tier. Fills and
// promotions that began before Purge are not committed. Faults are reported
// to OnError and returned joined; the other tiers are purged regardless.
func (c *Cache) Purge(ctx context.Context, id string) error {
	return c.purge(ctx, id, nil)
}

// PurgeWatcher is implemented by shared tiers that hear of purges made by
// other replicas.
type PurgeWatcher interface {
	// WatchPurges calls fn with the identifier of each purge made
	// elsewhere, until ctx is done.
	WatchPurges(ctx context.Context, fn func(id string))
}

// Watch purges the other tiers of every identifier that a shared tier
// (a PurgeWatcher) hears was purged by another replica, until ctx is done.
// Run it in its own goroutine for the life of the server.
func (c *Cache) Watch(ctx context.Context) {
	var wg sync.WaitGroup
	for _, t := range c.tiers {
		if pw, ok := t.(PurgeWatcher); ok {
			wg.Go(func() {
				pw.WatchPurges(ctx, func(id string) { c.purge(ctx, id, t) })
			})
		}
	}
	wg.Wait()
}

func (c *Cache) purge(ctx context.Context, id string, skip Tier) error {
	c.purgeMu.Lock()
	defer c.purgeMu.Unlock()
	c.epoch.Add(1)
	var errs []error
	for _, t := range c.tiers {
		if t == skip {
			continue
		}
		if err := t.Purge(ctx, id); err != nil {
			c.report(t, "purge", Key{ID: id}, err)
			errs = append(errs, fmt.Errorf("%s: %w", t.Name(), err))
		}
	}
	return errors.Join(errs...)
}

// TierStats is the Stats of one named tier.
type TierStats struct {
	Tier string
	Stats
}

// CacheStats are the counters of a Cache and of each of its tiers.
type CacheStats struct {
	// Fills counts Lookups that made the caller compute the entry.
	Fills int64
	// Coalesced counts Lookups answered by another caller's fill.
	Coalesced int64
	// Remote counts Lookups that waited for another replica's
	// computation (through a Locker tier) and were answered by it.
	Remote int64
	// Tiers holds each tier's counters, in tier order.
	Tiers []TierStats
}

// Stats returns the counters of the cache and its tiers.
func (c *Cache) Stats() CacheStats {
	s := CacheStats{Fills: c.fills.Load(), Coalesced: c.coalesced.Load(), Remote: c.remote.Load()}
	for _, t := range c.tiers {
		s.Tiers = append(s.Tiers, TierStats{Tier: t.Name(), Stats: t.Stats()})
	}
	return s
}
