package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/iiifd/iiifd/internal/fault"
	"github.com/iiifd/iiifd/internal/source"
	"github.com/iiifd/iiifd/internal/source/ranged"
	"github.com/iiifd/iiifd/internal/source/spool"
)

// Meta is what a store says about an object without sending it.
type Meta struct {
	Size    int64
	ETag    string // as the store sent it; empty when it sent none
	ModTime time.Time
	// Seen is when the request that brought this metadata was sent.
	Seen time.Time
}

// Version is the object's version: its ETag, else its size and
// modification time.
func (m Meta) Version() string {
	if m.ETag != "" {
		return m.ETag
	}
	return strconv.FormatInt(m.Size, 36) + "-" + strconv.FormatInt(m.ModTime.Unix(), 36)
}

// ErrNoRanges is returned by Accessor.Range when the store answered a
// range request with the whole object: it does not do ranges.
var ErrNoRanges = errors.New("the store ignores Range requests")

// Accessor is a store's protocol: one attempt of each request, without
// retries (Objects adds them). Keys are the store's full keys.
type Accessor interface {
	// Head returns an object's metadata; source.ErrNotFound if absent.
	Head(ctx context.Context, key string) (Meta, error)
	// Range reads exactly len(p) bytes at off of the version m of key;
	// ErrChanged if the object changed, ErrNoRanges if the store sent the
	// whole object.
	Range(ctx context.Context, key string, m Meta, off int64, p []byte) error
	// Whole writes the whole version m of key to w.
	Whole(ctx context.Context, key string, m Meta, w io.Writer) error
}

// Starter is an Accessor that can open an object with a ranged GET of its
// first bytes instead of a HEAD: one request for the metadata and the
// bytes a header probe, or a whole stored tile, needs.
type Starter interface {
	// Start returns the object's metadata and its first min(n, size)
	// bytes; source.ErrNotFound if absent, ErrNoRanges if the store sent
	// more than n bytes.
	Start(ctx context.Context, key string, n int) (Meta, []byte, error)
}

// Lister is an Accessor that can list keys by prefix.
type Lister interface {
	// List returns the keys starting with prefix (at most limit).
	List(ctx context.Context, prefix string, limit int) ([]string, error)
}

// Config builds an Objects.
type Config struct {
	// Name identifies the store in block and spool ids (e.g. the root
	// URL); objects of different stores never share cached bytes.
	Name string
	// Prefix is prepended to every key to make the store's key.
	Prefix   string
	Accessor Accessor
	Backend  *Backend
	Store    *ranged.Store
	// Spool keeps whole copies of flat images and of everything from
	// stores that ignore Range; nil reads everything by range.
	Spool *spool.Spool
	// MetaTTL is how long an object's metadata is reused without asking
	// the store again (default 1 s, like the fs open-file cache).
	MetaTTL time.Duration
}

// Objects is a source.Source over an Accessor: ranged reads through the
// shared block cache, flat images through the spool.
type Objects struct {
	cfg      Config
	noRanges atomic.Bool

	mu      sync.Mutex
	meta    map[string]metaEntry
	flights map[string]*metaFlight
}

type metaEntry struct {
	m  Meta
	at time.Time
	// missing says the store answered that the object does not exist:
	// remembered as long as metadata is, so that a client asking again
	// and again for an unknown identifier costs the store one request
	// per MetaTTL, not one per ask.
	missing bool
}

var _ source.Source = (*Objects)(nil)

// SpillAfter is how many bytes of a flat image are read by range (its
// header, for info.json) before the whole object is fetched into the
// spool for decoding.
const SpillAfter = 64 << 10

// StartBytes are read with the request that opens an image read whole:
// its header, or all of a stored tile.
const StartBytes = SpillAfter

// New returns the source.
func New(cfg Config) *Objects {
	if cfg.MetaTTL == 0 {
		cfg.MetaTTL = time.Second
	}
	return &Objects{cfg: cfg, meta: map[string]metaEntry{}, flights: map[string]*metaFlight{}}
}

// Stats returns the bytes and requests fetched by range so far.
func (o *Objects) Stats() ranged.Stats { return o.cfg.Store.Stats() }

// Backend returns the backend (its breaker).
func (o *Objects) Backend() *Backend { return o.cfg.Backend }

// Tiled reports whether key names a format read by range well: TIFF
// keeps tiles and levels at offsets its header gives. Other images are
// fetched whole when they are decoded; JPEG 2000 among them, although it
// is tiled too: OpenJPEG (2.5.0) walks every tile-part header of the
// codestream in 1 MiB reads to decode any one tile, so a region reads
// about 90 % of the file anyway (docs/BENCHMARKS.md), and once spooled
// every later request of the object is local.
func Tiled(key string) bool {
	switch strings.ToLower(strings.TrimPrefix(path.Ext(key), ".")) {
	case "tif", "tiff", "ptif", "ptiff", "btf":
		return true
	}
	return false
}

