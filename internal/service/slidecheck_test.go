package service_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/iiifd/iiifd/internal/app"
	"github.com/iiifd/iiifd/internal/config"
	"github.com/iiifd/iiifd/internal/engine"
	"github.com/iiifd/iiifd/internal/fault"
	"github.com/iiifd/iiifd/internal/iiif"
	"github.com/iiifd/iiifd/internal/pixels"
	"github.com/iiifd/iiifd/internal/service"
	"github.com/iiifd/iiifd/internal/slidecheck"
	"github.com/iiifd/iiifd/internal/slidetest"
	"github.com/iiifd/iiifd/internal/source/fs"
)

// checkChildEnv makes the test binary, started by a slidecheck.Checker,
// the check's child.
const checkChildEnv = "IIIFD_TEST_SLIDECHECK_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(checkChildEnv) == "1" {
		os.Exit(slidecheck.Serve(os.Args[1:], os.Stdout, pixels.CheckSlide))
	}
	os.Setenv(checkChildEnv, "1") // for the children only
	os.Exit(m.Run())
}

// newCheckedService serves root with slides checked by a child running
// command (the test binary itself when empty).
func newCheckedService(t *testing.T, root string, timeout time.Duration, command ...string) (*service.Service, *slidecheck.Checker) {
	t.Helper()
	if len(command) == 0 {
		command = []string{os.Args[0]}
	}
	chk, err := slidecheck.New(slidecheck.Config{Command: command, Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	if err := pixels.Startup(pixels.Config{}); err != nil {
		t.Fatal(err)
	}
	src, err := fs.New(root)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := service.New(service.Config{Limits: app.Limits(config.Default()), TileSize: 512, SlideCheck: chk},
		src, pixels.NewEngine(engine.EncodeOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	return svc, chk
}

// imageError renders id's region and returns the error, nil when it
// rendered.
func imageError(svc *service.Service, id, region string) error {
	ctx := context.Background()
	req, err := iiif.ParseImage(iiif.V3, region, "max", "0", "default.jpg")
	if err != nil {
		return err
	}
	job, err := svc.Image(ctx, id, req)
	if err != nil {
		return err
	}
	defer job.Close()
	return renderTo(ctx, job, new(bytes.Buffer))
}

// want500 fails t unless err is a 500 whose public message has text.
func want500(t *testing.T, err error, text string) {
	t.Helper()
	var fe *fault.Error
	if !errors.As(err, &fe) || fe.HTTPStatus() != 500 || !strings.Contains(fe.Public, text) {
		t.Errorf("got %v, want a 500 saying %q", err, text)
	}
}

// TestSlideCheckChild serves slides checked by a real child process (the
// test binary running slidecheck.Serve, which opens each with OpenSlide):
// the Philips slide and its label render as without the check, after one
// child for that version of the file; the Aperio and generic TIFFs never
// reach OpenSlide and start none; a slide OpenSlide reports an error on
// is refused with a 500 from the child's verdict, kept; a slide whose
// structure is sound but some tiles garbage passes the check (which
// reads a few regions, not every tile) and its render fails in this
// process with OpenSlide's error as a 500.
func TestSlideCheckChild(t *testing.T) {
	dir := slidetest.Dir(t)
	root := t.TempDir()
	for _, name := range []string{"philips.tiff", "slide.svs", "generic.tif"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(root, name), b, 0o644)
		if name == "philips.tiff" {
			// broken.tiff: Philips' XML lists no scanned image, which
			// OpenSlide reports on opening. damaged.tiff: tiles of
			// level 0 are garbage, which the check's regions miss.
			broken := bytes.Replace(b, []byte("PIM_DP_SCANNED_IMAGES"), []byte("PIM_DP_SCANNED_IMAGEZ"), 1)
			os.WriteFile(filepath.Join(root, "broken.tiff"), broken, 0o644)
			copy(b[16:], bytes.Repeat([]byte{0xff}, 200000))
			os.WriteFile(filepath.Join(root, "damaged.tiff"), b, 0o644)
		}
	}
	svc, chk := newCheckedService(t, root, 0)
	plain := newService(t, root)
	for _, id := range []string{"philips.tiff", "philips.tiff;label"} {
		req, _ := iiif.ParseImage(iiif.V3, "full", "300,", "0", "default.png")
		if d := meanDiff(t, render(t, svc, id, req), render(t, plain, id, req)); d != 0 {
			t.Errorf("%s: checked render differs from the unchecked one by %.2f", id, d)
		}
	}
	if n := chk.Children(); n != 1 {
		t.Errorf("%d checks ran for one slide, want 1", n)
	}
	for _, id := range []string{"slide.svs", "generic.tif", "slide.svs;label"} {
		if err := imageError(svc, id, "0,0,512,512"); err != nil {
			t.Errorf("%s: %v", id, err)
		}
	}
	if n := chk.Children(); n != 1 {
		t.Errorf("%d checks ran after the TIFF-path slides, want still 1", n)
	}
	for range 2 {
		want500(t, imageError(svc, "broken.tiff", "0,0,512,512"), "OpenSlide reported an error")
	}
	if n := chk.Children(); n != 2 {
		t.Errorf("%d checks ran after the broken slide twice, want 2", n)
	}
	want500(t, imageError(svc, "damaged.tiff", "0,0,512,512"), "damaged or unreadable")
	if n := chk.Children(); n != 3 {
		t.Errorf("%d checks ran after the damaged slide, want 3", n)
	}
}

// TestSlideCheckCrash gives the server a check that dies of SIGSEGV, as a
// child does when a damaged slide crashes OpenSlide: the slide is
// refused with a 500 naming the crash, the verdict is kept until the
// file changes, and the server goes on serving other images.
func TestSlideCheckCrash(t *testing.T) {
	dir := slidetest.Dir(t)
	root := t.TempDir()
	for _, name := range []string{"philips.tiff", "slide.svs"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(root, name), b, 0o644)
	}
	svc, chk := newCheckedService(t, root, 0, "sh", "-c", `kill -SEGV $$`, "check")
	for range 2 {
		want500(t, imageError(svc, "philips.tiff", "0,0,512,512"), "crashed OpenSlide (segmentation fault)")
	}
	if n := chk.Children(); n != 1 {
		t.Errorf("%d checks ran, want 1 (the verdict kept)", n)
	}
	if err := imageError(svc, "slide.svs", "0,0,512,512"); err != nil {
		t.Errorf("slide.svs after the crash: %v", err)
	}
	// A new version of the file is checked again.
	later := time.Now().Add(time.Minute)
	if err := os.Chtimes(filepath.Join(root, "philips.tiff"), later, later); err != nil {
		t.Fatal(err)
	}
	want500(t, imageError(svc, "philips.tiff", "0,0,512,512"), "crashed OpenSlide")
	if n := chk.Children(); n != 2 {
		t.Errorf("%d checks ran after the file changed, want 2", n)
	}
}

// TestSlideCheckTimeout gives the server a check that never answers: it
// is killed at the time limit and the slide refused with a 500 saying so.
func TestSlideCheckTimeout(t *testing.T) {
	dir := slidetest.Dir(t)
	svc, _ := newCheckedService(t, dir, 300*time.Millisecond, "sh", "-c", `exec sleep 60`, "check")
	want500(t, imageError(svc, "philips.tiff", "0,0,512,512"), "did not finish reading it within 300ms")
}

// TestSlideCheckCrashBIF serves a real slide that crashes OpenSlide
// (make-slides' crash.bif: its stitching table claims 2^62 tiles, and
// OpenSlide 3.4.1 aborts through GLib as it opens it, SIGTRAP). In the
// server that would end the process; checked in a child, the slide is
// refused with a 500 naming the crash and the server goes on serving.
func TestSlideCheckCrashBIF(t *testing.T) {
	dir := slidetest.Dir(t)
	svc, chk := newCheckedService(t, dir, 0)
	for range 2 {
		want500(t, imageError(svc, "crash.bif", "0,0,200,200"), "reading it crashed OpenSlide (trace trap)")
	}
	if n := chk.Children(); n != 1 {
		t.Errorf("%d checks ran for the crashing slide, want 1 (the verdict kept)", n)
	}
	for _, id := range []string{"ventana.bif", "philips.tiff", "slide.svs"} {
		if err := imageError(svc, id, "0,0,512,512"); err != nil {
			t.Errorf("%s after the crash: %v", id, err)
		}
	}
}

// TestSlideCheckDamagedBIF serves a real damaged slide (make-slides'
// damaged.bif: tile joints that make OpenSlide take practically forever
// to read any region, where its header is sane). In the server, OpenSlide
// would hold a worker for minutes in C code that nothing can cancel; the
// check's child is killed at its time limit instead, the slide refused
// with a 500 saying so, and the server goes on serving the sound slide.
func TestSlideCheckDamagedBIF(t *testing.T) {
	dir := slidetest.Dir(t)
	svc, chk := newCheckedService(t, dir, time.Second)
	for range 2 {
		want500(t, imageError(svc, "damaged.bif", "0,0,200,200"), "did not finish reading it within 1s")
	}
	if n := chk.Children(); n != 1 {
		t.Errorf("%d checks ran for the damaged slide, want 1 (the verdict kept)", n)
	}
	// The sound slide, checked by a child with time to spare.
	svc, _ = newCheckedService(t, dir, 0)
	if err := imageError(svc, "ventana.bif", "0,0,512,512"); err != nil {
		t.Errorf("ventana.bif: %v", err)
	}
}
