package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/iiifd/iiifd/internal/app"
	"github.com/iiifd/iiifd/internal/config"
	"github.com/iiifd/iiifd/internal/ingest"
	"github.com/iiifd/iiifd/internal/progress"
	"github.com/iiifd/iiifd/internal/publish"
	"github.com/iiifd/iiifd/internal/samples"
	"github.com/iiifd/iiifd/internal/source/fs"
)

const publishUsage = `Usage: iiifd publish [--root DIR|s3://BUCKET/PREFIX] [--base-url URL] [serve flags] OUT

Writes a static IIIF site into the folder OUT, for any static host (an S3
website, GitHub Pages, a university web space): every image under the root
as a IIIF level-0 tile directory (iiif/3/ID/, made by the ingest pipeline,
--tile-size and --jpeg-quality), a Presentation 3 manifest per image and the
collection (iiif/presentation/3/), the gallery (index.html) and the viewer
(viewer.html), and iiif-sw.js: a Service Worker that gives the pages of the
site the whole Image API (level 2: regions, sizes, rotation, qualities,
formats) by running iiifd's engine, compiled to WebAssembly, over the stored
tiles. Other clients get the level-0 service of the files.

URLs inside the site are relative to OUT, so it works under any path. Give
--base-url (the URL OUT will be published at) to make the ids of info.json
files and manifests absolute, which clients outside the site need.

Publishing again only rebuilds images whose source changed (OUT/` + publish.StateFile + `),
and removes those gone from the root. Without --root, the sample images are
published. Web server roots (http(s)://) cannot be listed and are refused.

Flags (publish's own, then the serve flags it uses):
`

// publishCmd runs `iiifd publish`.
func publishCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg := config.Default()
	fset := flag.NewFlagSet("iiifd publish", flag.ContinueOnError)
	fset.SetOutput(stderr)
	quiet := fset.Bool("quiet", false, "do not report progress")
	fset.Usage = func() {
		fmt.Fprint(fset.Output(), publishUsage)
		fset.PrintDefaults()
	}
	rest, code, ok := loadConfigArgs(fset, &cfg, args, stderr)
	if !ok {
		return code
	}
	if len(rest) != 1 {
		fmt.Fprintf(stderr, "iiifd publish: want OUT, the site's folder, got %d arguments\n", len(rest))
		return 2
	}
	out := rest[0]
	root, dir, cleanup, err := publishRoot(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "iiifd publish: %v\n", err)
		return 2
	}
	defer cleanup()
	build, err := workerBuilder()
	if err != nil {
		fmt.Fprintf(stderr, "iiifd publish: %v\n", err)
		return 1
	}
	var bar *progress.Reporter
	opt := publish.Options{
		Out:     out,
		Dir:     dir,
		BaseURL: cfg.BaseURL,
		Ingest:  ingest.Options{TileSize: cfg.TileSize, Quality: cfg.JPEGQuality},
		Build:   build,
		Engine:  publish.Engine(),
		Log:     stderr,
	}
	if !*quiet {
		opt.Progress = func(id string, p int) {
			if bar == nil {
				bar = progress.New(stderr, id)
			}
			bar.Update(int64(p), 100)
			if p >= 100 {
				bar.Done()
				bar = nil
			}
		}
	} else {
		opt.Log = io.Discard
	}
	start := time.Now()
	rep, err := publish.Run(ctx, root, opt)
	if bar != nil {
		bar.Done()
	}
	if err != nil && ctx.Err() != nil {
		fmt.Fprintf(stderr, "iiifd publish: interrupted; run it again to finish %s\n", out)
		return 130
	}
	if err != nil {
		fmt.Fprintf(stderr, "iiifd publish: %s\n", oneLine(err.Error()))
		return 1
	}
	fmt.Fprintf(stdout, "%s: %d images built, %d unchanged, %d removed in %s\n", out,
		len(rep.Built), len(rep.Kept), len(rep.Removed), time.Since(start).Round(time.Millisecond))
	return 0
}

// samplesTime is the modification time given to the extracted samples.
var samplesTime = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// publishRoot opens the root to publish: a folder, a bucket, or the
// sample images (extracted to a temporary folder).
func publishRoot(ctx context.Context, cfg config.Config) (publish.Lister, string, func(), error) {
	none := func() {}
	switch r := cfg.Root; {
	case r == "":
		dir, err := os.MkdirTemp("", "iiifd-samples-")
		if err != nil {
			return nil, "", none, err
		}
		cleanup := func() { os.RemoveAll(dir) }
		if err := samples.Extract(dir); err != nil {
			cleanup()
			return nil, "", none, err
		}
		// The extracted files get one fixed time, so that their versions
		// (size and modification time) stay the same from one publish to
		// the next and the samples are not rebuilt every time.
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			os.Chtimes(filepath.Join(dir, e.Name()), samplesTime, samplesTime)
		}
		src, err := fs.New(dir)
		if err != nil {
			cleanup()
			return nil, "", none, err
		}
		return src, dir, cleanup, nil
	case len(r) > 5 && r[:5] == "s3://":
		src, err := app.Bucket(ctx, cfg.Stores, r)
		if err != nil {
			return nil, "", none, err
		}
		return src, "", none, nil
	case config.RemoteRoot(r):
		return nil, "", none, errors.New("--root " + r + ": a web server cannot be listed, so its images cannot be found; publish from the folder or bucket that holds them")
	default:
		src, err := fs.New(r)
		if err != nil {
			return nil, "", none, err
		}
		return src, r, none, nil
	}
}
