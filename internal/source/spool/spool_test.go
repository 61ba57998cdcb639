package spool

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
)

func TestOpen(t *testing.T) {
	s, err := New(t.TempDir(), 4000)
	if err != nil {
		t.Fatal(err)
	}
	var fills atomic.Int64
	fillWith := func(b []byte) Fill {
		return func(ctx context.Context, w *Writer) error {
			fills.Add(1)
			_, err := w.Write(b)
			return err
		}
	}
	data := bytes.Repeat([]byte("x"), 1000)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f, err := s.Open(context.Background(), "a@1", 1000, fillWith(data))
			if err != nil {
				t.Error(err)
				return
			}
			defer f.Close()
			got, _ := io.ReadAll(f)
			if !bytes.Equal(got, data) {
				t.Error("wrong bytes")
			}
		}()
	}
	wg.Wait()
	if fills.Load() != 1 {
		t.Errorf("%d downloads for one object", fills.Load())
	}
	// More objects than fit: the least recently used go.
	for _, id := range []string{"b", "c", "d", "e"} {
		f, err := s.Open(context.Background(), id, 1000, fillWith(data))
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	if s.Bytes() > 4000 {
		t.Errorf("spool holds %d bytes over its bound", s.Bytes())
	}
	fills.Store(0)
	f, _ := s.Open(context.Background(), "a@1", 1000, fillWith(data))
	f.Close()
	if fills.Load() != 1 {
		t.Error("evicted object was not downloaded again")
	}
}

func TestFailures(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "old.obj"), []byte("stale"), 0o600)
	s, err := New(dir, 4000)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "old.obj")); err == nil {
		t.Error("stale copy kept")
	}
	for _, tc := range []struct {
		name string
		size int64
		fill Fill
	}{
		{"short", 10, func(ctx context.Context, w *Writer) error { _, err := w.Write([]byte("abc")); return err }},
		{"long", 2, func(ctx context.Context, w *Writer) error { _, err := w.Write([]byte("abc")); return err }},
		{"error", 10, func(ctx context.Context, w *Writer) error { return errors.New("boom") }},
		{"too big", 2000, func(ctx context.Context, w *Writer) error { return nil }},
	} {
		if f, err := s.Open(context.Background(), tc.name, tc.size, tc.fill); err == nil {
			f.Close()
			t.Errorf("%s: no error", tc.name)
		}
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 0 || s.Bytes() != 0 {
		t.Errorf("failed downloads left %d files", len(ents))
	}
}