// stat returns key's metadata. Images read whole (and stored tiles,
// which are such images) are opened with Start: one request gives the
// metadata and the bytes an info.json or the tile needs, which go into
// the block cache. TIFF is opened with a HEAD, so that an info.json reads
// only the blocks of its IFDs.
//
// Concurrent stats of one key share one request (a flight): a page of a
// viewer asks for many tiles of an image at once, and each would
// otherwise send its own HEAD. Each caller waits within its own context;
// the request is cancelled when every caller has gone, and its outcome is
// kept when it succeeded or found no object (in the MetaTTL cache),
// never another error.
func (o *Objects) stat(ctx context.Context, key string) (Meta, error) {
	o.mu.Lock()
	if e, ok := o.meta[key]; ok && time.Since(e.at) < o.cfg.MetaTTL {
		o.mu.Unlock()
		if e.missing {
			return Meta{}, fmt.Errorf("%w: %s", source.ErrNotFound, key)
		}
		return e.m, nil
	}
	c, ok := o.flights[key]
	if !ok {
		// The flight keeps the first caller's values (trace spans) but
		// not its cancellation: it ends when its last caller leaves.
		fctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		c = &metaFlight{done: make(chan struct{}), cancel: cancel}
		o.flights[key] = c
		go o.fly(fctx, key, c)
	}
	c.waiters++
	o.mu.Unlock()
	select {
	case <-c.done:
		return c.m, c.err
	case <-ctx.Done():
		o.mu.Lock()
		c.waiters--
		if c.waiters == 0 {
			select {
			case <-c.done:
			default:
				// Nobody waits: stop the request, and let the next
				// caller start a fresh one rather than join this.
				c.cancel()
				if o.flights[key] == c {
					delete(o.flights, key)
				}
			}
		}
		o.mu.Unlock()
		return Meta{}, ctx.Err()
	}
}

// metaFlight is one request for an object's metadata and the callers
// waiting for it.
type metaFlight struct {
	done    chan struct{}
	cancel  context.CancelFunc
	waiters int // guarded by Objects.mu
	m       Meta
	err     error
}

// fly makes the request of flight c and completes it.
func (o *Objects) fly(ctx context.Context, key string, c *metaFlight) {
	defer c.cancel()
	seen := time.Now()
	m, err := o.fetchMetaSafe(ctx, key)
	m.Seen = seen
	o.mu.Lock()
	if o.flights[key] == c {
		delete(o.flights, key)
	}
	if missing := errors.Is(err, source.ErrNotFound); err == nil || missing {
		if len(o.meta) > 10000 {
			clear(o.meta)
		}
		o.meta[key] = metaEntry{m: m, at: time.Now(), missing: missing}
	}
	c.m, c.err = m, err
	close(c.done)
	o.mu.Unlock()
}

// fetchMetaSafe is fetchMeta on a goroutine of its own: a panic in the
// store's client becomes the flight's error, for its waiters, instead of
// ending the process (no request's recovery covers this goroutine).
func (o *Objects) fetchMetaSafe(ctx context.Context, key string) (m Meta, err error) {
	defer func() {
		if v := recover(); v != nil {
			m, err = Meta{}, fault.Wrap(fault.Internal, fmt.Errorf("opening %s: panic in the store client: %v", key, v), "internal server error")
		}
	}()
	return o.fetchMeta(ctx, key)
}

// fetchMeta asks the store for key's metadata: a Start where it helps,
// else a HEAD.
func (o *Objects) fetchMeta(ctx context.Context, key string) (Meta, error) {
	full := o.cfg.Prefix + key
	var m Meta
	var data []byte
	st, canStart := o.cfg.Accessor.(Starter)
	err := ErrNoRanges
	if canStart && !Tiled(key) && !o.noRanges.Load() {
		err = o.cfg.Backend.Do(ctx, 0, func(ctx context.Context) error {
			var err error
			m, data, err = st.Start(ctx, full, StartBytes)
			return err
		})
		if errors.Is(err, ErrNoRanges) {
			o.noRanges.Store(true)
		}
	}
	if errors.Is(err, ErrNoRanges) {
		data = nil
		err = o.cfg.Backend.Do(ctx, 0, func(ctx context.Context) error {
			var err error
			m, err = o.cfg.Accessor.Head(ctx, full)
			return err
		})
	}
	if err != nil {
		return Meta{}, err
	}
	if data != nil {
		o.cfg.Store.Prime(o.blockID(full, m), data, m.Size)
	}
	return m, nil
}

