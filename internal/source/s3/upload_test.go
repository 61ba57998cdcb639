package s3

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/iiifd/iiifd/internal/source/s3/s3test"
)

func TestUpload(t *testing.T) {
	srv := s3test.Start(t)
	bucket := srv.Bucket("upload")
	s := newSource(t, srv.Endpoint(), bucket, "out/", nil)
	ctx := context.Background()
	multipartAbove, partSize = 6<<20, 5<<20
	defer func() { multipartAbove, partSize = 64<<20, 16<<20 }()

	dir := t.TempDir()
	big := make([]byte, 12<<20+123)
	rng := rand.New(rand.NewPCG(5, 6))
	for i := range big {
		big[i] = byte(rng.IntN(256))
	}
	files := map[string][]byte{
		"big.tif":                       big,
		"pyr/info.json":                 []byte(`{"width":1}`),
		"pyr/0,0,1,1/1,1/0/default.jpg": []byte("tile"),
		"pyr/full/1,1/0/default.jpg":    []byte("full"),
	}
	for k, b := range files {
		p := filepath.Join(dir, filepath.FromSlash(k))
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, b, 0o644)
	}
	if err := s.PutFile(ctx, "big.tif", filepath.Join(dir, "big.tif")); err != nil {
		t.Fatal(err)
	}
	var order []int
	if err := s.PutTree(ctx, "pyr", filepath.Join(dir, "pyr"), 4, func(done, total int) { order = append(order, done) }); err != nil {
		t.Fatal(err)
	}
	if len(order) != 3 {
		t.Errorf("progress %v", order)
	}
	for k, want := range files {
		obj, err := s.Open(ctx, k)
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		got := make([]byte, obj.Size)
		if n, _ := obj.ReadAt(got, 0); n != len(want) || !bytes.Equal(got, want) {
			t.Errorf("%s: stored %d bytes, want %d", k, n, len(want))
		}
		obj.Close()
	}
	// Keys that sort before "pyr/..." ("pyr-a", "pyr.png") must not hide
	// the folder from Exists.
	for _, k := range []string{"pyr-a", "pyr.png"} {
		os.WriteFile(filepath.Join(dir, "x"), []byte(k), 0o644)
		if err := s.PutFile(ctx, k, filepath.Join(dir, "x")); err != nil {
			t.Fatal(err)
		}
	}
	for key, want := range map[string]bool{"pyr": true, "big.tif": true, "py": false, "nothing": false, "pyr-a": true} {
		if got, err := s.Exists(ctx, key); err != nil || got != want {
			t.Errorf("Exists(%q) = %v, %v", key, got, err)
		}
	}
}
