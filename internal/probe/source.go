package probe

import (
	"errors"
	"fmt"
	"io"
)

// Read sizes. Headers are small but scattered: a JPEG's SOF can follow tens
// of KiB of metadata, and libtiff writes each IFD after its page's data, so
// the IFDs of a pyramid lie megabytes apart. Each ReadAt may be a ranged
// request to object storage, where the round trip costs far more than the
// bytes, so every read fetches at least one chunk and is kept for reuse.
const (
	chunkSize  = 4 << 10 // bytes fetched by the first and every later read
	maxWindows = 16      // chunks kept; older ones are dropped first
	readBudget = 2 << 20 // total bytes one probe may read, however malformed the file
	maxRead    = 1 << 20 // largest single structure a parser may ask for
)

// source is the file being probed: a ReaderAt of known size that caches the
// chunks it has read and enforces the read budget.
type source struct {
	r    io.ReaderAt
	size int64
	wins []window
	next int // index in wins that the next new window replaces

	// Accounting, for tests and for the bytes-per-probe figure.
	reads   int   // ReadAt calls
	read    int64 // bytes returned by ReadAt
	needEnd int64 // end of the furthest byte range a parser needed or checked
}

type window struct {
	off int64
	b   []byte
}

func newSource(r io.ReaderAt, size int64) *source {
	return &source{r: r, size: size}
}

// check reports a truncation error unless [off, off+n) lies inside the file.
// Parsers call it for data they locate but do not read (such as a TIFF's
// tile offset array), so that a header pointing past the end is caught.
func (s *source) check(off, n int64) error {
	if off < 0 || n < 0 || off > s.size || n > s.size-off {
		return malformed(off, "truncated: needs %d bytes at offset %d, file has %d", n, off, s.size)
	}
	if end := off + n; end > s.needEnd {
		s.needEnd = end
	}
	return nil
}

// at returns the n bytes at off. The slice aliases the cache: callers must
// not modify or keep it beyond the probe.
func (s *source) at(off int64, n int) ([]byte, error) {
	if n > maxRead {
		return nil, malformed(off, "header structure of %d bytes is larger than %d", n, maxRead)
	}
	if err := s.check(off, int64(n)); err != nil {
		return nil, err
	}
	for _, w := range s.wins {
		if off >= w.off && off+int64(n) <= w.off+int64(len(w.b)) {
			return w.b[off-w.off : off-w.off+int64(n)], nil
		}
	}
	m := max(int64(n), chunkSize)
	m = min(m, s.size-off)
	if s.read+m > readBudget {
		return nil, malformed(off, "header needs more than %d bytes", readBudget)
	}
	b := make([]byte, m)
	k, err := s.r.ReadAt(b, off)
	s.reads++
	s.read += int64(k)
	if k < len(b) {
		if err == nil || errors.Is(err, io.EOF) {
			// The ReaderAt ended before the size it was given: the
			// object changed or the size was wrong. That is a fault of
			// the source, not of the image, so it is no FormatError.
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("probe: reading %d bytes at offset %d: %w", len(b), off, err)
	}
	w := window{off: off, b: b}
	if len(s.wins) < maxWindows {
		s.wins = append(s.wins, w)
	} else {
		s.wins[s.next] = w
		s.next = (s.next + 1) % maxWindows
	}
	return b[:n], nil
}

// u8 returns the byte at off.
func (s *source) u8(off int64) (byte, error) {
	b, err := s.at(off, 1)
	if err != nil {
		return 0, err
	}
	return b[0], nil
}
