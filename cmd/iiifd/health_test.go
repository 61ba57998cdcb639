package main

import (
	"bytes"
	"context"
	"net"
	"testing"
)

// TestHealth: the container's health check passes against a running
// server, on its /healthz and /readyz, and fails when nothing listens.
func TestHealth(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan net.Addr, 1)
	done := make(chan int, 1)
	go func() {
		done <- serve(ctx, []string{"--addr", "127.0.0.1:0"}, new(bytes.Buffer), new(bytes.Buffer), func(a net.Addr) { addrc <- a })
	}()
	addr := (<-addrc).String()
	for _, path := range []string{"/healthz", "/readyz"} {
		var out, errb bytes.Buffer
		if code := run(context.Background(), []string{"health", "--addr", addr, "--path", path}, &out, &errb); code != 0 {
			t.Errorf("%s: exit %d: %s%s", path, code, out.String(), errb.String())
		}
	}
	var errb bytes.Buffer
	if code := run(context.Background(), []string{"health", "--addr", addr, "--path", "/nosuch"}, new(bytes.Buffer), &errb); code != 1 {
		t.Errorf("a 404 passed the health check: exit %d", code)
	}
	cancel()
	<-done
	if code := run(context.Background(), []string{"health", "--addr", addr}, new(bytes.Buffer), &errb); code != 1 {
		t.Errorf("a stopped server passed the health check: exit %d", code)
	}
}
