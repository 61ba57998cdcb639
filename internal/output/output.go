// Package output holds an encoded response body between its encoder and
// its client, so that a render never waits on the client: the encoder
// writes the whole body into a Buffer, the render then gives its worker
// slot and memory back, and the client is sent the finished bytes at its
// own pace. A Buffer keeps its bytes in memory up to a threshold, counted
// in the server's memory budget, and in a temporary file past it (or
// when the budget has no room), so that clients that read slowly or
// never cannot make the server hold more memory than it was given.
//
// Because the body is complete before its first byte is sent, a render
// that fails fails before the status line: the client gets a clean error
// status instead of a 200 with a body cut short.
package output

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Budget is the memory budget a Buffer's bytes are counted in
// (limit.Admitter implements it): Take counts n more bytes and reports
// whether they fit; Give gives n bytes back.
type Budget interface {
	TakeOutput(n int64) bool
	GiveOutput(n int64)
}

// DefaultThreshold is the default of Config.Threshold: 2 MiB holds
// every tile and thumbnail a viewer asks for (tens to a few hundred KiB)
// in memory, while the rare large download (a full-size TIFF of tens of
// MiB) goes to a file, from which the kernel's page cache sends it about
// as fast.
const DefaultThreshold = 2 << 20

// Config says where a Buffer keeps its bytes.
type Config struct {
	// Threshold is the most bytes one body keeps in memory; a longer
	// one goes to a temporary file. Zero means DefaultThreshold; a
	// negative value sends every body to a file.
	Threshold int64
	// Dir is the folder of the temporary files; empty means
	// os.TempDir().
	Dir string
	// Budget, when set, counts the bytes kept in memory; a body whose
	// bytes do not fit goes to a file.
	Budget Budget
}

// Validate reports impossible settings.
func (c Config) Validate() error {
	if c.Dir != "" {
		fi, err := os.Stat(c.Dir)
		if err != nil {
			return err
		}
		if !fi.IsDir() {
			return errors.New("output: " + c.Dir + " is not a folder")
		}
	}
	return nil
}

func (c Config) threshold() int64 {
	switch {
	case c.Threshold == 0:
		return DefaultThreshold
	case c.Threshold < 0:
		return 0
	}
	return c.Threshold
}

// FilePrefix starts the names of a Buffer's temporary files.
const FilePrefix = "iiifd-out-"

// step is the granularity of the bytes a Buffer takes from the budget,
// so that a body of many small writes asks it a few times only.
const step = 64 << 10

// A Buffer is one response body being written, then read. It is written
// by one goroutine, then read (Reader) by one; Close may follow either.
// Its zero value is not usable; make one with New.
type Buffer struct {
	cfg   Config
	mem   []byte
	taken int64 // bytes counted in the budget for mem
	file  *os.File
	size  int64
	err   error // the first failure to write the file
}

// New returns an empty Buffer.
func New(cfg Config) *Buffer { return &Buffer{cfg: cfg} }

// Write appends p, in memory while it fits, else to the temporary file.
// It fails only when the file cannot be written (the disk is full).
func (b *Buffer) Write(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.file == nil {
		if n := int64(len(b.mem) + len(p)); n <= b.cfg.threshold() && b.take(n) {
			b.mem = append(b.mem, p...)
			b.size += int64(len(p))
			return len(p), nil
		}
		if err := b.spill(); err != nil {
			b.err = err
			return 0, err
		}
	}
	n, err := b.file.Write(p)
	b.size += int64(n)
	if err != nil {
		b.err = err
	}
	return n, err
}

// take makes the budget count at least n bytes for mem, and reports
// whether it does.
func (b *Buffer) take(n int64) bool {
	if n <= b.taken {
		return true
	}
	more := (n - b.taken + step - 1) / step * step
	if b.taken+more > b.cfg.threshold() {
		more = max(b.cfg.threshold()-b.taken, n-b.taken)
	}
	if b.cfg.Budget != nil && !b.cfg.Budget.TakeOutput(more) {
		return false
	}
	b.taken += more
	return true
}

// spill moves the bytes held in memory to a new temporary file, which
// every later write appends to. The file's name is removed at once: the
// open file is all that keeps its bytes, so they are gone when the
// Buffer is closed, or when the process ends, however it ends.
func (b *Buffer) spill() error {
	f, err := os.CreateTemp(b.cfg.Dir, FilePrefix+"*")
	if err != nil {
		return err
	}
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(b.mem); err != nil {
		f.Close()
		return err
	}
	b.file = f
	b.release()
	return nil
}

// release drops the bytes held in memory and gives them back.
func (b *Buffer) release() {
	b.mem = nil
	if b.cfg.Budget != nil {
		b.cfg.Budget.GiveOutput(b.taken)
	}
	b.taken = 0
}

// Len is the number of bytes written.
func (b *Buffer) Len() int64 { return b.size }

// Spilled reports whether the bytes are in a temporary file.
func (b *Buffer) Spilled() bool { return b.file != nil }

// Reader returns a reader of the bytes written, from the first; each
// call starts again from the first.
func (b *Buffer) Reader() io.Reader {
	if b.file != nil {
		return io.NewSectionReader(b.file, 0, b.size)
	}
	return bytes.NewReader(b.mem)
}

// Close drops the bytes: it gives the memory back and closes the file,
// which frees its disk space. Later calls do nothing.
func (b *Buffer) Close() error {
	b.release()
	if b.file == nil {
		return nil
	}
	err := b.file.Close()
	b.file = nil
	return err
}

// OpenFiles counts the temporary files of Buffers that this process holds
// open in dir: as their names are removed at once, the open files are
// what holds disk space. It reads /proc/self/fd, so it works on Linux
// only; it is for tests and diagnostics.
func OpenFiles(dir string) (int, error) {
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0, err
	}
	prefix := filepath.Join(dir, FilePrefix)
	n := 0
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name()))
		if err == nil && strings.HasPrefix(target, prefix) {
			n++
		}
	}
	return n, nil
}
