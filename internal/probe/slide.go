package probe

import (
	"bytes"
	"strconv"
	"strings"
)

// SlideInfo is what a whole-slide image says about itself: who scanned
// it, at what magnification and resolution, when, and which photographs
// (associated images) come with it.
type SlideInfo struct {
	// Vendor is the scanner's maker as OpenSlide names it: "aperio",
	// "hamamatsu", "philips", "leica", "ventana", "mirax"...
	Vendor string
	// MPPX and MPPY are the microns per pixel of the full-resolution
	// level, 0 when the slide does not say.
	MPPX, MPPY float64
	// Objective is the objective power the slide was scanned at (20,
	// 40...), 0 when unknown.
	Objective float64
	// ScanDate is the date (and time) of the scan as the slide writes
	// it, empty when unknown.
	ScanDate string
	// Background is the colour of the regions outside the scanned area,
	// white when the slide declares none.
	Background [3]uint8
	// Associated lists the associated images, each readable as its own
	// image through its Level.
	Associated []Associated
}

// Associated is one associated image of a slide.
type Associated struct {
	Name  string // "label", "macro", "thumbnail"
	Level Level
}

// AssociatedNames are the associated images iiifd serves, by the names
// OpenSlide gives them: identifiers end in ";" and one of them.
var AssociatedNames = []string{"label", "macro", "thumbnail"}

// Find returns the associated image called name.
func (s *SlideInfo) Find(name string) (Associated, bool) {
	if s == nil {
		return Associated{}, false
	}
	for _, a := range s.Associated {
		if a.Name == name {
			return a, true
		}
	}
	return Associated{}, false
}

// white is the background of slides that declare none.
var white = [3]uint8{255, 255, 255}

// More TIFF tags, of the vendors' dialects.
const (
	tagImageDescription = 270
	tagXMP              = 700
	tagNDPIFormatFlag   = 65420 // Hamamatsu NDPI: present in every NDPI IFD
)

// maxDescription bounds the bytes of an ImageDescription or XMP packet
// read to recognise a vendor: Aperio's fits in a few hundred bytes, and
// the XML of Philips and Leica names itself near its start.
const maxDescription = 64 << 10

// tiffPage is one IFD of the main chain with its level facts.
type tiffPage struct {
	d    *ifd
	l    *TIFFLevel
	page int
}

// text returns up to maxDescription bytes of an ASCII or byte tag of d,
// without a trailing NUL; nil when d lacks it or it has another type.
func (t *tiffFile) text(d *ifd, tag uint16) ([]byte, error) {
	e := d.find(tag)
	if e == nil || e.count == 0 || typeSize(e.typ) != 1 {
		return nil, nil
	}
	a, err := t.locate(e)
	if err != nil {
		return nil, err
	}
	n := int(min(e.count, maxDescription))
	var b []byte
	if a.off < 0 {
		b = a.inline[:n]
	} else if b, err = t.src.at(a.off, n); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b, "\x00"), nil
}

// slide recognises a whole-slide image among TIFFs, from the main chain's
// pages: nil for an ordinary TIFF (generic tiled TIFFs included, which
// the TIFF path reads as well as OpenSlide would). Aperio SVS comes back
// with its properties and associated images, as the TIFF path serves it;
// the other vendors with their name only, for OpenSlide to read.
func (t *tiffFile) slide(pages []tiffPage) (*SlideInfo, error) {
	d0 := pages[0].d
	if d0.find(tagNDPIFormatFlag) != nil {
		return &SlideInfo{Vendor: "hamamatsu", Background: white}, nil
	}
	desc, err := t.text(d0, tagImageDescription)
	if err != nil {
		return nil, err
	}
	switch {
	case bytes.HasPrefix(desc, []byte("Aperio")):
		s := parseAperio(string(desc))
		t.aperioAssociated(s, pages)
		return s, nil
	case bytes.Contains(desc, []byte("DPUfsImport")):
		return &SlideInfo{Vendor: "philips", Background: white}, nil
	case bytes.Contains(desc, []byte("leica-microsystems.com/scn")):
		return &SlideInfo{Vendor: "leica", Background: white}, nil
	}
	for _, p := range pages {
		xmp, err := t.text(p.d, tagXMP)
		if err != nil {
			return nil, err
		}
		if bytes.Contains(xmp, []byte("iScan")) {
			return &SlideInfo{Vendor: "ventana", Background: white}, nil
		}
	}
	return nil, nil
}

