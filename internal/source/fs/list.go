package fs

import (
	"context"
	iofs "io/fs"
	"path"
	"strings"
	"time"

	"github.com/iiifd/iiifd/internal/source"
)

// List walks the root in lexical order and returns the regular files for
// which keep reports true, and the tile pyramids (folders holding an
// info.json, not descended into), at most limit of them. Hidden files and
// folders (names starting with a dot, such as uploads in progress) are
// skipped, and so are symbolic links, which may lead anywhere. At most
// 64 × limit directory entries are looked at, so that a huge root costs
// a bounded walk; either bound returns source.ErrListTruncated with what
// was found. A limit of 0 lists everything.
func (s *FS) List(ctx context.Context, limit int, keep func(key string) bool) ([]source.Entry, error) {
	var out []source.Entry
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
		if visits--; limit > 0 && (visits < 0 || len(out) >= limit) {
			return source.ErrListTruncated
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
				out = append(out, source.Entry{Key: p, Pyramid: true, ModTime: st.ModTime()})
				return iofs.SkipDir
			}
		case d.Type().IsRegular():
			if keep == nil || keep(p) {
				var mod time.Time
				if fi, err := d.Info(); err == nil {
					mod = fi.ModTime()
				}
				out = append(out, source.Entry{Key: p, ModTime: mod})
			}
		}
		return nil
	})
	return out, err
}
