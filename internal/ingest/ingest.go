// Package ingest turns any image libvips reads into the forms iiifd serves
// best: one tiled, pyramidal TIFF (FormatPTIFF), or a directory of tiles
// in the IIIF Image API 3.0 level-0 static layout (FormatTiles) that any
// web server can publish as it is.
//
// Ingesting streams: the source is read once, sequentially, and every
// pyramid level is built in that one pass, so memory stays bounded
// whatever the size of the source (libvips keeps a few rows of tiles per
// level). The output is built in a work directory beside the destination
// (".NAME.tmp-*") and renamed into place only when complete; on failure or
// cancellation the work directory is removed, so the destination either
// does not exist or is whole.
//
// The libvips work runs through a Builder: Build in this process, or
// Subprocess in a child process, which iiifd uses because libvips 8.14
// crashes when a pyramidal TIFF save fails part-way (see
// pixels.SavePyramid), and because a child can be stopped at once.
//
// The tile directory's info.json carries PlaceholderID as its id: a
// level-0 info.json must name its own public URL, which is not known at
// ingest time. A server publishing the directory (iiifd, or a static
// host after a search and replace) substitutes the real URL.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/iiifd/iiifd/internal/pixels"
	"github.com/iiifd/iiifd/internal/plan"
)

// Format is the form of an ingest's output.
type Format string

// Formats.
const (
	FormatPTIFF Format = "ptiff" // one tiled, pyramidal TIFF file
	FormatTiles Format = "tiles" // a IIIF level-0 tile directory
)

// Compression is how the tiles of a pyramidal TIFF are compressed.
type Compression string

// Compressions.
const (
	CompressJPEG    Compression = "jpeg"
	CompressWebP    Compression = "webp"
	CompressDeflate Compression = "deflate"
)

// Defaults.
const (
	DefaultFormat      = FormatPTIFF
	DefaultTileSize    = 512
	DefaultQuality     = 85
	DefaultCompression = CompressJPEG
)

// bigTIFFFrom is the estimated size, in uncompressed bytes of all levels,
// from which a pyramidal TIFF is written as BigTIFF. A classic TIFF holds
// at most 4 GiB; compressed tiles are practically never larger than the
// raw pixels, so half that leaves a wide margin, while images of up to
// some 500 megapixels (RGB) stay classic TIFFs that every reader opens.
const bigTIFFFrom = 2 << 30

// Options says what to write. Zero fields take the defaults.
type Options struct {
	Format      Format      // default FormatPTIFF
	TileSize    int         // 256, 512 or 1024; default 512
	Quality     int         // JPEG (and WebP) quality 1..100; default 85 (from 90, libvips writes RGB, not YCbCr, JPEG tiles in a TIFF)
	Compression Compression // FormatPTIFF only; default CompressJPEG
	// Progress, when set, is called with the percentage of the pyramid
	// computed, rising to 100, from libvips' threads (never two at
	// once). It must return quickly.
	Progress func(percent int)
}

func (o Options) withDefaults() Options {
	if o.Format == "" {
		o.Format = DefaultFormat
	}
	if o.TileSize == 0 {
		o.TileSize = DefaultTileSize
	}
	if o.Quality == 0 {
		o.Quality = DefaultQuality
	}
	if o.Compression == "" {
		o.Compression = DefaultCompression
	}
	return o
}

// Validate reports whether the options, with defaults applied, are usable.
func (o Options) Validate() error {
	o = o.withDefaults()
	switch o.Format {
	case FormatPTIFF, FormatTiles:
	default:
		return fmt.Errorf("unknown format %q (want ptiff or tiles)", o.Format)
	}
	switch o.TileSize {
	case 256, 512, 1024:
	default:
		return fmt.Errorf("tile size %d is not 256, 512 or 1024", o.TileSize)
	}
	if o.Quality < 1 || o.Quality > 100 {
		return fmt.Errorf("quality %d is not within 1..100", o.Quality)
	}
	switch o.Compression {
	case CompressJPEG, CompressWebP, CompressDeflate:
	default:
		return fmt.Errorf("unknown compression %q (want jpeg, webp or deflate)", o.Compression)
	}
	if o.Format == FormatTiles && o.Compression != CompressJPEG {
		return fmt.Errorf("tiles are JPEG: compression %q applies to ptiff only", o.Compression)
	}
	return nil
}

// ErrExists is returned (wrapped) when the destination already exists.
// It wraps fs.ErrExist, so callers that know no more of ingest than a
// conversion function can tell it apart.
var ErrExists = fmt.Errorf("the destination already exists: %w", fs.ErrExist)

// A Builder writes the pyramid of src to out (a file for FormatPTIFF, a
// directory for FormatTiles), reporting progress to opt.Progress. opt is
// valid and has its defaults applied. Build does it in this process;
// Subprocess in a child process.
type Builder func(ctx context.Context, src, out string, opt Options) error

