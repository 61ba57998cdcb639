package httpapi_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iiifd/iiifd/internal/app"
	"github.com/iiifd/iiifd/internal/app/apptest"
	"github.com/iiifd/iiifd/internal/httpapi"
)

// connImg is the request line the connection tests make hot.
const connImg = "/iiif/3/julia/0,0,64,64/64,/0/default.png"

// connApp is the app on the sample images, logging to w (nil:
// nowhere), closed when the test ends.
func connApp(t testing.TB, w io.Writer) *app.App {
	t.Helper()
	cfg := apptest.Samples(t)
	if w == nil {
		w = io.Discard
	}
	a, err := app.New(cfg, slog.New(slog.NewJSONHandler(w, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// serveConns serves a with srv on a loopback port through
// httpapi.Listener, until the test ends, and returns the address and
// the listener. then, if given, changes srv after Listener hooked it.
func serveConns(t testing.TB, a *app.App, srv *http.Server, then ...func()) (string, net.Listener) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv.Handler = a.Handler()
	hl := httpapi.Listener(a.Handler(), srv, ln)
	for _, f := range then {
		f()
	}
	go srv.Serve(hl)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String(), hl
}

// connServers serves one app twice, sharing its caches and its memo:
// through httpapi.Listener as iiifd serves, and on plain net/http. The
// request line connImg is made hot.
func connServers(t testing.TB) (fast, plain *httptest.Server) {
	t.Helper()
	a := connApp(t, nil)
	fast = httptest.NewUnstartedServer(a.Handler())
	fast.Config.ReadHeaderTimeout = time.Second
	fast.Listener = httpapi.Listener(a.Handler(), fast.Config, fast.Listener)
	fast.Start()
	t.Cleanup(fast.Close)
	plain = httptest.NewUnstartedServer(a.Handler())
	plain.Config.ReadHeaderTimeout = time.Second
	plain.Start()
	t.Cleanup(plain.Close)
	warm(t, fast.URL+connImg)
	return fast, plain
}

// warm asks for url (a server behind httpapi.Listener) until it is
// answered on the connection, and returns how many times it asked. (A
// remembered answer lasts a second from when its source was opened, so
// on a busy machine the first hit may come too late to be remembered.)
func warm(t testing.TB, url string) int {
	t.Helper()
	for n := 1; n <= 50; n++ {
		before := httpapi.ConnAnswered()
		res, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if httpapi.ConnAnswered() > before {
			return n
		}
	}
	t.Fatalf("%s is never answered on the connection", url)
	return 0
}

// exchange sends in on a new connection to srv and returns every byte
// the server sent until it closed the connection (or 3 s passed).
func exchange(t testing.TB, srv *httptest.Server, in string) []byte {
	t.Helper()
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	go c.Write([]byte(in))
	out, _ := io.ReadAll(c)
	return out
}

// perResponse are the header lines that differ between two answers to
// one request: the date, the request id, and the cache tier.
var perResponse = regexp.MustCompile(`(?m)^(Date|X-Request-Id|X-Cache): [^\r\n]*\r\n`)

// sameAnswers checks that srv (through httpapi.Listener) and plain send
// the same bytes for in, but for the per-response header lines. A
// difference must show three times running: on a busy machine a
// header timeout may end one exchange and not the other.
func sameAnswers(t testing.TB, fast, plain *httptest.Server, in string) {
	t.Helper()
	const last = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
	// Once to fill the cache: a miss is sent otherwise than a hit (its
	// length may be unknown when it starts), and the two servers share
	// one cache.
	exchange(t, plain, in+last)
	var got, want []byte
	for range 3 {
		want = perResponse.ReplaceAll(exchange(t, plain, in+last), nil)
		got = perResponse.ReplaceAll(exchange(t, fast, in+last), nil)
		if bytes.Equal(got, want) {
			return
		}
	}
	t.Errorf("for %q\n got %q\nwant %q", in, got, want)
}

// connInputs are request streams whose framing a connection must keep
// exactly as net/http does: pipelined hot and other requests, bodies,
// bare line feeds, folded lines, smuggling attempts, HTTP/2's preface.
var connInputs = []string{
	"GET " + connImg + " HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET " + connImg + " HTTP/1.1\r\nHost: a\r\n\r\nGET " + connImg + " HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET " + connImg + " HTTP/1.1\r\nHost: a\r\n\r\nGET /healthz HTTP/1.1\r\nHost: a\r\n\r\nGET " + connImg + " HTTP/1.1\r\nHost: a\r\n\r\n",
	"HEAD " + connImg + " HTTP/1.1\r\nHost: a\r\n\r\nGET " + connImg + " HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET " + connImg + " HTTP/1.1\r\nHost: a\r\nX-Forwarded-Host: images.example.org\r\nX-Forwarded-Proto: https\r\n\r\n",
	"GET " + connImg + " HTTP/1.1\r\nhost: a\r\nx-forwarded-prefix: /p/\r\nCONNECTION: keep-alive\r\n\r\n",
	"GET " + connImg + " HTTP/1.1\r\nHost: a\r\nX-Request-Id: abc\r\nAccept: */*\r\n\r\n",
	"GET " + connImg + " HTTP/1.1\r\nHost: a\r\nIf-Modified-Since: Sat, 01 Jan 2050 00:00:00 GMT\r\n\r\n",
	"GET " + connImg + " HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nGET " + connImg + " HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET " + connImg + " HTTP/1.0\r\nHost: a\r\n\r\n",
	"GET " + connImg + " HTTP/1.1\r\n\r\n",
	"GET " + connImg + " HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
	"GET " + connImg + " HTTP/1.1\r\nHost: a b\r\n\r\n",
	"GET " + connImg + " HTTP/1.1\r\nHost : a\r\n\r\n",
	"GET " + connImg + " HTTP/1.1\r\nHost: a\r\nX: \x01\r\n\r\n",
	"GET " + connImg + " HTTP/1.1\nHost: a\n\nGET " + connImg + " HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET " + connImg + " HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n",
	"GET " + connImg + " HTTP/1.1\r\nHost: a\rX: y\r\n\r\n",
	"GET " + connImg + " HTTP/1.1\r\nHost: a\r\nContent-Length: 47\r\n\r\nGET " + connImg + " HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET " + connImg + " HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET " + connImg + " HTTP/1.1\r\nHost: a\r\n\r\n",
	"POST /iiif/3/julia/info.json HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcGET " + connImg + " HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET " + connImg + " HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n",
	"\r\nGET " + connImg + " HTTP/1.1\r\nHost: a\r\n\r\n",
	"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
	"GET " + connImg + "?x HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET http://a" + connImg + " HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET  " + connImg + " HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET " + connImg + " HTTP/1.1\r\nHost: a\r\nX-Long: " + strings.Repeat("x", 5000) + "\r\n\r\n",
	"GET " + connImg,
}

// TestConnFraming: whatever bytes a client sends, a server behind
// httpapi.Listener sends the same answers as net/http alone.
func TestConnFraming(t *testing.T) {
	fast, plain := connServers(t)
	before := httpapi.ConnAnswered()
	for _, in := range connInputs {
		sameAnswers(t, fast, plain, in)
	}
	if httpapi.ConnAnswered() == before {
		t.Error("no request was answered on the connection")
	}
}

func FuzzConn(f *testing.F) {
	for _, in := range connInputs {
		f.Add(in)
	}
	fast, plain := connServers(f)
	f.Fuzz(func(t *testing.T, in string) {
		sameAnswers(t, fast, plain, in)
	})
}

// TestConnAnswers: hot requests, pipelined or one by one, are answered on
// the connection with the bytes and headers net/http sends for them, and
// requests that need net/http in between keep their order.
func TestConnAnswers(t *testing.T) {
	fast, _ := connServers(t)
	c, err := net.Dial("tcp", fast.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	// A conditional request with another tag is answered by net/http
	// (from the memo): the reference answer.
	ref := roundTrip(t, c, br, "GET", connImg, "If-None-Match: \"other\"\r\n")
	before := httpapi.ConnAnswered()
	hot := roundTrip(t, c, br, "GET", connImg, "")
	if httpapi.ConnAnswered() != before+1 {
		t.Fatal("the hot request was not answered on the connection")
	}
	if hot.StatusCode != 200 || !bytes.Equal(hot.body, ref.body) || hot.Header.Get("X-Cache") != "HIT memory" {
		t.Fatalf("answer on the connection: %d, %d bytes, X-Cache %q; net/http sent %d bytes", hot.StatusCode, len(hot.body), hot.Header.Get("X-Cache"), len(ref.body))
	}
	for _, h := range []http.Header{hot.Header, ref.Header} {
		if h.Get("X-Request-Id") == "" || h.Get("Date") == "" {
			t.Errorf("no request id or date: %v", h)
		}
		h.Del("X-Request-Id")
		h.Del("Date")
	}
	if !sameHeader(hot.Header, ref.Header) {
		t.Errorf("headers on the connection:\n%v\nnet/http:\n%v", hot.Header, ref.Header)
	}
	// The client's request id is kept.
	if r := roundTrip(t, c, br, "GET", connImg, "X-Request-Id: trace-me.1\r\n"); r.Header.Get("X-Request-Id") != "trace-me.1" {
		t.Errorf("X-Request-Id %q", r.Header.Get("X-Request-Id"))
	}

	// Pipelined: hot, another route, a 304, HEAD, hot.
	etag := ref.Header.Get("ETag")
	in := "GET " + connImg + " HTTP/1.1\r\nHost: x\r\n\r\n" +
		"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" +
		"GET " + connImg + " HTTP/1.1\r\nHost: x\r\nIf-None-Match: " + etag + "\r\n\r\n" +
		"HEAD " + connImg + " HTTP/1.1\r\nHost: x\r\n\r\n" +
		"GET " + connImg + " HTTP/1.1\r\nHost: x\r\n\r\n"
	before = httpapi.ConnAnswered()
	c.Write([]byte(in))
	for i, want := range []struct {
		method string
		status int
		body   []byte
	}{{"GET", 200, ref.body}, {"GET", 200, []byte("ok")}, {"GET", 304, nil}, {"HEAD", 200, nil}, {"GET", 200, ref.body}} {
		r := readResponse(t, br, want.method)
		if r.StatusCode != want.status || !bytes.Equal(bytes.TrimSpace(r.body), want.body) {
			t.Errorf("pipelined answer %d: %d, %q…", i, r.StatusCode, r.body[:min(len(r.body), 16)])
		}
	}
	if n := httpapi.ConnAnswered() - before; n < 1 {
		t.Errorf("%d pipelined requests answered on the connection", n)
	}
	// After net/http took the connection over (bytes came while it was
	// busy), it keeps serving it right.
	if r := roundTrip(t, c, br, "GET", connImg, ""); r.StatusCode != 200 || !bytes.Equal(r.body, ref.body) {
		t.Errorf("after pipelining: %d, %d bytes", r.StatusCode, len(r.body))
	}
}

// warmConn asks for connImg on c until it is answered on the connection.
func warmConn(t *testing.T, c net.Conn, br *bufio.Reader) {
	t.Helper()
	for range 20 {
		before := httpapi.ConnAnswered()
		roundTrip(t, c, br, "GET", connImg, "")
		if httpapi.ConnAnswered() > before {
			return
		}
	}
	t.Fatal("never answered on the connection")
}

type response struct {
	*http.Response
	body []byte
}

func roundTrip(t *testing.T, c net.Conn, br *bufio.Reader, method, path, extra string) response {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte(method + " " + path + " HTTP/1.1\r\nHost: x\r\n" + extra + "\r\n")); err != nil {
		t.Fatal(err)
	}
	return readResponse(t, br, method)
}

func readResponse(t *testing.T, br *bufio.Reader, method string) response {
	t.Helper()
	res, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{res, b}
}

func sameHeader(a, b http.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if strings.Join(v, "\n") != strings.Join(b[k], "\n") {
			return false
		}
	}
	return true
}

// TestConnShutdown: a graceful shutdown while clients keep asking for hot
// requests ends every answer whole; none is cut.
func TestConnShutdown(t *testing.T) {
	srv := &http.Server{IdleTimeout: time.Minute}
	addr, _ := serveConns(t, connApp(t, nil), srv)
	warm(t, "http://"+addr+connImg)

	var answered, torn atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(20 * time.Second))
			br := bufio.NewReader(c)
			for {
				if _, err := c.Write([]byte("GET " + connImg + " HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
					return
				}
				res, err := http.ReadResponse(br, nil)
				if err != nil {
					return // closed between answers: fine
				}
				if _, err := io.Copy(io.Discard, res.Body); err != nil {
					torn.Add(1)
					return
				}
				answered.Add(1)
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Errorf("shutdown: %v", err)
	}
	wg.Wait()
	if torn.Load() > 0 || answered.Load() == 0 {
		t.Errorf("%d answers, %d cut short", answered.Load(), torn.Load())
	}
}

// TestConnTimeouts: a connection answered on its own still ends after the
// server's idle timeout, and a request header that stops halfway after
// the header timeout.
func TestConnTimeouts(t *testing.T) {
	srv := &http.Server{IdleTimeout: 300 * time.Millisecond, ReadHeaderTimeout: 500 * time.Millisecond}
	addr, _ := serveConns(t, connApp(t, nil), srv)
	warm(t, "http://"+addr+connImg)

	for _, then := range []string{"", "GET /heal"} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(c)
		warmConn(t, c, br)
		c.Write([]byte(then))
		start := time.Now()
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err = io.ReadAll(br)
		// The idle timeout may run a second long; the header timeout not.
		if d, want := time.Since(start), map[string]time.Duration{"": 2 * time.Second, "GET /heal": 850 * time.Millisecond}[then]; err != nil || d > want {
			t.Errorf("after %q: %v after %v, want the server to close the connection within %v", then, err, d, want)
		}
		c.Close()
	}
}

// TestConnObserved: answers on the connection are logged and counted in
// the metrics like any other.
func TestConnObserved(t *testing.T) {
	var mu sync.Mutex
	var logs bytes.Buffer
	a := connApp(t, lockedWriter{&mu, &logs})
	srv := httptest.NewUnstartedServer(a.Handler())
	srv.Listener = httpapi.Listener(a.Handler(), srv.Config, srv.Listener)
	srv.Start()
	defer srv.Close()
	n := warm(t, srv.URL+connImg) + 5
	before := httpapi.ConnAnswered()
	for range 5 {
		get(t, srv.URL+connImg)
	}
	if httpapi.ConnAnswered() == before {
		t.Fatal("none of 5 hot requests answered on the connection")
	}
	m := string(get(t, srv.URL+"/metrics").body)
	if !strings.Contains(m, fmt.Sprintf(`iiifd_http_requests_total{code="200",route="image"} %d`, n)) ||
		!strings.Contains(m, fmt.Sprintf(`iiifd_responses_by_cache_total{cache="hit_memory",route="image"} %d`, n-1)) {
		t.Errorf("metrics do not count the %d image requests, %d from memory:\n%s", n, n-1, grepLines(m, "route=\"image\""))
	}
	mu.Lock()
	defer mu.Unlock()
	if got := strings.Count(logs.String(), `"path":"`+connImg+`","status":200,"cache":"HIT memory"`); got != n-1 {
		t.Errorf("%d access log lines of memory hits, want %d:\n%s", got, n-1, logs.String())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestConnDrain: the shutdown App.Serve does (net/http's Shutdown, then
// Drain) returns only after an answer being written on the connection is
// out, although net/http sees that connection as idle.
func TestConnDrain(t *testing.T) {
	srv := &http.Server{IdleTimeout: time.Minute}
	addr, hl := serveConns(t, connApp(t, nil), srv)
	// A large answer (4 MiB), to a client with a small receive buffer.
	const big = "/iiif/3/julia/full/max/0/default.tif"
	warm(t, "http://"+addr+big)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.(*net.TCPConn).SetReadBuffer(16 << 10)
	c.SetDeadline(time.Now().Add(60 * time.Second))
	br := bufio.NewReader(c)
	// A request net/http serves first: the connection is then idle in
	// its eyes (a new one would be given five seconds by Shutdown).
	roundTrip(t, c, br, "GET", "/healthz", "")
	for try := 1; ; try++ {
		before := httpapi.ConnAnswered()
		c.Write([]byte("GET " + big + " HTTP/1.1\r\nHost: " + addr + "\r\n\r\n"))
		time.Sleep(300 * time.Millisecond) // the answer is stuck: nobody reads
		if httpapi.ConnAnswered() > before {
			break
		}
		// The remembered answer expired (it lasts a second from when
		// the source was opened, on a busy machine maybe before this
		// request): net/http answered, and remembered it afresh.
		if try == 3 {
			t.Fatal("not answered on the connection")
		}
		readResponse(t, br, "GET")
	}
	if httpapi.Writing(hl) == 0 {
		t.Skip("the whole answer fit in the socket buffers: nothing to wait for")
	}
	done := make(chan time.Time, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		httpapi.Drain(ctx, hl)
		done <- time.Now()
	}()
	time.Sleep(time.Second)
	select {
	case <-done:
		t.Fatal("shutdown returned while the answer was being written")
	default:
	}
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, res.Body)
	if err != nil || n != res.ContentLength {
		t.Fatalf("read %d of %d bytes: %v", n, res.ContentLength, err)
	}
	read := time.Now()
	if at := <-done; at.Before(read.Add(-100 * time.Millisecond)) {
		t.Errorf("shutdown returned %v before the answer was out", read.Sub(at))
	}
}

// TestConnUntracked: when net/http does not report a connection's states
// to Listener (its ConnState hook was replaced), the connection is
// net/http's: no answer can overtake the one it is making.
func TestConnUntracked(t *testing.T) {
	srv := &http.Server{IdleTimeout: time.Minute}
	addr, _ := serveConns(t, connApp(t, nil), srv, func() { srv.ConnState = nil })
	for range 3 {
		get(t, "http://"+addr+connImg)
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	before := httpapi.ConnAnswered()
	// A render that takes a while, then a remembered request.
	c.Write([]byte("GET /iiif/3/mandelbrot/full/max/90/default.png HTTP/1.1\r\nHost: x\r\n\r\n"))
	time.Sleep(20 * time.Millisecond)
	c.Write([]byte("GET " + connImg + " HTTP/1.1\r\nHost: " + addr + "\r\n\r\n"))
	br := bufio.NewReader(c)
	if r := readResponse(t, br, "GET"); r.Header.Get("Content-Type") != "image/png" || !strings.Contains(r.Header.Get("Link"), "/mandelbrot/") {
		t.Errorf("first answer: %d, Link %q", r.StatusCode, r.Header.Get("Link"))
	}
	if r := readResponse(t, br, "GET"); !strings.Contains(r.Header.Get("Link"), "/julia/") {
		t.Errorf("second answer: %d, Link %q", r.StatusCode, r.Header.Get("Link"))
	}
	if httpapi.ConnAnswered() != before {
		t.Error("answered on a connection whose states are not known")
	}
}

// TestConnNoIdleTimeout: without an idle timeout a busy connection lives
// on; the header timeout of its first request does not end it.
func TestConnNoIdleTimeout(t *testing.T) {
	srv := &http.Server{ReadHeaderTimeout: 300 * time.Millisecond}
	addr, _ := serveConns(t, connApp(t, nil), srv)
	warm(t, "http://"+addr+connImg)
	for range 2 { // remembered for Host: x
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		roundTrip(t, c, bufio.NewReader(c), "GET", connImg, "")
		c.Close()
	}
	// Only remembered requests on this connection: net/http never had
	// it, so its first header timeout is in force until undone.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	before := httpapi.ConnAnswered()
	for range 6 {
		if r := roundTrip(t, c, br, "GET", connImg, ""); r.StatusCode != 200 {
			t.Fatalf("status %d", r.StatusCode)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Most on the connection (the memo's entry lasts a second from when
	// the source was opened, so on a busy machine the last may not be).
	if n := httpapi.ConnAnswered() - before; n < 3 {
		t.Errorf("%d of 6 answered on the connection", n)
	}
}

// TestConnHalfClose: a client that sends a last request while the one
// before is being made, and then half-closes, gets what net/http alone
// sends: the last request is served if it was ahead of the end of the
// stream when net/http was busy, and taken for a client gone (499) if
// net/http met the end while serving it.
func TestConnHalfClose(t *testing.T) {
	a := connApp(t, nil)
	fast, _ := serveConns(t, a, &http.Server{IdleTimeout: time.Minute})
	plain := httptest.NewServer(a.Handler())
	defer plain.Close()
	halfClose := func(addr, first, last string) []int {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(30 * time.Second))
		c.Write([]byte("GET " + first + " HTTP/1.1\r\nHost: x\r\n\r\n"))
		time.Sleep(30 * time.Millisecond)
		c.Write([]byte("GET " + last + " HTTP/1.1\r\nHost: x\r\n\r\n"))
		c.(*net.TCPConn).CloseWrite()
		br := bufio.NewReader(c)
		var got []int
		for range 2 {
			res, err := http.ReadResponse(br, nil)
			if err != nil {
				break
			}
			io.Copy(io.Discard, res.Body)
			got = append(got, res.StatusCode)
		}
		return got
	}
	// Renders nobody asked for before (the servers share one cache).
	n := 0
	render := func() string { n++; return fmt.Sprintf("/iiif/3/mandelbrot/full/%d,/0/default.png", 1500+n) }
	for _, renderLast := range []bool{false, true} {
		last := func() string {
			if renderLast {
				return render()
			}
			return "/healthz"
		}
		var want, got []int
		for range 3 {
			want = halfClose(plain.Listener.Addr().String(), render(), last())
			got = halfClose(fast, render(), last())
			if fmt.Sprint(got) == fmt.Sprint(want) {
				break
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("last a render: %v; answers %v, net/http alone %v", renderLast, got, want)
		}
	}
}

// TestConnSlowHeader: with an idle timeout and no header timeout, a
// request whose header comes slowly after answers on the connection is
// served, as by net/http (the idle timeout ends with its first byte).
func TestConnSlowHeader(t *testing.T) {
	addr, _ := serveConns(t, connApp(t, nil), &http.Server{IdleTimeout: 300 * time.Millisecond})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	warmConn(t, c, br)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	for _, b := range []byte("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n") {
		if _, err := c.Write([]byte{b}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(40 * time.Millisecond) // 1.3 s in all
	}
	if r := readResponse(t, br, "GET"); r.StatusCode != 200 {
		t.Errorf("slow request: %d", r.StatusCode)
	}
}
