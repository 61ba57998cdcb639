// Package limit is admission control: it decides whether a unit of work
// may start now, must wait, or is refused, so that the server stays inside
// its memory budget and answers overload with 503 instead of falling over.
//
// Work is admitted in two steps, as imgproxy and imagor do: first a place
// in a bounded queue is taken without waiting (Reserve: a full queue or
// a client over its share refuses at once), then the work waits, in
// arrival order, until both a worker slot and its estimated memory cost
// fit, or until its context ends or the queue timeout passes
// (Place.Wait). Between the two, work may prepare (fetch its input)
// holding bytes within a share of the memory budget (Place.Hold).
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
	// Held bounds the bytes that work not admitted yet may hold
	// together (Place.Hold); zero means 1/HeldShare of Memory, and no
	// bound when Memory is zero too.
	Held int64
}

// Validate reports impossible settings.
func (c Config) Validate() error {
	if c.Workers < 0 || c.Queue < 0 || c.QueueTimeout < 0 || c.Memory < 0 || c.PerClient < 0 || c.Held < 0 {
		return errors.New("limit: workers, queue, queue timeout, memory, per-client share and held bytes must not be negative")
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

// WithClient tells Reserve and Acquire which client the work is for (e.g. its
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
	used    int64          // estimated bytes of running work
	pending int            // places reserved and not admitted yet, waiting or not
	held    int64          // bytes held by places not admitted yet (Place.Hold)
	output  int64          // bytes of finished output waiting for clients (TakeOutput)
	waited  int64          // work admitted from the queue, since New
	waiting *list.List     // of *Place, in arrival order
	clients map[string]int // places taken and not given back, per client
}

// HeldShare is the share of Config.Memory that work not admitted yet may
// hold (Place.Hold) unless Config.Held says otherwise: 1/HeldShare of it.
const HeldShare = 4

// heldLimit is the bound of the bytes held by work not admitted, 0 for
// none.
func (c Config) heldLimit() int64 {
	if c.Held > 0 {
		return c.Held
	}
	return c.Memory / HeldShare
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
	// Reserved counts the places taken and not admitted yet (Waiting
	// among them); Held is the bytes they hold.
	Reserved int
	Held     int64
	// Output is the bytes of finished output held in memory for
	// clients still receiving it (TakeOutput).
	Output int64
}

// Stats returns the current state.
func (a *Admitter) Stats() Stats {
	a.mu.Lock()
	defer a.mu.Unlock()
	return Stats{Running: a.running, Waiting: a.waiting.Len(), Memory: a.used, Reserved: a.pending, Held: a.held, Output: a.output}
}

// Waited counts the work that had to wait in the queue before it was
// admitted, since the admitter was made (a counter, apart from Stats,
// which is the state now).
func (a *Admitter) Waited() int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.waited
}

// Acquire admits a unit of work of the estimated cost (bytes) and returns
// the function that releases it, which must be called exactly once. It
// fails with ErrClientShare when ctx's client is over its share,
// ErrQueueFull when the queue is full, ErrQueueTimeout when the wait
// exceeds the queue timeout, or ctx's error when ctx ends first. It is
// Reserve and Place.Wait in one.
func (a *Admitter) Acquire(ctx context.Context, cost int64) (release func(), err error) {
	p, err := a.Reserve(ctx)
	if err != nil {
		return nil, err
	}
	if err := p.Wait(ctx, cost); err != nil {
		return nil, err
	}
	return p.Release, nil
}

// A Place is a unit of work's place in the admitter, from Reserve to
// Release: first reserved (counted against the queue and its client's
// share, waiting for nothing), then, once Wait returns, admitted (a
// worker slot and its cost in the memory budget). Work that must
// prepare before it runs (fetch its input) reserves its place first, so
// that work the admitter would refuse is refused before it costs
// anything. A nil *Place is work admitted without bounds. Its methods
// are not for concurrent use.
type Place struct {
	a      *Admitter
	client string
	held   int64 // bytes held before admission (Hold)
	kept   int64 // of held, counted past Release until given back (Keep)
	cost   int64 // asked by Wait; once admitted, held included
	state  placeState
	ready  chan struct{} // closed when admitted from the queue
}

