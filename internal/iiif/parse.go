package iiif

import (
	"strconv"
	"strings"
)

// Bounds on numbers in requests. The spec (3.0 §10, 2.1 §10) asks servers
// to sanity-check URIs early and to avoid overflow; these bounds are far
// beyond any real image and keep every product of two values inside int64.
const (
	// MaxInt is the largest pixel value accepted in a region or size: nine
	// significant digits.
	MaxInt = 999_999_999
	// maxIntDigits is the number of significant digits MaxInt has.
	maxIntDigits = 9
	// maxFloat is the largest value accepted for a percentage. Together
	// with maxFracDigits it keeps the shortest form of every accepted value
	// short, so that Request.String and ParseImage round-trip exactly.
	maxFloat = 1e9
	// maxFloatIntDigits bounds the integer part of a decimal, leading
	// zeros not counted.
	maxFloatIntDigits = 10
	// maxFracDigits bounds the fractional part of a decimal, trailing
	// zeros not counted. 2.1 §4: floating point numbers "should have at
	// most 10 decimal digits"; 3.0 keeps the same grammar.
	maxFracDigits = 10
)

// ParseImage parses the four path segments of an image request that follow
// the identifier: region, size, rotation and "quality.format". The segments
// must already be percent-decoded. Keywords are case-sensitive, as in the
// spec's tables. The first error found is returned as an *Error.
func ParseImage(v Version, region, size, rotation, qualityFormat string) (Request, error) {
	if v != V2 && v != V3 {
		return Request{}, newError("version", strconv.Itoa(int(v)), "the API version must be 2 or 3")
	}
	r := Request{Version: v}
	var err error
	if r.Region, err = parseRegion(region); err != nil {
		return Request{}, err
	}
	if r.Size, err = parseSize(v, size); err != nil {
		return Request{}, err
	}
	if r.Rotation, err = parseRotation(rotation); err != nil {
		return Request{}, err
	}
	if r.Quality, r.Format, err = parseQualityFormat(qualityFormat); err != nil {
		return Request{}, err
	}
	return r, nil
}

// parseRegion parses the region segment, the same in both versions:
// full, square, x,y,w,h or pct:x,y,w,h.
func parseRegion(s string) (Region, error) {
	const part = "region"
	switch s {
	case "":
		return Region{}, newError(part, s, "empty; use full, square, x,y,w,h or pct:x,y,w,h")
	case "full":
		return Region{Kind: RegionFull}, nil
	case "square":
		return Region{Kind: RegionSquare}, nil
	}
	if rest, ok := strings.CutPrefix(s, "pct:"); ok {
		var f [4]float64
		if msg := splitFloats(rest, f[:]); msg != "" {
			return Region{}, newError(part, s, msg)
		}
		// 3.0 §4.1 and 2.1 §4.1: "If the requested region's height or
		// width is zero ... the server SHOULD return a 400".
		if f[2] == 0 || f[3] == 0 {
			return Region{}, newError(part, s, "width and height must be greater than zero")
		}
		return Region{Kind: RegionPercent, X: f[0], Y: f[1], W: f[2], H: f[3]}, nil
	}
	var n [4]int
	if msg := splitInts(s, n[:]); msg != "" {
		return Region{}, newError(part, s, msg+"; use full, square, x,y,w,h or pct:x,y,w,h")
	}
	if n[2] == 0 || n[3] == 0 {
		return Region{}, newError(part, s, "width and height must be greater than zero")
	}
	return Region{Kind: RegionPixels, X: float64(n[0]), Y: float64(n[1]), W: float64(n[2]), H: float64(n[3])}, nil
}

// parseSize parses the size segment. Version 3 has max and the "^" forms and
// no full; version 2.1 has full and max and no "^".
func parseSize(v Version, s string) (Size, error) {
	const part = "size"
	orig := s
	var sz Size
	if rest, ok := strings.CutPrefix(s, "^"); ok {
		if v == V2 {
			return Size{}, newError(part, orig, `"^" (upscaling) is not part of API version 2`)
		}
		sz.Upscale = true
		s = rest
	}
	switch {
	case s == "":
		return Size{}, newError(part, orig, "empty")
	case s == "max":
		sz.Kind = SizeMax
		return sz, nil
	case s == "full":
		if v == V3 {
			return Size{}, newError(part, orig, `"full" is not a size in API version 3; use max`)
		}
		return Size{Kind: SizeMax, Full: true}, nil
	case strings.HasPrefix(s, "pct:"):
		n, msg := parseFloat(s[len("pct:"):])
		if msg != "" {
			return Size{}, newError(part, orig, msg)
		}
		if n == 0 {
			return Size{}, newError(part, orig, "percentage must be greater than zero")
		}
		// 3.0 §4.2: for pct:n "The value of n MUST NOT be greater than
		// 100"; only ^pct:n may upscale. 2.1 has no such bound.
		if v == V3 && !sz.Upscale && n > 100 {
			return Size{}, newError(part, orig, `percentage above 100 needs the "^" prefix`)
		}
		sz.Kind, sz.Percent = SizePercent, n
		return sz, nil
	case strings.HasPrefix(s, "!"):
		var n [2]int
		if msg := splitInts(s[1:], n[:]); msg != "" {
			return Size{}, newError(part, orig, msg)
		}
		if n[0] == 0 || n[1] == 0 {
			return Size{}, newError(part, orig, "width and height must be at least 1")
		}
		sz.Kind, sz.W, sz.H = SizeBestFit, n[0], n[1]
		return sz, nil
	}
	ws, hs, ok := strings.Cut(s, ",")
	if !ok || strings.Contains(hs, ",") {
		return Size{}, newError(part, orig, sizeForms(v))
	}
	var err string
	switch {
	case ws == "" && hs == "":
		return Size{}, newError(part, orig, "width or height is required")
	case hs == "":
		sz.Kind = SizeWidth
		sz.W, err = parseInt(ws)
	case ws == "":
		sz.Kind = SizeHeight
		sz.H, err = parseInt(hs)
	default:
		sz.Kind = SizeExact
		if sz.W, err = parseInt(ws); err == "" {
			sz.H, err = parseInt(hs)
		}
	}
	if err != "" {
		return Size{}, newError(part, orig, err)
	}
	// 3.0 §4.2: "the pixel dimensions of the scaled region MUST NOT be less
	// than 1 pixel"; 2.1 §4.2: "If the resulting height or width is zero,
	// then the server SHOULD return a 400".
	if (sz.Kind != SizeHeight && sz.W == 0) || (sz.Kind != SizeWidth && sz.H == 0) {
		return Size{}, newError(part, orig, "width and height must be at least 1")
	}
	return sz, nil
}

