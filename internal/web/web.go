// Package web is the human side of iiifd: a gallery of the images under
// the root (/), a deep-zoom viewer built on OpenSeadragon (/view/{id}),
// IIIF Presentation 3.0 manifests and a collection of every image
// (/iiif/presentation/3/...), and uploads that are ingested into
// pyramids (/upload, POST /admin/images, GET /admin/images/{job}).
//
// Pages are rendered on the server with html/template and work without
// JavaScript except the viewer and the upload progress. Static assets
// (our CSS and JavaScript, and OpenSeadragon's release files, committed
// in assets/osd and checked against the npm pin by scripts/web-assets) are embedded in the
// binary and served under a path holding a digest of their content, so
// they can be cached for ever.
package web

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	iofs "io/fs"
	"log/slog"
	"net/http"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/iiifd/iiifd/internal/fault"
	"github.com/iiifd/iiifd/internal/httpapi"
	"github.com/iiifd/iiifd/internal/iiif"
	"github.com/iiifd/iiifd/internal/service"
	"github.com/iiifd/iiifd/internal/source"
)

//go:generate ../../scripts/web-assets

//go:embed templates
var templateFS embed.FS

//go:embed assets
var assetFS embed.FS

// Images is the part of the pipeline the pages use: the facts of an image.
type Images interface {
	Info(ctx context.Context, v iiif.Version, id, base string) (*service.Info, error)
}

// Lister lists the images under the root.
type Lister interface {
	List(ctx context.Context, limit int, keep func(key string) bool) ([]source.Entry, error)
}

// Config configures the web front.
type Config struct {
	Images Images
	List   Lister
	// Root is the directory uploads are written to (the served root).
	Root string
	// AdminToken enables uploads for clients that send it as a bearer
	// token; empty disables them (the upload routes are absent).
	AdminToken string
	// UploadMaxSize is the largest upload accepted, in bytes.
	UploadMaxSize int64
	// Ingest converts an upload into the pyramidal TIFF dst, reporting
	// its progress in percent; it must fail with an error wrapping
	// fs.ErrExist when dst appeared meanwhile, and remove what it wrote
	// when it fails or ctx ends. Uploads need it. It is a function, not
	// package ingest, so that the web front links no pixel engine: iiifd
	// passes ingest.Run with a worker process.
	Ingest Converter
	// IngestTimeout bounds the ingest of one upload: this long plus a
	// second per MiB of the upload (0 = no limit). Ingests still running
	// at Close are stopped too.
	IngestTimeout time.Duration
	// PerPage is the number of images on a gallery page (default 24) and
	// PerCollectionPage the number of manifests in a page of the
	// collection (default 1000).
	PerPage, PerCollectionPage int
	// MaxImages bounds the images listed (default 100000).
	MaxImages int
	Logger    *slog.Logger
}

// Converter writes the pyramid of the image file src to dst.
type Converter func(ctx context.Context, src, dst string, progress func(percent int)) error

// Handler serves the web front. Close stops uploads being ingested.
type Handler struct {
	cfg     Config
	mux     *http.ServeMux
	tmpl    map[string]*template.Template
	assets  assets
	jobs    *jobs
	log     *slog.Logger
	listing listing
	// receiving bounds the uploads being received at once (each may fill
	// UploadMaxSize of disk).
	receiving chan struct{}
}