// blockID names version m of the object full in the block cache and the
// spool.
func (o *Objects) blockID(full string, m Meta) string {
	return o.cfg.Name + "\x00" + full + "\x00" + m.Version()
}

func (o *Objects) forget(key string) {
	o.mu.Lock()
	delete(o.meta, key)
	o.mu.Unlock()
}

// Open opens key: one request (none within MetaTTL of the last, and one
// for all concurrent opens of key), a HEAD or a Start.
func (o *Objects) Open(ctx context.Context, key string) (*source.Object, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !source.ValidKey(key) {
		return nil, fmt.Errorf("%w: %s", source.ErrNotFound, key)
	}
	m, err := o.stat(ctx, key)
	if err != nil {
		return nil, err
	}
	full := o.cfg.Prefix + key
	id := o.blockID(full, m)
	rd := o.cfg.Store.Open(ctx, id, m.Size, func(ctx context.Context, off int64, p []byte) error {
		if o.noRanges.Load() {
			return o.readSpooled(ctx, full, id, m, off, p)
		}
		err := o.cfg.Backend.Do(ctx, 0, func(ctx context.Context) error {
			return o.cfg.Accessor.Range(ctx, full, m, off, p)
		})
		if errors.Is(err, ErrNoRanges) {
			o.noRanges.Store(true)
			return o.readSpooled(ctx, full, id, m, off, p)
		}
		if errors.Is(err, ErrChanged) {
			o.forget(key)
		}
		return err
	})
	if o.cfg.Spool != nil && o.cfg.Spool.Fits(m.Size) && (o.noRanges.Load() || !Tiled(key)) {
		after := int64(SpillAfter)
		if o.noRanges.Load() {
			after = 0
		}
		rd.SpillAfter(after, func(ctx context.Context) (io.ReaderAt, error) {
			return o.spooled(ctx, full, id, m)
		})
	}
	obj := &source.Object{
		ReaderAt: rd,
		Closer:   rd,
		Key:      key,
		Size:     m.Size,
		ModTime:  m.ModTime,
		Version:  m.Version(),
		Seen:     m.Seen,
	}
	if o.cfg.Spool != nil && o.cfg.Spool.Fits(m.Size) {
		obj.Local = func(ctx context.Context) (*os.File, error) {
			ra, err := o.spooled(ctx, full, id, m)
			if err != nil {
				return nil, err
			}
			f, ok := ra.(*os.File)
			if !ok {
				return nil, fmt.Errorf("source cache: %s is not a file", full)
			}
			return f, nil
		}
	}
	return obj, nil
}

// spooled returns the spool's copy of the object, downloading it once.
func (o *Objects) spooled(ctx context.Context, full, id string, m Meta) (io.ReaderAt, error) {
	if o.cfg.Spool == nil || !o.cfg.Spool.Fits(m.Size) {
		return nil, badAnswer(fmt.Errorf("%s: %w and is too large for the source cache", full, ErrNoRanges))
	}
	timeout := TransferTimeout(m.Size)
	return o.cfg.Spool.Open(ctx, id, m.Size, func(ctx context.Context, w *spool.Writer) error {
		err := o.cfg.Backend.Do(ctx, timeout, func(ctx context.Context) error {
			if err := w.Rewind(); err != nil {
				return err
			}
			return o.cfg.Accessor.Whole(ctx, full, m, w)
		})
		if err == nil {
			o.cfg.Store.Count(m.Size)
		}
		return err
	})
}

func (o *Objects) readSpooled(ctx context.Context, full, id string, m Meta, off int64, p []byte) error {
	ra, err := o.spooled(ctx, full, id, m)
	if err != nil {
		return err
	}
	if c, ok := ra.(io.Closer); ok {
		defer c.Close()
	}
	n, err := ra.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	return fmt.Errorf("source cache: %w", err)
}

// Siblings lists the keys in key's folder named key's base name plus an
// extension, when the store can list; otherwise none.
func (o *Objects) Siblings(ctx context.Context, key string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	l, ok := o.cfg.Accessor.(Lister)
	if !ok || !source.ValidKey(key) {
		return nil, nil
	}
	var keys []string
	err := o.cfg.Backend.Do(ctx, 0, func(ctx context.Context) error {
		var err error
		keys, err = l.List(ctx, o.cfg.Prefix+key+".", 100)
		return err
	})
	if err != nil {
		return nil, err
	}
	var out []string
	for _, k := range keys {
		k = strings.TrimPrefix(k, o.cfg.Prefix)
		rest, ok := strings.CutPrefix(k, key+".")
		if ok && rest != "" && !strings.ContainsAny(rest, "./") {
			out = append(out, k)
		}
	}
	return out, nil
}
