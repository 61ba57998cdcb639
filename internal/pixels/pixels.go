// Package pixels is iiifd's pixel engine: a thin binding to libvips that
// loads one resolution level of an image file, applies a plan.Plan (crop,
// scale, colour, quality, mirror, rotation) and streams the encoded result
// to an io.Writer. It is the only package of iiifd that uses cgo, and it
// binds only what iiifd needs; the C side (bridge.c) is a list of
// fixed-argument wrappers, every decision is made here in Go.
//
// Go owns every libvips object: each image a render makes is recorded and
// unreferenced when the render returns, on every path. libvips' operation
// cache is off by default (iiifd caches derivatives itself) and the image a
// render loads never enters it, so a render's images are its own and can be
// killed when its context is done.
//
// Only allow-listed loaders run (JPEG, PNG, GIF, WebP, TIFF, JPEG 2000,
// HEIF/AVIF); libvips' untrusted loaders are blocked for the process.
// Loaders fail on errors and truncation (fail_on=error), not on warnings.
//
// Startup must be called once before any other function.
package pixels

/*
#cgo pkg-config: vips
#include "bridge.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/iiifd/iiifd/internal/engine"
	"github.com/iiifd/iiifd/internal/iiif"
)

// Config sets up libvips for the process.
type Config struct {
	// Concurrency is the number of worker threads libvips uses for one
	// operation (vips_concurrency_set). Zero keeps libvips' default (the
	// VIPS_CONCURRENCY environment variable, else the number of CPUs).
	Concurrency int
	// CacheMaxOps is how many operations libvips' operation cache keeps.
	// Zero, the default, turns the cache off: iiifd caches derivatives
	// itself, requests rarely repeat an operation exactly, and cached
	// operations would keep source files open and pixels in memory.
	CacheMaxOps int
	// CacheMaxMem bounds the memory the operation cache may hold, in
	// bytes; zero means DefaultCacheMaxMem. Unused when CacheMaxOps is 0.
	CacheMaxMem int64
	// CacheMaxFiles bounds the files the operation cache keeps open; zero
	// means DefaultCacheMaxFiles. Unused when CacheMaxOps is 0.
	CacheMaxFiles int
	// LeakCheck makes libvips track its objects and report leaks when the
	// process exits (vips_leak_set). For tests and debugging.
	LeakCheck bool
	// Warn, when set, receives libvips' warnings (for example a corrupt
	// but still decodable JPEG). They are dropped otherwise, rather than
	// printed to stderr. It may be called from libvips' worker threads,
	// concurrently.
	Warn func(msg string)
}

// Defaults for the operation cache when it is turned on.
const (
	DefaultCacheMaxMem   = 16 << 20
	DefaultCacheMaxFiles = 16
)

// Validate reports whether the configuration is usable.
func (c Config) Validate() error {
	switch {
	case c.Concurrency < 0:
		return errors.New("pixels: Concurrency must not be negative")
	case c.CacheMaxOps < 0:
		return errors.New("pixels: CacheMaxOps must not be negative")
	case c.CacheMaxMem < 0:
		return errors.New("pixels: CacheMaxMem must not be negative")
	case c.CacheMaxFiles < 0:
		return errors.New("pixels: CacheMaxFiles must not be negative")
	}
	return nil
}

var (
	startOnce sync.Once
	startErr  error
	started   atomic.Bool
	// writable lists the output formats this libvips build can write, in
	// the order of allFormats. Set once by Startup.
	writable []iiif.Format
	warnFunc atomic.Pointer[func(string)]
)

// Startup initialises libvips for the process: it validates cfg, starts
// libvips, sets its concurrency and operation cache, routes its warnings,
// and finds the output formats it can write. Only the first call does
// anything; later calls return the first call's result and ignore their
// argument, since libvips cannot be restarted.
func Startup(cfg Config) error {
	startOnce.Do(func() { startErr = startup(cfg) })
	return startErr
}

func startup(cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer C.vips_thread_shutdown()

	if cfg.Warn != nil {
		warnFunc.Store(&cfg.Warn)
	}
	argv0 := C.CString("iiifd")
	defer C.free(unsafe.Pointer(argv0))
	if C.iiifd_init(argv0, cBool(cfg.Warn != nil)) != 0 {
		return fmt.Errorf("pixels: starting libvips: %s", vipsError())
	}
	mem, files := cfg.CacheMaxMem, cfg.CacheMaxFiles
	if cfg.CacheMaxOps > 0 {
		if mem == 0 {
			mem = DefaultCacheMaxMem
		}
		if files == 0 {
			files = DefaultCacheMaxFiles
		}
	} else {
		mem, files = 0, 0
	}
	tuneMalloc()
	C.iiifd_configure(C.int(cfg.Concurrency), C.int(cfg.CacheMaxOps),
		C.size_t(mem), C.int(files), cBool(cfg.LeakCheck))

	writable = probeFormats()
	C.vips_error_clear()
	started.Store(true)
	return nil
}

// allFormats lists the formats iiifd may produce with libvips, with the
// saver each uses.
var allFormats = []struct {
	format iiif.Format
	saver  C.int
	// seeks says the encoder goes back in its output (libtiff, OpenJPEG),
	// so it cannot stream: it encodes into memory, then the bytes are
	// copied to the writer.
	seeks bool
}{
	{iiif.FormatJPG, C.IIIFD_JPEG, false},
	{iiif.FormatPNG, C.IIIFD_PNG, false},
	{iiif.FormatWebP, C.IIIFD_WEBP, false},
	{iiif.FormatGIF, C.IIIFD_GIF, false},
	{iiif.FormatTIF, C.IIIFD_TIFF, true},
	{iiif.FormatJP2, C.IIIFD_JP2, true},
	{iiif.FormatAVIF, C.IIIFD_AVIF, false},
	{iiif.FormatHEIC, C.IIIFD_HEIC, false},
}

// probeFormats encodes a tiny image with every saver and keeps the formats
// that work: libvips' savers for HEIF, AVIF and JPEG 2000 depend on how it
// and its codecs were built, and a saver can exist without an encoder.
func probeFormats() []iiif.Format {
	var img *C.VipsImage
	if C.iiifd_black(&img, 16, 16, 3) != 0 {
		return nil
	}
	defer C.g_object_unref(C.gpointer(img))
	var out []iiif.Format
	for _, f := range allFormats {
		opt := saveOptions(engine.EncodeOptions{}, f.format, 16*16, false)
		var blob *C.VipsBlob
		if C.iiifd_save_memory(img, f.saver, &opt, &blob) == 0 {
			C.iiifd_blob_unref(blob)
			out = append(out, f.format)
		}
	}
	return out
}

// Formats returns the output formats this libvips build can write, as
// found by Startup; nil before Startup.
func Formats() []iiif.Format {
	if !started.Load() { // orders the read of writable after Startup's write
		return nil
	}
	return slices.Clone(writable)
}

// canWrite reports whether Startup found f writable.
func canWrite(f iiif.Format) bool {
	return started.Load() && slices.Contains(writable, f)
}

// saverOf returns the C saver id of f (0 if unknown) and whether its
// encoder seeks in its output.
func saverOf(f iiif.Format) (saver C.int, seeks bool) {
	for _, e := range allFormats {
		if e.format == f {
			return e.saver, e.seeks
		}
	}
	return 0, false
}

// optimizeMaxPixels is the largest JPEG, in pixels, whose Huffman tables
// are optimised. Optimising makes files some 5-10% smaller, but libjpeg
// then holds the whole image's coefficients and writes nothing before the
// end: bigger images are streamed instead.
const optimizeMaxPixels = 2048 * 2048

// pngFastPixels is the size, in pixels, above which PNGs are written with
// the fast setting when the compression level is not set (auto).
const pngFastPixels = 2048 * 2048

// saveOptions returns the C options for saving f as an image of the
// given number of pixels; oneBit selects 1-bit output (for a one-band
// bitonal image) where the format has it.
func saveOptions(o engine.EncodeOptions, f iiif.Format, pixels int64, oneBit bool) C.iiifd_save_options {
	pngAuto := o.PNGCompression <= 0
	o = o.Resolved()
	opt := C.iiifd_save_options{quality: 75, effort: 4, compression: 6, bitdepth: 8,
		filter: C.VIPS_FOREIGN_PNG_FILTER_NONE}
	switch f {
	case iiif.FormatJPG:
		opt.quality = C.int(o.JPEGQuality)
		opt.optimize = cBool(pixels <= optimizeMaxPixels)
	case iiif.FormatPNG:
		opt.compression = C.int(o.PNGCompression)
		if pngAuto && pixels > pngFastPixels && !oneBit {
			// zlib dominates big PNGs. Its fastest level with the sub
			// filter costs some 0.75 of level 6 unfiltered in CPU, for
			// files about as large (see docs/BENCHMARKS.md).
			opt.compression = 1
			opt.filter = C.VIPS_FOREIGN_PNG_FILTER_SUB
		}
		if oneBit {
			opt.bitdepth = 1
		}
	case iiif.FormatWebP:
		opt.quality = C.int(o.WebPQuality)
		opt.effort = C.int(o.WebPEffort)
	case iiif.FormatGIF:
		opt.effort = C.int(o.GIFEffort)
		if oneBit {
			opt.bitdepth = 1
		}
	case iiif.FormatJP2:
		opt.quality = C.int(o.JP2Quality)
	case iiif.FormatAVIF:
		opt.quality = C.int(o.AVIFQuality)
		opt.effort = C.int(o.AVIFEffort)
	case iiif.FormatHEIC:
		opt.quality = C.int(o.HEICQuality)
		opt.effort = C.int(o.HEICEffort)
	}
	return opt
}

// Stats is a snapshot of libvips' resource use, for metrics and leak tests.
type Stats struct {
	LiveObjects   int   // VipsObjects alive; counted only with Config.LeakCheck
	TrackedMem    int64 // bytes of pixel buffers libvips has allocated
	TrackedAllocs int   // number of those allocations
	TrackedFiles  int   // files libvips has open
	MemHighwater  int64 // the most TrackedMem has been
	// Sources counts the custom sources reading an Input.Reader that
	// libvips has not let go of yet.
	Sources int
}

// ReadStats returns libvips' current resource use.
func ReadStats() Stats {
	return Stats{
		LiveObjects:   int(C.iiifd_live_objects()),
		TrackedMem:    int64(C.vips_tracked_get_mem()),
		TrackedAllocs: int(C.vips_tracked_get_allocs()),
		TrackedFiles:  int(C.vips_tracked_get_files()),
		MemHighwater:  int64(C.vips_tracked_get_mem_highwater()),
		Sources:       int(liveSources.Load()),
	}
}

//export iiifdGoWarn
func iiifdGoWarn(msg *C.char) {
	if f := warnFunc.Load(); f != nil {
		(*f)(C.GoString(msg))
	}
}

func cBool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

// clearVipsError empties libvips' error buffer, where loaders also leave
// the warnings of images that did decode, so that a render's error holds
// its own messages. The buffer is the process's, so this may, rarely, eat
// the message of a concurrent render that has just failed: that one then
// logs a cause without libvips' text.
func clearVipsError() { C.vips_error_clear() }

// vipsError returns and clears libvips' error buffer. The buffer is shared
// by the whole process, so under concurrency it may hold messages of other
// renders too: its text is only ever a logged cause, never public.
func vipsError() string {
	p := C.vips_error_buffer_copy()
	defer C.g_free(C.gpointer(p))
	s := C.GoString(p)
	for len(s) > 0 && s[len(s)-1] == '\n' {
		s = s[:len(s)-1]
	}
	if s == "" {
		s = "libvips failed without a message"
	}
	return s
}
