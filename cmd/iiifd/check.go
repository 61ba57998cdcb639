package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"image/png"
	"io"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"strings"

	"github.com/iiifd/iiifd/internal/app"
	"github.com/iiifd/iiifd/internal/config"
	"github.com/iiifd/iiifd/internal/describe"
	"github.com/iiifd/iiifd/internal/engine"
	"github.com/iiifd/iiifd/internal/fault"
	"github.com/iiifd/iiifd/internal/iiif"
	"github.com/iiifd/iiifd/internal/pixels"
	"github.com/iiifd/iiifd/internal/plan"
	"github.com/iiifd/iiifd/internal/probe"
	"github.com/iiifd/iiifd/internal/resolve"
	"github.com/iiifd/iiifd/internal/service"
	"github.com/iiifd/iiifd/internal/source/fs"
	"github.com/iiifd/iiifd/internal/source/route"
)

// check walks every image under the roots (directories are walked,
// buckets listed) and runs the server's own pipeline on it (info.json, a
// thumbnail, the first tile), reporting each failure with its reason: the
// test to run over a collection before a migration. Identifiers given
// after the flags are checked instead, wherever they are stored; they are
// the only way to check images on web servers, which cannot be listed.
func check(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg := config.Default()
	fs := flag.NewFlagSet("iiifd check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	jobs := fs.Int("jobs", runtime.NumCPU(), "images checked at once")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: iiifd check [--root DIR|s3://BUCKET/PREFIX|URL] [--jobs N] [serve flags] [ID ...]\n\n"+
			"Checks every image under the roots as the server would serve it: info.json,\n"+
			"a thumbnail and a tile. Directories are walked and buckets listed; web servers\n"+
			"(http(s):// roots) cannot be listed, so their images are checked only when\n"+
			"named: identifiers given after the flags are checked alone, from whichever\n"+
			"root serves them. Prints each failure with its reason and exits 1 if any\n"+
			"failed. Takes the serve flags too, so limits apply as in production.\n\n")
		fs.PrintDefaults()
	}
	given, code, ok := loadConfigArgs(fs, &cfg, args, stderr)
	if !ok {
		return code
	}
	if *jobs < 1 {
		fmt.Fprintln(stderr, "iiifd check: --jobs must be at least 1")
		return 2
	}
	for _, id := range given {
		if id == "" || strings.HasPrefix(id, "-") {
			fmt.Fprintf(stderr, "iiifd check: %q is not an identifier (flags go before the identifiers)\n", id)
			return 2
		}
	}
	// Checking is the only work: no queue limit, no request deadline; and
	// no caches, so that every image is really decoded (a cached
	// derivative would hide a file that rotted since).
	cfg.Queue, cfg.QueueTimeout, cfg.RequestTimeout = 0, 0, 0
	cfg.CacheMemory, cfg.CacheDir, cfg.CacheRedis = 0, "", ""
	// A slide that crashes OpenSlide is reported, not the end of the run.
	if exe, err := os.Executable(); err == nil {
		cfg.SlideCheckCommand = []string{exe, slideCheckCommand}
	}
	a, err := app.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		fmt.Fprintf(stderr, "iiifd check: %v\n", err)
		return 1
	}
	defer a.Close()

	ids, where := given, "given"
	if len(given) == 0 {
		roots := checkRoots(a.Root(), cfg.Stores.Roots)
		var listed, unlisted []string
		ids, listed, unlisted, err = listImages(ctx, roots, cfg)
		if err != nil {
			fmt.Fprintf(stderr, "iiifd check: %s\n", reason(err))
			return 1
		}
		for _, r := range unlisted {
			fmt.Fprintf(stderr, "iiifd check: %s is a web server, which cannot be listed: its images are not checked; name them after the flags (iiifd check [flags] ID ...)\n", r)
		}
		if len(listed) == 0 {
			return 2
		}
		where = "under " + strings.Join(listed, ", ")
	}
	failures := forEach(ctx, ids, *jobs, "checking", stderr, func(id string) string {
		return checkImage(ctx, a, id, cfg.IgnoreOrientation)
	})
	if ctx.Err() != nil {
		fmt.Fprintln(stderr, "iiifd check: interrupted")
		return 1
	}
	for _, f := range failures {
		fmt.Fprintln(stdout, "FAIL", f)
	}
	fmt.Fprintf(stdout, "checked %d images %s: %d ok, %d failed\n", len(ids), where, len(ids)-len(failures), len(failures))
	if len(failures) > 0 {
		return 1
	}
	return 0
}

// checkRoot is a root to list and the rule that sends identifiers to it
// (empty for --root, which takes what no rule takes).
type checkRoot struct{ match, root string }

