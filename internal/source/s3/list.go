package s3

import (
	"context"
	"slices"
	"strings"

	"github.com/iiifd/iiifd/internal/resolve"
	"github.com/iiifd/iiifd/internal/source"
)

// List lists the bucket's images under the prefix as fs.List lists a
// folder's: the image files for which keep reports true (all when keep
// is nil), and each tile pyramid once, under its folder's key (not its
// tiles). Hidden keys are left out, as the server never serves them.
// With a limit above 0 it stops after limit entries or 64 × limit keys
// and returns source.ErrListTruncated with what it found. Keys are read
// a page at a time, and only undecided ones are held (see imageLister),
// never the whole listing.
func (s *Source) List(ctx context.Context, limit int, keep func(key string) bool) ([]source.Entry, error) {
	var out []source.Entry
	var l *imageLister
	l = newImageLister(keep, func(k string) {
		out = append(out, source.Entry{Key: k, Pyramid: l.pyramids[k]})
	})
	visits := 64 * limit
	err := s.Walk(ctx, func(k string) error {
		if visits--; limit > 0 && (visits < 0 || len(out) >= limit) {
			return source.ErrListTruncated
		}
		l.add(k)
		return nil
	})
	if err != nil {
		if limit > 0 && len(out) > limit {
			out = out[:limit]
		}
		return out, err
	}
	l.done()
	if limit > 0 && len(out) > limit {
		return out[:limit], source.ErrListTruncated
	}
	return out, nil
}

// imageLister picks from a bucket's keys, given one at a time in the
// store's order (bytewise, as S3 lists them), what fs.List picks from a
// folder: image files, and tile pyramids (a folder holding an
// info.json) as their folder's key, not their tiles. Keys with a hidden
// segment (".name") are left out, as the server never serves them.
//
// It holds only the keys it cannot decide yet: an image whose folder may
// still turn out to be a pyramid. The keys under a folder are listed
// together, and those sorting before "info.json" (a pyramid's tiles,
// "0,0,256,256/..." and "full/...") before it; so once the listing is
// past FOLDER/info.json, whether FOLDER is a pyramid is known. What is
// held is then the images found and the tiles of the pyramids whose
// info.json is still to come, never the whole listing.
type imageLister struct {
	emit     func(key string)
	keep     func(key string) bool // the image files to list; nil: all
	pyramids map[string]bool       // every pyramid found, hidden ones too
	pending  []pendingKey          // in the order listed
	most     int                   // the most keys pending at once (for tests)
}

// pendingKey is an image (a file, or a pyramid's folder) that a pyramid
// around it may still take.
type pendingKey struct {
	key string
	// at is the key listed that brought it: key, or the folder's
	// info.json.
	at string
	// until is the last info.json of its folders, the last key that
	// could make one a pyramid: once the listing is past it, key is an
	// image.
	until string
}

func newImageLister(keep func(string) bool, emit func(string)) *imageLister {
	return &imageLister{emit: emit, keep: keep, pyramids: map[string]bool{}}
}

// add takes the next key of the listing, which sorts after every key
// given before.
func (l *imageLister) add(k string) {
	l.decide(k)
	if dir, ok := strings.CutSuffix(k, "/info.json"); ok && source.ValidKey(dir) {
		l.pyramids[dir] = true
		// What was held under dir/ (listed after dir/, before its
		// info.json) is the pyramid's: its tiles.
		i, _ := slices.BinarySearchFunc(l.pending, dir+"/", func(p pendingKey, at string) int { return strings.Compare(p.at, at) })
		clear(l.pending[i:])
		l.pending = l.pending[:i]
		if !resolve.Hidden(dir) && !l.inPyramid(dir) {
			l.hold(dir, k)
		}
		return
	}
	if source.ValidKey(k) && !resolve.Hidden(k) && !l.inPyramid(k) && (l.keep == nil || l.keep(k)) {
		l.hold(k, k)
	}
}

// done ends the listing: every key held is an image.
func (l *imageLister) done() { l.decide("") }

// hold keeps key, brought by the listed key at, until it is decided.
func (l *imageLister) hold(key, at string) {
	p := pendingKey{key: key, at: at}
	for i := strings.IndexByte(key, '/'); i >= 0; i = next(key, i) {
		p.until = max(p.until, key[:i]+"/info.json")
	}
	l.pending = append(l.pending, p)
	l.most = max(l.most, len(l.pending))
}

// decide passes on the keys held, in order, that the listing, now at k
// ("" at its end), is past the until of.
func (l *imageLister) decide(k string) {
	n := 0
	for _, p := range l.pending {
		if k != "" && p.until >= k {
			break
		}
		l.emit(p.key)
		n++
	}
	clear(l.pending[:n])
	l.pending = l.pending[n:]
}

// inPyramid reports whether a folder around k is a pyramid found so far.
func (l *imageLister) inPyramid(k string) bool {
	for i := strings.IndexByte(k, '/'); i >= 0; i = next(k, i) {
		if l.pyramids[k[:i]] {
			return true
		}
	}
	return false
}

// next returns the index of the '/' after the one at i in k, or -1.
func next(k string, i int) int {
	j := strings.IndexByte(k[i+1:], '/')
	if j < 0 {
		return -1
	}
	return i + 1 + j
}