// New returns the web front's handler.
func New(cfg Config) (*Handler, error) {
	if cfg.Images == nil || cfg.List == nil {
		return nil, errors.New("web: Images and List are required")
	}
	if cfg.AdminToken != "" && cfg.Root == "" {
		return nil, errors.New("web: uploads need the root directory")
	}
	if cfg.AdminToken != "" && cfg.Ingest == nil {
		return nil, errors.New("web: uploads need a converter (Config.Ingest)")
	}
	if cfg.UploadMaxSize <= 0 {
		cfg.UploadMaxSize = 2 << 30
	}
	if cfg.PerPage <= 0 {
		cfg.PerPage = 24
	}
	if cfg.PerCollectionPage <= 0 {
		cfg.PerCollectionPage = 1000
	}
	if cfg.MaxImages <= 0 {
		cfg.MaxImages = 100000
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	h := &Handler{cfg: cfg, mux: http.NewServeMux(), log: cfg.Logger, receiving: make(chan struct{}, maxReceiving)}
	var err error
	if h.assets, err = loadAssets(); err != nil {
		return nil, err
	}
	if h.tmpl, err = h.parseTemplates(); err != nil {
		return nil, err
	}
	h.jobs = newJobs()
	h.mux.HandleFunc("GET /{$}", h.gallery)
	h.mux.HandleFunc("GET /view/", h.viewer)
	h.mux.HandleFunc("GET /assets/", h.asset)
	h.mux.HandleFunc("GET /iiif/presentation/3/collection", h.collection)
	h.mux.HandleFunc("GET /iiif/presentation/3/collection/{page}", h.collection)
	h.mux.HandleFunc("GET /iiif/presentation/3/", h.manifest)
	h.mux.HandleFunc("OPTIONS /iiif/presentation/3/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", "GET, HEAD, OPTIONS")
		w.WriteHeader(http.StatusNoContent)
	})
	h.mux.HandleFunc("GET /upload", func(w http.ResponseWriter, r *http.Request) {
		h.render(w, r, http.StatusOK, "upload", map[string]any{"Title": "Upload", "MaxSize": size(h.cfg.UploadMaxSize)})
	})
	if cfg.AdminToken != "" {
		h.mux.HandleFunc("POST /admin/images", h.admin(h.upload))
		h.mux.HandleFunc("GET /admin/images/{job}", h.admin(h.jobStatus))
	}
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		h.page(w, r, fault.New(fault.NotFound, "there is no page at %s", truncate(r.URL.Path)))
	})
	return h, nil
}

// maxReceiving is how many uploads may be received at once.
const maxReceiving = 4

// ServeHTTP serves the web front.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// Close cancels the ingests in progress (their outputs are not written)
// and waits for them to end.
func (h *Handler) Close() error {
	h.jobs.close()
	return nil
}

// base is the public URL of the server for r.
func base(r *http.Request) string { return httpapi.BaseURL(r) }

// failJSON answers an error of a JSON route.
func (h *Handler) failJSON(w http.ResponseWriter, r *http.Request, err error) {
	status, msg := h.status(r, err)
	if status == fault.StatusClientClosed {
		return
	}
	httpapi.SetErrorHeader(w.Header(), err, status)
	writeJSON(w, status, map[string]any{"error": msg, "status": status})
}

// status maps err to its status and public message as the IIIF routes
// do (fault.Response), logging faults; overload and deadlines (503) are
// expected, counted elsewhere, and not logged as faults.
func (h *Handler) status(r *http.Request, err error) (int, string) {
	status, msg := fault.Response(err)
	if status >= 500 && status != http.StatusServiceUnavailable {
		h.log.Error("web request failed", "path", r.URL.Path, "request_id", httpapi.RequestID(r.Context()), "error", err)
	}
	return status, msg
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.MarshalIndent(v, "", "  ")
	hd := w.Header()
	hd.Set("Content-Type", "application/json")
	hd.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// assets are the embedded static files, with the digest of all of them
// that goes into their URLs.
type assets struct {
	files  iofs.FS
	digest string
}

func loadAssets() (assets, error) {
	sub, err := iofs.Sub(assetFS, "assets")
	if err != nil {
		return assets{}, err
	}
	var names []string
	iofs.WalkDir(sub, ".", func(p string, d iofs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			names = append(names, p)
		}
		return nil
	})
	sort.Strings(names)
	sum := sha256.New()
	for _, n := range names {
		b, err := iofs.ReadFile(sub, n)
		if err != nil {
			return assets{}, err
		}
		fmt.Fprintf(sum, "%s\x00%d\x00", n, len(b))
		sum.Write(b)
	}
	// OpenSeadragon is committed with the sources, so every build has
	// it; its absence is a broken checkout, not a lighter build.
	if _, err := iofs.Stat(sub, osdScript); err != nil {
		return assets{}, fmt.Errorf("web: the viewer bundle is missing from the embedded assets: %w", err)
	}
	return assets{files: sub, digest: hex.EncodeToString(sum.Sum(nil))[:16]}, nil
}

