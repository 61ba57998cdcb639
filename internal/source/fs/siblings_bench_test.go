package fs

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// BenchmarkLargeFolderMiss is the cost of looking up an unknown name
// without extension in a folder of 100,001 files (scripts/bench-misses):
// "listing" is what Siblings did before the stem index (a listing of
// the folder per lookup), "indexed" is Siblings now, and "hit" is the
// lookup of a known name without extension and the open of its file.
func BenchmarkLargeFolderMiss(b *testing.B) {
	dir := b.TempDir()
	big := filepath.Join(dir, "big")
	os.Mkdir(big, 0o755)
	for i := range 100_001 {
		f, err := os.Create(filepath.Join(big, fmt.Sprintf("img%06d.jpg", i)))
		if err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
	old := time.Now().Add(-time.Hour)
	os.Chtimes(big, old, old)
	s, err := New(dir)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.Run("listing", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			base := fmt.Sprintf("missing%d", i)
			d, err := s.dir.Open("big")
			if err != nil {
				b.Fatal(err)
			}
			entries, _ := d.ReadDir(-1)
			d.Close()
			for _, e := range entries {
				if name := e.Name(); strings.HasPrefix(name, base+".") && !strings.Contains(name[len(base)+1:], ".") {
					b.Fatal("found")
				}
			}
		}
	})
	b.Run("indexed", func(b *testing.B) {
		s.Siblings(ctx, "big/warm")
		for i := 0; b.Loop(); i++ {
			if got, _ := s.Siblings(ctx, fmt.Sprintf("big/missing%d", i)); len(got) != 0 {
				b.Fatal("found")
			}
		}
	})
	b.Run("hit", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			key := fmt.Sprintf("big/img%06d", i%100_001)
			got, _ := s.Siblings(ctx, key)
			if len(got) != 1 {
				b.Fatal(got)
			}
			obj, err := s.Open(ctx, got[0])
			if err != nil {
				b.Fatal(err)
			}
			obj.Close()
		}
	})
}
