package auth

import (
	"sync"
	"time"
)

// limiter counts failed logins per key (a client address, a user name)
// in fixed windows: past n failures in a window the key is refused until
// the window ends. It is per replica; a guesser spreading over replicas
// gets n per replica, still few enough to make guessing hopeless.
type limiter struct {
	mu     sync.Mutex
	n      int
	window time.Duration
	now    func() time.Time
	counts map[string]*window
}

type window struct {
	start time.Time
	fails int
}

// maxLimiterKeys bounds the memory of the counts: past it, the counts
// start over (a flood of keys cannot grow memory).
const maxLimiterKeys = 100000

func newLimiter(n int, d time.Duration, now func() time.Time) *limiter {
	return &limiter{n: n, window: d, now: now, counts: map[string]*window{}}
}

// blocked returns how long key must wait before trying again, 0 if it
// may try now.
func (l *limiter) blocked(key string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	w, ok := l.counts[key]
	if !ok {
		return 0
	}
	now := l.now()
	if end := w.start.Add(l.window); !now.Before(end) {
		delete(l.counts, key)
		return 0
	} else if w.fails >= l.n {
		return end.Sub(now)
	}
	return 0
}

// fail counts a failed login of key.
func (l *limiter) fail(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	w, ok := l.counts[key]
	if !ok || !now.Before(w.start.Add(l.window)) {
		if len(l.counts) >= maxLimiterKeys {
			l.counts = map[string]*window{}
		}
		w = &window{start: now}
		l.counts[key] = w
	}
	w.fails++
}
