package fs

import (
	"context"
	"errors"
	iofs "io/fs"
	"path"
	"strings"
	"time"
)

// Entry is a file or a tile pyramid found by List.
type Entry struct {
	// Key is the file's key, or the pyramid folder's key.
	Key string
	// Pyramid is true for a folder holding an info.json (a tile pyramid
	// in the IIIF level-0 layout), which is listed as one entry.
	Pyramid bool
	ModTime time.Time
}

// ErrListTruncated is returned with the entries found so far when List
// stops at its bound.
var ErrListTruncated = errors.New("fs: listing truncated at its bound")

// List walks the root in lexical order and returns the regular files for
// which keep reports true, and the tile pyramids (folders holding an
// info.json, not descended into), at most limit of them. Hidden files and
// folders (names starting with a dot, such as uploads in progress) are
// skipped, and so are symbolic links, which may lead anywhere. At most
// 64 × limit directory entries are looked at, so that a huge root costs
// a bounded walk; either bound returns ErrListTruncated with what was
// found.
func (s *FS) List(ctx context.Context, limit int, keep func(key string) bool) ([]Entry, error) {
	var out []Entry
	visits := 64 * limit
	err := iofs.WalkDir(s.dir.FS(), ".", func(p string, d iofs.DirEntry, err error) error {
		if p == "." {
			return err
		}
		if err != nil {
			// An unreadable folder is left out, not a failure of the list.
			if d != nil && d.IsDir() {
				return iofs.SkipDir
			}
			return nil
		}
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		if visits--; visits < 0 || len(out) >= limit {
			return ErrListTruncated
		}
		name := path.Base(p)
		if strings.HasPrefix(name, ".") || !ValidKey(p) {
			if d.IsDir() {
				return iofs.SkipDir
			}
			return nil
		}
		switch {
		case d.IsDir():
			if st, err := s.dir.Stat(p + "/info.json"); err == nil && st.Mode().IsRegular() {
				out = append(out, Entry{Key: p, Pyramid: true, ModTime: st.ModTime()})
				return iofs.SkipDir
			}
		case d.Type().IsRegular():
			if keep == nil || keep(p) {
				var mod time.Time
				if fi, err := d.Info(); err == nil {
					mod = fi.ModTime()
				}
				out = append(out, Entry{Key: p, ModTime: mod})
			}
		}
		return nil
	})
	return out, err
}
