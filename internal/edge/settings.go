package edge

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/iiifd/iiifd/internal/iiif"
	"github.com/iiifd/iiifd/internal/plan"
)

// Settings are the worker's variables, parsed.
type Settings struct {
	// Limits are the output limits info.json advertises and plans are
	// made within (MAX_WIDTH, MAX_HEIGHT, MAX_AREA, FORMAT_LIMITS).
	Limits plan.Limits
	// JPEGQuality is the JPEG encoder's quality (JPEG_QUALITY).
	JPEGQuality int
	// BaseURL is the public URL before /iiif/ (BASE_URL); empty takes
	// the origin of each request's URL.
	BaseURL string
	// TileSize is advertised for sources that are not tiled.
	TileSize int
	// MaxFlatBytes bounds a flat (untiled) JPEG or PNG source, which is
	// read whole: larger ones are a 501 that says to store a pyramid.
	MaxFlatBytes int64
	// CacheControl is sent with images, InfoCacheControl with info.json:
	// the native server's defaults.
	CacheControl, InfoCacheControl string
}

// The worker's defaults. The per-format limits are Micrio's, which keep
// a render inside a 128 MB isolate: a JPEG of 4096×4096, a PNG of
// 3584×3584 (PNG encodes from a full RGBA image and compresses slowly).
// MaxArea is one 4096² image; MaxSourcePixels lets a flat image be
// decoded only when it is at most 16 megapixels (64 MB as RGBA).
const (
	DefaultFormatLimits    = "jpg=4096x4096,png=3584x3584"
	DefaultMaxArea         = 4096 * 4096
	DefaultMaxSourcePixels = 16 << 20
	DefaultMaxFlatBytes    = 32 << 20
	DefaultTileSize        = 512
)

// ParseSettings reads the worker's variables (get returns "" for unset
// ones): MAX_WIDTH, MAX_HEIGHT, MAX_AREA, FORMAT_LIMITS (the syntax of
// the server's --format-limits), JPEG_QUALITY and BASE_URL.
func ParseSettings(get func(name string) string) (Settings, error) {
	s := Settings{
		JPEGQuality:      85,
		TileSize:         DefaultTileSize,
		MaxFlatBytes:     DefaultMaxFlatBytes,
		CacheControl:     "public, max-age=31536000",
		InfoCacheControl: "public, max-age=86400",
		Limits:           plan.Limits{MaxArea: DefaultMaxArea, MaxSourcePixels: DefaultMaxSourcePixels},
	}
	num := func(name string, top int64) (int64, bool, error) {
		v := strings.TrimSpace(get(name))
		if v == "" {
			return 0, false, nil
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 || n > top {
			return 0, false, fmt.Errorf("%s: %q is not a whole number from 0 to %d", name, v, top)
		}
		return n, true, nil
	}
	if n, ok, err := num("MAX_WIDTH", 1<<31-1); err != nil {
		return s, err
	} else if ok {
		s.Limits.MaxWidth = int(n)
	}
	if n, ok, err := num("MAX_HEIGHT", 1<<31-1); err != nil {
		return s, err
	} else if ok {
		s.Limits.MaxHeight = int(n)
	}
	if n, ok, err := num("MAX_AREA", 1<<62); err != nil {
		return s, err
	} else if ok {
		s.Limits.MaxArea = n
	}
	if n, ok, err := num("JPEG_QUALITY", 100); err != nil {
		return s, err
	} else if ok {
		if n < 1 {
			return s, fmt.Errorf("JPEG_QUALITY: want 1 to 100")
		}
		s.JPEGQuality = int(n)
	}
	fl := get("FORMAT_LIMITS")
	if strings.TrimSpace(fl) == "" {
		fl = DefaultFormatLimits
	}
	m, err := plan.ParseFormatLimits(fl)
	if err != nil {
		return s, fmt.Errorf("FORMAT_LIMITS: %w", err)
	}
	for f := range m {
		if !f.Valid() {
			return s, fmt.Errorf("FORMAT_LIMITS: %q is not an output format", string(f))
		}
	}
	s.Limits.PerFormat = m
	if b := strings.TrimSuffix(strings.TrimSpace(get("BASE_URL")), "/"); b != "" {
		if !strings.HasPrefix(b, "https://") && !strings.HasPrefix(b, "http://") {
			return s, fmt.Errorf("BASE_URL: %q is not an http(s) URL", b)
		}
		s.BaseURL = b
	}
	return s, nil
}

// formatsOf is the list of formats written, in a stable order.
func formatList(fs []iiif.Format) string {
	s := make([]string, len(fs))
	for i, f := range fs {
		s[i] = string(f)
	}
	return strings.Join(s, ", ")
}
