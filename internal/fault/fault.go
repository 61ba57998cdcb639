// Package fault gives errors a kind that decides their HTTP status, a public
// message that is safe to show to clients, and an optional cause that is
// only logged. The HTTP edge maps errors to responses in one place; no other
// package writes status codes for errors.
//
// It does not import net/http (statuses are written as numbers): the edge
// worker's WebAssembly module links it, and net/http alone would add about
// half a megabyte to it. The response headers of errors are set by the
// native server (httpapi.SetErrorHeader).
//
// Any error type may take part by having the method HTTPStatus() int: its
// Error() text is then taken as public. The pure packages (iiif, plan) do
// that without importing this package.
package fault

import (
	"context"
	"errors"
	"fmt"
)

// Kind classifies an error by what the client can do about it.
type Kind int

// Kinds, each with one HTTP status.
const (
	Internal         Kind = iota // 500: our fault; logged
	BadRequest                   // 400: the request is malformed or impossible
	NotFound                     // 404: no such identifier
	Forbidden                    // 403
	NotImplemented               // 501: valid, but this server cannot do it
	Unavailable                  // 503: overloaded or shutting down
	BadGateway                   // 502: a backend answered wrongly
	GatewayTimeout               // 504: a backend did not answer in time
	TooMany                      // 429
	Unsupported                  // 415: unsupported media type
	MethodNotAllowed             // 405
	Unauthorized                 // 401
)

// Status returns the HTTP status code of the kind.
func (k Kind) Status() int {
	switch k {
	case BadRequest:
		return 400
	case NotFound:
		return 404
	case Forbidden:
		return 403
	case NotImplemented:
		return 501
	case Unavailable:
		return 503
	case BadGateway:
		return 502
	case GatewayTimeout:
		return 504
	case TooMany:
		return 429
	case Unsupported:
		return 415
	case MethodNotAllowed:
		return 405
	case Unauthorized:
		return 401
	}
	return 500
}

// Error is an error with a kind, a public message and a private cause.
type Error struct {
	Kind   Kind
	Public string // shown to clients; never contains paths or internals
	Cause  error  // logged, never shown
}

// New returns an error of the kind with a public message.
func New(k Kind, format string, args ...any) *Error {
	return &Error{Kind: k, Public: fmt.Sprintf(format, args...)}
}

// Wrap returns an error of the kind with a public message and a cause.
func Wrap(k Kind, cause error, format string, args ...any) *Error {
	return &Error{Kind: k, Public: fmt.Sprintf(format, args...), Cause: cause}
}

// Error returns the public message.
func (e *Error) Error() string { return e.Public }

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Cause }

// HTTPStatus returns the status code of the error's kind.
func (e *Error) HTTPStatus() int { return e.Kind.Status() }

// Detail returns the public message with the cause, for logs.
func (e *Error) Detail() string {
	if e.Cause == nil {
		return e.Public
	}
	return e.Public + ": " + e.Cause.Error()
}

// Detail is err's text for logs: the Detail of the *Error in its chain
// (public message and cause), or else its own text.
func Detail(err error) string {
	var fe *Error
	if errors.As(err, &fe) {
		return fe.Detail()
	}
	return err.Error()
}

type statusError interface {
	error
	HTTPStatus() int
}

// Status returns the HTTP status for err and the message that may be shown
// to a client. Errors that do not say their status are internal: 500 with a
// generic message, so that no internal detail leaks.
func Status(err error) (int, string) {
	var se statusError
	if errors.As(err, &se) {
		return se.HTTPStatus(), se.Error()
	}
	return 500, "internal server error"
}

// StatusClientClosed is the status logged for a request whose client went
// away (nginx's convention); the client never sees it.
const StatusClientClosed = 499

// Response returns the status and public message that the HTTP edge
// answers err with: Status, except that a client that went away
// (context.Canceled) is StatusClientClosed and a request that ran out of
// time (context.DeadlineExceeded, we were too slow) is 503 unless the
// error says its own status (a store's timeout is a 504). Every
// handler that answers errors maps them with Response and httpapi.SetErrorHeader.
func Response(err error) (int, string) {
	var se statusError
	switch {
	case errors.Is(err, context.Canceled):
		return StatusClientClosed, "client closed request"
	case errors.As(err, &se):
		// An error that says its status keeps it, even around a
		// deadline: a store that did not answer in time is a 504.
		return se.HTTPStatus(), se.Error()
	case errors.Is(err, context.DeadlineExceeded):
		return 503, "the request took too long"
	}
	return Status(err)
}
