package progress

import (
	"bytes"
	"strings"
	"testing"
)

func TestTerminalBar(t *testing.T) {
	var buf bytes.Buffer
	r := newReporter(&buf, "ingest", true)
	for p := range 101 {
		r.Update(int64(p), 100)
	}
	r.Done()
	s := buf.String()
	if !strings.Contains(s, "\ringest ["+strings.Repeat("#", barWidth)+"] 100%") || !strings.HasSuffix(s, "\n") {
		t.Errorf("terminal bar: %q", s[max(0, len(s)-120):])
	}
	if n := strings.Count(s, "\r"); n != 101 {
		t.Errorf("%d redraws, want 101", n)
	}
}

func TestPlainLines(t *testing.T) {
	var buf bytes.Buffer
	r := newReporter(&buf, "check", false)
	for _, p := range []int64{0, 3, 9, 10, 15, 37, 99, 100, 100} {
		r.Update(p, 100)
	}
	r.Done()
	r.Update(50, 100) // after Done: silent
	want := []string{"0%", "10%", "30%", "90%", "100%"}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != len(want) {
		t.Fatalf("lines %q", lines)
	}
	for i, l := range lines {
		if !strings.HasPrefix(l, "check: "+want[i]+" (") {
			t.Errorf("line %d: %q, want %s", i, l, want[i])
		}
	}
	if IsTerminal(&buf) {
		t.Error("a buffer is not a terminal")
	}
}
