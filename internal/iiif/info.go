package iiif

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
)

// URIs and media types of the two API versions.
const (
	// Protocol is the value of "protocol" in info.json (3.0 §5.2, 2.1 §5.2).
	Protocol = "http://iiif.io/api/image"

	// Context3 and Context2 are the JSON-LD contexts of info.json.
	Context3 = "http://iiif.io/api/image/3/context.json"
	Context2 = "http://iiif.io/api/image/2/context.json"

	// Level2 is the version 3 compliance level named in "profile" (3.0 §6).
	Level2 = "level2"

	// ProfileLevel2V3 and ProfileLevel2V2 are the compliance level URIs:
	// the first entry of the version 2 "profile" list (2.1 §6), and the
	// target of the profile link header of both versions
	// (Link: <...>;rel="profile", 3.0 §6 and 2.1 §6).
	ProfileLevel2V3 = "http://iiif.io/api/image/3/level2.json"
	ProfileLevel2V2 = "http://iiif.io/api/image/2/level2.json"

	// MediaTypeJSON is the plain JSON media type. 2.1 §5.1: unless the
	// client asks for JSON-LD in Accept, "the server MUST return the
	// regular JSON content-type". 3.0 §5.1 allows it as a fallback.
	MediaTypeJSON = "application/json"
	// MediaTypeJSONLD3 is the version 3 info.json media type, used when
	// the request has no Accept header (3.0 §5.1).
	MediaTypeJSONLD3 = `application/ld+json;profile="http://iiif.io/api/image/3/context.json"`
	// MediaTypeJSONLD2 is the version 2 JSON-LD media type, returned only
	// when the client asks for it (2.1 §5.1 gives it without a profile
	// parameter).
	MediaTypeJSONLD2 = "application/ld+json"
)

// ContextURI returns the JSON-LD context of version v.
func ContextURI(v Version) string {
	if v == V2 {
		return Context2
	}
	return Context3
}

// ProfileURI returns the level 2 compliance URI of version v, for the
// profile link header.
func ProfileURI(v Version) string {
	if v == V2 {
		return ProfileLevel2V2
	}
	return ProfileLevel2V3
}

// JSONLDMediaType returns the JSON-LD media type of version v.
func JSONLDMediaType(v Version) string {
	if v == V2 {
		return MediaTypeJSONLD2
	}
	return MediaTypeJSONLD3
}

// Tile is one entry of "tiles": square tiles when Height is 0 or equal to
// Width.
type Tile struct {
	Width, Height int
	ScaleFactors  []int
}

// SizeEntry is one entry of "sizes": a full-image size the server prefers.
type SizeEntry struct {
	Width, Height int
}

// ImageInfo is what info.json says about one image, for either version.
type ImageInfo struct {
	// ID is the base URI of the image service, without a trailing slash.
	ID            string
	Width, Height int
	Tiles         []Tile
	Sizes         []SizeEntry
	// MaxWidth, MaxHeight and MaxArea are the size limits; 0 = none.
	// MaxHeight requires MaxWidth (3.0 §5.2, 2.1 §5.3).
	MaxWidth, MaxHeight int
	MaxArea             int64
	// ExtraFormats are formats beyond the level 2 ones (jpg, png); they
	// become "extraFormats" (v3) or the profile's "formats" (v2).
	ExtraFormats []Format
	// ExtraQualities are qualities beyond "default"; they become
	// "extraQualities" (v3) or the profile's "qualities" (v2).
	ExtraQualities []Quality
	// PreferredFormats is written in version 3 only (3.0 §5.5).
	PreferredFormats []Format
	// Rights is a license or rights statement URI: "rights" in version 3,
	// "license" in version 2.
	Rights string
	// Features are the feature names to declare ("extraFeatures" in v3,
	// the profile's "supports" in v2). Nil means DefaultFeatures.
	Features []string
	// Contexts are extension JSON-LD contexts; they are put before the
	// IIIF context in "@context" (3.0 §5.2: the IIIF context must be last).
	Contexts []string
	// Extra holds further top-level properties (service, seeAlso, partOf,
	// attribution, logo, ...). Keys that this package writes itself are
	// ignored, so Extra can never override a required property.
	Extra map[string]any
}

