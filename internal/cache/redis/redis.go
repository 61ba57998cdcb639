// Package redis is the shared cache tier: entries kept in Redis with a time
// to live and a per-entry size cap, so that several iiifd replicas share
// their derivatives.
//
// Purge across replicas uses a generation counter per identifier that is
// part of every entry's key: a purge increments it, which orphans every
// entry of the identifier at once (they expire by their TTL), and publishes
// the identifier so that every replica can purge its local tiers
// (WatchPurges). Commits are conditional on the generation seen when the
// entry was started, so a derivative computed before a purge is never
// stored after it. Keys of one identifier share a hash tag.
//
// Redis failures turn into misses: every call has a short timeout, retries
// are off, and after a failure the tier answers ErrUnavailable without
// calling Redis for a back-off period.
package redis

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/iiifd/iiifd/internal/cache"
)

// Config configures a Redis tier.
type Config struct {
	// URL locates the server: redis://[user:password@]host:port/db (or
	// rediss:// for TLS).
	URL string
	// TTL is how long an entry lives. Zero means 24 hours.
	TTL time.Duration
	// MaxEntry is the largest body stored. Zero means 4 MiB.
	MaxEntry int64
	// Timeout bounds each call to Redis, dialling included. Zero means
	// 250 ms.
	Timeout time.Duration
	// Backoff is how long the tier skips Redis after a failure. Zero means
	// one second.
	Backoff time.Duration
	// Prefix starts every key and the purge channel. Zero means "iiifd:".
	Prefix string
}

// Validate reports whether the configuration is usable.
func (c Config) Validate() error {
	if c.URL == "" {
		return errors.New("redis cache: URL is required")
	}
	if _, err := goredis.ParseURL(c.URL); err != nil {
		return fmt.Errorf("redis cache: %w", err)
	}
	if c.TTL < 0 || c.MaxEntry < 0 || c.Timeout < 0 || c.Backoff < 0 {
		return errors.New("redis cache: TTL, MaxEntry, Timeout and Backoff must not be negative")
	}
	if c.TTL != 0 && c.TTL < time.Millisecond {
		return errors.New("redis cache: TTL must be at least 1ms")
	}
	return nil
}

// Tier is a Redis cache tier.
type Tier struct {
	client   *goredis.Client
	ttl      time.Duration
	maxEntry int64
	timeout  time.Duration
	backoff  time.Duration
	prefix   string
	origin   string // tags this process's purge messages
	counters cache.Counters
	// downUntil is when the tier calls Redis again after a failure, in
	// Unix nanoseconds.
	downUntil atomic.Int64
}

var _ cache.Tier = (*Tier)(nil)

// New returns a Redis tier. It does not contact the server: an unreachable
// Redis is a miss, not a reason not to start.
func New(cfg Config) (*Tier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	t := &Tier{ttl: cfg.TTL, maxEntry: cfg.MaxEntry, timeout: cfg.Timeout, backoff: cfg.Backoff, prefix: cfg.Prefix}
	if t.ttl == 0 {
		t.ttl = 24 * time.Hour
	}
	if t.maxEntry == 0 {
		t.maxEntry = 4 << 20
	}
	if t.timeout == 0 {
		t.timeout = 250 * time.Millisecond
	}
	if t.backoff == 0 {
		t.backoff = time.Second
	}
	if t.prefix == "" {
		t.prefix = "iiifd:"
	}
	b := make([]byte, 8)
	rand.Read(b)
	t.origin = hex.EncodeToString(b)

	opt, _ := goredis.ParseURL(cfg.URL)
	opt.DialTimeout = t.timeout
	opt.ReadTimeout = t.timeout
	opt.WriteTimeout = t.timeout
	opt.PoolTimeout = t.timeout
	opt.MaxRetries = -1 // a retry doubles the time a request waits on a sick server
	opt.DisableIdentity = true
	opt.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	t.client = goredis.NewClient(opt)
	return t, nil
}

// Close closes the connections to Redis.
func (t *Tier) Close() error { return t.client.Close() }

// Name returns "redis".
func (t *Tier) Name() string { return "redis" }

// keys returns the generation key of key's identifier and the two halves
// of its entry key, between which the generation goes.
func (t *Tier) keys(key cache.Key) (gen, before, after string) {
	base := t.prefix + "{" + cache.Hash(key.ID) + "}:"
	return base + "gen", base + "e:", ":" + cache.Hash(key.ID, key.Name)
}

