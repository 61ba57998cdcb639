package service

import (
	"container/list"
	"strings"
	"sync"
)

// headerCache keeps the header facts of recently used sources, keyed by
// key and version, so that info.json and every tile of an image do not
// re-read and re-parse its header. It is bounded by entry count with
// least-recently-used eviction.
type headerCache struct {
	mu    sync.Mutex
	max   int
	order *list.List // front = most recent; values are *headerEntry
	items map[string]*list.Element
}

type headerEntry struct {
	key  string
	info header
}

func newHeaderCache(max int) *headerCache {
	return &headerCache{max: max, order: list.New(), items: make(map[string]*list.Element)}
}

func (c *headerCache) get(key string) (header, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[key]
	if !ok {
		return header{}, false
	}
	c.order.MoveToFront(el)
	return el.Value.(*headerEntry).info, true
}

func (c *headerCache) put(key string, info header) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		el.Value.(*headerEntry).info = info
		c.order.MoveToFront(el)
		return
	}
	c.items[key] = c.order.PushFront(&headerEntry{key: key, info: info})
	for c.order.Len() > c.max {
		old := c.order.Back()
		c.order.Remove(old)
		delete(c.items, old.Value.(*headerEntry).key)
	}
}

// drop forgets every version of the source key (entries are keyed
// "key\x00version").
func (c *headerCache) drop(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	prefix := key + "\x00"
	for k, el := range c.items {
		if strings.HasPrefix(k, prefix) {
			c.order.Remove(el)
			delete(c.items, k)
		}
	}
}