type placeState int

const (
	reserved placeState = iota
	admitted
	released
)

// Reserve takes a place without waiting: it fails at once with
// ErrClientShare when ctx's client is over its share, ErrQueueFull when
// the work reserved and not admitted yet already fills the queue and
// the free worker slots, or ctx's error. The place must be released
// (Release) whatever happens next.
func (a *Admitter) Reserve(ctx context.Context) (*Place, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	client := ""
	if a.cfg.PerClient > 0 {
		client = clientOf(ctx)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if client != "" && a.clients[client] >= a.cfg.PerClient {
		return nil, ErrClientShare
	}
	if a.full() {
		return nil, ErrQueueFull
	}
	if client != "" {
		a.clients[client]++
	}
	a.pending++
	return &Place{a: a, client: client, ready: make(chan struct{})}, nil
}

// full reports whether one more place would not find room: places
// reserved and not admitted may fill the queue and the worker slots free
// now, those the head of the queue is not already waiting for (it waits
// for memory when it waits with slots free). Called with mu held.
func (a *Admitter) full() bool {
	if a.cfg.Queue <= 0 {
		return false
	}
	free := 0
	if a.waiting.Len() == 0 {
		if a.cfg.Workers <= 0 {
			return false
		}
		free = max(a.cfg.Workers-a.running, 0)
	}
	return a.pending >= a.cfg.Queue+free
}

// Hold counts n bytes that the reserved work holds before it is
// admitted (input fetched ahead) against the memory budget, and reports
// whether they fit: work not admitted may hold Config.Held together
// (1/HeldShare of Config.Memory by default), and what it holds leaves
// less room to the running work. Held bytes count in the work's cost
// once it is admitted, until Release (or, after Keep, until the work's
// input is given back). Without a bound, they always fit.
func (p *Place) Hold(n int64) bool {
	if p == nil || n <= 0 {
		return true
	}
	a := p.a
	a.mu.Lock()
	defer a.mu.Unlock()
	if p.state != reserved {
		return false
	}
	if lim := a.cfg.heldLimit(); lim > 0 && a.held+n > lim {
		return false
	}
	a.held += n
	p.held += n
	return true
}

// Wait waits, in arrival order, until a worker slot and the estimated
// cost (bytes, besides those held) fit, and admits the work. It fails
// with ErrQueueTimeout when the wait exceeds the queue timeout, or ctx's
// error when ctx ends first; the place is then given back.
func (p *Place) Wait(ctx context.Context, cost int64) error {
	if p == nil {
		return ctx.Err()
	}
	a := p.a
	if err := ctx.Err(); err != nil {
		p.Release()
		return err
	}
	a.mu.Lock()
	if p.state != reserved {
		a.mu.Unlock()
		return errors.New("limit: Wait on a place not reserved")
	}
	p.cost = max(cost, 0)
	if a.waiting.Len() == 0 && a.fits(p.cost) {
		a.admit(p)
		a.mu.Unlock()
		return nil
	}
	el := a.waiting.PushBack(p)
	a.mu.Unlock()

	var timeout <-chan time.Time
	if a.cfg.QueueTimeout > 0 {
		t := time.NewTimer(a.cfg.QueueTimeout)
		defer t.Stop()
		timeout = t.C
	}
	var err error
	select {
	case <-p.ready:
		return nil
	case <-ctx.Done():
		err = ctx.Err()
	case <-timeout:
		err = ErrQueueTimeout
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if p.state == reserved {
		a.waiting.Remove(el)
	}
	// Admitted while giving up, the slot is handed on; leaving the head
	// of the queue may let those behind start.
	a.release(p)
	return err
}

// Release gives back what the place holds: its queue place, held bytes
// and client share, or, once admitted, its worker slot and cost. Later
// calls do nothing.
func (p *Place) Release() {
	if p == nil {
		return
	}
	p.a.mu.Lock()
	p.a.release(p)
	p.a.mu.Unlock()
}

// Keep makes the bytes the place holds (Hold) outlive it: Release gives
// back its queue place or worker slot as ever, but the held bytes stay
// counted as held by work not admitted (within Config.Held, and against
// the memory budget) until giveBack is called. It is for input that may
// still be in use when the work is over, such as bytes a read abandoned
// by the work can still reach. giveBack may be called from any goroutine,
// before or after Release; only its first call does anything.
func (p *Place) Keep() (giveBack func()) {
	if p == nil {
		return func() {}
	}
	a := p.a
	a.mu.Lock()
	defer a.mu.Unlock()
	n := p.held - p.kept
	if n <= 0 || p.state == released {
		return func() {}
	}
	p.kept += n
	var once sync.Once
	return func() {
		once.Do(func() {
			a.mu.Lock()
			defer a.mu.Unlock()
			if p.state == released {
				a.held -= n
			}
			p.kept -= n
			a.wake()
		})
	}
}

// release is Release with mu held.
func (a *Admitter) release(p *Place) {
	switch p.state {
	case released:
		return
	case reserved:
		a.pending--
		a.held -= p.held - p.kept
	case admitted:
		a.running--
		a.used -= p.cost
		a.held += p.kept
	}
	p.state = released
	if p.client != "" {
		if a.clients[p.client]--; a.clients[p.client] <= 0 {
			delete(a.clients, p.client)
		}
	}
	a.wake()
}

// fits reports whether work of cost (besides what it holds) can start
// now: the bytes held by work not admitted yet, its own among them, are
// memory as much as the running work's. Called with mu held.
func (a *Admitter) fits(cost int64) bool {
	if a.cfg.Workers > 0 && a.running >= a.cfg.Workers {
		return false
	}
	if a.cfg.Memory > 0 && a.running > 0 && a.used+a.held+a.output+cost > a.cfg.Memory {
		return false
	}
	return true
}

// admit makes p running work. Called with mu held.
func (a *Admitter) admit(p *Place) {
	a.pending--
	a.held -= p.held
	p.cost += p.held
	a.running++
	a.used += p.cost
	p.state = admitted
}

// wake admits waiters from the head of the queue while they fit: strict
// arrival order, so that a costly request is not starved by cheap ones.
// Called with mu held.
func (a *Admitter) wake() {
	for el := a.waiting.Front(); el != nil; el = a.waiting.Front() {
		p := el.Value.(*Place)
		if !a.fits(p.cost) {
			return
		}
		a.waiting.Remove(el)
		a.admit(p)
		a.waited++
		close(p.ready)
	}
}

// OutputShare is the share of Config.Memory that finished output waiting
// in memory for its clients may hold together (TakeOutput): 1/OutputShare
// of it.
const OutputShare = 4

// TakeOutput counts n bytes of finished output, kept in memory until its
// client has received it, against the memory budget, and reports whether
// they fit: such output may hold 1/OutputShare of Config.Memory together
// (no bound without one), and what it holds leaves less room to the
// running work. Output is held after its render has given its worker
// slot and cost back, so that a client that reads slowly or never holds
// no worker; bytes that do not fit go to a temporary file instead. The
// bytes are counted until GiveOutput.
func (a *Admitter) TakeOutput(n int64) bool {
	if a == nil || n <= 0 {
		return true
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cfg.Memory > 0 && a.output+n > a.cfg.Memory/OutputShare {
		return false
	}
	a.output += n
	return true
}

// GiveOutput gives back n bytes counted by TakeOutput.
func (a *Admitter) GiveOutput(n int64) {
	if a == nil || n <= 0 {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.output -= n
	a.wake()
}