func sizeForms(v Version) string {
	if v == V2 {
		return "use full, max, w,, ,h, pct:n, w,h or !w,h"
	}
	return "use max, w,, ,h, pct:n, w,h or !w,h, optionally prefixed with ^"
}

// parseRotation parses n or !n, n a decimal from 0 to 360 (3.0 §4.3, 2.1
// §4.3: "A rotation value that is out of range ... SHOULD result in a 400").
func parseRotation(s string) (Rotation, error) {
	const part = "rotation"
	var r Rotation
	num := s
	if rest, ok := strings.CutPrefix(s, "!"); ok {
		r.Mirror = true
		num = rest
	}
	d, msg := parseFloat(num)
	if msg != "" {
		return Rotation{}, newError(part, s, msg)
	}
	if d > 360 {
		return Rotation{}, newError(part, s, "degrees must be from 0 to 360")
	}
	r.Degrees = d
	return r, nil
}

// parseQualityFormat parses "quality.format".
func parseQualityFormat(s string) (Quality, Format, error) {
	qs, fs, ok := strings.Cut(s, ".")
	if !ok {
		return "", "", newError("format", s, "missing; the last segment must be quality.format, e.g. default.jpg")
	}
	q := Quality(qs)
	if !q.Valid() {
		return "", "", newError("quality", qs, "use default, color, gray or bitonal")
	}
	f := Format(fs)
	if !f.Valid() {
		return "", "", newError("format", fs, "unsupported; use one of "+formatList())
	}
	return q, f, nil
}

func formatList() string {
	var b strings.Builder
	for i, f := range allFormats {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(string(f))
	}
	return b.String()
}

// splitInts parses exactly len(dst) comma-separated non-negative integers.
func splitInts(s string, dst []int) string { return splitNumbers(s, dst, parseInt) }

// splitFloats parses exactly len(dst) comma-separated non-negative decimals.
func splitFloats(s string, dst []float64) string { return splitNumbers(s, dst, parseFloat) }

// splitNumbers parses exactly len(dst) comma-separated numbers with parse,
// returning the first problem as a message ("" when all parsed).
func splitNumbers[T any](s string, dst []T, parse func(string) (T, string)) string {
	for i := range dst {
		field := s
		if i < len(dst)-1 {
			var ok bool
			field, s, ok = strings.Cut(s, ",")
			if !ok {
				return "expected " + strconv.Itoa(len(dst)) + " comma-separated numbers"
			}
		} else if strings.Contains(s, ",") {
			return "expected " + strconv.Itoa(len(dst)) + " comma-separated numbers"
		}
		n, msg := parse(field)
		if msg != "" {
			return msg
		}
		dst[i] = n
	}
	return ""
}

// parseInt parses a non-negative integer made only of ASCII digits (3.0 §4:
// "Size and region parameters in pixels MUST be non-negative integers").
// Signs, spaces and exponents are refused; leading zeros are accepted since
// they do not change the value.
func parseInt(s string) (int, string) {
	if s == "" {
		return 0, "missing number"
	}
	n, sig := 0, 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, "pixel values must be whole non-negative numbers of digits only"
		}
		if sig > 0 || c != '0' {
			sig++
			if sig > maxIntDigits {
				return 0, "number too large"
			}
		}
		n = n*10 + int(c-'0')
	}
	return n, ""
}

// parseFloat parses a non-negative decimal made only of ASCII digits and at
// most one "." (3.0 §4.7: floating point values "MUST consist only of
// decimal digits and '.' (e.g. 0.9 not +0.9)"). A missing leading zero and
// trailing zeros are only SHOULDs in the spec, so ".9" and "0.90" are
// accepted; signs, exponents, "NaN", "Inf", spaces and a bare "." are not.
func parseFloat(s string) (float64, string) {
	if s == "" {
		return 0, "missing number"
	}
	dot := -1
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
		case c == '.' && dot < 0:
			dot = i
		default:
			return 0, "numbers must consist only of digits and one \".\""
		}
	}
	ip, fp := s, ""
	if dot >= 0 {
		ip, fp = s[:dot], s[dot+1:]
	}
	if ip == "" && fp == "" {
		return 0, "missing number"
	}
	if len(strings.TrimLeft(ip, "0")) > maxFloatIntDigits {
		return 0, "number too large"
	}
	if len(strings.TrimRight(fp, "0")) > maxFracDigits {
		return 0, "at most 10 decimal places are allowed"
	}
	// The digits are trimmed before conversion so that the input to
	// ParseFloat stays short whatever the padding.
	ip = strings.TrimLeft(ip, "0")
	fp = strings.TrimRight(fp, "0")
	if ip == "" {
		ip = "0"
	}
	f, err := strconv.ParseFloat(ip+"."+fp+"0", 64)
	if err != nil || f > maxFloat {
		return 0, "number too large"
	}
	return f, ""
}
