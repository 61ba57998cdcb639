// Package spool is the local source cache: whole copies of remote objects
// that cannot be read well by range (flat JPEG and PNG, which decoders read
// from start to end, and anything from an origin that ignores Range),
// downloaded once as a stream and kept on disk, least recently used
// removed first when the size bound is reached. Files are written under a
// temporary name and renamed when complete, so a crash or a failed
// download never leaves a partial copy that could be served.
package spool

import (
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// Spool is a bounded directory of whole objects. It is safe for
// concurrent use; one process owns its directory.
type Spool struct {
	dir      string
	maxBytes int64

	mu      sync.Mutex
	bytes   int64
	lru     *list.List // of *entry, most recent first
	entries map[string]*list.Element
	flight  map[string]*call
}

type entry struct {
	name string
	size int64
}

type call struct {
	done chan struct{}
	err  error
}

const suffix = ".obj"

// New returns a spool in dir (created if missing) bounded to maxBytes.
// Copies left there by an earlier run are removed: their versions are not
// recorded, so they could not be trusted.
func New(dir string, maxBytes int64) (*Spool, error) {
	if maxBytes <= 0 {
		return nil, errors.New("spool: size must be positive")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("source cache: %w", err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("source cache: %w", err)
	}
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), suffix) || strings.HasSuffix(e.Name(), ".tmp") {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
	return &Spool{dir: dir, maxBytes: maxBytes, lru: list.New(), entries: map[string]*list.Element{}, flight: map[string]*call{}}, nil
}

// Fits reports whether an object of size bytes may be kept: at most a
// quarter of the bound, so that one object cannot empty the spool.
func (s *Spool) Fits(size int64) bool { return size <= s.maxBytes/4 }

// Bytes returns the bytes held.
func (s *Spool) Bytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bytes
}

// Fill writes an object's whole bytes to w. It may call w.Rewind to
// start again (a retried download).
type Fill func(ctx context.Context, w *Writer) error

// Open returns the kept copy of the object id (which must name its
// version), filling it first when there is none. Concurrent calls for
// one id share one download. The download is not tied to ctx's
// cancellation (other callers may wait for it), only to its values. The
// caller closes the file; a copy removed meanwhile stays readable until
// then.
func (s *Spool) Open(ctx context.Context, id string, size int64, fill Fill) (*os.File, error) {
	if !s.Fits(size) {
		return nil, fmt.Errorf("spool: object of %d bytes is larger than a quarter of the source cache", size)
	}
	sum := sha256.Sum256([]byte(id))
	name := hex.EncodeToString(sum[:]) + suffix
	for {
		s.mu.Lock()
		if e, ok := s.entries[name]; ok {
			s.lru.MoveToFront(e)
			s.mu.Unlock()
			f, err := os.Open(filepath.Join(s.dir, name))
			if err == nil {
				return f, nil
			}
			// Removed behind our back: forget it and fill again.
			s.mu.Lock()
			s.drop(e)
			s.mu.Unlock()
			continue
		}
		if c, ok := s.flight[name]; ok {
			s.mu.Unlock()
			select {
			case <-c.done:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			if c.err != nil {
				return nil, c.err
			}
			continue
		}
		c := &call{done: make(chan struct{})}
		s.flight[name] = c
		s.mu.Unlock()
		c.err = s.fill(context.WithoutCancel(ctx), name, size, fill)
		s.mu.Lock()
		delete(s.flight, name)
		s.mu.Unlock()
		close(c.done)
		if c.err != nil {
			return nil, c.err
		}
	}
}

func (s *Spool) fill(ctx context.Context, name string, size int64, fill Fill) error {
	tmp, err := os.CreateTemp(s.dir, "*.tmp")
	if err != nil {
		return fmt.Errorf("source cache: %w", err)
	}
	defer os.Remove(tmp.Name())
	w := &Writer{f: tmp, size: size, left: size}
	err = fill(ctx, w)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if w.left != 0 {
		return fmt.Errorf("spool: %w: got %d of %d bytes", io.ErrUnexpectedEOF, size-w.left, size)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(s.dir, name)); err != nil {
		return fmt.Errorf("source cache: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.entries[name] = s.lru.PushFront(&entry{name: name, size: size})
	s.bytes += size
	for s.bytes > s.maxBytes {
		s.drop(s.lru.Back())
	}
	return nil
}

// drop removes an entry and its file. Called with mu held.
func (s *Spool) drop(e *list.Element) {
	ent := e.Value.(*entry)
	s.lru.Remove(e)
	delete(s.entries, ent.name)
	s.bytes -= ent.size
	os.Remove(filepath.Join(s.dir, ent.name))
}

// Writer receives a download. It refuses bytes beyond the object's
// announced size, so a store answering more than it said cannot fill the
// disk.
type Writer struct {
	f          *os.File
	size, left int64
}

// Write appends p.
func (w *Writer) Write(p []byte) (int, error) {
	if int64(len(p)) > w.left {
		return 0, errors.New("spool: the store sent more bytes than the object's size")
	}
	n, err := w.f.Write(p)
	w.left -= int64(n)
	return n, err
}

// Rewind drops what was written, for a download started again.
func (w *Writer) Rewind() error {
	w.left = w.size
	if err := w.f.Truncate(0); err != nil {
		return err
	}
	_, err := w.f.Seek(0, io.SeekStart)
	return err
}
