package service

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/iiifd/iiifd/internal/fault"
	"github.com/iiifd/iiifd/internal/iiif"
	"github.com/iiifd/iiifd/internal/probe"
	"github.com/iiifd/iiifd/internal/resolve"
)

// associatedInfo is the header of the associated image name of the slide
// described by slide: a one-level image read as the slide's reader
// (libtiff or OpenSlide) reads it.
func associatedInfo(slide probe.Info, name string) (probe.Info, error) {
	a, ok := slide.Slide.Find(name)
	if !ok {
		return probe.Info{}, fault.New(fault.NotFound, "the image has no associated %s image", name)
	}
	return probe.Info{
		Format: slide.Format,
		Width:  a.Level.Width,
		Height: a.Level.Height,
		Bands:  slide.Bands,
		Levels: []probe.Level{a.Level},
	}, nil
}

// Physical Dimensions service (IIIF annex services): the size of a pixel
// in physical units, from a slide's microns per pixel.
const (
	physdimContext = "http://iiif.io/api/annex/services/physdim/1/context.json"
	physdimProfile = "http://iiif.io/api/annex/services/physdim"
)

// physicalDimensions returns the Physical Dimensions service of a slide
// that says how large its pixels are, else nil. Slides give microns per
// pixel in x and y; the service has one scale, so x's is given (they
// differ only for scanners with non-square pixels, which none of the
// formats served writes in practice).
func physicalDimensions(s *probe.SlideInfo) map[string]any {
	if s == nil || s.MPPX <= 0 {
		return nil
	}
	return map[string]any{
		"@context":      physdimContext,
		"profile":       physdimProfile,
		"physicalScale": s.MPPX / 1000,
		"physicalUnits": "mm",
	}
}

// Slide returns what the whole-slide image id says about itself (vendor,
// magnification, microns per pixel, scan date, associated images) for
// its manifest; nil for any other image, an associated image included.
// The identifier goes through the same plugin hooks as its info.json.
func (s *Service) Slide(ctx context.Context, id string) (*probe.SlideInfo, error) {
	plugins := s.cfg.Plugins.Snapshot()
	defer plugins.Release()
	key, _, err := s.admitPlugins(ctx, plugins, iiif.V3, id, nil)
	if err != nil {
		return nil, err
	}
	tgt, err := s.resolve(ctx, key)
	if err != nil {
		return nil, err
	}
	defer tgt.Object.Close()
	hdr, err := s.describeServable(ctx, tgt)
	if err != nil {
		return nil, err
	}
	return hdr.info.Slide, nil
}

// needsFile reports whether the object key, which the pure probe
// answered err for, may be a slide only OpenSlide reads, which it reads
// from a file: a vendor's slide TIFF, or a format the probe does not know
// under a slide's extension.
func needsFile(err error, key string) bool {
	var fe *probe.FormatError
	if errors.As(err, &fe) && fe.Format == probe.Slide {
		return true
	}
	ext := strings.ToLower(strings.TrimPrefix(path.Ext(key), "."))
	return errors.Is(err, probe.ErrUnknownFormat) && resolve.SlideExtensions[ext]
}

// fdPath names an open file by its descriptor, so that a reader opening
// it by name reads this file even when the source cache has meanwhile
// removed its name to make room (Linux).
func fdPath(f *os.File) string { return fmt.Sprintf("/proc/self/fd/%d", f.Fd()) }

// slidePath is the name OpenSlide is given for the local file path of
// object key. A slide stored as several files (MIRAX, VMS) is opened by
// its index file's own name, as OpenSlide recognises it by its extension
// and finds the other files beside it: the descriptor path the local
// source hands out (/proc/self/fd/N) shows neither. Any other file keeps
// the descriptor path, which reads the file the source opened even if its
// name has meanwhile been given to another.
func slidePath(path, key string) string {
	if !multiFile(key) || !strings.HasPrefix(path, "/proc/self/fd/") {
		return path
	}
	target, err := os.Readlink(path)
	if err != nil || !filepath.IsAbs(target) || strings.HasSuffix(target, " (deleted)") {
		return path
	}
	return target
}

// errMultiFile answers for slides stored as several files from a remote
// root: OpenSlide reads them from a local folder only.
var errMultiFile = fault.New(fault.NotImplemented,
	"MIRAX and VMS slides are stored as several files, which OpenSlide reads from local disk only; serve them from a local root")

// multiFile reports whether key names a slide format stored as an index
// file beside its data files (MIRAX .mrxs, Hamamatsu .vms and .vmu).
func multiFile(key string) bool {
	// The key of an associated image ends in ";name".
	slide, _ := resolve.SplitAssociated(key)
	switch strings.ToLower(strings.TrimPrefix(path.Ext(slide), ".")) {
	case "mrxs", "vms", "vmu":
		return true
	}
	return false
}
