package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	iofs "io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/iiifd/iiifd/internal/app"
	"github.com/iiifd/iiifd/internal/config"
	"github.com/iiifd/iiifd/internal/fault"
	"github.com/iiifd/iiifd/internal/iiif"
	"github.com/iiifd/iiifd/internal/resolve"
)

// check walks every image under the root and runs the server's own
// pipeline on it (info.json, a thumbnail, the first tile), reporting each
// failure with its reason: the test to run over a collection before a
// migration.
func check(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg := config.Default()
	fs := flag.NewFlagSet("iiifd check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	jobs := fs.Int("jobs", runtime.NumCPU(), "images checked at once")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: iiifd check [--root DIR] [--jobs N] [serve flags]\n\n"+
			"Checks every image under the root as the server would serve it: info.json,\n"+
			"a thumbnail and a tile. Prints each failure with its reason and exits 1 if any\n"+
			"failed. Takes the serve flags too, so limits apply as in production.\n\n")
		fs.PrintDefaults()
	}
	if code, ok := loadConfig(fs, &cfg, args, stderr); !ok {
		return code
	}
	if *jobs < 1 {
		fmt.Fprintln(stderr, "iiifd check: --jobs must be at least 1")
		return 2
	}
	// Checking is the only work: no queue limit, no request deadline; and
	// no caches, so that every image is really decoded (a cached
	// derivative would hide a file that rotted since).
	cfg.Queue, cfg.QueueTimeout, cfg.RequestTimeout = 0, 0, 0
	cfg.CacheMemory, cfg.CacheDir, cfg.CacheRedis = 0, "", ""
	if config.RemoteRoot(cfg.Root) {
		fmt.Fprintln(stderr, "iiifd check: only a local --root directory can be checked (buckets and web servers are not walked)")
		return 2
	}
	a, err := app.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		fmt.Fprintf(stderr, "iiifd check: %v\n", err)
		return 1
	}
	defer a.Close()

	ids, err := findImages(a.Root())
	if err != nil {
		fmt.Fprintf(stderr, "iiifd check: %v\n", err)
		return 1
	}
	failures := forEach(ctx, ids, *jobs, "checking", stderr, func(id string) string { return checkImage(ctx, a, id) })
	if ctx.Err() != nil {
		fmt.Fprintln(stderr, "iiifd check: interrupted")
		return 1
	}
	for _, f := range failures {
		fmt.Fprintln(stdout, "FAIL", f)
	}
	fmt.Fprintf(stdout, "checked %d images under %s: %d ok, %d failed\n", len(ids), a.Root(), len(ids)-len(failures), len(failures))
	if len(failures) > 0 {
		return 1
	}
	return 0
}

// findImages lists the identifiers under root: image files, and folders
// holding a tile pyramid (an info.json), whose tiles are not listed.
// Hidden files and folders are skipped, as the server never serves them.
func findImages(root string) ([]string, error) {
	var ids []string
	err := filepath.WalkDir(root, func(p string, d iofs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		if rel != "." && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			if _, err := os.Stat(filepath.Join(p, "info.json")); err == nil && rel != "." {
				ids = append(ids, rel)
				return filepath.SkipDir
			}
			return nil
		}
		if resolve.HasImageExtension(rel) {
			ids = append(ids, rel)
		}
		return nil
	})
	return ids, err
}

// checkImage runs one image through the pipeline and returns why it
// failed, or "".
func checkImage(ctx context.Context, a *app.App, id string) string {
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
	tw, th := doc.Tiles[0].Width, doc.Tiles[0].Height
	if th == 0 {
		th = tw
	}
	w, h := min(tw, doc.Width), min(th, doc.Height)
	for _, c := range []struct{ what, region, size string }{
		{"thumbnail", "full", "!256,256"},
		{"tile", fmt.Sprintf("0,0,%d,%d", w, h), fmt.Sprintf("%d,%d", w, h)},
	} {
		req, err := iiif.ParseImage(iiif.V3, c.region, c.size, "0", "default.jpg")
		if err != nil {
			return c.what + ": " + reason(err)
		}
		job, err := svc.Image(ctx, id, req)
		if err != nil {
			return c.what + ": " + reason(err)
		}
		err = job.Render(ctx, io.Discard)
		job.Close()
		if err != nil {
			return c.what + ": " + reason(err)
		}
	}
	return ""
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