// features3 lists every feature name of 3.0 §5.7 in the order of its table;
// iiifd supports all of them. sizeUpscaling is listed only where the limits
// allow it (see DefaultFeatures).
var features3 = []string{
	"baseUriRedirect", "canonicalLinkHeader", "cors", "jsonldMediaType", "mirroring",
	"profileLinkHeader", "regionByPct", "regionByPx", "regionSquare", "rotationArbitrary",
	"rotationBy90s", "sizeByConfinedWh", "sizeByH", "sizeByPct", "sizeByW", "sizeByWh",
	"sizeUpscaling",
}

// features2 lists the feature names of 2.1 §5.3 that iiifd supports. The
// deprecated sizeByWhListed and sizeByForcedWh are left out: 2.1 says they
// "will be removed in version 3.0" and that sizeByWhListed "is implied by
// listing the sizes".
var features2 = []string{
	"baseUriRedirect", "canonicalLinkHeader", "cors", "jsonldMediaType", "mirroring",
	"profileLinkHeader", "regionByPct", "regionByPx", "regionSquare", "rotationArbitrary",
	"rotationBy90s", "sizeAboveFull", "sizeByConfinedWh", "sizeByDistortedWh", "sizeByH",
	"sizeByPct", "sizeByW", "sizeByWh",
}

// DefaultFeatures returns the feature names iiifd supports in version v.
// The upscaling feature (sizeUpscaling in v3, sizeAboveFull in v2) is
// included only when upscaling is true: 3.0 §5.7 says "A server that
// supports sizeUpscaling MUST specify maxWidth or maxArea", and the planner
// allows upscaling only under such a limit.
func DefaultFeatures(v Version, upscaling bool) []string {
	src := features3
	if v == V2 {
		src = features2
	}
	out := make([]string, 0, len(src))
	for _, f := range src {
		if !upscaling && (f == "sizeUpscaling" || f == "sizeAboveFull") {
			continue
		}
		out = append(out, f)
	}
	return out
}

// member is one key/value pair of a JSON object written in a fixed order.
type member struct {
	key string
	val any
}

type tileJSON struct {
	Width        int   `json:"width"`
	Height       int   `json:"height,omitempty"`
	ScaleFactors []int `json:"scaleFactors"`
}

type sizeJSON struct {
	Width  int `json:"width"`
	Height int `json:"height"`
}

type profile2JSON struct {
	Formats   []Format  `json:"formats,omitempty"`
	Qualities []Quality `json:"qualities,omitempty"`
	Supports  []string  `json:"supports,omitempty"`
	MaxWidth  int       `json:"maxWidth,omitempty"`
	MaxHeight int       `json:"maxHeight,omitempty"`
	MaxArea   int64     `json:"maxArea,omitempty"`
}

// reserved3 and reserved2 are the keys MarshalInfo owns; Extra cannot set
// them even when MarshalInfo leaves them out.
var (
	reserved3 = []string{"@context", "id", "type", "protocol", "profile", "width", "height",
		"maxWidth", "maxHeight", "maxArea", "sizes", "tiles", "preferredFormats", "rights",
		"extraFormats", "extraQualities", "extraFeatures"}
	reserved2 = []string{"@context", "@id", "@type", "protocol", "width", "height",
		"sizes", "tiles", "profile", "license"}
)