func checkRoots(root string, rules []config.RootRule) []checkRoot {
	var out []checkRoot
	for _, r := range rules {
		out = append(out, checkRoot{r.Match, r.Root})
	}
	if root != "" {
		out = append(out, checkRoot{"", root})
	}
	return out
}

// listImages lists the identifiers of every root it can list: each
// root's images, as identifiers (the key layout undone), kept only where
// the roots' rules send them to that root, as the server would. It
// returns them sorted, and the roots it listed and those it could not
// (web servers). Buckets are listed a page at a time: what is kept is
// the identifiers, not the keys (a tile pyramid's tiles are many).
func listImages(ctx context.Context, roots []checkRoot, cfg config.Config) (ids, listed, unlisted []string, err error) {
	layout, err := route.ParseLayout(cfg.Stores.KeyLayout)
	if err != nil {
		return nil, nil, nil, err
	}
	// owner is the index of the root the server opens id in.
	owner := func(id string) int {
		for i, r := range roots {
			if r.match == "" || route.Match(r.match, id) {
				return i
			}
		}
		return -1
	}
	seen := map[string]bool{}
	for i, r := range roots {
		add := func(k string) {
			id := layout.Unkey(k)
			if owner(id) == i && !seen[id] {
				seen[id] = true
				ids = append(ids, id)
			}
		}
		switch {
		case strings.HasPrefix(r.root, "s3://"):
			err = listBucket(ctx, r.root, cfg, add)
		case config.RemoteRoot(r.root):
			unlisted = append(unlisted, r.root)
			continue
		default:
			err = listFolder(ctx, r.root, add)
		}
		if err != nil {
			return nil, nil, nil, fmt.Errorf("listing %s: %w", r.root, err)
		}
		listed = append(listed, r.root)
	}
	slices.Sort(ids)
	return ids, listed, unlisted, nil
}

// checkListPage is the most keys one bucket listing request asks for (0:
// the store's most); a variable for the tests.
var checkListPage int32

// listBucket lists the images stored under an s3:// root, as keys under
// its prefix, calling add with each (in no particular order).
func listBucket(ctx context.Context, root string, cfg config.Config, add func(key string)) error {
	st := cfg.Stores
	st.ListPage = checkListPage
	src, err := app.Bucket(ctx, st, root)
	if err != nil {
		return err
	}
	entries, err := src.List(ctx, 0, resolve.HasImageExtension)
	for _, e := range entries {
		add(e.Key)
	}
	return err
}

// listFolder lists the images under a local root as the server's
// gallery does (fs.List): image files, and tile pyramids as their folder.
func listFolder(ctx context.Context, root string, add func(key string)) error {
	src, err := fs.New(root)
	if err != nil {
		return err
	}
	entries, err := src.List(ctx, 0, resolve.HasImageExtension)
	for _, e := range entries {
		add(e.Key)
	}
	return err
}

// checkImage runs one image through the pipeline and returns why it
// failed, or "". Besides errors it looks for what a user would see
// wrong: a size in info.json that is not the source's as displayed (its
// orientation applied unless ignoreOrientation), and a stored tile sent
// as it is that looks different from the same tile rendered.
func checkImage(ctx context.Context, a *app.App, id string, ignoreOrientation bool) string {
	svc := a.Service()
	info, err := svc.Info(ctx, iiif.V3, id, "http://check")
	if err != nil {
		return "info.json: " + reason(err)
	}
	var doc struct {
		Width, Height int
		Tiles         []struct{ Width, Height int }
	}
	if err := json.Unmarshal(info.Body, &doc); err != nil || len(doc.Tiles) == 0 {
		return "info.json: not the expected document"
	}
	if msg := checkDisplayedSize(ctx, svc, id, doc.Width, doc.Height, ignoreOrientation); msg != "" {
		return msg
	}
	tw, th := doc.Tiles[0].Width, doc.Tiles[0].Height
	if th == 0 {
		th = tw
	}
	w, h := min(tw, doc.Width), min(th, doc.Height)
	tile := fmt.Sprintf("0,0,%d,%d", w, h)
	size := fmt.Sprintf("%d,%d", w, h)
	var passed []byte
	for _, c := range []struct{ what, region, size string }{
		{"thumbnail", "full", "!256,256"},
		{"tile", tile, size},
	} {
		b, through, err := checkRender(ctx, svc, id, c.region, c.size, "default.jpg")
		if err != nil {
			return c.what + ": " + reason(err)
		}
		if through {
			passed = b
		}
	}
	if passed == nil {
		return ""
	}
	// The first tile was sent as stored: it must look as the renderer
	// draws it, colour managed as a browser shows it.
	rendered, _, err := checkRender(ctx, svc, id, tile, size, "default.png")
	if err != nil {
		return "tile as png: " + reason(err)
	}
	d, err := tileDifference(ctx, passed, rendered)
	if err != nil {
		return "tile: comparing the stored tile with the rendered one: " + reason(err)
	}
	if d > maxTileDifference {
		return fmt.Sprintf("tile: the stored tile sent as it is (%s/%s/0/default.jpg) differs from the same tile rendered (default.png) by %.1f of 255 on average (more than %d): viewers show the image's tiles in other colours or another orientation than its thumbnails", tile, size, d, maxTileDifference)
	}
	return ""
}

