package remote

import (
	"sync"
	"time"
)

// Breaker is a circuit breaker: after Failures consecutive failures it is
// open and refuses requests for Cooldown, so that a dead store costs
// clients nothing but a quick 503 and the store is not hammered; then one
// request is let through (half-open), whose success closes it again.
type Breaker struct {
	Failures int
	Cooldown time.Duration

	mu        sync.Mutex
	fails     int
	openUntil time.Time
	probing   bool
}

// Allow reports whether a request may go to the store now.
func (b *Breaker) Allow() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.fails < b.Failures {
		return true
	}
	if time.Now().Before(b.openUntil) || b.probing {
		return false
	}
	b.probing = true
	return true
}

// Record reports the outcome of an allowed request.
func (b *Breaker) Record(ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.probing = false
	if ok {
		b.fails = 0
		return
	}
	b.fails++
	if b.fails >= b.Failures {
		b.openUntil = time.Now().Add(b.Cooldown)
	}
}

// Release ends an allowed request whose outcome says nothing about the
// store (the client went away).
func (b *Breaker) Release() {
	b.mu.Lock()
	b.probing = false
	b.mu.Unlock()
}

// Open reports whether the breaker refuses requests.
func (b *Breaker) Open() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.fails >= b.Failures && time.Now().Before(b.openUntil)
}
