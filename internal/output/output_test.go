package output_test

import (
	"bytes"
	"io"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/iiifd/iiifd/internal/limit"
	"github.com/iiifd/iiifd/internal/output"
)

// spillFiles counts the open spilled files under dir.
func spillFiles(t *testing.T, dir string) int {
	t.Helper()
	n, err := output.OpenFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func noise(n int) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// write writes body in uneven pieces, as an encoder does.
func write(t *testing.T, b *output.Buffer, body []byte) {
	t.Helper()
	for off := 0; off < len(body); {
		n := min(len(body)-off, 1+off%7000)
		if k, err := b.Write(body[off : off+n]); err != nil || k != n {
			t.Fatalf("Write = %d, %v", k, err)
		}
		off += n
	}
}

func read(t *testing.T, b *output.Buffer) []byte {
	t.Helper()
	got, err := io.ReadAll(b.Reader())
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestBuffer(t *testing.T) {
	admit, err := limit.New(limit.Config{Memory: 16 << 20}) // 4 MiB for output
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		threshold int64
		size      int
		spilled   bool
	}{
		{"empty", 0, 0, false},
		{"small in memory", 1 << 20, 100 << 10, false},
		{"at the threshold in memory", 1 << 20, 1 << 20, false},
		{"past the threshold in a file", 1 << 20, 1<<20 + 1, true},
		{"every body to a file", -1, 10, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			b := output.New(output.Config{Threshold: tc.threshold, Dir: dir, Budget: admit})
			body := noise(tc.size)
			write(t, b, body)
			if b.Len() != int64(len(body)) || b.Spilled() != tc.spilled {
				t.Errorf("Len, Spilled = %d, %v; want %d, %v", b.Len(), b.Spilled(), len(body), tc.spilled)
			}
			mem := admit.Stats().Output
			switch {
			case tc.spilled && mem != 0:
				t.Errorf("a spilled body holds %d bytes of the budget", mem)
			case !tc.spilled && mem < int64(len(body)):
				t.Errorf("%d bytes in memory hold %d bytes of the budget", len(body), mem)
			}
			if got := read(t, b); !bytes.Equal(got, body) {
				t.Errorf("read %d bytes, not those written (%d)", len(got), len(body))
			}
			if got := read(t, b); !bytes.Equal(got, body) {
				t.Errorf("second read: %d bytes, not those written", len(got))
			}
			if names, _ := os.ReadDir(dir); len(names) != 0 {
				t.Errorf("the folder holds %d names, want none (a spilled file has none)", len(names))
			}
			if n := spillFiles(t, dir); n != b2i(tc.spilled) {
				t.Errorf("%d spilled files open, want %d", n, b2i(tc.spilled))
			}
			if err := b.Close(); err != nil {
				t.Fatal(err)
			}
			b.Close()
			if n := spillFiles(t, dir); n != 0 {
				t.Errorf("%d spilled files open after Close", n)
			}
			if m := admit.Stats().Output; m != 0 {
				t.Errorf("%d bytes of the budget held after Close", m)
			}
		})
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestBufferBudget: bodies in memory share the budget's output share;
// one that does not fit goes to a file, and its bytes are read back
// whole.
func TestBufferBudget(t *testing.T) {
	admit, err := limit.New(limit.Config{Memory: 4 << 20}) // 1 MiB for output
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := output.Config{Threshold: 600 << 10, Dir: dir, Budget: admit}
	a, b := output.New(cfg), output.New(cfg)
	bodyA, bodyB := noise(500<<10), noise(550<<10)
	write(t, a, bodyA)
	write(t, b, bodyB)
	if a.Spilled() || !b.Spilled() {
		t.Fatalf("spilled %v, %v; want the second only (the budget has room for one)", a.Spilled(), b.Spilled())
	}
	if m := admit.Stats().Output; m > 1<<20 || m < int64(len(bodyA)) {
		t.Errorf("output holds %d bytes of the budget, want %d to 1 MiB", m, len(bodyA))
	}
	if !bytes.Equal(read(t, a), bodyA) || !bytes.Equal(read(t, b), bodyB) {
		t.Error("bytes read back differ from those written")
	}
	a.Close()
	b.Close()
	if m, n := admit.Stats().Output, spillFiles(t, dir); m != 0 || n != 0 {
		t.Errorf("after Close: %d bytes held, %d files open", m, n)
	}
}
