package ranged

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
)

// FetchFunc reads exactly len(p) bytes of an object at off into p. Reads
// never reach past the object's size. It is called concurrently.
type FetchFunc func(ctx context.Context, off int64, p []byte) error

// Config bounds a Store.
type Config struct {
	// Cache is the block cache, shared between stores if wanted; nil
	// caches nothing.
	Cache *Cache
	// BlockSize is the unit of caching and fetching (default BlockSize).
	BlockSize int
	// MaxCached is the largest read served through the block cache;
	// larger reads (whole tiles of big images) are fetched into the
	// caller's buffer directly and not cached (default 1 MiB).
	MaxCached int
	// PerObject bounds the range requests in flight for one opened object,
	// that is for one client request (default 8); Global bounds them for
	// the whole store (default 64).
	PerObject, Global int
	// ReadAhead is the number of blocks fetched beyond what a cached read
	// asks for (default 0: none; object stores charge per request, not per
	// byte, but reading ahead is wasted on scattered tile reads).
	ReadAhead int
}

// Stats counts what a store fetched.
type Stats struct {
	Requests  int64 // range requests made
	Bytes     int64 // bytes those requests returned
	CacheHits int64 // blocks served from the block cache
}

// Store is the shared state of one backend: cache, concurrency bounds and
// counters. It is safe for concurrent use.
type Store struct {
	cfg    Config
	global chan struct{}

	mu       sync.Mutex
	inflight map[blockKey]*call

	requests, bytes, hits atomic.Int64
}

// call is a fetch of one block that other readers may wait for.
type call struct {
	done chan struct{}
	data []byte
	err  error
}

// NewStore returns a store with cfg's bounds (zero fields take defaults).
func NewStore(cfg Config) *Store {
	if cfg.BlockSize <= 0 {
		cfg.BlockSize = BlockSize
	}
	if cfg.MaxCached <= 0 {
		cfg.MaxCached = 1 << 20
	}
	if cfg.PerObject <= 0 {
		cfg.PerObject = 8
	}
	if cfg.Global <= 0 {
		cfg.Global = 64
	}
	return &Store{cfg: cfg, global: make(chan struct{}, cfg.Global), inflight: map[blockKey]*call{}}
}

// Stats returns the counters so far.
func (s *Store) Stats() Stats {
	return Stats{Requests: s.requests.Load(), Bytes: s.bytes.Load(), CacheHits: s.hits.Load()}
}

// Reader is one opened object: an io.ReaderAt whose reads are done on
// behalf of the context it was opened with (the client request), so they
// stop when that request ends.
type Reader struct {
	s     *Store
	ctx   context.Context
	id    string
	size  int64
	fetch FetchFunc
	sem   chan struct{}

	spill      func(context.Context) (io.ReaderAt, error)
	spillAfter int64
	requested  atomic.Int64
	spillOnce  sync.Once
	spilled    io.ReaderAt
}

// Open returns a reader of an object of size bytes. id must identify the
// object's bytes (store, key and version): blocks are cached under it.
func (s *Store) Open(ctx context.Context, id string, size int64, fetch FetchFunc) *Reader {
	return &Reader{s: s, ctx: ctx, id: id, size: size, fetch: fetch, sem: make(chan struct{}, s.cfg.PerObject)}
}

// SpillAfter makes the reader call spill once more than n bytes have been
// asked of it, and serve every later read from the ReaderAt it returns
// (a local copy of the whole object). A nil ReaderAt keeps the reader
// fetching ranges; an error fails the read that caused the spill, and
// later reads fetch ranges. Formats that decoders read whole (a flat
// JPEG) are so read by range for their header only.
func (r *Reader) SpillAfter(n int64, spill func(context.Context) (io.ReaderAt, error)) {
	r.spillAfter, r.spill = n, spill
}

// Size returns the object's size.
func (r *Reader) Size() int64 { return r.size }

