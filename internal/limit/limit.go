// Package limit is admission control: it decides whether a unit of work
// may start now, must wait, or is refused, so that the server stays inside
// its memory budget and answers overload with 503 instead of falling over.
//
// Work is admitted in two steps, as imgproxy and imagor do: first a place
// in a bounded queue is taken without waiting (a full queue refuses at
// once), then the work waits, in arrival order, until both a worker slot
// and its estimated memory cost fit, or until its context ends or the
// queue timeout passes.
package limit

import (
	"container/list"
	"context"
	"errors"
	"sync"
	"time"

	"github.com/iiifd/iiifd/internal/fault"
)

// Config bounds concurrent work. Zero values disable the bound.
type Config struct {
	Workers int // work running at once
	Queue   int // work waiting at once; beyond it work is refused at once
	// QueueTimeout is the longest a unit of work waits for admission.
	QueueTimeout time.Duration
	// Memory is the budget in bytes that the estimated costs of running
	// work may add up to. A single unit costlier than the whole budget is
	// admitted alone (it cannot wait for more room than there is).
	Memory int64
	// PerClient is the most units of work one client (see WithClient)
	// may have running and waiting at once; beyond it its work is refused
	// with ErrClientShare, so that one greedy client cannot take every
	// worker and queue place from the others.
	PerClient int
}

// Validate reports impossible settings.
func (c Config) Validate() error {
	if c.Workers < 0 || c.Queue < 0 || c.QueueTimeout < 0 || c.Memory < 0 || c.PerClient < 0 {
		return errors.New("limit: workers, queue, queue timeout, memory and per-client share must not be negative")
	}
	return nil
}

// ErrQueueFull and ErrQueueTimeout are the refusals; both are 503s that
// tell the client to retry.
var (
	ErrQueueFull    = fault.New(fault.Unavailable, "the server is busy; try again shortly")
	ErrQueueTimeout = fault.New(fault.Unavailable, "the server is busy and the request waited too long; try again shortly")
	// ErrClientShare is the 429 of a client over its share.
	ErrClientShare = fault.New(fault.TooMany, "too many image requests from this client at once; wait for some to finish")
)

// Refused reports whether err is one of the admitter's refusals, which
// say nothing about the work itself.
func Refused(err error) bool {
	return errors.Is(err, ErrQueueFull) || errors.Is(err, ErrQueueTimeout) || errors.Is(err, ErrClientShare)
}

type clientKey struct{}

// WithClient tells Acquire which client the work is for (e.g. its
// address), for the per-client share.
func WithClient(ctx context.Context, client string) context.Context {
	return context.WithValue(ctx, clientKey{}, client)
}

func clientOf(ctx context.Context) string {
	c, _ := ctx.Value(clientKey{}).(string)
	return c
}

// Admitter admits work under a Config. It is safe for concurrent use.
type Admitter struct {
	cfg Config

	mu      sync.Mutex
	running int
	used    int64
	waiting *list.List     // of *waiter, in arrival order
	clients map[string]int // work running or waiting, per client
}

type waiter struct {
	cost  int64
	ready chan struct{} // closed when admitted
}

// New returns an admitter for cfg.
func New(cfg Config) (*Admitter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Admitter{cfg: cfg, waiting: list.New(), clients: map[string]int{}}, nil
}

// Stats is a snapshot of the admitter's state, for metrics and tests.
type Stats struct {
	Running, Waiting int
	Memory           int64 // estimated bytes of running work
}

// Stats returns the current state.
func (a *Admitter) Stats() Stats {
	a.mu.Lock()
	defer a.mu.Unlock()
	return Stats{Running: a.running, Waiting: a.waiting.Len(), Memory: a.used}
}

// Acquire admits a unit of work of the estimated cost (bytes) and returns
// the function that releases it, which must be called exactly once. It
// fails with ErrClientShare when ctx's client is over its share,
// ErrQueueFull when the queue is full, ErrQueueTimeout when the wait
// exceeds the queue timeout, or ctx's error when ctx ends first.
func (a *Admitter) Acquire(ctx context.Context, cost int64) (release func(), err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if cost < 0 {
		cost = 0
	}
	client := ""
	if a.cfg.PerClient > 0 {
		client = clientOf(ctx)
	}
	if client != "" {
		a.mu.Lock()
		if a.clients[client] >= a.cfg.PerClient {
			a.mu.Unlock()
			return nil, ErrClientShare
		}
		a.clients[client]++
		a.mu.Unlock()
		release, err := a.acquire(ctx, cost)
		if err != nil {
			a.leave(client)
			return nil, err
		}
		var once sync.Once
		return func() {
			once.Do(func() {
				release()
				a.leave(client)
			})
		}, nil
	}
	return a.acquire(ctx, cost)
}

// leave ends one unit of work of client.
func (a *Admitter) leave(client string) {
	a.mu.Lock()
	if a.clients[client]--; a.clients[client] <= 0 {
		delete(a.clients, client)
	}
	a.mu.Unlock()
}

func (a *Admitter) acquire(ctx context.Context, cost int64) (release func(), err error) {
	a.mu.Lock()
	if a.waiting.Len() == 0 && a.fits(cost) {
		a.admit(cost)
		a.mu.Unlock()
		return a.releaser(cost), nil
	}
	if a.cfg.Queue > 0 && a.waiting.Len() >= a.cfg.Queue {
		a.mu.Unlock()
		return nil, ErrQueueFull
	}
	w := &waiter{cost: cost, ready: make(chan struct{})}
	el := a.waiting.PushBack(w)
	a.mu.Unlock()

	var timeout <-chan time.Time
	if a.cfg.QueueTimeout > 0 {
		t := time.NewTimer(a.cfg.QueueTimeout)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-w.ready:
		return a.releaser(cost), nil
	case <-ctx.Done():
		err = ctx.Err()
	case <-timeout:
		err = ErrQueueTimeout
	}
	a.mu.Lock()
	select {
	case <-w.ready:
		// Admitted while giving up: hand the slot on.
		a.mu.Unlock()
		a.releaser(cost)()
		return nil, err
	default:
	}
	a.waiting.Remove(el)
	// Leaving the head of the queue may let those behind start.
	a.wake()
	a.mu.Unlock()
	return nil, err
}

// fits reports whether work of cost can start now. Called with mu held.
func (a *Admitter) fits(cost int64) bool {
	if a.cfg.Workers > 0 && a.running >= a.cfg.Workers {
		return false
	}
	if a.cfg.Memory > 0 && a.running > 0 && a.used+cost > a.cfg.Memory {
		return false
	}
	return true
}

func (a *Admitter) admit(cost int64) {
	a.running++
	a.used += cost
}

// wake admits waiters from the head of the queue while they fit: strict
// arrival order, so that a costly request is not starved by cheap ones.
// Called with mu held.
func (a *Admitter) wake() {
	for el := a.waiting.Front(); el != nil; el = a.waiting.Front() {
		w := el.Value.(*waiter)
		if !a.fits(w.cost) {
			return
		}
		a.waiting.Remove(el)
		a.admit(w.cost)
		close(w.ready)
	}
}

func (a *Admitter) releaser(cost int64) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			a.mu.Lock()
			a.running--
			a.used -= cost
			a.wake()
			a.mu.Unlock()
		})
	}
}
