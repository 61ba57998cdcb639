package iiif

import (
	"net/url"
	"strconv"
	"strings"
)

// ServiceID returns the id (base URI) of the image service of identifier
// id for API version v: base (the server's public URL, before /iiif/),
// the version's prefix and the identifier with every reserved character,
// slashes included, percent-encoded as one path segment. info.json's id,
// Link headers and Presentation documents all name services with it.
func ServiceID(base string, v Version, id string) string {
	return strings.TrimSuffix(base, "/") + "/iiif/" + strconv.Itoa(int(v)) + "/" + url.PathEscape(id)
}