// Run ingests the image at src into dst, which must not exist, with
// build (Build when nil). The output is built in a work directory beside
// dst (".NAME.tmp-*", also the child's TMPDIR with Subprocess) and
// renamed to dst when complete; the work directory is removed whatever
// happens. When ctx is done first, Run returns an error wrapping
// ctx.Err(). Error messages never name the work directory.
func Run(ctx context.Context, src, dst string, opt Options, build Builder) (err error) {
	if err := opt.Validate(); err != nil {
		return err
	}
	opt = opt.withDefaults()
	if build == nil {
		build = Build
	}
	if err := checkPaths(src, dst); err != nil {
		return err
	}
	dir, base := filepath.Split(filepath.Clean(dst))
	if dir == "" {
		dir = "."
	}
	work, err := os.MkdirTemp(dir, "."+base+".tmp-")
	if err != nil {
		return fmt.Errorf("%s: cannot create the output: %w", dst, unwrapPath(err))
	}
	defer func() {
		if rerr := os.RemoveAll(work); rerr != nil && err == nil {
			err = fmt.Errorf("removing the work directory: %w", unwrapPath(rerr))
		}
		if err != nil {
			err = scrub(err, work, base, dst)
		}
	}()
	out := filepath.Join(work, base)
	if err := build(ctx, src, out, opt); err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return fmt.Errorf("interrupted: %w", cerr)
		}
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("interrupted: %w", err)
	}
	if opt.Format == FormatTiles {
		if err := os.Chmod(out, 0o755); err != nil {
			return err
		}
		return publishDir(out, dst)
	}
	if err := os.Chmod(out, 0o644); err != nil {
		return err
	}
	return publishFile(out, dst)
}

// Build writes the pyramid of src to out in this process; pixels.Startup
// must have been called. Beware: with libvips 8.14, a pyramidal TIFF
// save that fails part-way (a truncated source, a cancellation) crashes
// the process inside libvips; use Subprocess where that matters.
func Build(ctx context.Context, src, out string, opt Options) error {
	hdr, err := pixels.Header(src)
	if err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}
	po := pixels.PyramidOptions{
		TileSize: opt.TileSize,
		Quality:  opt.Quality,
	}
	if opt.Progress != nil {
		po.Progress = func(p pixels.Progress) { opt.Progress(p.Percent) }
	}
	if opt.Format == FormatTiles {
		po.Layout = pixels.LayoutIIIF
		if err := pixels.SavePyramid(ctx, src, out, po); err != nil {
			return fmt.Errorf("%s: %w", src, err)
		}
		// The tiles are written upright (see pixels.SavePyramid): their
		// grid is the displayed size.
		w, h := plan.OrientedSize(pixels.FileOrientation(src), hdr.Width, hdr.Height)
		return finishTiles(ctx, out, w, h, opt)
	}
	po.Layout = pixels.LayoutTIFF
	po.Compression = map[Compression]pixels.Compression{
		CompressJPEG: pixels.CompressJPEG, CompressWebP: pixels.CompressWebP,
		CompressDeflate: pixels.CompressDeflate,
	}[opt.Compression]
	po.BigTIFF = needsBigTIFF(hdr.Width, hdr.Height, hdr.Bands)
	if err := pixels.SavePyramid(ctx, src, out, po); err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}
	return nil
}

// checkPaths fails early, before any pixel is read, on a missing source or
// an existing destination.
func checkPaths(src, dst string) error {
	fi, err := os.Stat(src)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%s: no such file", src)
	case err != nil:
		return fmt.Errorf("%s: %w", src, unwrapPath(err))
	case fi.IsDir():
		return fmt.Errorf("%s: is a directory, not an image", src)
	}
	if _, err := os.Lstat(dst); err == nil {
		return fmt.Errorf("%s: %w", dst, ErrExists)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s: %w", dst, unwrapPath(err))
	}
	return nil
}

// needsBigTIFF decides from the raw size of all levels (the full image
// and the levels below, a third more) whether to write BigTIFF.
func needsBigTIFF(w, h, bands int) bool {
	bands = max(bands, 3)
	raw := int64(w) * int64(h) * int64(bands)
	return raw+raw/3 > bigTIFFFrom
}

// publishFile moves the finished file tmp to dst without replacing a dst
// that appeared meanwhile: a hard link fails if dst exists.
func publishFile(tmp, dst string) error {
	err := os.Link(tmp, dst)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%s: %w", dst, ErrExists)
	}
	if err != nil {
		// No hard links here (some network and FUSE file systems):
		// check, then rename.
		if _, err := os.Lstat(dst); err == nil {
			return fmt.Errorf("%s: %w", dst, ErrExists)
		}
		return os.Rename(tmp, dst)
	}
	return os.Remove(tmp)
}

// publishDir renames the finished directory tmp to dst. rename(2) would
// replace an empty directory dst, so dst is checked first; only an empty
// directory created in the instant between could be replaced.
func publishDir(tmp, dst string) error {
	if _, err := os.Lstat(dst); err == nil {
		return fmt.Errorf("%s: %w", dst, ErrExists)
	}
	return os.Rename(tmp, dst)
}

// unwrapPath drops the path of an *fs.PathError, which the caller names
// itself, keeping the operation's error.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// scrub replaces the work directory in an error's text with dst, so that
// no message names a file that no longer exists.
func scrub(err error, work, base, dst string) error {
	text := err.Error()
	if !strings.Contains(text, work) {
		return err
	}
	text = strings.ReplaceAll(text, filepath.Join(work, base), dst)
	text = strings.ReplaceAll(text, work, filepath.Dir(dst))
	return &scrubbed{err: err, text: text}
}

type scrubbed struct {
	err  error
	text string
}

func (s *scrubbed) Error() string { return s.text }
func (s *scrubbed) Unwrap() error { return s.err }
