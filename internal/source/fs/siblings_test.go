package fs

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestSiblingsLargeFolder: in a folder of 100,000 files, looking up
// names without extension lists the folder once, not once per lookup
// (issue 14 item 4: each unknown identifier read the whole folder); a
// file added or removed later is seen, as the folder's modification time
// changes.
func TestSiblingsLargeFolder(t *testing.T) {
	dir := t.TempDir() // removed after the test, with its files
	big := filepath.Join(dir, "big")
	if err := os.Mkdir(big, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range 100_000 {
		f, err := os.Create(filepath.Join(big, fmt.Sprintf("img%06d.jpg", i)))
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	// A quiet folder: its listing is trusted only once it is older than
	// the clock's granularity (see racyWindow).
	old := time.Now().Add(-time.Hour)
	os.Chtimes(big, old, old)
	s, err := New(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	before := s.Listings()
	for i := range 1000 {
		got, err := s.Siblings(ctx, fmt.Sprintf("big/missing%d", i))
		if err != nil || len(got) != 0 {
			t.Fatalf("missing%d: %v %v", i, got, err)
		}
	}
	got, err := s.Siblings(ctx, "big/img000042")
	if err != nil || !slices.Equal(got, []string{"big/img000042.jpg"}) {
		t.Fatalf("img000042: %v %v", got, err)
	}
	if n := s.Listings() - before; n != 1 {
		t.Errorf("1001 lookups listed the folder %d times, want 1", n)
	}

	// A file added is found: the folder's time changed.
	os.WriteFile(filepath.Join(big, "new.tif"), nil, 0o644)
	if got, _ := s.Siblings(ctx, "big/new"); !slices.Equal(got, []string{"big/new.tif"}) {
		t.Errorf("a new file: %v", got)
	}
	os.Remove(filepath.Join(big, "img000042.jpg"))
	if got, _ := s.Siblings(ctx, "big/img000042"); len(got) != 0 {
		t.Errorf("a removed file: %v", got)
	}
	// Once quiet again, lookups stop listing.
	os.Chtimes(big, old, old)
	s.Siblings(ctx, "big/x")
	before = s.Listings()
	for i := range 100 {
		s.Siblings(ctx, fmt.Sprintf("big/y%d", i))
	}
	if n := s.Listings() - before; n != 0 {
		t.Errorf("100 lookups in a quiet folder listed it %d times", n)
	}
}
