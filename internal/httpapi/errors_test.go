package httpapi_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/iiifd/iiifd/internal/fault"
	"github.com/iiifd/iiifd/internal/httpapi"
)

// refusal is an error that carries response headers, as a plugin's
// refusal does.
type refusal struct{ h http.Header }

func (r refusal) Error() string               { return "refused" }
func (r refusal) HTTPStatus() int             { return http.StatusUnauthorized }
func (r refusal) ResponseHeader() http.Header { return r.h }

// TestErrorResponse: the status, public message and headers an error is
// answered with (fault.Response, SetErrorHeader).
func TestErrorResponse(t *testing.T) {
	secret := errors.New("open /srv/images/secret.tif: permission denied")
	for _, tc := range []struct {
		name   string
		err    error
		status int
		msg    string
		header http.Header
	}{
		{"kind", fault.New(fault.NotFound, "no image %q", "x"), 404, `no image "x"`, http.Header{}},
		{"wrapped kind", fmt.Errorf("resolving: %w", fault.Wrap(fault.BadGateway, secret, "the store answered wrongly")), 502, "the store answered wrongly", http.Header{}},
		{"internal", secret, 500, "internal server error", http.Header{}},
		{"client gone", fmt.Errorf("render: %w", context.Canceled), fault.StatusClientClosed, "client closed request", http.Header{}},
		{"deadline", fmt.Errorf("render: %w", context.DeadlineExceeded), 503, "the request took too long", http.Header{"Retry-After": {"1"}}},
		{"store timeout", fault.Wrap(fault.GatewayTimeout, fmt.Errorf("GET: %w", context.DeadlineExceeded), "the image store did not answer in time"), 504, "the image store did not answer in time", http.Header{}},
		{"busy", fault.New(fault.Unavailable, "busy"), 503, "busy", http.Header{"Retry-After": {"1"}}},
		{"too many", fault.New(fault.TooMany, "slow down"), 429, "slow down", http.Header{"Retry-After": {"1"}}},
		{"refusal", fmt.Errorf("authorize: %w", refusal{http.Header{"Www-Authenticate": {`Bearer realm="x"`}}}), 401, "refused", http.Header{"Www-Authenticate": {`Bearer realm="x"`}}},
	} {
		status, msg := fault.Response(tc.err)
		if status != tc.status || msg != tc.msg {
			t.Errorf("%s: %d %q, want %d %q", tc.name, status, msg, tc.status, tc.msg)
		}
		hd := http.Header{}
		httpapi.SetErrorHeader(hd, tc.err, status)
		if fmt.Sprint(hd) != fmt.Sprint(tc.header) {
			t.Errorf("%s: headers %v, want %v", tc.name, hd, tc.header)
		}
	}
}
