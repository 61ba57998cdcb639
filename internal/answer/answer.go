// Package answer holds the rules of iiifd's IIIF answers that do not
// depend on the HTTP library: conditional requests (RFC 9110 §13), the
// media type of info.json, the Link header values and the CORS headers.
// It is pure Go without net/http, so that the native server and the edge
// worker (WebAssembly, where net/http would add a megabyte) answer by the
// same code.
package answer

import (
	"strconv"
	"strings"
	"time"

	"github.com/iiifd/iiifd/internal/iiif"
)

// The CORS headers of every response. IIIF resources are public: any
// origin may read them, and viewers need the validators and links.
const (
	AllowOrigin   = "*"
	ExposeHeaders = "Link, ETag, Last-Modified, X-Request-Id, X-Cache, Content-Length"
	AllowMethods  = "GET, HEAD, OPTIONS"
	MaxAge        = "86400"
)

// TimeFormat is the HTTP date format (IMF-fixdate, RFC 9110 §5.6.7).
const TimeFormat = "Mon, 02 Jan 2006 15:04:05 GMT"

// ParseTime parses an HTTP date in any of the three formats RFC 9110
// §5.6.7 says recipients must accept.
func ParseTime(s string) (time.Time, error) {
	var err error
	for _, layout := range []string{TimeFormat, "Monday, 02-Jan-06 15:04:05 GMT", "Mon Jan _2 15:04:05 2006"} {
		var t time.Time
		if t, err = time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, err
}

// Status codes decided by Preconditions.
const (
	StatusNotModified        = 304
	StatusPreconditionFailed = 412
)

// Preconditions evaluates the conditional headers of a GET or HEAD in the
// order of RFC 9110 §13.2.2 against a representation's strong etag and
// modification time (zero: unknown), reading request headers by their
// canonical names through get. It returns 412 or 304 when one decides
// the response, 0 when the full response is due.
func Preconditions(get func(canonicalKey string) string, etag string, mod time.Time) int {
	mod = mod.Truncate(time.Second)
	if im := get("If-Match"); im != "" {
		// Strong comparison (§13.1.1).
		if !MatchETag(im, etag, false) {
			return StatusPreconditionFailed
		}
	} else if ius := get("If-Unmodified-Since"); ius != "" && !mod.IsZero() {
		if t, err := ParseTime(ius); err == nil && mod.After(t) {
			return StatusPreconditionFailed
		}
	}
	if inm := get("If-None-Match"); inm != "" {
		// Weak comparison (§13.1.2); If-Modified-Since is then ignored.
		if MatchETag(inm, etag, true) {
			return StatusNotModified
		}
		return 0
	}
	if ims := get("If-Modified-Since"); ims != "" && !mod.IsZero() {
		if t, err := ParseTime(ims); err == nil && !mod.After(t) {
			return StatusNotModified
		}
	}
	return 0
}

// MatchETag reports whether the list of entity tags in a conditional
// header matches etag ("*" matches any).
func MatchETag(list, etag string, weak bool) bool {
	for _, t := range strings.Split(list, ",") {
		t = strings.TrimSpace(t)
		if t == "*" {
			return true
		}
		if weak {
			t = strings.TrimPrefix(t, "W/")
		}
		if t == etag {
			return true
		}
	}
	return false
}

// InfoContentType negotiates JSON-LD. Version 3 (§5.1) answers JSON-LD
// with the context as profile unless the client asks for plain JSON only;
// version 2.1 (§5.1) must answer application/json unless the client asks
// for JSON-LD.
func InfoContentType(v iiif.Version, accept string) string {
	var ld, plain bool
	for _, part := range strings.Split(accept, ",") {
		mt, params, _ := strings.Cut(part, ";")
		if refused(params) {
			continue
		}
		switch strings.ToLower(strings.TrimSpace(mt)) {
		case "application/ld+json":
			ld = true
		case "application/json":
			plain = true
		}
	}
	switch {
	case ld:
		return iiif.JSONLDMediaType(v)
	case v == iiif.V3 && !plain:
		return iiif.MediaTypeJSONLD3
	}
	return iiif.MediaTypeJSON
}

// refused reports whether media-type parameters carry q=0, which RFC 9110
// §12.4.2 defines as "not acceptable".
func refused(params string) bool {
	for _, p := range strings.Split(params, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		if strings.EqualFold(k, "q") {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return err == nil && f == 0
		}
	}
	return false
}

// ProfileLink is the Link header of info.json: the compliance profile.
func ProfileLink(v iiif.Version) string {
	return "<" + iiif.ProfileURI(v) + ">;rel=\"profile\""
}

// ImageLink is the Link header of an image: its canonical URL (the
// service id, then the canonical parameters) and the profile.
func ImageLink(serviceID string, v iiif.Version, canonical string) string {
	return "<" + serviceID + "/" + canonical + ">;rel=\"canonical\", " + ProfileLink(v)
}
