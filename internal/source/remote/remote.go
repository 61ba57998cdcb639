// Package remote holds what the network source backends (s3, httpsrc)
// share: the HTTP client with its connect and read timeouts, retries with
// backoff for idempotent reads, a circuit breaker per backend, a short
// cache of object metadata, and the mapping of store failures to faults
// (404 for missing objects, 503 for an unreachable store or an open
// breaker, 504 for timeouts, 502 for wrong answers) with public messages
// that name no bucket, host or key.
package remote

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"syscall"
	"time"

	"github.com/iiifd/iiifd/internal/fault"
	"github.com/iiifd/iiifd/internal/source"
)

// Policy is how a backend treats its store.
type Policy struct {
	// ConnectTimeout bounds opening a connection (TCP and TLS).
	ConnectTimeout time.Duration
	// ReadTimeout bounds one attempt of one request, answer included.
	ReadTimeout time.Duration
	// Retries is the number of further attempts after a failed one, for
	// failures that may pass (timeouts, refused connections, 5xx,
	// truncated answers). Only idempotent reads are retried.
	Retries int
	// Backoff is the wait before the first retry; it doubles for each
	// further one, with jitter.
	Backoff time.Duration
	// BreakerFailures consecutive failed requests open the breaker:
	// requests then fail at once for BreakerCooldown, after which one
	// request is let through to probe the store.
	BreakerFailures int
	BreakerCooldown time.Duration
	// Connections bounds idle connections kept per host.
	Connections int
}

// DefaultPolicy answers within seconds when the store is away.
func DefaultPolicy() Policy {
	return Policy{
		ConnectTimeout:  2 * time.Second,
		ReadTimeout:     10 * time.Second,
		Retries:         2,
		Backoff:         100 * time.Millisecond,
		BreakerFailures: 5,
		BreakerCooldown: 3 * time.Second,
		Connections:     64,
	}
}

// Validate reports a policy that cannot work.
func (p Policy) Validate() error {
	if p.ConnectTimeout <= 0 || p.ReadTimeout <= 0 {
		return errors.New("store timeouts must be positive")
	}
	if p.Retries < 0 || p.Backoff < 0 || p.BreakerFailures < 1 || p.BreakerCooldown <= 0 {
		return errors.New("store retries, backoff and breaker settings must be positive")
	}
	return nil
}

// Client returns an HTTP client for a store: bounded connect, TLS and
// response-header times, kept-alive connections, no transparent gzip
// (which would make byte ranges meaningless), and no redirects followed:
// an open redirect on an origin would otherwise make iiifd fetch and
// serve whatever URL it can reach (server-side request forgery). A
// redirect comes back as its 3xx answer, which CheckStatus turns into
// ErrRedirect.
func (p Policy) Client(tlsConfig *tls.Config) *http.Client {
	tr := &http.Transport{Proxy: http.ProxyFromEnvironment, TLSClientConfig: tlsConfig, ForceAttemptHTTP2: true}
	p.Configure(tr)
	return &http.Client{Transport: tr, CheckRedirect: NoRedirects}
}

// NoRedirects is an http.Client CheckRedirect that follows no redirect:
// the client returns the 3xx answer itself.
func NoRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// ErrRedirect reports that a store answered with a redirect, which is
// never followed (see Policy.Client).
var ErrRedirect = errors.New("source: the store answered with a redirect")

// Configure applies the policy's timeouts and connection bounds to tr.
func (p Policy) Configure(tr *http.Transport) {
	d := &net.Dialer{Timeout: p.ConnectTimeout, KeepAlive: 30 * time.Second}
	conns := max(p.Connections, 2)
	tr.DialContext = d.DialContext
	tr.TLSHandshakeTimeout = p.ConnectTimeout
	tr.ResponseHeaderTimeout = p.ReadTimeout
	tr.MaxIdleConns = 4 * conns
	tr.MaxIdleConnsPerHost = conns
	tr.IdleConnTimeout = 90 * time.Second
	tr.DisableCompression = true
}

// StatusError is a store's answer with an unexpected HTTP status.
type StatusError struct {
	Code int
	Op   string
}

func (e *StatusError) Error() string { return fmt.Sprintf("%s: store answered %d", e.Op, e.Code) }

// ErrChanged reports that an object's bytes changed while it was being
// read (its ETag no longer matched).
var ErrChanged = errors.New("source: object changed while being read")

// Public messages; they name no store, host or key.
const (
	msgUnreachable = "the image store cannot be reached"
	msgBreaker     = "the image store is unavailable; requests are refused for a few seconds"
	msgTimeout     = "the image store did not answer in time"
	msgBadAnswer   = "the image store gave a wrong answer"
	msgChanged     = "the image changed while it was being read; retry"
	msgRedirect    = "the image store answered with a redirect, and redirects from image stores are not followed"
)

// Backend applies a Policy to the requests of one store.
type Backend struct {
	policy  Policy
	breaker Breaker
}

// NewBackend returns a backend with policy p (Validate it first).
func NewBackend(p Policy) *Backend {
	return &Backend{policy: p, breaker: Breaker{Failures: p.BreakerFailures, Cooldown: p.BreakerCooldown}}
}

// Policy returns the backend's policy.
func (b *Backend) Policy() Policy { return b.policy }

