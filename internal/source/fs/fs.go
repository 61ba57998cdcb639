// Package fs is the local-disk source: keys are paths relative to a root
// directory, and nothing outside that directory can be opened, whether by
// "..", absolute paths or symbolic links that lead out.
package fs

import (
	"context"
	"errors"
	"fmt"
	iofs "io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/iiifd/iiifd/internal/source"
)

// FS serves files under one directory. Files are opened through an
// os.Root, which resolves every path component inside the directory (links
// included) and refuses any that leads out, without a window between
// checking a path and opening it.
type FS struct {
	root string   // absolute, symbolic links resolved
	dir  *os.Root // the root, opened
	// procFD: decoders that open files themselves are given the opened
	// descriptor's /proc path, so they read exactly the file that was
	// checked, whatever happens to the path meanwhile.
	procFD bool
	files  openFiles
	// stems indexes folders' file names by name without extension, for
	// Siblings; listings counts the folder listings it took.
	stems    stemIndex
	listings atomic.Int64
}

var _ source.Source = (*FS)(nil)

// New returns the source for the directory dir, which must exist.
func New(dir string) (*FS, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return nil, fmt.Errorf("root %s: %w", dir, err)
	}
	st, err := os.Stat(real)
	if err != nil {
		return nil, fmt.Errorf("root %s: %w", dir, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("root %s: not a directory", dir)
	}
	r, err := os.OpenRoot(real)
	if err != nil {
		return nil, fmt.Errorf("root %s: %w", dir, err)
	}
	_, err = os.Stat("/proc/self/fd")
	return &FS{root: real, dir: r, procFD: err == nil}, nil
}

// Root returns the absolute root directory.
func (s *FS) Root() string { return s.root }

// open opens key inside the root. A link that leads out of the root is
// treated as absent, so that its existence is not revealed either.
func (s *FS) open(key string) (*os.File, error) {
	if !ValidKey(key) {
		return nil, source.ErrNotFound
	}
	// O_NONBLOCK: opening a FIFO or device must not hang the request; it
	// changes nothing for regular files, and Open refuses the others.
	f, err := s.dir.OpenFile(filepath.FromSlash(key), os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		if absent(err) {
			return nil, fmt.Errorf("%w: %s", source.ErrNotFound, key)
		}
		return nil, err
	}
	return f, nil
}

// absent reports whether err means that a path names nothing we can
// serve: missing, unreadable, through a non-directory, too long, or a
// loop of links. Clients cause these; they are 404s, not faults.
func absent(err error) bool {
	if errors.Is(err, iofs.ErrNotExist) || errors.Is(err, iofs.ErrPermission) {
		return true
	}
	for _, e := range []syscall.Errno{syscall.ENOTDIR, syscall.ENAMETOOLONG, syscall.ELOOP, syscall.EINVAL} {
		if errors.Is(err, e) {
			return true
		}
	}
	// os.Root reports a path that leads out of the root without an errno.
	return strings.Contains(err.Error(), "escapes from parent") || strings.Contains(err.Error(), "too many links")
}

// Open opens the regular file at key.
func (s *FS) Open(ctx context.Context, key string) (*source.Object, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if obj, ok := s.files.get(key); ok {
		return obj, nil
	}
	seen := time.Now()
	f, err := s.open(key)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%w: %s is not a file", source.ErrNotFound, key)
	}
	return s.files.put(f, source.Object{
		ReaderAt: f,
		Key:      key,
		Size:     st.Size(),
		ModTime:  st.ModTime(),
		Version:  version(st),
		Path:     s.path(f, key),
		Seen:     seen,
	}), nil
}

// path is the file name decoders are given for the open file f.
func (s *FS) path(f *os.File, key string) string {
	if s.procFD {
		return "/proc/self/fd/" + strconv.FormatUint(uint64(f.Fd()), 10)
	}
	return filepath.Join(s.root, filepath.FromSlash(key))
}

// version identifies the bytes of a file by its size and modification
// time (to the nanosecond). Inode and change time would also catch a
// replacement that copies both, but they differ between copies of the
// same file on different replicas, which then could not share cached
// derivatives; copying tools keep size and mtime (rsync -t, cp -p).
func version(st iofs.FileInfo) string {
	return strconv.FormatInt(st.Size(), 36) + "-" + strconv.FormatInt(st.ModTime().UnixNano(), 36)
}

// Siblings lists the files named key's base name plus an extension. A
// lookup costs an open and a stat of the folder: its listing is indexed
// by name without extension, and taken again only when the folder's
// modification time says it changed (see stemIndex).
func (s *FS) Siblings(ctx context.Context, key string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !ValidKey(key) {
		return nil, nil
	}
	dir, base := path.Split(key)
	var d *os.File
	var err error
	if dir == "" {
		d, err = s.dir.Open(".")
	} else {
		d, err = s.open(strings.TrimSuffix(dir, "/"))
	}
	if err != nil {
		if errors.Is(err, source.ErrNotFound) {
			return nil, nil
		}
		return nil, err
	}
	defer d.Close()
	names, ok := s.stems.lookup(d, dir, base, s.list)
	if !ok {
		return nil, nil
	}
	out := make([]string, 0, len(names))
	for _, name := range names {
		out = append(out, dir+name)
	}
	return out, nil
}

// Listings returns how many folder listings Siblings has taken.
func (s *FS) Listings() int64 { return s.listings.Load() }

// list reads the names in the open folder d.
func (s *FS) list(d *os.File) ([]string, error) {
	s.listings.Add(1)
	return d.Readdirnames(-1)
}

// ValidKey reports whether key is a clean relative slash path; see
// source.ValidKey.
func ValidKey(key string) bool { return source.ValidKey(key) }
