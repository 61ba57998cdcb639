package service_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/iiifd/iiifd/internal/fault"
	"github.com/iiifd/iiifd/internal/iiif"
	"github.com/iiifd/iiifd/internal/source"
	"github.com/iiifd/iiifd/internal/source/fs"
)

// readerSource serves the objects of another source without their Path,
// their ReaderAt wrapped by wrap.
type readerSource struct {
	source.Source
	wrap func(r io.ReaderAt, size int64) io.ReaderAt
}

func (s readerSource) Open(ctx context.Context, key string) (*source.Object, error) {
	obj, err := s.Source.Open(ctx, key)
	if err != nil {
		return nil, err
	}
	obj.Path = ""
	obj.ReaderAt = s.wrap(obj.ReaderAt, obj.Size)
	return obj, nil
}

// counter counts the bytes read through it.
type counter struct {
	r io.ReaderAt
	n *atomic.Int64
}

func (c counter) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	c.n.Add(int64(n))
	return n, err
}

// failing fails every read that touches the bytes [from, to).
type failing struct {
	r        io.ReaderAt
	from, to int64
}

func (f failing) ReadAt(p []byte, off int64) (int, error) {
	if off < f.to && off+int64(len(p)) > f.from {
		return 0, errors.New("connection reset by peer")
	}
	return f.r.ReadAt(p, off)
}

// pyramidRoot writes a 4096x4096 pyramidal TIFF of noise (which does not
// compress) in 256x256 JPEG tiles.
func pyramidRoot(t *testing.T) (root string, size int64) {
	t.Helper()
	root = t.TempDir()
	noise := filepath.Join(t.TempDir(), "noise.v")
	vips(t, "gaussnoise", noise, "4096", "4096", "--sigma", "40")
	path := filepath.Join(root, "big.tif")
	vips(t, "cast", noise, path+"[tile,pyramid,tile-width=256,tile-height=256,compression=jpeg,Q=90]", "uchar")
	files, err := fs.New(root)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := files.Open(context.Background(), "big.tif")
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	return root, obj.Size
}

// TestReaderReadsLittle serves info.json and a region of a big pyramidal
// TIFF from an object without a path: only headers and the tiles under
// the region are read.
func TestReaderReadsLittle(t *testing.T) {
	root, size := pyramidRoot(t)
	files, err := fs.New(root)
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int64
	svc := newServiceOf(t, readerSource{files, func(r io.ReaderAt, _ int64) io.ReaderAt { return counter{r, &n} }})
	ctx := context.Background()
	if _, err := svc.Info(ctx, iiif.V3, "big.tif", "http://x"); err != nil {
		t.Fatal(err)
	}
	info := n.Swap(0)
	// A region across four stored tiles, scaled: libvips decodes it.
	req, err := iiif.ParseImage(iiif.V3, "1000,1000,300,300", "200,", "0", "default.png")
	if err != nil {
		t.Fatal(err)
	}
	img := render(t, svc, "big.tif", req)
	if b := img.Bounds(); b.Dx() != 200 || b.Dy() != 200 {
		t.Errorf("size %v, want 200x200", b)
	}
	tile := n.Load()
	t.Logf("file %d bytes; info.json read %d, the region %d", size, info, tile)
	if info > 64<<10 {
		t.Errorf("info.json read %d bytes, want at most 64 KiB", info)
	}
	// The region lies on 9 of the file's 341 tiles (2.6%).
	if tile > size/25 {
		t.Errorf("the region read %d of %d bytes, want at most 4%%", tile, size)
	}
}

// TestReaderFailure serves an object whose reads fail past its headers:
// info.json works, an image needing the failing bytes is a 502 and names
// no internals.
func TestReaderFailure(t *testing.T) {
	root, size := pyramidRoot(t)
	files, err := fs.New(root)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// The reduced levels and every IFD lie after the tiles of the full
	// resolution, which fill some three quarters of the file: reads of
	// the second half fail at the IFDs, reads of [1/8, 1/2) only at
	// full-resolution tiles.
	svc := newServiceOf(t, readerSource{files, func(r io.ReaderAt, _ int64) io.ReaderAt { return failing{r, size / 2, size} }})
	_, err = svc.Info(ctx, iiif.V3, "big.tif", "http://x")
	if status, _ := fault.Status(err); status != http.StatusBadGateway {
		t.Fatalf("Info = %v (%d), want a 502", err, status)
	}

	svc = newServiceOf(t, readerSource{files, func(r io.ReaderAt, _ int64) io.ReaderAt { return failing{r, size / 8, size / 2} }})
	if _, err := svc.Info(ctx, iiif.V3, "big.tif", "http://x"); err != nil {
		t.Fatal(err)
	}
	req, err := iiif.ParseImage(iiif.V3, "0,1024,1000,1000", "max", "0", "default.jpg")
	if err != nil {
		t.Fatal(err)
	}
	job, err := svc.Image(ctx, "big.tif", req)
	if err != nil {
		t.Fatal(err)
	}
	defer job.Close()
	var out bytes.Buffer
	err = renderTo(ctx, job, &out)
	status, msg := fault.Status(err)
	if status != http.StatusBadGateway {
		t.Fatalf("Render = %v (%d), want a 502", err, status)
	}
	var fe *fault.Error
	if !errors.As(err, &fe) || fe.Cause == nil {
		t.Errorf("the fault has no cause: %#v", err)
	}
	t.Logf("public message %q; detail %q", msg, fe.Detail())
}