// maxTileDifference is the largest mean absolute difference (of 255, per
// channel) between a passed-through tile and the rendered one that check
// lets pass: JPEG re-encoding alone stays near 1 to 2.
const maxTileDifference = 4

// checkDisplayedSize compares info.json's size with the source's stored
// size turned by its orientation, and says what is wrong, or "".
func checkDisplayedSize(ctx context.Context, svc *service.Service, id string, w, h int, ignoreOrientation bool) string {
	st, ok, err := svc.Stored(ctx, id)
	if err != nil {
		return "probe: " + reason(err)
	}
	if !ok {
		return ""
	}
	o := st.Orientation
	if ignoreOrientation || o < 1 || o > 8 {
		o = 1
	}
	sw, sh := plan.OrientedSize(o, st.Width, st.Height)
	if w != sw || h != sh {
		return fmt.Sprintf("info.json: size %dx%d, but the source is stored %dx%d with orientation %d, so viewers show it %dx%d", w, h, st.Width, st.Height, st.Orientation, sw, sh)
	}
	return ""
}

// checkRender renders one request of id and returns its bytes, and
// whether they are a stored tile passed through.
func checkRender(ctx context.Context, svc *service.Service, id, region, size, file string) ([]byte, bool, error) {
	req, err := iiif.ParseImage(iiif.V3, region, size, "0", file)
	if err != nil {
		return nil, false, err
	}
	job, err := svc.Image(ctx, id, req)
	if err != nil {
		return nil, false, err
	}
	defer job.Close()
	res, err := job.Render(ctx)
	if err != nil {
		return nil, false, err
	}
	defer res.Close()
	b, err := io.ReadAll(res.Body())
	return b, job.Passthrough, err
}

// tileDifference decodes a passed-through JPEG tile colour managed (its
// embedded profile converted to sRGB, as the renderer and browsers do)
// and a rendered PNG tile, and returns their mean absolute difference per
// channel, or an error when they differ in size.
func tileDifference(ctx context.Context, passedJPEG, renderedPNG []byte) (float64, error) {
	hdr, err := probe.Read(bytes.NewReader(passedJPEG), int64(len(passedJPEG)))
	if err != nil {
		return 0, err
	}
	req, err := iiif.ParseImage(iiif.V3, "full", "max", "0", "default.png")
	if err != nil {
		return 0, err
	}
	p, err := plan.Make(req, describe.PlanImage(hdr), plan.Limits{})
	if err != nil {
		return 0, err
	}
	var buf bytes.Buffer
	in := engine.Input{Reader: bytes.NewReader(passedJPEG), Size: int64(len(passedJPEG)), Level: hdr.Levels[0]}
	if err := pixels.Render(ctx, in, &p, engine.EncodeOptions{}, &buf); err != nil {
		return 0, err
	}
	a, err := png.Decode(&buf)
	if err != nil {
		return 0, err
	}
	b, err := png.Decode(bytes.NewReader(renderedPNG))
	if err != nil {
		return 0, err
	}
	if a.Bounds().Size() != b.Bounds().Size() {
		return 0, fmt.Errorf("the stored tile is %v, the rendered one %v", a.Bounds().Size(), b.Bounds().Size())
	}
	var sum, n float64
	for y := range a.Bounds().Dy() {
		for x := range a.Bounds().Dx() {
			r1, g1, b1, _ := a.At(a.Bounds().Min.X+x, a.Bounds().Min.Y+y).RGBA()
			r2, g2, b2, _ := b.At(b.Bounds().Min.X+x, b.Bounds().Min.Y+y).RGBA()
			for _, d := range []int{int(r1>>8) - int(r2>>8), int(g1>>8) - int(g2>>8), int(b1>>8) - int(b2>>8)} {
				sum += float64(max(d, -d))
				n++
			}
		}
	}
	return sum / max(n, 1), nil
}

// reason is the operator's view of an error: the public message with its
// cause (libvips' or the probe's words) and what wraps it, on one line.
func reason(err error) string {
	var fe *fault.Error
	msg := err.Error()
	if errors.As(err, &fe) {
		if i := strings.LastIndex(msg, fe.Error()); i >= 0 && fe.Error() != "" {
			msg = msg[:i] + fe.Detail() + msg[i+len(fe.Error()):]
		} else {
			msg = fe.Detail()
		}
	}
	return strings.Join(strings.Fields(msg), " ")
}
