package pixels

/*
#include <stdio.h>
#include "source.h"
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/cgo"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/iiifd/iiifd/internal/engine"
	"github.com/iiifd/iiifd/internal/fault"
)

// readerSource is the Go side of a libvips custom source: it serves a
// loader's reads from an io.ReaderAt of known size. libvips' source
// signals are read(buffer, length) at the current position and lseek-like
// seek, so the position is kept here.
//
// libvips calls read and seek from whichever thread needs pixels: the
// render's own or one of its workers. Its loaders serialise the calls on
// one source (the tiled loaders read under a lock, and the tile cache in
// front of them single-threads them), but the position is under a mutex
// all the same, so that a loader that did not would at worst get wrong
// bytes, never a data race.
type readerSource struct {
	ctx  context.Context
	r    io.ReaderAt
	size int64

	mu   sync.Mutex
	pos  int64
	err  error // the first failure; every later read fails with it
	wins []window
	next int // the window to replace next
}

// liveSources counts custom sources libvips has not finalised yet.
var liveSources atomic.Int64

// newSource returns a new libvips source reading rs, which the caller
// owns a reference to. The cgo handle that reaches rs is deleted when
// libvips finalises the source, after the last image loaded from it.
func newSource(rs *readerSource) (*C.VipsSource, error) {
	h := cgo.NewHandle(rs)
	src := C.iiifd_source_custom(C.uintptr_t(h))
	if src == nil {
		h.Delete()
		return nil, fault.Wrap(fault.Internal, fmt.Errorf("pixels: custom source: %s", vipsError()), msgProcess)
	}
	liveSources.Add(1)
	return src, nil
}

// failed returns the error that stopped the source, nil if none did.
func (s *readerSource) failed() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// read fills dst from the current position and advances it. It returns
// the number of bytes read, 0 at the end of the source, and -1 on failure,
// as libvips' read signal does.
func (s *readerSource) read(dst []byte) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return -1
	}
	if err := s.ctx.Err(); err != nil {
		s.err = err
		return -1
	}
	if s.pos >= s.size || len(dst) == 0 {
		return 0
	}
	dst = dst[:min(int64(len(dst)), s.size-s.pos)]
	var err error
	if h, ok := s.r.(engine.MemoryReader); ok && h.ReadInMemory(dst, s.pos) {
		// In memory: copied on this thread, straight into libvips'
		// buffer. Nothing can hang, and a goroutine and two thread
		// switches would cost more than the copy.
	} else if len(dst) <= smallRead {
		err = s.readSmall(dst, s.pos)
	} else {
		err = s.readAt(dst, s.pos)
	}
	if err != nil {
		s.err = err
		return -1
	}
	s.pos += int64(len(dst))
	return int64(len(dst))
}

// Small reads, such as libtiff's of IFD entries and tag arrays, or the
// 4 KiB a JPEG or PNG decoder asks for at a time, are served from windows
// of windowSize bytes read ahead: several together cost one ReadAt, and
// a ReadAt costs a goroutine, two thread switches and, remotely, a
// request.
const (
	smallRead  = engine.SmallRead
	windowSize = engine.ReadWindow
	maxWindows = 4
)

// window is bytes read ahead, at an offset.
type window struct {
	off int64
	b   []byte
}

// readSmall fills dst at off from a window, reading a new one if none
// holds it all.
func (s *readerSource) readSmall(dst []byte, off int64) error {
	for _, w := range s.wins {
		if off >= w.off && off+int64(len(dst)) <= w.off+int64(len(w.b)) {
			copy(dst, w.b[off-w.off:])
			return nil
		}
	}
	b := make([]byte, min(windowSize, s.size-off))
	if err := s.fetch(b, off); err != nil {
		return err
	}
	copy(dst, b)
	if len(s.wins) < maxWindows {
		s.wins = append(s.wins, window{off, b})
	} else {
		s.wins[s.next] = window{off, b}
		s.next = (s.next + 1) % maxWindows
	}
	return nil
}

// readAt fills dst at off. The bytes go through a buffer of their own,
// which an abandoned read may still write to after the render is gone.
func (s *readerSource) readAt(dst []byte, off int64) error {
	buf := make([]byte, len(dst))
	if err := s.fetch(buf, off); err != nil {
		return err
	}
	copy(dst, buf)
	return nil
}

// fetch fills buf with the bytes at off, which are within the source. The
// ReaderAt runs on a goroutine of its own, into buf, which is Go memory,
// so that a read that hangs cannot hold the render past its context: on
// cancellation fetch returns at once, and the abandoned read finishes (or
// not) on its own, into a buffer libvips never sees; the caller must then
// drop buf.
func (s *readerSource) fetch(buf []byte, off int64) error {
	done := make(chan error, 1)
	go func() {
		var n int
		var err error
		defer func() {
			if v := recover(); v != nil {
				err = fmt.Errorf("pixels: the reader panicked: %v", v)
			}
			switch {
			case n == len(buf):
				err = nil // io.EOF with the last byte is allowed
			case err == nil || errors.Is(err, io.EOF):
				err = fmt.Errorf("pixels: the source ended at byte %d of %d: %w",
					off+int64(n), s.size, io.ErrUnexpectedEOF)
			}
			done <- err
		}()
		// ReadAt returns all of buf or an error; a reader that breaks
		// that rule is asked again for the rest, as libvips' loaders
		// do not all cope with short reads (sniffing does not).
		for n < len(buf) && err == nil {
			var m int
			m, err = s.r.ReadAt(buf[n:], off+int64(n))
			m = max(0, min(m, len(buf)-n))
			if m == 0 && err == nil {
				err = io.ErrNoProgress
			}
			n += m
		}
	}()
	select {
	case err := <-done:
		return err
	case <-s.ctx.Done():
		return s.ctx.Err()
	}
}

// seek moves the position as lseek(2) does and returns it, or -1.
func (s *readerSource) seek(off int64, whence int) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var p int64
	switch whence {
	case C.SEEK_SET:
		p = off
	case C.SEEK_CUR:
		p = s.pos + off
	case C.SEEK_END:
		p = s.size + off
	default:
		return -1
	}
	if p < 0 {
		return -1
	}
	s.pos = p
	return p
}

//export iiifdGoRead
func iiifdGoRead(h C.uintptr_t, data unsafe.Pointer, n C.int64_t) C.int64_t {
	s := cgo.Handle(h).Value().(*readerSource)
	if n <= 0 {
		return 0
	}
	// The slice is libvips' buffer: it is only copied into, never kept.
	return C.int64_t(s.read(unsafe.Slice((*byte)(data), int(n))))
}

//export iiifdGoSeek
func iiifdGoSeek(h C.uintptr_t, off C.int64_t, whence C.int) C.int64_t {
	return C.int64_t(cgo.Handle(h).Value().(*readerSource).seek(int64(off), int(whence)))
}

//export iiifdGoSourceGone
func iiifdGoSourceGone(h C.uintptr_t) {
	cgo.Handle(h).Delete()
	liveSources.Add(-1)
}
