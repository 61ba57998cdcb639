// Package remotetest has what the tests of network sources share: a TCP
// proxy on loopback that adds latency to every request, or stalls, or is
// taken away and brought back, in front of a real store.
package remotetest

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Proxy forwards loopback connections to a target address. Each chunk a
// client sends (an HTTP request, in practice) is forwarded after the
// current delay, so every request pays it once, as over a long link.
type Proxy struct {
	t      testing.TB
	target string
	addr   string
	delay  atomic.Int64 // nanoseconds
	cut    atomic.Int64 // bytes of answers passed per connection, 0 = all

	// waiting counts the requests held in the delay now, mostWaiting the
	// most there have been at once: how many requests a client had in
	// flight together, which tests assert instead of timing them.
	waiting, mostWaiting atomic.Int64

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]bool
}

// Start starts a proxy to target on a free loopback port; it is stopped
// when the test ends.
func Start(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{t: t, target: target, addr: ln.Addr().String(), conns: map[net.Conn]bool{}}
	p.serve(ln)
	t.Cleanup(p.Stop)
	return p
}

// Addr is the proxy's HOST:PORT.
func (p *Proxy) Addr() string { return p.addr }

// SetDelay sets the delay added to every request from now on.
func (p *Proxy) SetDelay(d time.Duration) { p.delay.Store(int64(d)) }

// MostWaiting is the most requests that were held in the delay at once
// since the last ResetMostWaiting.
func (p *Proxy) MostWaiting() int64 { return p.mostWaiting.Load() }

// ResetMostWaiting starts counting MostWaiting afresh.
func (p *Proxy) ResetMostWaiting() { p.mostWaiting.Store(0) }

// CutAfter makes every connection close after n bytes of answers (a
// store that truncates its responses); 0 passes everything. Open
// connections are closed, so that the setting applies at once.
func (p *Proxy) CutAfter(n int64) {
	p.cut.Store(n)
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
}

// Stop closes the listener and every connection: the store is gone.
func (p *Proxy) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

// Restart listens again on the same address after Stop.
func (p *Proxy) Restart() {
	p.t.Helper()
	var ln net.Listener
	var err error
	for deadline := time.Now().Add(5 * time.Second); ; {
		ln, err = net.Listen("tcp", p.addr)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		p.t.Fatalf("proxy cannot listen again on %s: %v", p.addr, err)
	}
	p.serve(ln)
}

func (p *Proxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.handle(c)
		}
	}()
}

func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln == nil {
		c.Close()
		return false
	}
	p.conns[c] = true
	return true
}

func (p *Proxy) handle(c net.Conn) {
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	if !p.track(c) || !p.track(up) {
		c.Close()
		up.Close()
		return
	}
	done := make(chan struct{}, 2)
	go func() {
		buf := make([]byte, 32<<10)
		for {
			n, err := c.Read(buf)
			if n > 0 {
				if d := time.Duration(p.delay.Load()); d > 0 {
					now := p.waiting.Add(1)
					for {
						most := p.mostWaiting.Load()
						if now <= most || p.mostWaiting.CompareAndSwap(most, now) {
							break
						}
					}
					time.Sleep(d)
					p.waiting.Add(-1)
				}
				if _, werr := up.Write(buf[:n]); werr != nil {
					break
				}
			}
			if err != nil {
				break
			}
		}
		done <- struct{}{}
	}()
	go func() {
		if n := p.cut.Load(); n > 0 {
			io.CopyN(c, up, n)
		} else {
			io.Copy(c, up)
		}
		done <- struct{}{}
	}()
	<-done
	c.Close()
	up.Close()
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, up)
	p.mu.Unlock()
}
