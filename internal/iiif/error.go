package iiif

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// statusBadRequest is HTTP 400. The package names statuses itself rather
// than importing net/http, which it must stay free of to build small for
// WebAssembly targets.
const statusBadRequest = 400

// maxValueRunes bounds how much of an offending value an Error keeps, so a
// hostile URL cannot make error responses or log lines arbitrarily long.
const maxValueRunes = 64

// Error is a request parameter that does not follow the grammar of the
// requested API version, or names something this package does not know.
// Its Error text names the part and quotes the offending value in escaped
// ASCII, so it is safe to show to clients as it is.
type Error struct {
	Part   string // "version", "region", "size", "rotation", "quality" or "format"
	Value  string // the offending text, at most 64 runes
	Msg    string // what is wrong, in words a client can act on
	Status int    // the HTTP status; 0 means 400
}

// newError returns an Error with status 400. Both versions of the spec ask
// for 400 for every kind of error this package detects: syntax errors
// ("the syntax of the request issued by the client is incorrect"), an
// out-of-range or unsupported rotation (3.0 §4.3, 2.1 §4.3), an unsupported
// quality (3.0 §4.4, 2.1 §4.4) and an unsupported format (3.0 §4.5 and 2.1
// §4.5: "A format value that is unsupported SHOULD result in a 400 status
// code"). The generic 404 row of the error tables ("the value of one or
// more of the parameters is not supported") is overruled by those specific
// rules.
func newError(part, value, msg string) *Error {
	return &Error{Part: part, Value: truncate(value), Msg: msg, Status: statusBadRequest}
}

// Error returns a public message naming the part, e.g.
// `invalid size "0,": width must be at least 1`.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("invalid ")
	b.WriteString(e.Part)
	if e.Value != "" {
		b.WriteByte(' ')
		b.WriteString(quote(e.Value))
	}
	if e.Msg != "" {
		b.WriteString(": ")
		b.WriteString(e.Msg)
	}
	return b.String()
}

// HTTPStatus returns the HTTP status code for the error.
func (e *Error) HTTPStatus() int {
	if e.Status == 0 {
		return statusBadRequest
	}
	return e.Status
}

// truncate keeps at most maxValueRunes runes of s, marking the cut.
func truncate(s string) string {
	if utf8.RuneCountInString(s) <= maxValueRunes {
		return s
	}
	n := 0
	for i := range s {
		if n == maxValueRunes {
			return s[:i] + "…"
		}
		n++
	}
	return s
}

// quote quotes s as an escaped ASCII Go string and also escapes the
// characters that are special in HTML, so that a message that carries
// client input stays inert wherever it is shown.
func quote(s string) string {
	q := strconv.QuoteToASCII(s)
	return htmlEscaper.Replace(q)
}

var htmlEscaper = strings.NewReplacer(`<`, `\u003c`, `>`, `\u003e`, `&`, `\u0026`, `'`, `\u0027`)
