package edge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/iiifd/iiifd/internal/describe"
	"github.com/iiifd/iiifd/internal/fault"
)

// Store is where the images are: an HTTP(S) origin read with range
// requests, or an R2 bucket. The worker implements it in JavaScript
// (fetch with Range and redirect "manual", or the bucket binding); keys
// are identifiers the host has checked (safe relative paths) and the
// store never leaves its prefix. Failures are faults: 502 for an origin
// that answers wrongly (or with a redirect), 504 for one that does not
// answer in time; ErrNotFound for an absent object.
type Store interface {
	// Open returns the object's size and version, and its first head
	// bytes (fewer for a smaller object), in one round trip.
	Open(ctx context.Context, key string, head int) (Object, error)
	// ReadRange returns the n bytes at off of the version of obj that
	// Open saw.
	ReadRange(ctx context.Context, obj Object, off, n int64) ([]byte, error)
	// Get returns a whole object of at most max bytes (a stored tile,
	// an info.json).
	Get(ctx context.Context, key string, max int64) ([]byte, Object, error)
}

// Object is an object of the store, as one request saw it.
type Object struct {
	Key  string
	Size int64
	// Version changes whenever the object's bytes do (its ETag, or its
	// size and modification time): it keys headers and outputs.
	Version string
	ModTime time.Time
	// Head is the object's first bytes, as Open read them.
	Head []byte
}

// ErrNotFound is what stores return for absent objects.
var ErrNotFound = errors.New("edge: no such object")

// Cache keeps outputs at the location (the Workers Cache API), keyed by
// the response's ETag, which names the source version and everything
// else the bytes depend on.
type Cache interface {
	Get(ctx context.Context, key string) (body []byte, contentType string, ok bool)
	Put(ctx context.Context, key string, body []byte, contentType string)
}

// headBytes is what Open reads ahead: the header of a TIFF written by
// libvips and the IFD of its first level fit in it, and a stored info.json
// is smaller.
const headBytes = 64 << 10

// reader is an io.ReaderAt over one object version that holds the small
// reads (headers, IFDs, tile offset arrays, JPEG tables) in a shared
// held set, so that they are fetched once per object version, while
// larger reads (tiles) go to the store each time.
type reader struct {
	ctx   context.Context
	store Store
	obj   Object
	held  *held
}

// smallRead and window: a read of at most smallRead bytes asks the store
// for window bytes at its offset and keeps them.
const (
	smallRead = 4 << 10
	window    = 64 << 10
)

func (r *reader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off >= r.obj.Size {
		return 0, io.EOF
	}
	if r.held.copy(p, off) {
		return r.clip(p, off), eofAt(r.obj.Size, p, off)
	}
	n := int64(len(p))
	small := n <= smallRead
	if small {
		n = window
	}
	n = min(n, r.obj.Size-off)
	b, err := r.store.ReadRange(r.ctx, r.obj, off, n)
	if err != nil {
		return 0, err
	}
	if int64(len(b)) != n {
		return 0, fault.Wrap(fault.BadGateway, fmt.Errorf("edge: %s: asked %d bytes at %d, got %d", r.obj.Key, n, off, len(b)), "the source image could not be read")
	}
	if small {
		r.held.add(off, b)
	}
	k := copy(p, b)
	if k < len(p) {
		return k, io.EOF
	}
	return k, nil
}

func (r *reader) clip(p []byte, off int64) int { return int(min(int64(len(p)), r.obj.Size-off)) }

func eofAt(size int64, p []byte, off int64) error {
	if off+int64(len(p)) > size {
		return io.EOF
	}
	return nil
}

// held is a set of byte runs of one object version, bounded in total.
type held struct {
	mu    sync.Mutex
	runs  []run
	bytes int64
}

type run struct {
	off int64
	b   []byte
}

// maxHeld bounds what one object version holds (a 40000×30000 TIFF's
// offset arrays of all levels are some 400 KiB).
const maxHeld = 8 << 20

func (h *held) copy(p []byte, off int64) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range h.runs {
		end := r.off + int64(len(r.b))
		if off >= r.off && off+int64(len(p)) <= end {
			copy(p, r.b[off-r.off:])
			return true
		}
	}
	return false
}

func (h *held) add(off int64, b []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.bytes+int64(len(b)) > maxHeld {
		return
	}
	h.runs = append(h.runs, run{off, b})
	h.bytes += int64(len(b))
}

// heads remembers, per object version, what its header said and the
// small reads made of it: a bounded map, emptied when full.
type heads struct {
	mu sync.Mutex
	m  map[string]*head
}

// head is what is known of one object version.
type head struct {
	once sync.Mutex
	done bool
	hdr  describe.Header
	err  error
	held held
}

// maxHeads bounds the object versions remembered.
const maxHeads = 256

func (hs *heads) get(obj Object) *head {
	k := obj.Key + "\x00" + obj.Version
	hs.mu.Lock()
	defer hs.mu.Unlock()
	if hs.m == nil || len(hs.m) >= maxHeads {
		hs.m = map[string]*head{}
	}
	h, ok := hs.m[k]
	if !ok {
		h = &head{}
		hs.m[k] = h
	}
	return h
}
