package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/iiifd/iiifd/internal/fault"
	"github.com/iiifd/iiifd/internal/source"
	"github.com/iiifd/iiifd/internal/source/ranged"
)

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		err   error
		kind  fault.Kind
		retry bool
	}{
		{&StatusError{Code: 500}, fault.BadGateway, true},
		{&StatusError{Code: 503}, fault.Unavailable, true},
		{&StatusError{Code: 429}, fault.Unavailable, true},
		{&StatusError{Code: 504}, fault.GatewayTimeout, true},
		{&StatusError{Code: 403}, fault.BadGateway, false},
		{fmt.Errorf("x: %w", context.DeadlineExceeded), fault.GatewayTimeout, true},
		{fmt.Errorf("x: %w", io.ErrUnexpectedEOF), fault.BadGateway, true},
		{&net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, fault.Unavailable, true},
		{&net.DNSError{Err: "no such host"}, fault.Unavailable, true},
		{errors.New("odd"), fault.BadGateway, true},
	} {
		k, r := classify(tc.err)
		if k != tc.kind || r != tc.retry {
			t.Errorf("classify(%v) = %v, %v; want %v, %v", tc.err, k, r, tc.kind, tc.retry)
		}
	}
	for code, want := range map[int]error{404: source.ErrNotFound, 410: source.ErrNotFound, 412: ErrChanged} {
		if err := CheckStatus("GET", code); !errors.Is(err, want) {
			t.Errorf("CheckStatus(%d) = %v", code, err)
		}
	}
	if err := CheckStatus("GET", 206, 200, 206); err != nil {
		t.Error(err)
	}
}

func TestBreaker(t *testing.T) {
	b := &Breaker{Failures: 3, Cooldown: 50 * time.Millisecond}
	for i := 0; i < 3; i++ {
		if !b.Allow() {
			t.Fatal("closed breaker refused")
		}
		b.Record(false)
	}
	if b.Allow() || !b.Open() {
		t.Fatal("breaker not open after 3 failures")
	}
	time.Sleep(60 * time.Millisecond)
	if !b.Allow() {
		t.Fatal("no probe after the cooldown")
	}
	if b.Allow() {
		t.Fatal("two probes at once")
	}
	b.Record(false)
	if b.Allow() {
		t.Fatal("failed probe did not reopen")
	}
	time.Sleep(60 * time.Millisecond)
	if !b.Allow() {
		t.Fatal("no second probe")
	}
	b.Record(true)
	if !b.Allow() || b.Open() {
		t.Fatal("successful probe did not close")
	}
}

func TestDo(t *testing.T) {
	p := DefaultPolicy()
	p.Backoff = time.Millisecond
	p.ReadTimeout = 50 * time.Millisecond
	b := NewBackend(p)
	calls := 0
	err := b.Do(context.Background(), 0, func(ctx context.Context) error {
		calls++
		if calls < 3 {
			return &StatusError{Code: 500}
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Errorf("flaky store: %v after %d calls", err, calls)
	}
	calls = 0
	err = b.Do(context.Background(), 0, func(ctx context.Context) error {
		calls++
		<-ctx.Done()
		return ctx.Err()
	})
	var fe *fault.Error
	if !errors.As(err, &fe) || fe.Kind != fault.GatewayTimeout || calls != 3 || errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("hanging store: %v after %d calls", err, calls)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := b.Do(ctx, 0, func(ctx context.Context) error { return ctx.Err() }); err != context.Canceled {
		t.Errorf("cancelled caller: %v", err)
	}
	if err := b.Do(context.Background(), 0, func(ctx context.Context) error { return fmt.Errorf("%w: k", source.ErrNotFound) }); !errors.Is(err, source.ErrNotFound) {
		t.Errorf("not found: %v", err)
	}
}

// TestTransferTimeout: whole-object downloads (the spool) and uploads
// (s3.PutFile) share one rule, a second per MiB; Do raises it to the
// policy's ReadTimeout for small objects.
func TestTransferTimeout(t *testing.T) {
	for size, want := range map[int64]time.Duration{0: 0, 1<<20 - 1: 0, 1 << 20: time.Second, 64<<20 + 5: 64 * time.Second} {
		if got := TransferTimeout(size); got != want {
			t.Errorf("TransferTimeout(%d) = %s, want %s", size, got, want)
		}
	}
}

// TestDoLocal: a failure on our side is returned at once and does not
// open the breaker.
func TestDoLocal(t *testing.T) {
	p := DefaultPolicy()
	p.BreakerFailures = 1
	b := NewBackend(p)
	calls := 0
	disk := errors.New("disk read failed")
	err := b.Do(context.Background(), 0, func(ctx context.Context) error {
		calls++
		return Local(fmt.Errorf("reading: %w", disk))
	})
	if !errors.Is(err, disk) || calls != 1 || b.Breaker().Open() {
		t.Errorf("local failure: %v after %d calls, breaker open %v", err, calls, b.Breaker().Open())
	}
	var fe *fault.Error
	if errors.As(err, &fe) {
		t.Errorf("local failure reported as the store's: %v", fe.Detail())
	}
}

// panicky is a store whose client panics.
type panicky struct{ Accessor }

func (panicky) Head(context.Context, string) (Meta, error) { panic("bug in the store client") }

// TestStatPanic: a panic in the store client while opening an object is an
// error for the request, not the end of the process.
func TestStatPanic(t *testing.T) {
	o := New(Config{Accessor: panicky{}, Backend: NewBackend(DefaultPolicy()), Store: ranged.NewStore(ranged.Config{})})
	_, err := o.Open(context.Background(), "a.tif")
	if status, msg := fault.Response(err); status != 500 || strings.Contains(msg, "bug") {
		t.Errorf("open with a panicking client: %d %q (%v)", status, msg, err)
	}
}
