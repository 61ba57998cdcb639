package fs

import (
	"os"
	"sync"
	"time"

	"github.com/iiifd/iiifd/internal/source"
)

// OpenFor is how long an opened file and its metadata are shared between
// requests (as nginx's open_file_cache does): a viewer's burst of tile
// requests, or cache hits, then cost no system call for the source. A file
// replaced in place is noticed within this time.
const OpenFor = time.Second

// maxOpen bounds the files kept open for sharing.
const maxOpen = 256

// openFiles shares recently opened files. An entry is handed out to many
// callers at once (reads are pread, so they do not interfere); it is
// closed when it has expired or been replaced and its last user closed it.
type openFiles struct {
	mu      sync.Mutex
	entries map[string]*openFile
	// sweeper closes expired files when no new open comes to sweep
	// them, so that a quiet server holds no file open (a deleted source's
	// disk space is freed) once OpenFor has passed.
	sweeper *time.Timer
}

type openFile struct {
	key     string
	obj     source.Object // what every user gets, but for its Closer
	f       *os.File
	opened  time.Time
	refs    int
	retired bool // no longer handed out; closed when refs reach 0
}

type closerFunc func() error

func (c closerFunc) Close() error { return c() }

// get hands out the entry for key if it is fresh.
func (c *openFiles) get(key string) (*source.Object, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[key]
	if e == nil || time.Since(e.opened) > OpenFor {
		return nil, false
	}
	e.refs++
	return c.handout(e), true
}

// put shares a newly opened file and hands it out once.
func (c *openFiles) put(f *os.File, obj source.Object) *source.Object {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = map[string]*openFile{}
	}
	if old := c.entries[obj.Key]; old != nil {
		c.retire(old)
	}
	c.sweep()
	e := &openFile{key: obj.Key, obj: obj, f: f, opened: time.Now(), refs: 1}
	c.entries[obj.Key] = e
	if c.sweeper == nil {
		c.sweeper = time.AfterFunc(OpenFor+OpenFor/10, c.sweepLater)
	}
	return c.handout(e)
}

// sweepLater retires expired entries on a timer, and runs again while
// some remain.
func (c *openFiles) sweepLater() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sweep()
	if len(c.entries) == 0 {
		c.sweeper = nil
		return
	}
	c.sweeper.Reset(OpenFor / 2)
}

func (c *openFiles) handout(e *openFile) *source.Object {
	o := e.obj
	var once sync.Once
	o.Closer = closerFunc(func() error {
		once.Do(func() { c.release(e) })
		return nil
	})
	return &o
}

func (c *openFiles) release(e *openFile) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e.refs--
	if e.refs == 0 && (e.retired || time.Since(e.opened) > OpenFor) {
		c.retire(e)
	}
}

// retire stops handing e out and closes it once nobody uses it. Called
// with mu held.
func (c *openFiles) retire(e *openFile) {
	if c.entries[e.key] == e {
		delete(c.entries, e.key)
	}
	e.retired = true
	if e.refs == 0 && e.f != nil {
		e.f.Close()
		e.f = nil
	}
}

// sweep retires expired entries, and idle ones when too many are kept.
// It runs whenever a file is opened, so no goroutine is needed. Called
// with mu held.
func (c *openFiles) sweep() {
	full := len(c.entries) >= maxOpen
	for _, e := range c.entries {
		if time.Since(e.opened) > OpenFor || (full && e.refs == 0) {
			c.retire(e)
		}
	}
}