// MarshalInfo returns the info.json document of version v for ii, with keys
// in the order the spec's examples use: context, identity, profile, size,
// limits, sizes, tiles, then the optional properties, then Extra in key
// order. It checks the rules the spec puts on the document itself: tiles
// and sizes within the limits, unique tile sizes, maxHeight only with
// maxWidth.
func MarshalInfo(v Version, ii ImageInfo) ([]byte, error) {
	if v != V2 && v != V3 {
		return nil, fmt.Errorf("iiif: unknown API version %d", v)
	}
	if err := ii.check(); err != nil {
		return nil, err
	}
	features := ii.Features
	if features == nil {
		features = DefaultFeatures(v, ii.MaxWidth > 0 || ii.MaxArea > 0)
	}
	var ctx any = ContextURI(v)
	if len(ii.Contexts) > 0 {
		ctx = append(slices.Clone(ii.Contexts), ContextURI(v))
	}
	var ms []member
	if v == V3 {
		ms = []member{
			{"@context", ctx},
			{"id", ii.ID},
			{"type", "ImageService3"},
			{"protocol", Protocol},
			{"profile", Level2},
			{"width", ii.Width},
			{"height", ii.Height},
		}
		if ii.MaxWidth > 0 {
			ms = append(ms, member{"maxWidth", ii.MaxWidth})
		}
		if ii.MaxHeight > 0 {
			ms = append(ms, member{"maxHeight", ii.MaxHeight})
		}
		if ii.MaxArea > 0 {
			ms = append(ms, member{"maxArea", ii.MaxArea})
		}
		ms = appendSizesTiles(ms, ii)
		if len(ii.PreferredFormats) > 0 {
			ms = append(ms, member{"preferredFormats", ii.PreferredFormats})
		}
		if ii.Rights != "" {
			ms = append(ms, member{"rights", ii.Rights})
		}
		if len(ii.ExtraFormats) > 0 {
			ms = append(ms, member{"extraFormats", ii.ExtraFormats})
		}
		if len(ii.ExtraQualities) > 0 {
			ms = append(ms, member{"extraQualities", ii.ExtraQualities})
		}
		if len(features) > 0 {
			ms = append(ms, member{"extraFeatures", features})
		}
	} else {
		ms = []member{
			{"@context", ctx},
			{"@id", ii.ID},
			{"protocol", Protocol},
			{"width", ii.Width},
			{"height", ii.Height},
		}
		ms = appendSizesTiles(ms, ii)
		// 2.1 §5.3: formats, qualities and supports are left out when they
		// add nothing to the compliance level (omitempty does that).
		p := profile2JSON{
			Formats:   ii.ExtraFormats,
			Qualities: ii.ExtraQualities,
			Supports:  features,
			MaxWidth:  ii.MaxWidth,
			MaxHeight: ii.MaxHeight,
			MaxArea:   ii.MaxArea,
		}
		var prof []any
		prof = append(prof, ProfileLevel2V2)
		if len(p.Formats)+len(p.Qualities)+len(p.Supports) > 0 || p.MaxWidth > 0 || p.MaxHeight > 0 || p.MaxArea > 0 {
			prof = append(prof, p)
		}
		ms = append(ms, member{"profile", prof})
		if ii.Rights != "" {
			ms = append(ms, member{"license", ii.Rights})
		}
	}
	reserved := reserved3
	if v == V2 {
		reserved = reserved2
	}
	keys := make([]string, 0, len(ii.Extra))
	for k := range ii.Extra {
		if !slices.Contains(reserved, k) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		ms = append(ms, member{k, ii.Extra[k]})
	}
	return writeObject(ms)
}

func appendSizesTiles(ms []member, ii ImageInfo) []member {
	if len(ii.Sizes) > 0 {
		sizes := make([]sizeJSON, len(ii.Sizes))
		for i, s := range ii.Sizes {
			sizes[i] = sizeJSON(s)
		}
		ms = append(ms, member{"sizes", sizes})
	}
	if len(ii.Tiles) > 0 {
		tiles := make([]tileJSON, len(ii.Tiles))
		for i, t := range ii.Tiles {
			tiles[i] = tileJSON{Width: t.Width, ScaleFactors: t.ScaleFactors}
			// Height "defaults to the same as width" (3.0 §5.4, 2.1 §5.2),
			// so it is written only for non-square tiles.
			if t.Height != 0 && t.Height != t.Width {
				tiles[i].Height = t.Height
			}
		}
		ms = append(ms, member{"tiles", tiles})
	}
	return ms
}