// parseAperio reads the properties of an Aperio ImageDescription: a
// header line ("Aperio Image Library v11.2.1"), then the level's
// geometry and "key = value" fields, all separated by "|".
func parseAperio(desc string) *SlideInfo {
	s := &SlideInfo{Vendor: "aperio", Background: white}
	var date, clock string
	for _, f := range strings.Split(desc, "|") {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch k {
		case "MPP":
			if x, err := strconv.ParseFloat(v, 64); err == nil && x > 0 && x < 1e6 {
				s.MPPX, s.MPPY = x, x
			}
		case "AppMag":
			if x, err := strconv.ParseFloat(v, 64); err == nil && x > 0 && x < 1e6 {
				s.Objective = x
			}
		case "Date":
			date = v
		case "Time":
			clock = v
		}
	}
	s.ScanDate = strings.TrimSpace(date + " " + clock)
	return s
}

// aperioAssociated finds an SVS's associated images: the stripped
// thumbnail right after IFD 0, and the pages whose description's second
// line starts with "label" or "macro".
func (t *tiffFile) aperioAssociated(s *SlideInfo, pages []tiffPage) {
	for i, p := range pages[1:] {
		name := ""
		desc, err := t.text(p.d, tagImageDescription)
		if err != nil {
			continue
		}
		if _, rest, ok := bytes.Cut(desc, []byte("\n")); ok {
			rest = bytes.TrimSpace(rest)
			switch {
			case bytes.HasPrefix(rest, []byte("label")):
				name = "label"
			case bytes.HasPrefix(rest, []byte("macro")):
				name = "macro"
			}
		}
		if name == "" && i == 0 && !p.l.Tiled() {
			name = "thumbnail"
		}
		if name == "" {
			continue
		}
		if _, dup := s.Find(name); dup {
			continue
		}
		lv := tiffLevel(p.l, p.page, -1)
		lv.TileWidth, lv.TileHeight = 0, 0
		s.Associated = append(s.Associated, Associated{Name: name, Level: lv})
	}
}

// SlideFromProperties gathers the facts of a slide from OpenSlide's
// properties (openslide.vendor, openslide.mpp-x...; the scan date from
// the vendor's own property). Bad numbers are left out.
func SlideFromProperties(props map[string]string) *SlideInfo {
	num := func(k string) float64 {
		x, err := strconv.ParseFloat(strings.TrimSpace(props[k]), 64)
		if err != nil || x <= 0 || x >= 1e6 {
			return 0
		}
		return x
	}
	s := &SlideInfo{
		Vendor:     props["openslide.vendor"],
		MPPX:       num("openslide.mpp-x"),
		MPPY:       num("openslide.mpp-y"),
		Objective:  num("openslide.objective-power"),
		Background: ParseBackground(props["openslide.background-color"]),
	}
	for _, k := range []string{"aperio.Date", "hamamatsu.Created", "leica.creation-date",
		"philips.DICOM_ACQUISITION_DATETIME", "ventana.ScanDate", "mirax.GENERAL.SLIDE_CREATIONDATETIME"} {
		if v := strings.TrimSpace(props[k]); v != "" {
			s.ScanDate = v
			break
		}
	}
	return s
}

// ParseBackground reads OpenSlide's background colour, six hex digits
// (RRGGBB); white when absent or malformed.
func ParseBackground(hex string) [3]uint8 {
	if len(hex) != 6 {
		return white
	}
	v, err := strconv.ParseUint(hex, 16, 32)
	if err != nil {
		return white
	}
	return [3]uint8{uint8(v >> 16), uint8(v >> 8), uint8(v)}
}