var (
	getScript = goredis.NewScript(`
local g = redis.call('GET', KEYS[1]) or '0'
return redis.call('GET', ARGV[1] .. g .. ARGV[2])`)
	delScript = goredis.NewScript(`
local g = redis.call('GET', KEYS[1]) or '0'
return redis.call('DEL', ARGV[1] .. g .. ARGV[2])`)
	setScript = goredis.NewScript(`
local g = redis.call('GET', KEYS[1]) or '0'
if g ~= ARGV[1] then return 0 end
redis.call('SET', ARGV[2], ARGV[3], 'PX', ARGV[4])
return 1`)
)

// call runs op with the tier's timeout unless Redis failed a moment ago,
// and starts the back-off when it fails.
func (t *Tier) call(ctx context.Context, op func(ctx context.Context) error) error {
	if time.Now().UnixNano() < t.downUntil.Load() {
		return cache.ErrUnavailable
	}
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	err := op(ctx)
	if err != nil && !errors.Is(err, goredis.Nil) {
		t.counters.Errors.Add(1)
		if ctx.Err() == nil || errors.Is(ctx.Err(), context.DeadlineExceeded) {
			t.downUntil.Store(time.Now().Add(t.backoff).UnixNano())
		}
		return fmt.Errorf("redis cache: %w", err)
	}
	return err
}

type record struct {
	ID           string    `json:"id"`
	Name         string    `json:"name"`
	ContentType  string    `json:"type"`
	ETag         string    `json:"etag"`
	LastModified time.Time `json:"mtime"`
}

// Get returns the entry for key, or cache.ErrMiss.
func (t *Tier) Get(ctx context.Context, key cache.Key) (*cache.Hit, error) {
	gen, before, after := t.keys(key)
	var val []byte
	err := t.call(ctx, func(ctx context.Context) error {
		s, err := getScript.Run(ctx, t.client, []string{gen}, before, after).Text()
		val = []byte(s)
		return err
	})
	if err != nil {
		t.counters.Misses.Add(1)
		if errors.Is(err, goredis.Nil) {
			return nil, cache.ErrMiss
		}
		return nil, err
	}
	meta, body, ok := decode(val, key)
	if !ok {
		t.counters.Misses.Add(1)
		return nil, cache.ErrMiss
	}
	t.counters.Hits.Add(1)
	return &cache.Hit{Meta: meta, Body: io.NopCloser(bytes.NewReader(body)), Tier: t.Name()}, nil
}

// encode lays out a value: the metadata's length, the metadata as JSON, the
// body.
func encode(key cache.Key, meta cache.Meta, body []byte) []byte {
	rec, _ := json.Marshal(record{ID: key.ID, Name: key.Name, ContentType: meta.ContentType, ETag: meta.ETag, LastModified: meta.LastModified})
	out := make([]byte, 4, 4+len(rec)+len(body))
	binary.BigEndian.PutUint32(out, uint32(len(rec)))
	return append(append(out, rec...), body...)
}

func decode(val []byte, key cache.Key) (cache.Meta, []byte, bool) {
	if len(val) < 4 {
		return cache.Meta{}, nil, false
	}
	n := int(binary.BigEndian.Uint32(val))
	if n > len(val)-4 {
		return cache.Meta{}, nil, false
	}
	var r record
	if json.Unmarshal(val[4:4+n], &r) != nil || r.ID != key.ID || r.Name != key.Name {
		return cache.Meta{}, nil, false
	}
	body := val[4+n:]
	return cache.Meta{ContentType: r.ContentType, ETag: r.ETag, LastModified: r.LastModified, Size: int64(len(body))}, body, true
}

// Create starts an entry, buffered in memory up to MaxEntry. It reads the
// identifier's generation, so that a purge before Commit discards it.
func (t *Tier) Create(ctx context.Context, key cache.Key) (cache.Writer, error) {
	gen, _, _ := t.keys(key)
	g := "0"
	err := t.call(ctx, func(ctx context.Context) error {
		s, err := t.client.Get(ctx, gen).Result()
		if err == nil {
			g = s
		}
		return err
	})
	if err != nil && !errors.Is(err, goredis.Nil) {
		return nil, err
	}
	return &writer{t: t, key: key, gen: g}, nil
}

type writer struct {
	t        *Tier
	key      cache.Key
	gen      string
	buf      bytes.Buffer
	tooLarge bool
	done     bool
}

// Write buffers p; past MaxEntry it drops the buffer and Commit will return
// cache.ErrTooLarge.
func (w *writer) Write(p []byte) (int, error) {
	if w.done {
		return 0, errors.New("redis cache: write after commit or abort")
	}
	if !w.tooLarge && int64(w.buf.Len()+len(p)) > w.t.maxEntry {
		w.tooLarge = true
		w.buf = bytes.Buffer{}
	}
	if !w.tooLarge {
		w.buf.Write(p)
	}
	return len(p), nil
}