// check enforces what the spec requires of the document itself.
// Within reports whether a w×h image is within the size limits maxW,
// maxH and maxArea (0: none), as info.json expresses them: a maxHeight
// left out takes maxWidth's value, since 3.0 §5.2 tells clients to
// "infer that maxHeight = maxWidth". It is the one rule for every size
// the server lists or advertises.
func Within(w, h, maxW, maxH int, maxArea int64) bool {
	if maxH == 0 {
		maxH = maxW
	}
	return (maxW == 0 || w <= maxW) && (maxH == 0 || h <= maxH) &&
		(maxArea == 0 || int64(w)*int64(h) <= maxArea)
}

func (ii ImageInfo) check() error {
	switch {
	case ii.ID == "":
		return errors.New("iiif: info.json needs an id")
	case ii.Width < 1 || ii.Height < 1:
		return fmt.Errorf("iiif: info.json size %dx%d is not positive", ii.Width, ii.Height)
	case ii.MaxWidth < 0 || ii.MaxHeight < 0 || ii.MaxArea < 0:
		return errors.New("iiif: negative size limit")
	case ii.MaxHeight > 0 && ii.MaxWidth == 0:
		// 3.0 §5.2: "maxWidth MUST be specified if maxHeight is specified".
		return errors.New("iiif: maxHeight needs maxWidth")
	}
	// 3.0 §5.2, 2.1 §5.3: "Servers MUST ensure that sizes specified by any
	// sizes or tiles properties are within any size limits expressed."
	within := func(w, h int) bool { return Within(w, h, ii.MaxWidth, ii.MaxHeight, ii.MaxArea) }
	for _, s := range ii.Sizes {
		if s.Width < 1 || s.Height < 1 {
			return fmt.Errorf("iiif: size %dx%d is not positive", s.Width, s.Height)
		}
		if !within(s.Width, s.Height) {
			return fmt.Errorf("iiif: size %dx%d exceeds the size limits", s.Width, s.Height)
		}
	}
	seen := map[[2]int]bool{}
	for _, t := range ii.Tiles {
		h := t.Height
		if h == 0 {
			h = t.Width
		}
		if t.Width < 1 || h < 1 {
			return fmt.Errorf("iiif: tile size %dx%d is not positive", t.Width, h)
		}
		// 3.0 §5.4: tiles "MUST each have a unique combination of width
		// and height".
		if seen[[2]int{t.Width, h}] {
			return fmt.Errorf("iiif: tile size %dx%d is listed twice", t.Width, h)
		}
		seen[[2]int{t.Width, h}] = true
		if len(t.ScaleFactors) == 0 {
			return errors.New("iiif: tile without scale factors")
		}
		for _, s := range t.ScaleFactors {
			if s < 1 {
				return fmt.Errorf("iiif: scale factor %d is not positive", s)
			}
			// The largest tile request at factor s is a tile, or the whole
			// image at that factor when that is smaller (3.0 implementation
			// notes §3); that is what must be within the limits.
			tw, th := min(t.Width, ceilDiv(ii.Width, s)), min(h, ceilDiv(ii.Height, s))
			if !within(tw, th) {
				return fmt.Errorf("iiif: %dx%d tiles at scale factor %d exceed the size limits", t.Width, h, s)
			}
		}
	}
	return nil
}

// writeObject writes ms as one JSON object with keys in the given order.
func writeObject(ms []member) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, m := range ms {
		if i > 0 {
			buf.WriteByte(',')
		}
		k, err := json.Marshal(m.key)
		if err != nil {
			return nil, err
		}
		v, err := json.Marshal(m.val)
		if err != nil {
			return nil, fmt.Errorf("iiif: info.json property %q: %w", m.key, err)
		}
		buf.Write(k)
		buf.WriteByte(':')
		buf.Write(v)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}
