package answer

import (
	"net/url"
	"strings"

	"github.com/iiifd/iiifd/internal/iiif"
)

// Kind is what a path under /iiif/ asks for.
type Kind int

// Kinds of Image API paths.
const (
	// Info is {identifier}/info.json.
	Info Kind = iota
	// Image is {identifier}/{region}/{size}/{rotation}/{quality}.{format}.
	Image
	// Base is {identifier} alone, the image service's base URI, which
	// is answered with a 303 to its info.json.
	Base
)

// Route is an Image API path taken apart: the version, the identifier
// (unescaped) and, for an image, the four parameters as they came.
type Route struct {
	Kind                                 Kind
	Version                              iiif.Version
	ID                                   string
	Region, Size, Rotation, QualityFormat string
}

// ParseRoute takes apart escaped, the escaped path after "/iiif/", as
// the native server and the edge worker both must: the version, then
// the segments unescaped one by one, so that an identifier with
// unencoded slashes is everything before info.json or before the last
// four segments. A trailing slash is forgiven. The errors carry the
// status to answer (an HTTPStatus method, as faults do): 404 for an
// unknown version or no identifier, 400 for malformed escapes. A Base
// route's identifier is not checked here: callers check it as they
// check every identifier (resolve.ValidIdentifier).
func ParseRoute(escaped string) (Route, error) {
	verStr, rest, _ := strings.Cut(escaped, "/")
	var rt Route
	switch verStr {
	case "3":
		rt.Version = iiif.V3
	case "2":
		rt.Version = iiif.V2
	default:
		return Route{}, routeError{404, "no such API version; use /iiif/3/ or /iiif/2/"}
	}
	raw := strings.Split(rest, "/")
	segs := make([]string, len(raw))
	for i, s := range raw {
		u, err := url.PathUnescape(s)
		if err != nil {
			return Route{}, routeError{400, "malformed percent-encoding in the URL path"}
		}
		segs[i] = u
	}
	if len(segs) > 1 && segs[len(segs)-1] == "" {
		segs = segs[:len(segs)-1]
	}
	n := len(segs)
	switch {
	case n == 0 || segs[0] == "":
		return Route{}, routeError{404, "no identifier in the URL"}
	case n >= 2 && segs[n-1] == "info.json":
		rt.Kind, rt.ID = Info, strings.Join(segs[:n-1], "/")
	case n >= 5:
		rt.Kind, rt.ID = Image, strings.Join(segs[:n-4], "/")
		rt.Region, rt.Size, rt.Rotation, rt.QualityFormat = segs[n-4], segs[n-3], segs[n-2], segs[n-1]
	default:
		rt.Kind, rt.ID = Base, strings.Join(segs, "/")
	}
	return rt, nil
}

// routeError is a refused path and the status to answer it with.
type routeError struct {
	status int
	msg    string
}

func (e routeError) Error() string   { return e.msg }
func (e routeError) HTTPStatus() int { return e.status }