// ReadAt reads len(p) bytes at off; at the end of the object it returns
// what there is and io.EOF.
func (r *Reader) ReadAt(p []byte, off int64) (int, error) {
	return r.read(p, off, true)
}

// ReadAtUncached reads as ReadAt does, but never through the block
// cache: its bytes are fetched into p with one request, neither looked
// up among nor added to the cached blocks. It is for bytes the caller
// holds itself (a render's tiles, fetched ahead of it), which the cache
// would hold a second time, evicting blocks other reads need.
func (r *Reader) ReadAtUncached(p []byte, off int64) (int, error) {
	return r.read(p, off, false)
}

// read reads len(p) bytes at off, through the block cache if cache is
// set and the read is small enough.
func (r *Reader) read(p []byte, off int64, cache bool) (int, error) {
	if off < 0 {
		return 0, errors.New("ranged: negative offset")
	}
	if off >= r.size {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	n := len(p)
	var eof error
	if int64(n) > r.size-off {
		n = int(r.size - off)
		eof = io.EOF
	}
	if n == 0 {
		return 0, nil
	}
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	ra, err := r.spillTarget(int64(n))
	if err != nil {
		return 0, err
	}
	if ra != nil {
		k, err := ra.ReadAt(p[:n], off)
		if k == n {
			return n, eof
		}
		if err == nil || errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return k, err
	}
	if !cache || n > r.s.cfg.MaxCached || r.s.cfg.Cache == nil {
		err = r.fetchDirect(off, p[:n])
	} else {
		err = r.readBlocks(off, p[:n], true)
	}
	if err != nil {
		return 0, err
	}
	return n, eof
}

// spillTarget returns the local copy to read from, if there is one. The
// read that makes the reader spill gets the spill's error.
func (r *Reader) spillTarget(n int64) (io.ReaderAt, error) {
	if r.spill == nil {
		return nil, nil
	}
	if r.requested.Add(n) <= r.spillAfter {
		return nil, nil
	}
	var err error
	r.spillOnce.Do(func() {
		var ra io.ReaderAt
		ra, err = r.spill(r.ctx)
		if err == nil {
			r.spilled = ra
		}
	})
	return r.spilled, err
}

// acquire takes a per-object and a store-wide slot for one request.
func (r *Reader) acquire() (release func(), err error) {
	select {
	case r.sem <- struct{}{}:
	case <-r.ctx.Done():
		return nil, r.ctx.Err()
	}
	select {
	case r.s.global <- struct{}{}:
	case <-r.ctx.Done():
		<-r.sem
		return nil, r.ctx.Err()
	}
	return func() { <-r.s.global; <-r.sem }, nil
}

func (r *Reader) fetchDirect(off int64, p []byte) error {
	release, err := r.acquire()
	if err != nil {
		return err
	}
	defer release()
	r.s.requests.Add(1)
	if err := r.fetch(r.ctx, off, p); err != nil {
		return err
	}
	r.s.bytes.Add(int64(len(p)))
	return nil
}

// readBlocks serves [off, off+len(p)) from cached blocks, blocks other
// readers are fetching, and one request per run of blocks nobody has.
func (r *Reader) readBlocks(off int64, p []byte, retry bool) error {
	bs := int64(r.s.cfg.BlockSize)
	first, last := off/bs, (off+int64(len(p))-1)/bs
	lastBlock := (r.size - 1) / bs
	ahead := min(last+int64(r.s.cfg.ReadAhead), lastBlock)
	type part struct {
		index int64
		data  []byte
		wait  *call
	}
	parts := make([]part, 0, ahead-first+1)
	var owned []int64 // blocks this read fetches, ascending
	calls := map[int64]*call{}
	r.s.mu.Lock()
	for i := first; i <= ahead; i++ {
		k := blockKey{r.id, i}
		if d, ok := r.s.cfg.Cache.get(k); ok {
			if i <= last {
				parts = append(parts, part{index: i, data: d})
				r.s.hits.Add(1)
			}
			continue
		}
		if c, ok := r.s.inflight[k]; ok {
			if i <= last {
				parts = append(parts, part{index: i, wait: c})
			}
			continue
		}
		c := &call{done: make(chan struct{})}
		r.s.inflight[k] = c
		calls[i] = c
		owned = append(owned, i)
		if i <= last {
			parts = append(parts, part{index: i, wait: c})
		}
	}
	r.s.mu.Unlock()

	// Fetch each run of consecutive owned blocks with one request; runs
	// go out concurrently.
	var wg sync.WaitGroup
	for i := 0; i < len(owned); {
		j := i + 1
		for j < len(owned) && owned[j] == owned[j-1]+1 {
			j++
		}
		run := owned[i:j]
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.fetchRun(run, calls)
		}()
		i = j
	}
	wg.Wait()

	for _, pt := range parts {
		d := pt.data
		if pt.wait != nil {
			select {
			case <-pt.wait.done:
			case <-r.ctx.Done():
				return r.ctx.Err()
			}
			if err := pt.wait.err; err != nil {
				if r.ctx.Err() == nil && (err == context.Canceled || err == context.DeadlineExceeded) && retry {
					// The request fetching this block gave up (its own
					// context's error, as fetches return it unwrapped);
					// fetch it for this one.
					return r.readBlocks(off, p, false)
				}
				return err
			}
			d = pt.wait.data
		}
		start := pt.index * bs
		lo := max(off, start)
		hi := min(off+int64(len(p)), start+int64(len(d)))
		if hi <= lo {
			return fmt.Errorf("ranged: block %d of %s is short", pt.index, r.id)
		}
		copy(p[lo-off:hi-off], d[lo-start:hi-start])
	}
	return nil
}

