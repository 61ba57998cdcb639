// Package publish writes a static IIIF site from the images of a root:
// each image as a level-0 tile directory made by the ingest pipeline, a
// Presentation 3 manifest per image and a collection, the gallery and
// viewer pages, and the Service Worker that gives the pages of the site
// the whole Image API (level 2) by running the edge worker's WebAssembly
// engine over the stored tiles.
//
// Every URL the site holds is relative to the site's root, so that the
// folder works under any path of any static host. Publishing again only
// rebuilds the images whose source version changed; the versions are
// kept in the site (StateFile).
package publish

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/iiifd/iiifd/internal/ingest"
	"github.com/iiifd/iiifd/internal/resolve"
	"github.com/iiifd/iiifd/internal/source"
)

// Lister is a root that can list its images and open them: a local
// folder (fs.FS) or a bucket (s3.Source).
type Lister interface {
	List(ctx context.Context, limit int, keep func(key string) bool) ([]source.Entry, error)
	Open(ctx context.Context, key string) (*source.Object, error)
}

// StateFile is the site's record of what it was built from: for each
// image, the source key and version its tiles were made from.
const StateFile = "iiifd-publish.json"

// Options say what to publish and how.
type Options struct {
	// Out is the site's folder; it is created if absent.
	Out string
	// Dir is the root's folder when the root is local: the ingest worker
	// (another process) reads the images there. Empty for buckets, whose
	// images are copied to temporary files first.
	Dir string
	// BaseURL, when set, is the public URL of Out ("https://host/path"):
	// info.json ids and manifest ids are then absolute, so that clients
	// outside the site can use them. Empty keeps them relative to Out.
	BaseURL string
	// Ingest are the tile directories' settings (Format is set to tiles).
	Ingest ingest.Options
	// Build runs the ingest pipeline (a worker subprocess).
	Build ingest.Builder
	// Engine holds the browser engine's files (EngineFiles); nil fails.
	Engine iofs.FS
	// Log receives one line per image; Progress, when set, the percent
	// done of the image being ingested.
	Log      io.Writer
	Progress func(id string, percent int)
}

// Report says what a run did.
type Report struct {
	Built, Kept, Removed []string
}

// Image is one published image, as the site's pages and the state file
// record it.
type Image struct {
	ID      string        `json:"id"`
	Key     string        `json:"key"`
	Version string        `json:"version"`
	Width   int           `json:"width"`
	Height  int           `json:"height"`
	Sizes   []ingest.Size `json:"sizes"`
}

type state struct {
	Images []Image `json:"images"`
}

// Run publishes the images of root into opt.Out.
func Run(ctx context.Context, root Lister, opt Options) (Report, error) {
	var rep Report
	if opt.Engine == nil {
		return rep, errors.New("this iiifd was built without the browser engine (run `make publish-assets`, then build iiifd)")
	}
	for _, f := range EngineFiles {
		if _, err := iofs.Stat(opt.Engine, f); err != nil {
			return rep, fmt.Errorf("the browser engine's %s is missing from this build (run `make publish-assets`, then build iiifd)", f)
		}
	}
	if opt.BaseURL != "" {
		u, err := url.Parse(opt.BaseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return rep, fmt.Errorf("--base-url %q is not an http(s) URL", opt.BaseURL)
		}
		opt.BaseURL = strings.TrimSuffix(opt.BaseURL, "/")
	}
	if opt.Log == nil {
		opt.Log = io.Discard
	}
	opt.Ingest.Format = ingest.FormatTiles
	if err := opt.Ingest.Validate(); err != nil {
		return rep, err
	}
	entries, err := root.List(ctx, 0, resolve.HasImageExtension)
	if err != nil {
		return rep, fmt.Errorf("listing the root: %w", err)
	}
	if err := os.MkdirAll(opt.Out, 0o755); err != nil {
		return rep, err
	}
	old := readState(opt.Out)
	ids := identifiers(entries)
	var imgs []Image
	for _, e := range entries {
		id := ids[e.Key]
		if e.Pyramid {
			fmt.Fprintf(opt.Log, "%s: skipped: already a tile directory (copy it under iiif/3/ yourself)\n", e.Key)
			continue
		}
		img, built, err := publishImage(ctx, root, e.Key, id, old, opt)
		if err != nil {
			if ctx.Err() != nil {
				return rep, ctx.Err()
			}
			return rep, fmt.Errorf("%s: %w", e.Key, err)
		}
		if built {
			rep.Built = append(rep.Built, id)
		} else {
			rep.Kept = append(rep.Kept, id)
		}
		imgs = append(imgs, img)
	}
	for _, o := range old {
		if !slices.ContainsFunc(imgs, func(i Image) bool { return i.ID == o.ID }) {
			os.RemoveAll(tileDir(opt.Out, o.ID))
			os.RemoveAll(filepath.Join(opt.Out, "iiif", "presentation", "3", filepath.FromSlash(o.ID)))
			rep.Removed = append(rep.Removed, o.ID)
		}
	}
	slices.SortFunc(imgs, func(a, b Image) int { return strings.Compare(a.ID, b.ID) })
	if err := writeSite(opt, imgs); err != nil {
		return rep, err
	}
	b, _ := json.MarshalIndent(state{Images: imgs}, "", "  ")
	return rep, writeFile(filepath.Join(opt.Out, StateFile), b)
}

