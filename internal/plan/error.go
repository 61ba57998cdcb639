package plan

// HTTP statuses, named here because the package must not import net/http
// (it also builds for WebAssembly targets).
const (
	statusBadRequest          = 400
	statusNotFound            = 404
	statusInternalServerError = 500
	statusNotImplemented      = 501
)

// Error is a request that is well formed but cannot be served for this
// image, or an image the planner cannot work with. Its Error text names the
// part and holds only numbers and fixed words, so it is safe to show to
// clients as it is.
type Error struct {
	Part   string // "region", "size", "rotation", "quality", "format" or "image"
	Msg    string
	Status int // the HTTP status; 0 means 400
}

// Error returns the public message, e.g. "size: requested width 6000
// exceeds maxWidth 5000".
func (e *Error) Error() string { return e.Part + ": " + e.Msg }

// HTTPStatus returns the HTTP status code for the error.
func (e *Error) HTTPStatus() int {
	if e.Status == 0 {
		return statusBadRequest
	}
	return e.Status
}

func badRequest(part, msg string) *Error {
	return &Error{Part: part, Msg: msg, Status: statusBadRequest}
}
