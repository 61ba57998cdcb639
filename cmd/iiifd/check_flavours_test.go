package main

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/png"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/iiifd/iiifd/internal/app"
	"github.com/iiifd/iiifd/internal/config"
)

// runTool runs a command the test needs, skipping when it is missing
// (failing under IIIFD_REQUIRE_TOOLS, as scripts/test runs).
func runTool(t *testing.T, name string, args ...string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		if os.Getenv("IIIFD_REQUIRE_TOOLS") != "" {
			t.Fatalf("%s is missing (scripts/test installs it)", name)
		}
		t.Skipf("%s is missing", name)
	}
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v: %s", name, args, err, out)
	}
}

// withoutICC drops a JPEG's APP2 segments: the stored tile as it was
// sent before passthrough kept the colour profile.
func withoutICC(j []byte) []byte {
	out := append([]byte{}, j[:2]...)
	i := 2
	for i+4 <= len(j) && j[i] == 0xFF && j[i+1] >= 0xE0 && j[i+1] <= 0xEF {
		n := int(j[i+2])<<8 | int(j[i+3])
		if j[i+1] != 0xE2 {
			out = append(out, j[i:i+2+n]...)
		}
		i += 2 + n
	}
	return append(out, j[i:]...)
}

// TestCheckSeesWhatUsersSee checks a turned strip TIFF and an AdobeRGB
// pyramidal JPEG TIFF, which the server serves right, and then shows that
// check's two looks catch the faults of issue 22: a passed-through tile
// without its profile, and an info.json size that ignores orientation.
func TestCheckSeesWhatUsersSee(t *testing.T) {
	const profile = "/usr/share/color/icc/compatibleWithAdobeRGB1998.icc"
	if _, err := os.Stat(profile); err != nil {
		if os.Getenv("IIIFD_REQUIRE_TOOLS") != "" {
			t.Fatalf("%s is missing (scripts/test installs icc-profiles-free)", profile)
		}
		t.Skipf("%s is missing", profile)
	}
	root := t.TempDir()
	img := image.NewRGBA(image.Rect(0, 0, 256, 128))
	for y := range 128 {
		for x := range 256 {
			img.SetRGBA(x, y, color.RGBA{uint8(x), uint8(200 - y), uint8(40 + y), 255})
		}
	}
	var buf bytes.Buffer
	png.Encode(&buf, img)
	src := filepath.Join(t.TempDir(), "src.png")
	os.WriteFile(src, buf.Bytes(), 0o644)
	adobe := filepath.Join(t.TempDir(), "adobe.v")
	runTool(t, "vips", "icc_transform", src, adobe, profile, "--input-profile", "srgb")
	runTool(t, "vips", "tiffsave", adobe, filepath.Join(root, "adobe.tif"), "--tile", "--tile-width", "64",
		"--tile-height", "64", "--pyramid", "--compression", "jpeg", "--Q", "95")
	turned := filepath.Join(root, "turned.tif")
	runTool(t, "vips", "tiffsave", src, turned)
	runTool(t, "tiffset", "-s", "274", "6", turned)

	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"check", "--root", root, "--jobs", "1"}, &out, &errOut); code != 0 {
		t.Fatalf("check: exit %d\n%s%s", code, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), "checked 2 images") {
		t.Errorf("summary: %s", out.String())
	}

	cfg := config.Default()
	cfg.Root = root
	cfg.CacheMemory = 0
	a, err := app.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx := context.Background()
	svc := a.Service()

	// A server that ignored the orientation would say 256x128.
	if msg := checkDisplayedSize(ctx, svc, "turned.tif", 128, 256, false); msg != "" {
		t.Errorf("the displayed size was refused: %s", msg)
	}
	msg := checkDisplayedSize(ctx, svc, "turned.tif", 256, 128, false)
	if !strings.Contains(msg, "orientation 6") || !strings.Contains(msg, "128x256") {
		t.Errorf("a size that ignores the orientation: %q", msg)
	}
	if msg := checkDisplayedSize(ctx, svc, "turned.tif", 256, 128, true); msg != "" {
		t.Errorf("with --ignore-orientation the stored size is right: %s", msg)
	}

	// The passed-through tile matches the rendered one; stripped of its
	// profile it does not, and check says so.
	passed, through, err := checkRender(ctx, svc, "adobe.tif", "64,0,64,64", "64,64", "default.jpg")
	if err != nil || !through {
		t.Fatalf("the aligned tile: passthrough %v, %v", through, err)
	}
	rendered, through, err := checkRender(ctx, svc, "adobe.tif", "64,0,64,64", "64,64", "default.png")
	if err != nil || through {
		t.Fatalf("the rendered tile: passthrough %v, %v", through, err)
	}
	if d, err := tileDifference(ctx, passed, rendered); err != nil || d > maxTileDifference {
		t.Errorf("stored tile with its profile against the render: %.1f, %v", d, err)
	}
	if d, err := tileDifference(ctx, withoutICC(passed), rendered); err != nil || d <= maxTileDifference {
		t.Errorf("stored tile without its profile against the render: %.1f, %v; want more than %d", d, err, maxTileDifference)
	}
}
