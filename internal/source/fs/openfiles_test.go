package fs

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	return len(ents)
}

// TestOpenFilesShared: opens of one key within OpenFor share one file;
// a replaced file is seen after OpenFor; descriptors are not leaked.
func TestOpenFilesShared(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string][]byte{"a.jpg": []byte("one")})
	s, err := New(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	o1, err := s.Open(ctx, "a.jpg")
	if err != nil {
		t.Fatal(err)
	}
	o2, _ := s.Open(ctx, "a.jpg")
	if o1.Path != o2.Path {
		t.Errorf("two opens within OpenFor: %s and %s", o1.Path, o2.Path)
	}
	o1.Close()
	o1.Close() // a second Close is harmless
	buf := make([]byte, 3)
	if _, err := o2.ReadAt(buf, 0); err != nil || string(buf) != "one" {
		t.Fatalf("the other user's file was closed under it: %q %v", buf, err)
	}
	o2.Close()

	os.WriteFile(filepath.Join(dir, "a.jpg"), []byte("two!"), 0o644)
	time.Sleep(OpenFor + 50*time.Millisecond)
	o3, _ := s.Open(ctx, "a.jpg")
	if o3.Size != 4 {
		t.Errorf("replaced file not seen after OpenFor: size %d", o3.Size)
	}
	o3.Close()

	before := openFDs(t)
	for i := range 3 * maxOpen {
		name := fmt.Sprintf("f%d.jpg", i)
		os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o644)
		o, err := s.Open(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		o.Close()
	}
	if after := openFDs(t); after > before+maxOpen+1 {
		t.Errorf("descriptors grew from %d to %d (bound %d)", before, after, maxOpen)
	}
}
