package fs

import (
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

// stemIndex remembers, for the folders Siblings looked in, their file
// names grouped by name without extension ("photo" → photo.tif,
// photo.jpg), with the folder's modification time when it was listed.
// An identifier without extension, known or not, then costs an open and a
// stat of its folder instead of a listing of it: in a folder of 100,000
// files the listing took a quarter of a second of CPU per request, for a
// client that only had to make up names.
//
// A folder's modification time changes whenever a name in it is added,
// removed or renamed, so a listing is reused while the time is the one
// it was taken at. File system clocks are coarse (a few milliseconds), so
// a change in the same tick as the listing could keep the time: a listing
// taken within racyWindow of the folder's last change is not trusted, and
// the folder is listed again until a listing is taken after it has been
// quiet that long (the "racy" entries of Git's index, handled the same
// way).
type stemIndex struct {
	mu      sync.Mutex
	folders map[string]*folderStems
	names   int // over all folders, bounded by maxIndexedNames
}

// folderStems is one folder's indexed listing.
type folderStems struct {
	mod   time.Time           // the folder's modification time when listed
	stems map[string][]string // name without its extension → names
	n     int
}

const (
	// racyWindow is how long after a folder's last change a listing of
	// it is not trusted to be complete.
	racyWindow = time.Second
	// maxIndexedNames bounds the memory of the index (some 100 bytes a
	// name): past it, the index is emptied and starts again.
	maxIndexedNames = 4_000_000
)

// lookup returns the names in the open folder d (key dir) that are base
// plus one extension, listing d with list when the index has no
// trustworthy listing of it. ok is false when d cannot be listed.
func (x *stemIndex) lookup(d *os.File, dir, base string, list func(*os.File) ([]string, error)) (names []string, ok bool) {
	st, err := d.Stat()
	if err != nil {
		return nil, false
	}
	mod := st.ModTime()
	x.mu.Lock()
	f := x.folders[dir]
	x.mu.Unlock()
	if f != nil && f.mod.Equal(mod) {
		return f.stems[base], true
	}
	listed := time.Now()
	all, err := list(d)
	if err != nil {
		return nil, false
	}
	f = &folderStems{mod: mod, stems: map[string][]string{}, n: len(all)}
	for _, name := range all {
		// photo.tif is a sibling of "photo"; photo.tif.jp2 is one of
		// "photo.tif"; a name without a dot, or a dot file, of none.
		if i := strings.LastIndexByte(name, '.'); i > 0 && i < len(name)-1 {
			f.stems[name[:i]] = append(f.stems[name[:i]], name)
		}
	}
	for _, names := range f.stems {
		slices.Sort(names) // the order of a listing is the file system's
	}
	if listed.Sub(mod) < racyWindow {
		// Changed too recently to trust: answer from this listing, but
		// keep none.
		return f.stems[base], true
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.folders == nil || x.names+f.n > maxIndexedNames {
		x.folders, x.names = map[string]*folderStems{}, 0
	}
	if old := x.folders[dir]; old != nil {
		x.names -= old.n
	}
	if f.n <= maxIndexedNames {
		x.folders[dir] = f
		x.names += f.n
	}
	return f.stems[base], true
}
