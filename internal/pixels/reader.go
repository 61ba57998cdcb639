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

	"github.com/iiifd/iiifd/internal/fault"
)

// readerSource is the Go side of a libvips custom source: it serves a
// loader's reads from an io.ReaderAt of known size. libvips' source
// signals are read(buffer, length) at the current position and lseek-like
// seek, so the position is kept here.
//
// libvips calls read and seek from whichever thread needs pixels: the
// render's own or one of its workers. The loaders serialise the calls on
// one source (libtiff, OpenJPEG and libheif each sit behind the loader's
// lock), but the position is under a mutex all the same, so a loader that
// did not would get wrong bytes, never a data race.
type readerSource struct {
	ctx  context.Context
	r    io.ReaderAt
	size int64

	mu  sync.Mutex
	pos int64
	err error // the first failure; every later read fails with it
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
	n, err := s.readAt(dst[:min(int64(len(dst)), s.size-s.pos)], s.pos)
	if err != nil {
		s.err = err
		return -1
	}
	s.pos += int64(n)
	return int64(n)
}

// readAt reads into dst at off, which is within the source. The ReaderAt
// runs on a goroutine of its own, into a buffer of its own, so that a
// read that hangs cannot hold the render past its context: the callback
// returns when the context is done, and the abandoned read finishes (or
// not) on its own, writing into memory libvips no longer cares about.
func (s *readerSource) readAt(dst []byte, off int64) (int, error) {
	type result struct {
		n   int
		err error
	}
	buf := getReadBuffer(len(dst))
	done := make(chan result, 1)
	go func() {
		var res result
		defer func() {
			if v := recover(); v != nil {
				res = result{err: fmt.Errorf("pixels: the reader panicked: %v", v)}
			}
			done <- res
		}()
		// ReadAt returns all of buf or an error; a reader that breaks
		// that rule is asked again for the rest, as libvips' loaders
		// do not all cope with short reads (sniffing does not).
		for res.n < len(buf) && res.err == nil {
			m, err := s.r.ReadAt(buf[res.n:], off+int64(res.n))
			m = max(0, min(m, len(buf)-res.n))
			if m == 0 && err == nil {
				err = io.ErrNoProgress
			}
			res.n, res.err = res.n+m, err
		}
	}()
	var res result
	select {
	case res = <-done:
	case <-s.ctx.Done():
		return 0, s.ctx.Err()
	}
	n := copy(dst, buf[:res.n])
	putReadBuffer(buf)
	switch {
	case n == len(dst):
		return n, nil // io.EOF with the last byte is allowed
	case errors.Is(res.err, io.EOF):
		return 0, fmt.Errorf("pixels: the source ended at byte %d of %d: %w",
			off+int64(n), s.size, io.ErrUnexpectedEOF)
	}
	return 0, res.err
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

// readBufferSize is the size of pooled read buffers; the reads of headers
// and of most compressed tiles fit, bigger ones get a buffer of their own.
const readBufferSize = 256 << 10

var readBuffers = sync.Pool{New: func() any {
	b := make([]byte, readBufferSize)
	return &b
}}

func getReadBuffer(n int) []byte {
	if n > readBufferSize {
		return make([]byte, n)
	}
	return (*readBuffers.Get().(*[]byte))[:n]
}

func putReadBuffer(b []byte) {
	if cap(b) == readBufferSize {
		b = b[:readBufferSize]
		readBuffers.Put(&b)
	}
}

// readFault turns a failed read into an error for the client: a fault of
// the reader's own (a backend that says 404 or 504) as it is, else a bad
// gateway, or a gateway timeout when the reader gave up waiting.
func readFault(err error) error {
	var se interface {
		error
		HTTPStatus() int
	}
	switch {
	case errors.As(err, &se):
		return err
	case errors.Is(err, context.DeadlineExceeded):
		return fault.Wrap(fault.GatewayTimeout, err, "the source image could not be read in time")
	}
	return fault.Wrap(fault.BadGateway, err, msgUnreadable)
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
