package fault_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/iiifd/iiifd/internal/fault"
)

// TestKindStatus: every kind answers with its HTTP status (written as
// numbers in the package, which does not import net/http), through any
// wrapping; errors of no kind are 500s that show nothing of their cause.
func TestKindStatus(t *testing.T) {
	for kind, want := range map[fault.Kind]int{
		fault.Internal: http.StatusInternalServerError, fault.BadRequest: http.StatusBadRequest,
		fault.NotFound: http.StatusNotFound, fault.Forbidden: http.StatusForbidden,
		fault.NotImplemented: http.StatusNotImplemented, fault.Unavailable: http.StatusServiceUnavailable,
		fault.BadGateway: http.StatusBadGateway, fault.GatewayTimeout: http.StatusGatewayTimeout,
		fault.TooMany: http.StatusTooManyRequests, fault.Unsupported: http.StatusUnsupportedMediaType,
		fault.MethodNotAllowed: http.StatusMethodNotAllowed, fault.Unauthorized: http.StatusUnauthorized,
	} {
		if got := kind.Status(); got != want {
			t.Errorf("kind %d: status %d, want %d", kind, got, want)
		}
		err := fmt.Errorf("context: %w", fault.New(kind, "public"))
		if status, _ := fault.Status(err); status != want {
			t.Errorf("kind %d wrapped: status %d, want %d", kind, status, want)
		}
	}
	if status, msg := fault.Status(fmt.Errorf("open /secret: denied")); status != http.StatusInternalServerError || msg != "internal server error" {
		t.Errorf("an error of no kind: %d %q", status, msg)
	}
	if status, _ := fault.Response(fmt.Errorf("x: %w", context.DeadlineExceeded)); status != http.StatusServiceUnavailable {
		t.Errorf("deadline: %d, want 503", status)
	}
}
