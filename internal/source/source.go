// Package source defines where image bytes come from: an Object is one
// stored image, opened by key, readable at any offset. Backends live in
// subpackages (fs for local disk); they all pass the conformance tests in
// sourcetest.
package source

import (
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"time"
)

// ErrNotFound is returned (wrapped) when no object has the key.
var ErrNotFound = errors.New("source: not found")

// Object is an opened source image. Callers must Close it.
type Object struct {
	io.ReaderAt
	io.Closer
	Key     string    // the key it was opened by
	Size    int64     // size in bytes
	ModTime time.Time // last modification, zero when unknown
	// Version changes whenever the bytes change (an ETag, or size and
	// modification time); caches and HTTP validators key on it.
	Version string
	// Path is the object's file on local disk, for decoders that read files
	// themselves; empty for remote objects.
	Path string
	// Local, when set, returns a whole copy of a remote object on local
	// disk, downloaded once into the source cache and shared by later
	// calls, for readers that need a file however they read it (OpenSlide
	// opens slides by name). The caller closes the file; nil when there
	// is no source cache or the object is too large for it.
	Local func(ctx context.Context) (*os.File, error)
	// Seen is when Version was read from the store. Sources reuse an
	// object's metadata for a short while, so a change made after Seen
	// may go unnoticed until that window has passed; whatever is derived
	// from Version is no fresher than Seen.
	Seen time.Time
}

// Entry is an image found by listing a source: an image file, or a tile
// pyramid (a folder holding an info.json in the IIIF level-0 layout),
// listed once under its folder's key.
type Entry struct {
	Key     string
	Pyramid bool
	ModTime time.Time // zero when the listing does not tell
}

// ErrListTruncated is returned with the entries found so far when a
// listing stops at its bound.
var ErrListTruncated = errors.New("source: listing truncated at its bound")

// Source opens objects by key. Keys are slash-separated relative paths
// that have already been checked by the resolver.
type Source interface {
	Open(ctx context.Context, key string) (*Object, error)
	// Siblings returns the keys in key's folder whose name starts with
	// key's base name followed by a dot (photo → photo.tif, photo.jpg),
	// for identifiers given without their extension.
	Siblings(ctx context.Context, key string) ([]string, error)
}

// ValidKey reports whether key is a clean relative slash path: no empty,
// "." or ".." elements, no leading slash, no backslashes, NUL or control
// characters. Keys that fail can never name anything outside a source's
// root, whether that is a directory, a bucket prefix or a URL path.
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
		if el == "" || el == "." || el == ".." || len(el) > 255 {
			return false
		}
	}
	return true
}
