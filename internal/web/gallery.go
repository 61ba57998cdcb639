package web

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/iiifd/iiifd/internal/fault"
	"github.com/iiifd/iiifd/internal/httpapi"
	"github.com/iiifd/iiifd/internal/iiif"
	"github.com/iiifd/iiifd/internal/presentation"
	"github.com/iiifd/iiifd/internal/resolve"
	"github.com/iiifd/iiifd/internal/source"
)

// escID escapes an identifier as one URL path segment (%2F for slashes).
func escID(id string) string { return url.PathEscape(id) }

// item is an image as the pages show it.
type item struct {
	ID     string // identifier
	Name   string // the identifier without its extension
	Width  int
	Height int
	Thumb  string // thumbnail URL
	Err    string // why its facts could not be read
}

// images lists the identifiers of the images under the root whose
// identifier contains q (case-insensitively), in lexical order, and
// whether the listing stopped at its bound.
func (h *Handler) images(ctx context.Context, q string) ([]string, bool, error) {
	all, truncated, err := h.listing.get(ctx, h.cfg)
	if err != nil {
		return nil, false, err
	}
	q = strings.ToLower(strings.TrimSpace(q))
	if q == "" {
		return all, truncated, nil
	}
	ids := make([]string, 0, len(all))
	for _, id := range all {
		if strings.Contains(strings.ToLower(id), q) {
			ids = append(ids, id)
		}
	}
	return ids, truncated, nil
}

// listingTTL is how long a listing of the root is reused: paging through
// the gallery, or many clients at once, walk the root once.
const listingTTL = 2 * time.Second

// listing remembers the identifiers under the root for listingTTL;
// callers that arrive during a walk wait for it rather than walk too.
type listing struct {
	mu        sync.Mutex
	at        time.Time
	ids       []string
	truncated bool
}

func (l *listing) get(ctx context.Context, cfg Config) ([]string, bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.at.IsZero() && time.Since(l.at) < listingTTL {
		return l.ids, l.truncated, nil
	}
	entries, err := cfg.List.List(ctx, cfg.MaxImages, resolve.HasImageExtension)
	truncated := errors.Is(err, source.ErrListTruncated)
	if err != nil && !truncated {
		return nil, false, err
	}
	ids := make([]string, len(entries))
	for i, e := range entries {
		ids[i] = e.Key
	}
	l.ids, l.truncated, l.at = ids, truncated, time.Now()
	return ids, truncated, nil
}

// forget drops the remembered listing (an image was added).
func (l *listing) forget() {
	l.mu.Lock()
	l.at = time.Time{}
	l.mu.Unlock()
}

// name is how an identifier is shown: without its image extension.
func name(id string) string {
	if resolve.HasImageExtension(id) {
		return strings.TrimSuffix(id, path.Ext(id))
	}
	return id
}

// facts reads the size of the image id from its info.json.
func (h *Handler) facts(ctx context.Context, id, base string) (w, ht int, etag string, err error) {
	info, err := h.cfg.Images.Info(ctx, iiif.V3, id, base)
	if err != nil {
		return 0, 0, "", err
	}
	var size struct{ Width, Height int }
	if err := json.Unmarshal(info.Body, &size); err != nil {
		return 0, 0, "", fault.Wrap(fault.Internal, err, "the image information could not be read")
	}
	return size.Width, size.Height, info.ETag, nil
}

// gallery serves /: a page of thumbnails with names and sizes, a filter
// box (?q=) and pages (?page=), all on the server so it works without
// JavaScript.
func (h *Handler) gallery(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query().Get("q")
	ids, truncated, err := h.images(r.Context(), q)
	if err != nil {
		h.page(w, r, err)
		return
	}
	per := h.cfg.PerPage
	pages := max(1, presentation.Pages(len(ids), per))
	page, _ := strconv.Atoi(r.URL.Query().Get("page"))
	page = min(max(page, 1), pages)
	shown := ids[min((page-1)*per, len(ids)):min(page*per, len(ids))]
	b := base(r)
	u := presentation.URLs{Base: b}
	items := make([]item, len(shown))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for i, id := range shown {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			it := item{ID: id, Name: name(id)}
			wd, ht, _, err := h.facts(r.Context(), id, b)
			if err != nil {
				_, it.Err = h.status(r, err)
			} else {
				it.Width, it.Height = wd, ht
				it.Thumb = u.Thumbnail(presentation.Image{ID: id, Width: wd, Height: ht})
			}
			items[i] = it
		}()
	}
	wg.Wait()
	link := func(p int) string {
		v := url.Values{}
		if q != "" {
			v.Set("q", q)
		}
		if p > 1 {
			v.Set("page", strconv.Itoa(p))
		}
		if len(v) == 0 {
			return b + "/"
		}
		return b + "/?" + v.Encode()
	}
	data := map[string]any{
		"Title": "Images", "Query": q, "Items": items, "Total": len(ids), "Truncated": truncated,
		"Page": page, "Pages": pages, "Collection": u.Collection(0),
	}
	if page > 1 {
		data["Prev"] = link(page - 1)
	}
	if page < pages {
		data["Next"] = link(page + 1)
	}
	h.render(w, r, http.StatusOK, "gallery", data)
}

