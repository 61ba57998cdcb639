// Package resolve maps IIIF identifiers to opened source objects: it checks
// that an identifier is a safe relative path, and finds the file of an
// identifier given without its extension ("photo" → "photo.tif") when
// exactly one image file matches.
package resolve

import (
	"context"
	"errors"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/iiifd/iiifd/internal/fault"
	"github.com/iiifd/iiifd/internal/source"
	"github.com/iiifd/iiifd/internal/source/pyramid"
)

// ImageExtensions are the file extensions (lower case, without the dot)
// of files that can be served. Other files under the root are never
// served, so that a root holding other material does not publish it.
var ImageExtensions = map[string]bool{
	"jpg": true, "jpeg": true, "jpe": true, "png": true, "gif": true, "webp": true,
	"tif": true, "tiff": true, "ptif": true, "ptiff": true, "btf": true,
	"jp2": true, "j2k": true, "jpf": true, "jpx": true, "j2c": true,
	"heic": true, "heif": true, "avif": true,
	// Whole-slide images (see SlideExtensions).
	"svs": true, "ndpi": true, "mrxs": true, "scn": true, "bif": true,
	"vms": true, "vmu": true, "svslide": true,
}

// SlideExtensions are the extensions of whole-slide images (TIFFs that
// are slides are recognised by their content instead). Their associated
// images are served as identifiers of their own: the slide's identifier,
// ";" and the image's name (see SplitAssociated).
var SlideExtensions = map[string]bool{
	"svs": true, "ndpi": true, "mrxs": true, "scn": true, "bif": true,
	"vms": true, "vmu": true, "svslide": true, "tif": true, "tiff": true,
}

// associatedNames are the associated images of slides served, by the
// names OpenSlide gives them.
var associatedNames = []string{"label", "macro", "thumbnail"}

// SplitAssociated splits the identifier of an associated image of a
// slide ("case-17/slide.svs;label") into the slide's identifier and the
// image's name; name is empty for every other identifier.
func SplitAssociated(id string) (slide, name string) {
	i := strings.LastIndexByte(id, ';')
	if i < 0 {
		return id, ""
	}
	base, n := id[:i], id[i+1:]
	ext := strings.ToLower(strings.TrimPrefix(path.Ext(base), "."))
	if !SlideExtensions[ext] {
		return id, ""
	}
	for _, a := range associatedNames {
		if n == a {
			return base, n
		}
	}
	return id, ""
}

// ErrInvalidIdentifier is the answer to identifiers that are not safe
// relative paths.
var ErrInvalidIdentifier = fault.New(fault.BadRequest, "invalid identifier: it must be a relative path without empty, '.' or '..' segments, backslashes or control characters")

// ValidIdentifier reports whether id is a safe relative path that may name
// an image: see source.ValidKey.
func ValidIdentifier(id string) bool { return source.ValidKey(id) }

// Resolver opens the object an identifier names.
type Resolver struct {
	src source.Source

	// found remembers, for a short time, the key each recently resolved
	// identifier led to (and whether it is a pyramid), so that the
	// folder listing behind an identifier without extension is not done
	// on every request. The object is still opened (and its version
	// read) every time.
	mu    sync.Mutex
	found map[string]resolved
}

type resolved struct {
	key, dir string
	at       time.Time
}

// rememberFor is how long a resolution is reused: a file added next to
// an extensionless identifier's file is noticed within this time.
const rememberFor = 2 * time.Second

// New returns a resolver over src.
func New(src source.Source) *Resolver { return &Resolver{src: src, found: map[string]resolved{}} }

// recall opens the key id resolved to recently, if it still exists.
func (r *Resolver) recall(ctx context.Context, id string) (Target, bool) {
	r.mu.Lock()
	res, ok := r.found[id]
	r.mu.Unlock()
	if !ok || time.Since(res.at) > rememberFor {
		return Target{}, false
	}
	obj, err := r.src.Open(ctx, res.key)
	if err != nil {
		return Target{}, false
	}
	return Target{Object: obj, Dir: res.dir}, true
}

func (r *Resolver) remember(id string, t Target) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.found) >= 10000 {
		// Bounded: forget everything rather than track ages.
		clear(r.found)
	}
	r.found[id] = resolved{key: t.Object.Key, dir: t.Dir, at: time.Now()}
}

// HasImageExtension reports whether key ends in a known image extension.
func HasImageExtension(key string) bool {
	ext := strings.TrimPrefix(path.Ext(key), ".")
	return ext != "" && ImageExtensions[strings.ToLower(ext)]
}