// Breaker returns the backend's circuit breaker.
func (b *Backend) Breaker() *Breaker { return &b.breaker }

// localError is a request's failure on our side (reading the file being
// uploaded): not the store's, so neither retried nor held against it.
type localError struct{ err error }

func (e *localError) Error() string { return e.err.Error() }
func (e *localError) Unwrap() error { return e.err }

// Local marks err, returned by an operation given to Backend.Do, as a
// failure on our side: Do returns it at once, unwrapped, without retries
// and without counting it against the store's breaker.
func Local(err error) error { return &localError{err} }

// TransferTimeout is a generous attempt time for moving size bytes
// whole, in either direction: one second per MiB (at least 1 MiB/s).
// Backend.Do uses the policy's ReadTimeout when that is larger.
func TransferTimeout(size int64) time.Duration { return time.Duration(size>>20) * time.Second }

// Do runs op, an idempotent request, with an attempt timeout (ReadTimeout,
// or timeout when larger), retries and the breaker. It returns nil,
// source.ErrNotFound or ErrChanged (wrapped) as op does, the caller's
// context error when the caller gave up, ErrNoRanges as op returns it,
// and otherwise a *fault.Error.
func (b *Backend) Do(ctx context.Context, timeout time.Duration, op func(ctx context.Context) error) error {
	timeout = max(timeout, b.policy.ReadTimeout)
	var last error
	for attempt := 0; attempt <= b.policy.Retries; attempt++ {
		if attempt > 0 {
			d := b.policy.Backoff << (attempt - 1)
			d += time.Duration(rand.Int64N(int64(d)/2 + 1))
			select {
			case <-time.After(d):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if !b.breaker.Allow() {
			if last != nil {
				return last
			}
			return fault.New(fault.Unavailable, msgBreaker)
		}
		actx, cancel := context.WithTimeout(ctx, timeout)
		err := op(actx)
		cancel()
		if le, ok := errors.AsType[*localError](err); ok {
			b.breaker.Release()
			return le.err
		}
		if errors.Is(err, ErrRedirect) {
			// The store answered; asking again gets the same redirect.
			b.breaker.Record(true)
			return fault.Wrap(fault.BadGateway, errors.New(err.Error()), msgRedirect)
		}
		if err == nil || errors.Is(err, source.ErrNotFound) || errors.Is(err, ErrChanged) || errors.Is(err, ErrNoRanges) {
			b.breaker.Record(true)
			if errors.Is(err, ErrChanged) {
				return fault.Wrap(fault.Unavailable, err, msgChanged)
			}
			return err
		}
		if cerr := ctx.Err(); cerr != nil {
			// The caller went away or ran out of time: not the store's
			// fault, and not worth another attempt.
			b.breaker.Release()
			return cerr
		}
		kind, retry := classify(err)
		b.breaker.Record(false)
		last = failure(kind, err)
		if !retry {
			return last
		}
	}
	return last
}

// classify says what an error from a store request means and whether
// another attempt may succeed.
func classify(err error) (fault.Kind, bool) {
	var se *StatusError
	if errors.As(err, &se) {
		switch {
		case se.Code == http.StatusServiceUnavailable || se.Code == http.StatusTooManyRequests:
			return fault.Unavailable, true
		case se.Code == http.StatusGatewayTimeout || se.Code == http.StatusRequestTimeout:
			return fault.GatewayTimeout, true
		case se.Code >= 500:
			return fault.BadGateway, true
		}
		// 401, 403 (bad credentials), 400: retrying will not help.
		return fault.BadGateway, false
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return fault.GatewayTimeout, true
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return fault.BadGateway, true
	}
	var dnsErr *net.DNSError
	if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH) ||
		errors.Is(err, syscall.EPIPE) || errors.As(err, &dnsErr) {
		return fault.Unavailable, true
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return fault.Unavailable, true
	}
	return fault.BadGateway, true
}

func failure(k fault.Kind, err error) error {
	// The cause keeps the text, not the chain: an attempt's own timeout
	// must not read as the client request's context.DeadlineExceeded.
	err = errors.New(err.Error())
	switch k {
	case fault.Unavailable:
		return fault.Wrap(k, err, msgUnreachable)
	case fault.GatewayTimeout:
		return fault.Wrap(k, err, msgTimeout)
	}
	return fault.Wrap(fault.BadGateway, err, msgBadAnswer)
}

// CheckStatus turns an HTTP answer that is not one of ok into an error:
// 404 (and 410) become source.ErrNotFound, 412 ErrChanged, 3xx ErrRedirect.
func CheckStatus(op string, code int, ok ...int) error {
	for _, c := range ok {
		if code == c {
			return nil
		}
	}
	switch code {
	case http.StatusNotFound, http.StatusGone:
		return fmt.Errorf("%w: %s", source.ErrNotFound, op)
	case http.StatusPreconditionFailed:
		return fmt.Errorf("%w: %s", ErrChanged, op)
	}
	if code >= 300 && code < 400 {
		return fmt.Errorf("%w: %s answered %d", ErrRedirect, op, code)
	}
	return &StatusError{Code: code, Op: op}
}

func badAnswer(err error) error { return fault.Wrap(fault.BadGateway, err, msgBadAnswer) }