// Commit stores the entry with the tier's TTL unless the identifier was
// purged since Create.
func (w *writer) Commit(meta cache.Meta) error {
	if w.done {
		return errors.New("redis cache: commit after commit or abort")
	}
	w.done = true
	if w.tooLarge {
		return cache.ErrTooLarge
	}
	gen, before, after := w.t.keys(w.key)
	val := encode(w.key, meta, w.buf.Bytes())
	w.buf = bytes.Buffer{}
	err := w.t.call(context.Background(), func(ctx context.Context) error {
		return setScript.Run(ctx, w.t.client, []string{gen}, w.gen, before+w.gen+after, val, w.t.ttl.Milliseconds()).Err()
	})
	if err != nil {
		return err
	}
	w.t.counters.Puts.Add(1)
	return nil
}

// Abort drops the buffer.
func (w *writer) Abort() {
	w.done = true
	w.buf = bytes.Buffer{}
}

// Delete removes the entry for key.
func (t *Tier) Delete(ctx context.Context, key cache.Key) error {
	gen, before, after := t.keys(key)
	return t.call(ctx, func(ctx context.Context) error {
		return delScript.Run(ctx, t.client, []string{gen}, before, after).Err()
	})
}

// Purge orphans every entry of identifier id, for every replica, and tells
// the replicas watching purges. Unlike the other calls it is tried even
// while the tier backs off, since the caller wants to know it happened.
func (t *Tier) Purge(ctx context.Context, id string) error {
	gen, _, _ := t.keys(cache.Key{ID: id})
	ctx, cancel := context.WithTimeout(ctx, 4*t.timeout)
	defer cancel()
	_, err := t.client.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		p.Incr(ctx, gen)
		p.Publish(ctx, t.prefix+"purge", t.origin+"\n"+id)
		return nil
	})
	if err != nil {
		t.counters.Errors.Add(1)
		return fmt.Errorf("redis cache: purge: %w", err)
	}
	t.downUntil.Store(0)
	return nil
}

// WatchPurges calls fn with the identifier of every purge made by another
// replica sharing this Redis, until ctx is done; cache.Cache.Watch uses it
// to purge the local tiers. The subscription
// reconnects by itself after an outage; purges published meanwhile are
// missed, which the source version in every key makes harmless for
// replaced images.
func (t *Tier) WatchPurges(ctx context.Context, fn func(id string)) {
	sub := t.client.Subscribe(ctx, t.prefix+"purge")
	defer sub.Close()
	ch := sub.Channel()
	for {
		select {
		case <-ctx.Done():
			return
		case msg, ok := <-ch:
			if !ok {
				return
			}
			origin, id, found := strings.Cut(msg.Payload, "\n")
			if found && origin != t.origin {
				fn(id)
			}
		}
	}
}

// lockKey is the key of the claim on computing key. It does not carry the
// generation: a claim made before a purge just expires or is given up.
func (t *Tier) lockKey(key cache.Key) string {
	return t.prefix + "{" + cache.Hash(key.ID) + "}:l:" + cache.Hash(key.ID, key.Name)
}

var unlockScript = goredis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`)

// Lock claims the computation of key for ttl (SET NX PX with a token of
// this claim), so that replicas missing the same key wait for one of them.
func (t *Tier) Lock(ctx context.Context, key cache.Key, ttl time.Duration) (unlock func(), claimed bool, err error) {
	lk := t.lockKey(key)
	var b [12]byte
	rand.Read(b[:])
	token := t.origin + ":" + hex.EncodeToString(b[:])
	err = t.call(ctx, func(ctx context.Context) error {
		var err error
		claimed, err = t.client.SetNX(ctx, lk, token, ttl).Result()
		return err
	})
	if err != nil || !claimed {
		return nil, false, err
	}
	return func() {
		// Only our own claim is removed: one that expired and was taken
		// by another replica stays. Best effort, like the claim itself.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), t.timeout)
		defer cancel()
		unlockScript.Run(ctx, t.client, []string{lk}, token)
	}, true, nil
}

// Locked reports whether a replica claims the computation of key.
func (t *Tier) Locked(ctx context.Context, key cache.Key) (bool, error) {
	var n int64
	err := t.call(ctx, func(ctx context.Context) error {
		var err error
		n, err = t.client.Exists(ctx, t.lockKey(key)).Result()
		return err
	})
	return n > 0, err
}

var _ cache.Locker = (*Tier)(nil)

// Stats returns the tier's counters; Redis does not report Entries and
// Bytes per tier.
func (t *Tier) Stats() cache.Stats { return t.counters.Snapshot() }

// String describes the tier for logs.
func (t *Tier) String() string {
	return "redis " + t.client.Options().Addr + " ttl " + t.ttl.String() + " max entry " + strconv.FormatInt(t.maxEntry, 10)
}
