package httpapi

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/iiifd/iiifd/internal/tracing"
)

// Answering remembered requests on the connection.
//
// A hit on a small tile is a few kilobytes of bytes already in memory;
// what limits its throughput is the work per request, and most of what is
// left after hotRequests is net/http's own: a Request, its Header map, a
// response, the header map of the response written out key by key. A
// Listener therefore reads each connection first: a plain GET whose
// request line is remembered is answered right there, with the header
// block built when it was remembered and one write, and everything else is
// handed to net/http, which serves it as always.
//
// Handing over has to keep net/http's view of the connection exact. A
// request is handed over whole, and interception resumes after net/http
// has answered it, only when it is delimited beyond doubt: every line
// ends in CRLF, there is no other CR or LF, and no header announces a
// body (Content-Length, Transfer-Encoding) or a change of protocol
// (Expect, Upgrade). net/http then reads exactly that request, holds no
// byte of the next one, and comes back for more only when it is idle
// (http.ConnState, which Listener hooks). Anything else, including bytes
// that arrive while net/http is busy (pipelining), makes the connection
// net/http's for good: from then on reads go straight to the socket, and
// nothing can make the two parsers disagree on where a request ends.
//
// Answers from the connection are the same bytes the handler sends for
// the same request (the headers recorded then, a new date and request id),
// counted in the metrics and logged in the same way; anything that could
// change the answer (conditional headers, a traceparent, forwarding
// headers that name another base URL, an expired or evicted entry) hands
// the request to net/http, which decides it through the pipeline.

// Listener returns ln, wrapped so that requests handler would answer from
// its hot request memo are answered on the connection, before net/http
// parses them. srv must be the server that serves the returned listener
// with handler (the value New returned); Listener hooks its ConnState and
// its shutdown and reads its timeouts, so it is called after they are set,
// and Drain is called after srv.Shutdown. Without a memo (no memory tier,
// or plugins loaded), ln is returned as it is.
func Listener(handler http.Handler, srv *http.Server, ln net.Listener) net.Listener {
	f, ok := handler.(*front)
	if !ok || f.h.hot == nil {
		return ln
	}
	l := &hotListener{Listener: ln, h: f.h, idle: srv.IdleTimeout, header: srv.ReadHeaderTimeout, write: srv.WriteTimeout}
	if l.idle == 0 {
		l.idle = srv.ReadTimeout // as net/http does
	}
	if l.header == 0 {
		l.header = srv.ReadTimeout
	}
	prev := srv.ConnState
	srv.ConnState = func(c net.Conn, s http.ConnState) {
		if hc, ok := c.(*hotConn); ok {
			hc.setState(s)
		}
		if prev != nil {
			prev(c, s)
		}
	}
	// Shutting down, net/http answers with Connection: close and keeps
	// no connection open; so does every request from then on.
	srv.RegisterOnShutdown(func() { l.down.Store(true) })
	return l
}

// Drain waits until no answer is being written on a connection of ln (a
// listener Listener returned), or until ctx ends. net/http's Shutdown
// does not wait for them: it sees their connections as idle. It closes
// those connections, which lets an answer being written finish, within
// closeGrace.
func Drain(ctx context.Context, ln net.Listener) error {
	l, ok := ln.(*hotListener)
	if !ok {
		return nil
	}
	for l.writing.Load() > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}

// closeGrace is how long an answer being written may still take when its
// connection is closed.
const closeGrace = 5 * time.Second

// front is the handler New returns: the middleware and routes, and the
// Handler behind them for Listener.
type front struct {
	http.Handler
	h *Handler
}

type hotListener struct {
	net.Listener
	h *Handler
	// The server's timeouts, which the connection applies while it
	// answers on its own: the wait for a next request, the rest of a
	// request's header once its first bytes came, and each answer.
	idle, header, write time.Duration

	down    atomic.Bool  // the server is shutting down
	writing atomic.Int64 // answers being written
}

func (l *hotListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &hotConn{Conn: c, l: l, wake: make(chan struct{}, 1)}, nil
}

// onConn, when set (by tests), is called for each request answered on
// the connection.
var onConn func()

// maxHotHead bounds the bytes of a request read before deciding what it
// is; a longer one is net/http's (remembered lines are at most
// maxHotLine long).
const maxHotHead = 4096

