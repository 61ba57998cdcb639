package httpapi

import (
	"net/http"
	"time"
)

// Preconditions evaluates the conditional headers of a GET or HEAD (If-Match,
// If-Unmodified-Since, If-None-Match, If-Modified-Since) against a
// representation's strong etag and modification time (zero: unknown), in
// the order of RFC 9110 §13.2.2. It returns 412 or 304 when one decides
// the response, 0 when the full response is due. The image routes use it,
// and so do other handlers that send ETags (the web front's documents).
func Preconditions(r *http.Request, etag string, mod time.Time) int {
	return preconditions(r, etag, mod)
}
