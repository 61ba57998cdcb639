package publish

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	iofs "io/fs"
	"net/url"
	"path"
	"path/filepath"

	"github.com/iiifd/iiifd/internal/ingest"
	"github.com/iiifd/iiifd/internal/presentation"
	"github.com/iiifd/iiifd/internal/web"
)

// siteFS holds the pages' templates and the site's own scripts: the
// Service Worker, the engine module and the JavaScript host they share.
//
//go:embed site
var siteFS embed.FS

// EngineFiles are the browser engine's files, built by `make
// publish-assets` (the edge worker's WebAssembly module, which answers
// requests with the pure-Go engine, and Go's wasm_exec.js).
var EngineFiles = []string{"iiifd-edge.wasm", "wasm_exec.js"}

// scripts are the site's own scripts, written at its root (a Service
// Worker's scope is its script's folder: the root covers every page).
var scripts = []string{"iiif-sw.js", "iiif-host.js", "iiif-engine.mjs", "sw-register.js"}

var pages = template.Must(template.New("").Funcs(template.FuncMap{"esc": escID, "q": url.QueryEscape}).ParseFS(siteFS, "site/*.html"))

// item is an image as the gallery shows it.
type item struct {
	ID, Thumb     string
	Width, Height int
}

func writeSite(opt Options, imgs []Image) error {
	prefix := ""
	if opt.BaseURL != "" {
		prefix = opt.BaseURL + "/"
	}
	var refs []presentation.Ref
	var items []item
	for _, img := range imgs {
		doc := manifest(prefix, img)
		b, err := presentation.Marshal(doc)
		if err != nil {
			return err
		}
		if err := writeFile(filepath.Join(opt.Out, filepath.FromSlash(manifestPath(img.ID))), b); err != nil {
			return err
		}
		refs = append(refs, presentation.Ref{ID: doc.ID, Type: "Manifest", Label: doc.Label, Thumbnail: doc.Thumbnail})
		items = append(items, item{ID: img.ID, Thumb: sizeURL("", img.ID, thumbSize(img.Sizes)), Width: img.Width, Height: img.Height})
	}
	if refs == nil {
		refs = []presentation.Ref{}
	}
	coll := presentation.CollectionDoc{
		Context: presentation.Context,
		ID:      prefix + collectionPath,
		Type:    "Collection",
		Label:   presentation.Lang{"en": {"All images"}},
		Summary: presentation.Lang{"en": {fmt.Sprintf("%d images", len(imgs))}},
		Items:   refs,
	}
	b, err := presentation.Marshal(coll)
	if err != nil {
		return err
	}
	if err := writeFile(filepath.Join(opt.Out, filepath.FromSlash(collectionPath)), b); err != nil {
		return err
	}
	for name, data := range map[string]any{
		"index.html":  map[string]any{"Items": items, "Collection": collectionPath},
		"viewer.html": map[string]any{"Collection": collectionPath},
	} {
		var buf bytes.Buffer
		if err := pages.ExecuteTemplate(&buf, name, data); err != nil {
			return err
		}
		if err := writeFile(filepath.Join(opt.Out, name), buf.Bytes()); err != nil {
			return err
		}
	}
	for _, s := range scripts {
		b, err := siteFS.ReadFile("site/" + s)
		if err != nil {
			return err
		}
		if err := writeFile(filepath.Join(opt.Out, s), b); err != nil {
			return err
		}
	}
	for _, s := range EngineFiles {
		b, err := iofs.ReadFile(opt.Engine, s)
		if err != nil {
			return err
		}
		if err := writeFile(filepath.Join(opt.Out, s), b); err != nil {
			return err
		}
	}
	assets, err := web.Assets()
	if err != nil {
		return err
	}
	return iofs.WalkDir(assets, ".", func(p string, d iofs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := iofs.ReadFile(assets, p)
		if err != nil {
			return err
		}
		return writeFile(filepath.Join(opt.Out, "assets", filepath.FromSlash(p)), b)
	})
}

const collectionPath = "iiif/presentation/3/collection.json"

func manifestPath(id string) string { return "iiif/presentation/3/" + id + "/manifest.json" }

// thumbSize is the smallest stored size at least presentation.ThumbSize
// on its longer side, else the largest: a file every client can fetch.
func thumbSize(sizes []ingest.Size) ingest.Size {
	for _, s := range sizes {
		if max(s.Width, s.Height) >= presentation.ThumbSize {
			return s
		}
	}
	return sizes[len(sizes)-1]
}

func sizeURL(prefix, id string, s ingest.Size) string {
	return fmt.Sprintf("%s/full/%d,%d/0/default.jpg", serviceID(prefix, id), s.Width, s.Height)
}

// manifest is the Presentation 3 manifest of a published image. Its
// image service is level 0, which is what every client gets from the
// files; the Service Worker raises it to level 2 for the site's pages.
// The painting body and the thumbnail are stored sizes, so that they
// are files too.
func manifest(prefix string, img Image) presentation.ManifestDoc {
	m := prefix + manifestPath(escID(img.ID))
	canvas := path.Dir(m) + "/canvas/1"
	svc := []presentation.Service{{ID: serviceID(trimSlash(prefix), img.ID), Type: "ImageService3", Profile: "level0"}}
	largest := img.Sizes[len(img.Sizes)-1]
	thumb := thumbSize(img.Sizes)
	label := presentation.Label(img.ID)
	return presentation.ManifestDoc{
		Context: presentation.Context,
		ID:      m,
		Type:    "Manifest",
		Label:   label,
		Summary: presentation.Lang{"en": {fmt.Sprintf("%d × %d pixels", img.Width, img.Height)}},
		Thumbnail: []presentation.Resource{{
			ID: sizeURL(trimSlash(prefix), img.ID, thumb), Type: "Image", Format: "image/jpeg",
			Width: thumb.Width, Height: thumb.Height, Service: svc,
		}},
		Homepage: []presentation.Resource{{
			ID: prefix + "viewer.html?id=" + url.QueryEscape(img.ID), Type: "Text", Format: "text/html",
			Label: presentation.Lang{"en": {"Deep-zoom viewer"}},
		}},
		SeeAlso: []presentation.Resource{{
			ID: serviceID(trimSlash(prefix), img.ID) + "/info.json", Type: "Dataset", Format: "application/ld+json",
			Label: presentation.Lang{"en": {"IIIF image information"}},
		}},
		PartOf: []presentation.Ref{{ID: prefix + collectionPath, Type: "Collection", Label: presentation.Lang{"en": {"All images"}}}},
		Items: []presentation.Canvas{{
			ID: canvas, Type: "Canvas", Label: label, Width: img.Width, Height: img.Height,
			Items: []presentation.AnnotationPage{{
				ID: canvas + "/page/1", Type: "AnnotationPage",
				Items: []presentation.Annotation{{
					ID: canvas + "/page/1/annotation/1", Type: "Annotation", Motivation: "painting",
					Body: presentation.Resource{
						ID: sizeURL(trimSlash(prefix), img.ID, largest), Type: "Image", Format: "image/jpeg",
						Width: largest.Width, Height: largest.Height, Service: svc,
					},
					Target: canvas,
				}},
			}},
		}},
	}
}

func trimSlash(s string) string {
	if s != "" && s[len(s)-1] == '/' {
		return s[:len(s)-1]
	}
	return s
}