// identifiers names each image by its key without the extension (the
// tile directory's path), unless two images would share a name: those
// keep their extension.
func identifiers(entries []source.Entry) map[string]string {
	count := map[string]int{}
	strip := func(k string) string { return strings.TrimSuffix(k, path.Ext(k)) }
	for _, e := range entries {
		count[strip(e.Key)]++
	}
	out := map[string]string{}
	for _, e := range entries {
		id := strip(e.Key)
		if count[id] > 1 || e.Pyramid {
			id = e.Key
		}
		out[e.Key] = id
	}
	return out
}

func tileDir(out, id string) string {
	return filepath.Join(out, "iiif", "3", filepath.FromSlash(id))
}

func readState(out string) []Image {
	b, err := os.ReadFile(filepath.Join(out, StateFile))
	if err != nil {
		return nil
	}
	var s state
	if json.Unmarshal(b, &s) != nil {
		return nil
	}
	return s.Images
}

// publishImage makes the tile directory of one image, unless the site
// already holds one made from the same source version.
func publishImage(ctx context.Context, root Lister, key, id string, old []Image, opt Options) (Image, bool, error) {
	obj, err := root.Open(ctx, key)
	if err != nil {
		return Image{}, false, err
	}
	defer obj.Close()
	version := fmt.Sprintf("%s|%d", obj.Version, obj.Size)
	dir := tileDir(opt.Out, id)
	if i := slices.IndexFunc(old, func(i Image) bool { return i.ID == id }); i >= 0 {
		prev := old[i]
		if prev.Key == key && prev.Version == version {
			if _, err := os.Stat(filepath.Join(dir, "info.json")); err == nil {
				fmt.Fprintf(opt.Log, "%s: unchanged\n", id)
				return prev, false, writeInfoID(dir, serviceID(opt.BaseURL, id))
			}
		}
	}
	fmt.Fprintf(opt.Log, "%s: building tiles from %s\n", id, key)
	src := ""
	if opt.Dir != "" {
		src = filepath.Join(opt.Dir, filepath.FromSlash(key))
	} else {
		// A remote object: the pipeline reads files, so it is copied to
		// a temporary file first (streamed, never held in memory).
		f, err := os.CreateTemp(opt.Out, ".download-*"+path.Ext(key))
		if err != nil {
			return Image{}, false, err
		}
		defer os.Remove(f.Name())
		_, err = io.Copy(f, io.NewSectionReader(obj, 0, obj.Size))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return Image{}, false, fmt.Errorf("downloading: %w", err)
		}
		src = f.Name()
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return Image{}, false, err
	}
	// The new directory is made beside the old one, which stays in place
	// until the new one is complete.
	fresh := dir + ".new"
	os.RemoveAll(fresh)
	iopt := opt.Ingest
	if opt.Progress != nil {
		iopt.Progress = func(p int) { opt.Progress(id, p) }
	}
	if err := ingest.Run(ctx, src, fresh, iopt, opt.Build); err != nil {
		return Image{}, false, err
	}
	if err := os.RemoveAll(dir); err != nil {
		return Image{}, false, err
	}
	if err := os.Rename(fresh, dir); err != nil {
		return Image{}, false, err
	}
	info, err := readInfo(dir)
	if err != nil {
		return Image{}, false, err
	}
	if err := writeInfoID(dir, serviceID(opt.BaseURL, id)); err != nil {
		return Image{}, false, err
	}
	return Image{ID: id, Key: key, Version: version, Width: info.Width, Height: info.Height, Sizes: info.Sizes}, true, nil
}

func readInfo(dir string) (ingest.Info, error) {
	var info ingest.Info
	b, err := os.ReadFile(filepath.Join(dir, "info.json"))
	if err == nil {
		err = json.Unmarshal(b, &info)
	}
	if err != nil {
		return info, fmt.Errorf("the tile directory's info.json: %w", err)
	}
	return info, nil
}

// writeInfoID sets the id of a tile directory's info.json: absolute
// under --base-url, else relative to the site's root. The Service
// Worker answers info.json itself for the pages of the site, with an
// absolute id; other clients read this file.
func writeInfoID(dir, id string) error {
	info, err := readInfo(dir)
	if err != nil {
		return err
	}
	if info.ID == id {
		return nil
	}
	info.ID = id
	b, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return err
	}
	return writeFile(filepath.Join(dir, "info.json"), b)
}

// escID escapes each segment of an identifier for a URL path; the
// segments are the tile directory's folders.
func escID(id string) string {
	segs := strings.Split(id, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}

// serviceID is the image service's id: base + "/iiif/3/" + id, or the
// same path relative to the site's root.
func serviceID(base, id string) string {
	p := "iiif/3/" + escID(id)
	if base == "" {
		return p
	}
	return base + "/" + p
}

// writeFile writes b to name through a temporary file and a rename, so
// that a reader never sees half a file.
func writeFile(name string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return err
	}
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, name)
}