// idAfter returns the identifier in r's escaped path after prefix and
// before suffix, percent-decoded (so %2F stays inside the identifier).
func idAfter(r *http.Request, prefix, suffix string) (string, error) {
	p, ok := strings.CutPrefix(r.URL.EscapedPath(), prefix)
	if !ok {
		return "", fault.New(fault.NotFound, "no identifier in the URL")
	}
	if suffix != "" {
		if p, ok = strings.CutSuffix(p, suffix); !ok {
			return "", fault.New(fault.NotFound, "there is no document at %s", truncate(r.URL.Path))
		}
	}
	id, err := url.PathUnescape(p)
	if err != nil {
		return "", fault.New(fault.BadRequest, "malformed percent-encoding in the URL path")
	}
	if id == "" {
		return "", fault.New(fault.NotFound, "no identifier in the URL")
	}
	if !resolve.ValidIdentifier(id) {
		return "", resolve.ErrInvalidIdentifier
	}
	return id, nil
}

// viewer serves /view/{identifier}: the deep-zoom viewer page.
func (h *Handler) viewer(w http.ResponseWriter, r *http.Request) {
	id, err := idAfter(r, "/view/", "")
	if err != nil {
		h.page(w, r, err)
		return
	}
	b := base(r)
	wd, ht, _, err := h.facts(r.Context(), id, b)
	if err != nil {
		h.page(w, r, err)
		return
	}
	u := presentation.URLs{Base: b}
	h.render(w, r, http.StatusOK, "viewer", map[string]any{
		"Title": name(id), "ID": id, "Width": wd, "Height": ht,
		"Info": u.Service(id) + "/info.json", "Manifest": u.Manifest(id),
	})
}

// manifest serves /iiif/presentation/3/{identifier}/manifest.
func (h *Handler) manifest(w http.ResponseWriter, r *http.Request) {
	id, err := idAfter(r, "/iiif/presentation/3/", "/manifest")
	if err != nil {
		h.failJSON(w, r, err)
		return
	}
	b := base(r)
	wd, ht, etag, err := h.facts(r.Context(), id, b)
	if err != nil {
		h.failJSON(w, r, err)
		return
	}
	etag = `"m` + strings.Trim(etag, `"`) + `"`
	img := presentation.Image{ID: id, Label: name(id), Width: wd, Height: ht, Format: "image/jpeg"}
	if err := h.addSlide(r.Context(), &img); err != nil {
		h.failJSON(w, r, err)
		return
	}
	doc := presentation.Manifest(presentation.URLs{Base: b}, img)
	h.document(w, r, doc, etag)
}

// collection serves /iiif/presentation/3/collection and its pages.
func (h *Handler) collection(w http.ResponseWriter, r *http.Request) {
	page := 0
	if p := r.PathValue("page"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || strconv.Itoa(n) != p {
			h.failJSON(w, r, fault.New(fault.NotFound, "no collection page %q", truncate(p)))
			return
		}
		page = n
	}
	ids, _, err := h.images(r.Context(), "")
	if err != nil {
		h.failJSON(w, r, err)
		return
	}
	u := presentation.URLs{Base: base(r)}
	per := h.cfg.PerCollectionPage
	pages := presentation.Pages(len(ids), per)
	const title = "All images"
	imgs := func(from, to int) []presentation.Image {
		out := make([]presentation.Image, 0, to-from)
		for _, id := range ids[from:to] {
			out = append(out, presentation.Image{ID: id, Label: name(id)})
		}
		return out
	}
	var doc any
	switch {
	case page == 0 && pages <= 1:
		doc = presentation.Collection(u, title, imgs(0, len(ids)), len(ids), per)
	case page == 0:
		doc = presentation.Collection(u, title, nil, len(ids), per)
	case page > pages || pages <= 1:
		h.failJSON(w, r, fault.New(fault.NotFound, "no collection page %d: there are %d", page, max(pages-1, 0)))
		return
	default:
		doc = presentation.Page(u, title, imgs((page-1)*per, min(page*per, len(ids))), page, len(ids), per)
	}
	h.document(w, r, doc, "")
}

// document writes a Presentation API document as JSON-LD (§6.1 of
// Presentation 3.0), or plain JSON to clients that ask for nothing else.
func (h *Handler) document(w http.ResponseWriter, r *http.Request, doc any, etag string) {
	body, err := presentation.Marshal(doc)
	if err != nil {
		h.failJSON(w, r, fault.Wrap(fault.Internal, err, "the document could not be written"))
		return
	}
	hd := w.Header()
	ct := presentation.MediaType
	if acc := r.Header.Get("Accept"); strings.Contains(acc, "application/json") && !strings.Contains(acc, "ld+json") {
		ct = "application/json"
	}
	hd.Set("Content-Type", ct)
	hd.Add("Vary", "Accept")
	hd.Set("Cache-Control", "no-cache")
	if etag != "" {
		hd.Set("ETag", etag)
		if status := httpapi.Preconditions(r, etag, time.Time{}); status != 0 {
			w.WriteHeader(status)
			return
		}
	}
	hd.Set("Content-Length", strconv.Itoa(len(body)+1))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(append(body, '\n'))
	}
}
