package httpapi

import (
	"crypto/subtle"
	"net/http"
	"strings"
)

// CheckAdminToken returns nil when r carries token as its bearer token
// (compared in constant time), else a 401 error whose response
// (SetErrorHeader) asks for it. Every admin route checks with it: the
// cache purge here and the web front's uploads.
func CheckAdminToken(r *http.Request, token string) error {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if ok && token != "" && subtle.ConstantTimeCompare([]byte(got), []byte(token)) == 1 {
		return nil
	}
	return errAdminToken{}
}

// errAdminToken is the refusal of an admin request without the token.
type errAdminToken struct{}

func (errAdminToken) Error() string   { return "a valid admin bearer token is required" }
func (errAdminToken) HTTPStatus() int { return http.StatusUnauthorized }

// ResponseHeader returns the challenge of the refusal.
func (errAdminToken) ResponseHeader() http.Header {
	return http.Header{"Www-Authenticate": {`Bearer realm="iiifd admin"`}}
}
