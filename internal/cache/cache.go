// Package cache owns iiifd's derivative cache: the Tier interface that every
// storage backend implements (memory, disk and redis subpackages), and Cache,
// which composes tiers in order, promotes hits into the upper tiers and lets
// concurrent identical misses share one computation.
//
// Entries are written through a Writer (iiifd's pipeline copies a finished
// image into it); an entry becomes visible only on Commit and never in
// part. Every entry belongs to an identifier so that Purge can remove every
// derivative of one image from every tier.
package cache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"strconv"
	"sync/atomic"
	"time"
)

// Key names one cache entry.
type Key struct {
	// ID is the identifier of the image the entry derives from; Purge
	// removes every entry with the same ID.
	ID string
	// Name is the rest of the key, unique within ID: the canonical request
	// and the source version, built by the caller.
	Name string
}

// String returns a printable form of the key, for logs.
func (k Key) String() string { return strconv.Quote(k.ID) + " " + strconv.Quote(k.Name) }

// Meta describes an entry's body.
type Meta struct {
	// ContentType is the media type of the body.
	ContentType string
	// ETag is the entity tag sent with the body, quotes included.
	ETag string
	// LastModified is the version time of the source.
	LastModified time.Time
	// Size is the body length in bytes. Writers set it on Commit from the
	// bytes written; the value passed to Commit is ignored.
	Size int64
}

// Hit is an entry found in a tier. The caller must close Body.
type Hit struct {
	Meta
	// Body streams the entry's bytes; exactly Size bytes are read before
	// io.EOF.
	Body io.ReadCloser
	// Tier names the tier that answered ("memory", "disk", "redis"), or
	// Coalesced when the bytes came from a concurrent identical request.
	Tier string
}

// Coalesced is the Tier of a Hit whose bytes were computed by a concurrent
// identical request rather than found in a tier.
const Coalesced = "coalesced"

// Writer fills one entry. Writes are invisible until Commit; after Abort
// nothing is left behind. Exactly one of Commit or Abort must be called, and
// either may be called only once.
type Writer interface {
	io.Writer
	// Commit makes the entry visible atomically with the given metadata.
	Commit(meta Meta) error
	// Abort discards everything written.
	Abort()
}

// Tier is one storage backend. Every method is safe for concurrent use.
// Errors other than ErrMiss are faults of the backend (disk full, network
// down); callers treat them as misses and log them.
type Tier interface {
	// Name is a short lower-case name for headers and metrics.
	Name() string
	// Get returns the entry for key, or ErrMiss.
	Get(ctx context.Context, key Key) (*Hit, error)
	// Create starts writing the entry for key.
	Create(ctx context.Context, key Key) (Writer, error)
	// Delete removes the entry for key; a missing entry is not an error.
	Delete(ctx context.Context, key Key) error
	// Purge removes every entry whose Key.ID is id.
	Purge(ctx context.Context, id string) error
	// Stats returns the tier's counters.
	Stats() Stats
}

// ErrMiss reports that a tier holds no entry for a key.
var ErrMiss = errors.New("cache: miss")

// ErrTooLarge is returned by Commit when the body is larger than the tier
// stores; nothing is stored, which is not a fault.
var ErrTooLarge = errors.New("cache: entry too large for tier")

// ErrUnavailable is returned by a tier that is skipping a backend it found
// down a moment ago.
var ErrUnavailable = errors.New("cache: tier unavailable")

// Stats is a snapshot of a tier's counters.
type Stats struct {
	Hits      int64 // Get calls that found an entry
	Misses    int64 // Get calls that found none (faults included)
	Puts      int64 // entries committed
	Evictions int64 // entries removed to respect the size bound
	Errors    int64 // backend faults on any operation
	Entries   int64 // entries held now, where the tier knows it
	Bytes     int64 // bytes held now, where the tier knows it
}

// Counters are the atomic counters behind Stats, for tiers to embed.
type Counters struct {
	Hits, Misses, Puts, Evictions, Errors atomic.Int64
}

// Snapshot returns the counters as Stats; the tier fills Entries and Bytes.
func (c *Counters) Snapshot() Stats {
	return Stats{
		Hits:      c.Hits.Load(),
		Misses:    c.Misses.Load(),
		Puts:      c.Puts.Load(),
		Evictions: c.Evictions.Load(),
		Errors:    c.Errors.Load(),
	}
}

// Hash returns a 128-bit hex digest of parts (each ended by a NUL, so that
// ("ab","c") and ("a","bc") differ): the one way cache keys, file names
// and ETags are derived from their inputs.
func Hash(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// EntryLimit is the largest entry a tier bounded by maxBytes stores:
// fraction of the bound, 1/8 when fraction is zero, so that one huge image
// cannot flush the whole tier.
func EntryLimit(maxBytes int64, fraction float64) int64 {
	if fraction == 0 {
		fraction = 1.0 / 8
	}
	return int64(float64(maxBytes) * fraction)
}
