// Package ranged turns a store that answers byte-range requests (S3, an
// HTTP origin) into an io.ReaderAt: reads are served from a small shared
// block cache when they can be, the blocks a read misses are fetched with
// one coalesced range request, concurrent readers of the same blocks share
// that request, and the number of range requests in flight is bounded per
// opened object and per store. Every fetched byte is counted.
package ranged

import (
	"container/list"
	"sync"
)

// BlockSize is the default size of a cached block. Header probes read 4 KiB
// chunks at scattered offsets (a pyramidal TIFF's IFDs lie megabytes
// apart), so small blocks keep the bytes fetched for an info.json to a few
// tens of KiB while tiles, which are larger, span several blocks fetched
// in one request.
const BlockSize = 4 << 10

// Cache holds fetched blocks of many objects, least recently used dropped
// first when its byte bound is reached. Blocks are keyed by object
// identity and version, so a changed object never serves old blocks, and
// info.json and the tile requests that follow it share the header blocks.
// It is safe for concurrent use.
type Cache struct {
	mu       sync.Mutex
	maxBytes int64
	bytes    int64
	lru      *list.List // of *block, most recent first
	blocks   map[blockKey]*list.Element
}

type blockKey struct {
	object string // store, key and version
	index  int64
}

type block struct {
	key  blockKey
	data []byte
}

// NewCache returns a cache bounded to maxBytes (0 disables caching).
func NewCache(maxBytes int64) *Cache {
	return &Cache{maxBytes: maxBytes, lru: list.New(), blocks: map[blockKey]*list.Element{}}
}

func (c *Cache) get(k blockKey) ([]byte, bool) {
	if c == nil {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.blocks[k]
	if !ok {
		return nil, false
	}
	c.lru.MoveToFront(e)
	return e.Value.(*block).data, true
}

func (c *Cache) put(k blockKey, data []byte) {
	if c == nil || int64(len(data)) > c.maxBytes {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.blocks[k]; ok {
		c.lru.MoveToFront(e)
		return
	}
	c.blocks[k] = c.lru.PushFront(&block{key: k, data: data})
	c.bytes += int64(len(data))
	for c.bytes > c.maxBytes {
		e := c.lru.Back()
		b := e.Value.(*block)
		c.lru.Remove(e)
		delete(c.blocks, b.key)
		c.bytes -= int64(len(b.data))
	}
}

// Bytes returns the bytes held.
func (c *Cache) Bytes() int64 {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bytes
}