// osdScript is OpenSeadragon's script among the assets.
const osdScript = "osd/openseadragon.min.js"

// url is the path of the asset name.
func (a assets) url(name string) string { return "/assets/" + a.digest + "/" + name }

// asset serves /assets/{digest}/{name}. With the current digest the
// file never changes at that URL and is cached for a year; an old digest
// (a page from before an upgrade) still gets today's file, revalidated.
func (h *Handler) asset(w http.ResponseWriter, r *http.Request) {
	digest, name, ok := strings.Cut(strings.TrimPrefix(r.URL.Path, "/assets/"), "/")
	name = path.Clean("/" + name)[1:]
	f, err := h.assets.files.Open(name)
	if !ok || name == "" || err != nil {
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.IsDir() {
		http.NotFound(w, r)
		return
	}
	hd := w.Header()
	etag := `"` + h.assets.digest + `"`
	hd.Set("ETag", etag)
	if digest == h.assets.digest {
		hd.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		hd.Set("Cache-Control", "no-cache")
	}
	hd.Set("X-Content-Type-Options", "nosniff")
	// ServeContent sets the type from the extension, answers ranges and
	// If-None-Match against the ETag.
	http.ServeContent(w, r, name, st.ModTime(), f.(io.ReadSeeker))
}

// relRoot is the server's root as a URL relative to the page r asks
// for: "." for /upload, ".." for /view/x, "../.." for /view/a/b. Pages
// load their scripts and styles and link to each other through it, so
// that they reach the server the page came from whatever base URL the
// request's headers claim, and also behind a proxy that serves the
// server under a path prefix.
func relRoot(r *http.Request) string {
	depth := strings.Count(r.URL.EscapedPath(), "/") - 1
	if depth <= 0 {
		return "."
	}
	return strings.TrimSuffix(strings.Repeat("../", depth), "/")
}

// once-per-process template parsing guard for tests that build many
// handlers.
var parseMu sync.Mutex

func (h *Handler) parseTemplates() (map[string]*template.Template, error) {
	parseMu.Lock()
	defer parseMu.Unlock()
	funcs := template.FuncMap{
		"asset": h.assets.url,
		"esc":   escID,
	}
	out := map[string]*template.Template{}
	for _, page := range []string{"gallery", "viewer", "upload", "error"} {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+page+".html")
		if err != nil {
			return nil, err
		}
		out[page] = t
	}
	return out, nil
}

// render writes page with data, small and uncached: pages change as
// images come and go.
func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, page string, data map[string]any) {
	data["Base"] = relRoot(r)
	data["Public"] = base(r)
	data["AdminEnabled"] = h.cfg.AdminToken != ""
	var b strings.Builder
	if err := h.tmpl[page].Execute(&b, data); err != nil {
		h.log.Error("rendering a page", "page", page, "error", err)
		http.Error(w, "internal server error", http.StatusInternalServerError)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Cache-Control", "no-cache")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "same-origin")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		io.WriteString(w, b.String())
	}
}

// page answers an error with an HTML page.
func (h *Handler) page(w http.ResponseWriter, r *http.Request, err error) {
	status, msg := h.status(r, err)
	if status == fault.StatusClientClosed {
		return
	}
	httpapi.SetErrorHeader(w.Header(), err, status)
	h.render(w, r, status, "error", map[string]any{"Title": http.StatusText(status), "Status": status, "Message": msg})
}

func truncate(s string) string {
	if len(s) <= 200 {
		return s
	}
	return s[:200] + "…"
}

// Assets returns the web front's static files (the stylesheet, the
// viewer's script and OpenSeadragon), for `iiifd publish`, which writes
// them into a static site so that its pages look and behave as the
// server's do.
func Assets() (iofs.FS, error) {
	a, err := loadAssets()
	return a.files, err
}