// fetchRun fetches consecutive blocks in one request and completes their
// calls, caching the blocks on success.
func (r *Reader) fetchRun(run []int64, calls map[int64]*call) {
	bs := int64(r.s.cfg.BlockSize)
	start := run[0] * bs
	end := min((run[len(run)-1]+1)*bs, r.size)
	buf := make([]byte, end-start)
	err := r.fetchDirect(start, buf)
	r.s.mu.Lock()
	for _, i := range run {
		k := blockKey{r.id, i}
		c := calls[i]
		if err != nil {
			c.err = err
		} else {
			lo := i*bs - start
			c.data = buf[lo:min(lo+bs, int64(len(buf))):min(lo+bs, int64(len(buf)))]
			r.s.cfg.Cache.put(k, c.data)
		}
		delete(r.s.inflight, k)
		close(c.done)
	}
	r.s.mu.Unlock()
}

// Close releases the local copy the reader spilled to, if any.
func (r *Reader) Close() error {
	var c io.Closer
	r.spillOnce.Do(func() {}) // no spill may start after Close
	if cl, ok := r.spilled.(io.Closer); ok {
		c = cl
	}
	if c != nil {
		return c.Close()
	}
	return nil
}

// Count adds a request that fetched n bytes outside the reader (a whole
// object downloaded into a local copy).
func (s *Store) Count(n int64) {
	s.requests.Add(1)
	s.bytes.Add(n)
}

// Prime puts bytes fetched from the start of an object (with its opening
// request) into the block cache, counting them as one request. data holds
// the object's first len(data) bytes; size is the object's size.
func (s *Store) Prime(id string, data []byte, size int64) {
	s.requests.Add(1)
	s.bytes.Add(int64(len(data)))
	if s.cfg.Cache == nil {
		return
	}
	bs := s.cfg.BlockSize
	for i := 0; i*bs < len(data); i++ {
		end := min((i+1)*bs, len(data))
		if end-i*bs < bs && int64(end) != size {
			break // a partial block that is not the object's last
		}
		s.cfg.Cache.put(blockKey{id, int64(i)}, data[i*bs:end:end])
	}
}