// hotConn is one connection of a hotListener. Its Read is net/http's
// only way to the socket: it is called by the connection's goroutine, or,
// while a request is served, by net/http's background read, never both at
// once (net/http's connReader orders them).
type hotConn struct {
	net.Conn
	l *hotListener

	state   atomic.Int32 // the http.ConnState net/http reported last
	tracked atomic.Bool  // net/http reports states here at all

	buf     []byte // read from the socket: buf[r:w] is not handled yet
	r, w    int
	handing int  // bytes at buf[r:] of a whole request net/http is reading
	foreign bool // net/http reads the socket itself from now on
	head    reqHead
	held    error // the socket's error, kept until buf[r:w] is handled

	// The read deadline net/http set last (unix ns; 0: none) and a
	// signal for each change, for a background read that waits without
	// reading (see readBusy).
	deadline atomic.Int64
	wake     chan struct{}

	// Deadlines this connection set itself since net/http last changed
	// state (ownRead false: net/http's read deadline is in force).
	ownRead         bool
	readBy, writeBy time.Time
	inHeader        bool // the read deadline is a request's header timeout

	out  []byte      // an answer's header block, reused
	iov  [2][]byte   // the header block and the body…
	bufs net.Buffers // …written with one system call

	mu                           sync.Mutex
	answering, closing, isClosed bool
}

func (c *hotConn) setState(s http.ConnState) {
	c.tracked.Store(true)
	c.state.Store(int32(s))
	if s == http.StateHijacked {
		c.foreign = true
	}
	// net/http sets its own deadlines around each state.
	c.ownRead, c.readBy, c.writeBy, c.inHeader = false, time.Time{}, time.Time{}, false
}

// Read gives net/http the bytes of the requests it is to serve, after
// answering those it need not see.
func (c *hotConn) Read(p []byte) (int, error) {
	if c.handing > 0 {
		n := copy(p, c.buf[c.r:c.r+min(c.handing, len(p))])
		c.r += n
		c.handing -= n
		return n, nil
	}
	if !c.foreign && !c.tracked.Load() {
		// net/http does not report this connection's states (the
		// server's ConnState hook was replaced after Listener, or the
		// connection was wrapped): nothing would tell when it is idle.
		c.foreign = true
	}
	if c.foreign {
		if c.r < c.w {
			n := copy(p, c.buf[c.r:c.w])
			c.r += n
			return n, nil
		}
		c.buf, c.out = nil, nil
		if err := c.held; err != nil {
			c.held = nil
			return 0, err
		}
		return c.Conn.Read(p)
	}
	if http.ConnState(c.state.Load()) == http.StateActive {
		return c.readBusy(p)
	}
	return c.serve(p)
}