// Target is what an identifier names: an image file, or a tile pyramid
// stored in the IIIF level-0 static layout (a folder with an info.json).
type Target struct {
	// Object is the image file, or the pyramid's info.json. The caller
	// must Close it.
	Object *source.Object
	// Dir is the key of the pyramid's folder; empty for image files.
	// Tiles are opened through the source as keys inside it.
	Dir string
	// Associated names the associated image of the slide Object that
	// the identifier names ("label", "macro", "thumbnail"); empty for
	// the image itself. Object.Key then ends in ";" and the name, so
	// that what is cached and tagged for it is apart from the slide's.
	Associated string
}

// Resolve returns what the identifier id (already percent-decoded) names:
// an image file as Open finds it, else, for an identifier without an
// image extension, a folder id holding an info.json (a tile pyramid).
// Files win: "photo" names photo.tif even when a folder photo/ holds a
// pyramid. The error is a fault, as for Open.
func (r *Resolver) Resolve(ctx context.Context, id string) (Target, error) {
	if !ValidIdentifier(id) {
		return Target{}, ErrInvalidIdentifier
	}
	if Hidden(id) {
		return Target{}, notFound(id)
	}
	if t, ok := r.recall(ctx, id); ok {
		return t, nil
	}
	t, err := r.resolve(ctx, id)
	if err == nil && t.Associated == "" {
		r.remember(id, t)
	}
	return t, err
}

func (r *Resolver) resolve(ctx context.Context, id string) (Target, error) {
	if slide, name := SplitAssociated(id); name != "" {
		obj, err := r.Open(ctx, slide)
		if err != nil {
			return Target{}, err
		}
		obj.Key += ";" + name
		return Target{Object: obj, Associated: name}, nil
	}
	obj, err := r.Open(ctx, id)
	if err == nil {
		return Target{Object: obj}, nil
	}
	if !errors.Is(err, errNoImage) {
		return Target{}, err
	}
	if HasImageExtension(id) {
		// An identifier with an image extension names an image file,
		// not a pyramid folder: an unknown one then costs one look at
		// the store, which for an HTTP origin is one request.
		return Target{}, err
	}
	info, perr := r.src.Open(ctx, id+"/"+pyramid.InfoFile)
	if perr == nil {
		return Target{Object: info, Dir: id}, nil
	}
	if !errors.Is(perr, source.ErrNotFound) {
		return Target{}, openError(perr)
	}
	return Target{}, err
}

// Open returns the opened image file for the identifier id (already
// percent-decoded). The error is a fault: 400 for identifiers that are not
// safe relative paths, 404 for unknown or ambiguous ones.
func (r *Resolver) Open(ctx context.Context, id string) (*source.Object, error) {
	if !ValidIdentifier(id) {
		return nil, ErrInvalidIdentifier
	}
	if Hidden(id) {
		return nil, notFound(id)
	}
	if HasImageExtension(id) {
		obj, err := r.src.Open(ctx, id)
		if err == nil {
			return obj, nil
		}
		if !errors.Is(err, source.ErrNotFound) {
			return nil, openError(err)
		}
		// A missing "photo.tif" may still be "photo.tif.jp2"; fall through.
	}
	keys, err := r.src.Siblings(ctx, id)
	if err != nil {
		return nil, openError(err)
	}
	var match []string
	for _, k := range keys {
		if HasImageExtension(k) {
			match = append(match, k)
		}
	}
	switch len(match) {
	case 0:
		return nil, notFound(id)
	case 1:
		obj, err := r.src.Open(ctx, match[0])
		if err != nil {
			if errors.Is(err, source.ErrNotFound) {
				return nil, notFound(id)
			}
			return nil, openError(err)
		}
		return obj, nil
	}
	return nil, fault.New(fault.NotFound, "identifier %q is ambiguous: %d image files match; add the extension", truncate(id), len(match))
}

// errNoImage marks the answer of notFound, so that Resolve can tell "no
// such file" from other failures.
var errNoImage = errors.New("resolve: no image file")

// notFound is the one answer for every identifier that names no image, so
// that the reason (absent, hidden, a link leading out) is not revealed.
func notFound(id string) error {
	return fault.Wrap(fault.NotFound, errNoImage, "no image with identifier %q", truncate(id))
}

// Hidden reports whether a segment of id (or of a store key) starts with
// a dot: hidden files and folders are never served, nor listed by iiifd
// check.
func Hidden(id string) bool {
	return strings.HasPrefix(id, ".") || strings.Contains(id, "/.")
}

func openError(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var fe *fault.Error
	if errors.As(err, &fe) {
		// A store's failure (503, 504, 502) says more than a 500.
		return err
	}
	return fault.Wrap(fault.Internal, err, "the image could not be opened")
}

func truncate(s string) string {
	if len(s) <= 200 {
		return s
	}
	return s[:200] + "…"
}
