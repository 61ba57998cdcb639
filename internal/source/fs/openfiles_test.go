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

// TestOpenFilesClosedWhenQuiet: shared files are closed once OpenFor has
// passed even when no other open comes, so a quiet server holds none (and
// the space of a deleted source is freed); one still in use is closed
// when its user is done.
func TestOpenFilesClosedWhenQuiet(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string][]byte{"a.jpg": []byte("one"), "b.jpg": []byte("two")})
	s, err := New(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	before := openFDs(t)
	a, _ := s.Open(ctx, "a.jpg")
	a.Close()
	b, _ := s.Open(ctx, "b.jpg") // held past OpenFor
	if got := openFDs(t); got != before+2 {
		t.Fatalf("%d descriptors open, want %d", got, before+2)
	}
	time.Sleep(2 * OpenFor)
	if got := openFDs(t); got > before+1 {
		t.Errorf("after OpenFor with no other open: %d descriptors, want %d (only the one in use)", got, before+1)
	}
	buf := make([]byte, 3)
	if _, err := b.ReadAt(buf, 0); err != nil || string(buf) != "two" {
		t.Fatalf("a file in use was closed: %q %v", buf, err)
	}
	b.Close()
	if got := openFDs(t); got > before {
		t.Errorf("after the last user closed: %d descriptors, want %d", got, before)
	}
	// The sweeper restarts with the next open.
	c, _ := s.Open(ctx, "a.jpg")
	c.Close()
	time.Sleep(2 * OpenFor)
	if got := openFDs(t); got > before {
		t.Errorf("after a second quiet period: %d descriptors, want %d", got, before)
	}
}