// readBusy is net/http's background read while it serves a request: it
// is how net/http learns that the client went away, and it ends when
// net/http sets a past read deadline after the answer. The bytes of a
// next request that come before then (a client sends it as soon as it
// has the answer, which net/http flushes before it stops this read) are
// kept for when net/http is idle again, unless there are too many of
// them: net/http then gets them and the connection for good. An error
// that comes after such bytes (a client that half-closed after its last
// request) is kept for after them too, as net/http's own one-byte read
// would not have met it yet.
func (c *hotConn) readBusy(p []byte) (int, error) {
	if c.buf == nil {
		c.buf = make([]byte, maxHotHead)
	}
	for c.held == nil {
		if !c.room() {
			c.foreign = true
			return c.Read(p)
		}
		if err := c.readMore(); err != nil {
			return 0, err
		}
	}
	if c.r == c.w {
		// The error came before any byte of a next request (it was
		// met while net/http read this one): net/http's own read
		// would meet it now.
		err := c.held
		c.held = nil
		return 0, err
	}
	for {
		c.mu.Lock()
		closed := c.isClosed
		c.mu.Unlock()
		if closed {
			return 0, net.ErrClosed
		}
		d := c.deadline.Load()
		if d == 0 {
			<-c.wake
			continue
		}
		left := time.Until(time.Unix(0, d))
		if left <= 0 {
			return 0, os.ErrDeadlineExceeded
		}
		t := time.NewTimer(left)
		select {
		case <-c.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// room makes room in buf after the bytes not handled yet, moving them to
// its start if need be, and reports whether there is any.
func (c *hotConn) room() bool {
	if c.r == c.w {
		c.r, c.w = 0, 0
	} else if c.w == len(c.buf) {
		c.w = copy(c.buf, c.buf[c.r:c.w])
		c.r = 0
	}
	return c.w < len(c.buf)
}

// readMore reads what the socket has into buf's room. Its error is
// returned when no byte of a request is waiting, and on a timeout
// (net/http closes the connection quietly when a request's header does
// not come in time); otherwise it is kept in held, for after the bytes
// before it.
func (c *hotConn) readMore() error {
	n, err := c.Conn.Read(c.buf[c.w:])
	c.w += n
	if err == nil {
		return nil
	}
	if c.r == c.w || isTimeout(err) {
		return err
	}
	c.held = err
	return nil
}

// SetReadDeadline and SetDeadline record net/http's read deadline for
// readBusy.
func (c *hotConn) SetReadDeadline(t time.Time) error {
	c.noteDeadline(t)
	return c.Conn.SetReadDeadline(t)
}

func (c *hotConn) SetDeadline(t time.Time) error {
	c.noteDeadline(t)
	return c.Conn.SetDeadline(t)
}

func (c *hotConn) noteDeadline(t time.Time) {
	var d int64
	if !t.IsZero() {
		d = max(t.UnixNano(), 1)
	}
	c.deadline.Store(d)
	c.signal()
}

func (c *hotConn) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// serve answers the requests it can, while net/http waits for a request
// (idle, or on a new connection), until one is for net/http.
func (c *hotConn) serve(p []byte) (int, error) {
	if c.buf == nil {
		c.buf = make([]byte, maxHotHead)
	}
	for {
		switch c.head.parse(c.buf[c.r:c.w]) {
		case headMore:
			if !c.room() {
				return c.handOver(p, true) // too long to be one of ours
			}
			if c.held != nil {
				if c.r < c.w {
					return c.handOver(p, true) // then the error
				}
				err := c.held
				c.held = nil
				return 0, err
			}
			if c.r < c.w && !c.inHeader {
				// A request has begun: the rest of its header must
				// come within the header timeout, as in net/http
				// (without one, the idle timeout no longer applies).
				if c.l.header > 0 {
					c.setReadDeadline(time.Now().Add(c.l.header))
				} else if c.ownRead {
					c.setReadDeadline(time.Time{})
				}
				c.inHeader = true
			}
			if err := c.readMore(); err != nil {
				return 0, err
			}
		case headWhole:
			if c.head.plain && !c.l.down.Load() {
				done, err := c.answer(&c.head)
				if err != nil {
					return 0, err
				}
				if done {
					c.r += c.head.n
					if c.r == c.w {
						c.r, c.w = 0, 0
					}
					continue
				}
			}
			c.handing = c.head.n
			return c.handOver(p, false)
		default:
			return c.handOver(p, true)
		}
	}
}

// handOver gives net/http the request at buf[r:] (whole: the c.handing
// bytes of it; otherwise all that was read, and the connection is
// net/http's from now on), with the deadlines it expects: none set by this
// connection, except the header timeout net/http would have set.
func (c *hotConn) handOver(p []byte, forever bool) (int, error) {
	if forever {
		c.foreign = true
		c.handing = c.w - c.r
	}
	if c.ownRead {
		var by time.Time
		if c.l.header > 0 {
			by = time.Now().Add(c.l.header)
		}
		c.Conn.SetReadDeadline(by)
		c.ownRead, c.readBy, c.inHeader = false, time.Time{}, false
	}
	if !c.writeBy.IsZero() {
		c.Conn.SetWriteDeadline(time.Time{})
		c.writeBy = time.Time{}
	}
	return c.Read(p)
}

func (c *hotConn) setReadDeadline(t time.Time) {
	c.Conn.SetReadDeadline(t)
	c.ownRead, c.readBy = true, t
}

// deadlineSlack is how stale a deadline this connection set may be before
// it is set again: setting one per request would cost more than the
// answer's own system call. Timeouts may so run up to this much longer.
const deadlineSlack = time.Second

// answer sends the remembered answer to q, and reports whether it did;
// when it did not, the request is net/http's to serve.
func (c *hotConn) answer(q *reqHead) (bool, error) {
	h := c.l.h
	if tracing.On() {
		return false, nil
	}
	start := time.Now()
	e := h.hot.get(bytesString(q.target), start)
	if e == nil || e.wire == nil {
		return false, nil
	}
	var scheme, host, prefix string
	if h.opt.BaseURL == "" {
		scheme, host, prefix = basePartsOf(false, bytesString(q.host), bytesString(q.fproto), bytesString(q.fhost), bytesString(q.fprefix))
	}
	if !h.sameBaseOf(e.base, scheme, host, prefix) {
		return false, nil
	}
	body, ok := h.images.Peek(e.held)
	if !ok || len(body) != e.size {
		return false, nil
	}
	if c.l.write > 0 && c.writeBy.Sub(start) < c.l.write {
		c.writeBy = start.Add(c.l.write + deadlineSlack)
		c.Conn.SetWriteDeadline(c.writeBy)
	}
	c.mu.Lock()
	if c.closing || c.isClosed {
		c.mu.Unlock()
		return false, net.ErrClosed
	}
	c.answering = true
	c.l.writing.Add(1)
	c.mu.Unlock()
	if onHot != nil {
		onHot()
	}
	if onConn != nil {
		onConn()
	}

	// The headers in net/http's order: the handler's sorted by name
	// (the request id among them), then the date.
	b := append(c.out[:0], e.wire[:e.idAt]...)
	b = append(b, "X-Request-Id: "...)
	idAt := len(b)
	if len(q.id) > 0 && saneID(bytesString(q.id)) {
		b = append(b, q.id...)
	} else {
		b = append(b, idPrefix...)
		b = append(b, '-')
		b = strconv.AppendUint(b, idCounter.Add(1), 36)
	}
	idEnd := len(b)
	b = append(b, "\r\n"...)
	b = append(b, e.wire[e.idAt:]...)
	b = appendDate(b, start)
	b = append(b, "\r\n"...)
	c.out = b

	c.iov = [2][]byte{b, body}
	c.bufs = c.iov[:]
	_, err := c.bufs.WriteTo(c.Conn)
	c.iov = [2][]byte{}
	c.mu.Lock()
	c.answering = false
	closing := c.closing
	c.mu.Unlock()
	c.l.writing.Add(-1)

	status, sent := http.StatusOK, int64(len(body))
	if err != nil {
		sent = 0 // as far as anyone knows
	}
	if h.log.Enabled(context.Background(), slog.LevelInfo) {
		logAccess(h.log, context.Background(), string(b[idAt:idEnd]), http.MethodGet, e.path, status, e.xcache[0], sent, time.Since(start), c.RemoteAddr().String())
	}
	if h.opt.Observe != nil {
		h.opt.Observe(e.route, status, sent, time.Since(start), e.xcache[0])
	}
	if closing {
		c.closeNow()
		return false, net.ErrClosed
	}
	if err != nil {
		return false, err
	}
	switch {
	case c.l.idle > 0 && (!c.ownRead || c.inHeader || c.readBy.Sub(start) < c.l.idle):
		c.setReadDeadline(start.Add(c.l.idle + deadlineSlack))
	case c.l.idle == 0 && (!c.ownRead || c.inHeader):
		// No idle timeout: none of net/http's deadlines (the first
		// request's header timeout) may end the connection later.
		c.setReadDeadline(time.Time{})
	}
	c.inHeader = false
	return true, nil
}

// Close closes the connection; an answer being written is given
// closeGrace to finish first (a server shutting down closes the
// connections it sees as idle).
func (c *hotConn) Close() error {
	c.mu.Lock()
	if c.answering {
		c.closing = true
		// writeBy was set before answering was, and no answer starts
		// once closing is.
		by := time.Now().Add(closeGrace)
		shorter := c.writeBy.IsZero() || by.Before(c.writeBy)
		c.mu.Unlock()
		if shorter {
			c.Conn.SetWriteDeadline(by)
		}
		return nil
	}
	c.mu.Unlock()
	return c.closeNow()
}

func (c *hotConn) closeNow() error {
	c.mu.Lock()
	done := c.isClosed
	c.isClosed = true
	c.mu.Unlock()
	if done {
		return net.ErrClosed
	}
	c.signal()
	return c.Conn.Close()
}

// CloseWrite and ReadFrom keep what net/http uses of a TCP connection:
// a half close before closing after an error, and sendfile.
func (c *hotConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

func (c *hotConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}

// bytesString is b as a string without a copy, for lookups and
// comparisons that do not keep it while b may change.
func bytesString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// dateLine is the Date header of the responses sent within one second.
type dateLine struct {
	sec  int64
	line []byte
}

var lastDate atomic.Pointer[dateLine]

func appendDate(b []byte, now time.Time) []byte {
	d := lastDate.Load()
	if d == nil || d.sec != now.Unix() {
		line := now.UTC().AppendFormat([]byte("Date: "), http.TimeFormat)
		d = &dateLine{sec: now.Unix(), line: append(line, "\r\n"...)}
		lastDate.Store(d)
	}
	return append(b, d.line...)
}
