package httpapi

import (
	"net/textproto"

	"golang.org/x/net/http/httpguts"
)

// reqHead is what a hotConn reads of a request before deciding whether
// to answer it itself: where it ends and the few fields a remembered
// answer depends on. The fields are slices of the connection's buffer.
type reqHead struct {
	n int // bytes of the request line and header block

	// plain says the request may be answered from memory: a GET in
	// HTTP/1.1 of an origin-form target, one valid Host, header values of
	// visible ASCII, and no header that could change the answer
	// (conditionals, ranges, a trace context, Connection other than
	// keep-alive).
	plain bool

	target, host, id, fproto, fhost, fprefix []byte
}

// What parse found at the start of a buffer.
const (
	// headMore: the header block is not complete yet.
	headMore = iota
	// headWhole: a request without a body, delimited exactly as net/http
	// delimits it (every line ends in CRLF, no other CR or LF, nothing
	// announces a body or another protocol).
	headWhole
	// headForeign: anything else; only net/http may read it.
	headForeign
)

// parse reads the request at the start of b.
func (q *reqHead) parse(b []byte) int {
	*q = reqHead{}
	line, rest, st := crlfLine(b)
	if st != lineDone {
		return st
	}
	if len(line) == 0 || len(line) >= 4 && string(line[:4]) == "PRI " {
		// Empty lines before a request, or HTTP/2's preface:
		// net/http's call.
		return headForeign
	}
	q.plain = q.requestLine(line)
	hosts := 0
	for {
		var h []byte
		if h, rest, st = crlfLine(rest); st != lineDone {
			return st
		}
		if len(h) == 0 {
			break
		}
		if h[0] == ' ' || h[0] == '\t' {
			return headForeign // a folded line
		}
		colon := -1
		for i, c := range h {
			if c == ':' {
				colon = i
				break
			}
			if !httpguts.IsTokenRune(rune(c)) {
				q.plain = false
				break
			}
		}
		if colon <= 0 {
			q.plain = false
			continue
		}
		name, value := h[:colon], textproto.TrimBytes(h[colon+1:])
		for _, c := range value {
			if c < ' ' && c != '\t' || c > '~' {
				q.plain = false
			}
		}
		switch {
		case foldEq(name, "content-length"), foldEq(name, "transfer-encoding"),
			foldEq(name, "expect"), foldEq(name, "upgrade"):
			return headForeign
		case foldEq(name, "host"):
			hosts++
			q.host = value
		case foldEq(name, "x-request-id"):
			if q.id == nil {
				q.id = value
			}
		case foldEq(name, "x-forwarded-proto"):
			if q.fproto == nil {
				q.fproto = value
			}
		case foldEq(name, "x-forwarded-host"):
			if q.fhost == nil {
				q.fhost = value
			}
		case foldEq(name, "x-forwarded-prefix"):
			if q.fprefix == nil {
				q.fprefix = value
			}
		case foldEq(name, "connection"):
			if !foldEq(value, "keep-alive") {
				q.plain = false
			}
		case len(name) > 3 && foldEq(name[:3], "if-"), foldEq(name, "range"), foldEq(name, "traceparent"):
			q.plain = false
		}
	}
	q.n = len(b) - len(rest)
	if hosts != 1 || !validHost(bytesString(q.host)) {
		q.plain = false
	}
	return headWhole
}

// requestLine reports whether line is GET of an origin-form target in
// HTTP/1.1, and keeps the target.
func (q *reqHead) requestLine(line []byte) bool {
	const method, proto = "GET ", " HTTP/1.1"
	if len(line) < len(method)+1+len(proto) || string(line[:len(method)]) != method || string(line[len(line)-len(proto):]) != proto {
		return false
	}
	t := line[len(method) : len(line)-len(proto)]
	if t[0] != '/' {
		return false
	}
	for _, c := range t {
		if c <= ' ' || c > '~' {
			return false
		}
	}
	q.target = t
	return true
}

// lineDone: crlfLine found a line ending in CRLF.
const lineDone = -1

// crlfLine splits b after its first line, if it ends in CRLF; otherwise
// it reports headMore (it may yet), or headForeign (a CR not before an
// LF, or an LF without a CR: lines net/http may split otherwise).
func crlfLine(b []byte) (line, rest []byte, st int) {
	for i, c := range b {
		switch c {
		case '\n':
			return nil, nil, headForeign
		case '\r':
			if i+1 == len(b) {
				return nil, nil, headMore
			}
			if b[i+1] != '\n' {
				return nil, nil, headForeign
			}
			return b[:i], b[i+2:], lineDone
		}
	}
	return nil, nil, headMore
}

// foldEq reports whether b is lower, ignoring ASCII case (lower is in
// lower case).
func foldEq(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}
