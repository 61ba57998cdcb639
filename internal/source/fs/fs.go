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
	"syscall"

	"github.com/iiifd/iiifd/internal/source"
)

// FS serves files under one directory.
type FS struct {
	root string // absolute, symbolic links resolved
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
	return &FS{root: real}, nil
}

// Root returns the absolute root directory.
func (s *FS) Root() string { return s.root }

// locate maps key to a file inside the root, following symbolic links but
// refusing any that lead outside it.
func (s *FS) locate(key string) (string, error) {
	if !ValidKey(key) {
		return "", source.ErrNotFound
	}
	p := filepath.Join(s.root, filepath.FromSlash(key))
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		if errors.Is(err, iofs.ErrNotExist) || errors.Is(err, iofs.ErrPermission) || isNotDir(err) {
			return "", fmt.Errorf("%w: %s", source.ErrNotFound, key)
		}
		return "", err
	}
	if real != s.root && !strings.HasPrefix(real, s.root+string(filepath.Separator)) {
		// A link that leads out of the root is treated as absent, so that
		// its existence is not revealed either.
		return "", fmt.Errorf("%w: %s", source.ErrNotFound, key)
	}
	return real, nil
}

func isNotDir(err error) bool { return errors.Is(err, syscall.ENOTDIR) }

// Open opens the regular file at key.
func (s *FS) Open(ctx context.Context, key string) (*source.Object, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	real, err := s.locate(key)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(real)
	if err != nil {
		if errors.Is(err, iofs.ErrNotExist) || errors.Is(err, iofs.ErrPermission) {
			return nil, fmt.Errorf("%w: %s", source.ErrNotFound, key)
		}
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
	return &source.Object{
		ReaderAt: f,
		Closer:   f,
		Key:      key,
		Size:     st.Size(),
		ModTime:  st.ModTime(),
		Version:  strconv.FormatInt(st.Size(), 36) + "-" + strconv.FormatInt(st.ModTime().UnixNano(), 36),
		Path:     real,
	}, nil
}

// Siblings lists the files named key's base name plus an extension.
func (s *FS) Siblings(ctx context.Context, key string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !ValidKey(key) {
		return nil, nil
	}
	dir, base := path.Split(key)
	realDir, err := s.root, error(nil)
	if dir != "" {
		realDir, err = s.locate(strings.TrimSuffix(dir, "/"))
	}
	if err != nil {
		if errors.Is(err, source.ErrNotFound) {
			return nil, nil
		}
		return nil, err
	}
	entries, err := os.ReadDir(realDir)
	if err != nil {
		return nil, nil
	}
	var out []string
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, base+".") && !strings.Contains(name[len(base)+1:], ".") {
			out = append(out, dir+name)
		}
	}
	return out, nil
}

// ValidKey reports whether key is a clean relative slash path: no empty,
// "." or ".." elements, no leading slash, no backslashes, NUL or control
// characters. Keys that fail can never name a file inside the root.
func ValidKey(key string) bool {
	if key == "" || len(key) > 4096 {
		return false
	}
	for _, r := range key {
		if r < 0x20 || r == 0x7f || r == '\\' {
			return false
		}
	}
	for _, el := range strings.Split(key, "/") {
		if el == "" || el == "." || el == ".." {
			return false
		}
	}
	return true
}
