package progress

import (
	"bytes"
	"strings"
	"testing"
)

func TestPlainLines(t *testing.T) {
	var b bytes.Buffer
	r := New(&b, "check")
	for i := int64(0); i <= 200; i++ {
		r.Update(i, 200)
	}
	r.Done()
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 10 || lines[0] != "check: 10% (20/200)" || lines[9] != "check: 100% (200/200)" {
		t.Errorf("got %d lines:\n%s", len(lines), b.String())
	}
	r.Update(1, 2) // after Done: silent
	if strings.Count(b.String(), "\n") != 10 {
		t.Error("printed after Done")
	}
}

func TestNotTerminal(t *testing.T) {
	if IsTerminal(&bytes.Buffer{}) {
		t.Error("a buffer is not a terminal")
	}
}
