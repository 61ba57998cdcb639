// Package presentation writes IIIF Presentation API 3.0 documents for the
// images iiifd serves: a Manifest with one Canvas whose painting
// annotation's body is the image, with our Image API service, and a
// Collection of such manifests, split into pages for large roots.
//
// It is pure: it builds documents from values (URLs, sizes, labels) and
// imports only the standard library and the pure iiif package (which
// names image services). The HTTP layer finds the values.
package presentation

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"

	"github.com/iiifd/iiifd/internal/iiif"
)

// Context is the JSON-LD context of Presentation 3.0 documents.
const Context = "http://iiif.io/api/presentation/3/context.json"

// MediaType is the content type of Presentation 3.0 documents (§6.1).
const MediaType = `application/ld+json;profile="http://iiif.io/api/presentation/3/context.json"`

// Lang is a language map: language code (or "none") → strings.
type Lang map[string][]string

// Label returns a language map holding s without a language.
func Label(s string) Lang { return Lang{"none": {s}} }

// Image is one image served by our Image API: what a manifest needs.
type Image struct {
	// ID is the image's identifier (not escaped).
	ID string
	// Label is what people call it; the identifier when empty.
	Label string
	// Width and Height are the full image's size in pixels.
	Width, Height int
	// Format is the media type of the image body ("image/jpeg").
	Format string
	// Metadata are label/value pairs shown with the manifest (a slide's
	// scanner, magnification, resolution, scan date).
	Metadata []Pair
	// Parts are further images shown with this one, each on a canvas of
	// its own after the image's (a slide's label, macro and thumbnail).
	Parts []Image
}

// Pair is one entry of a manifest's metadata.
type Pair struct{ Label, Value string }

// MetadataEntry is a manifest's metadata entry as Presentation 3.0 writes
// it: language maps for both.
type MetadataEntry struct {
	Label Lang `json:"label"`
	Value Lang `json:"value"`
}

// URLs builds the public URLs of documents and services from the server's
// base URL (scheme, host and any prefix, no trailing slash).
type URLs struct{ Base string }

// esc escapes an identifier as one path segment (slashes as %2F).
func esc(id string) string { return url.PathEscape(id) }

// Manifest is the URL of the manifest of id.
func (u URLs) Manifest(id string) string {
	return u.Base + "/iiif/presentation/3/" + esc(id) + "/manifest"
}

// Service is the Image API 3 service (base URI) of id, as the image
// server names it (iiif.ServiceID).
func (u URLs) Service(id string) string { return iiif.ServiceID(u.Base, iiif.V3, id) }

// Collection is the URL of the collection of all images; page 0 is the
// top collection, pages from 1 hold the manifests.
func (u URLs) Collection(page int) string {
	if page <= 0 {
		return u.Base + "/iiif/presentation/3/collection"
	}
	return u.Base + "/iiif/presentation/3/collection/" + strconv.Itoa(page)
}

// Viewer is the URL of the deep-zoom viewer page of id.
func (u URLs) Viewer(id string) string { return u.Base + "/view/" + esc(id) }

// Service is a reference to an image service.
type Service struct {
	ID      string `json:"id"`
	Type    string `json:"type"`
	Profile string `json:"profile"`
}

// Resource is an external resource: an image, a thumbnail, a rendering.
type Resource struct {
	ID      string    `json:"id"`
	Type    string    `json:"type"`
	Format  string    `json:"format,omitempty"`
	Label   Lang      `json:"label,omitempty"`
	Width   int       `json:"width,omitempty"`
	Height  int       `json:"height,omitempty"`
	Service []Service `json:"service,omitempty"`
}

// Annotation is a painting annotation of an image onto a canvas.
type Annotation struct {
	ID         string   `json:"id"`
	Type       string   `json:"type"`
	Motivation string   `json:"motivation"`
	Body       Resource `json:"body"`
	Target     string   `json:"target"`
}

// AnnotationPage lists annotations.
type AnnotationPage struct {
	ID    string       `json:"id"`
	Type  string       `json:"type"`
	Items []Annotation `json:"items"`
}

// Canvas is one view: here, the one image.
type Canvas struct {
	ID     string           `json:"id"`
	Type   string           `json:"type"`
	Label  Lang             `json:"label,omitempty"`
	Width  int              `json:"width"`
	Height int              `json:"height"`
	Items  []AnnotationPage `json:"items"`
}

// ManifestDoc is a Presentation 3.0 manifest.
type ManifestDoc struct {
	Context   string          `json:"@context"`
	ID        string          `json:"id"`
	Type      string          `json:"type"`
	Label     Lang            `json:"label"`
	Summary   Lang            `json:"summary,omitempty"`
	Metadata  []MetadataEntry `json:"metadata,omitempty"`
	Thumbnail []Resource      `json:"thumbnail,omitempty"`
	Homepage  []Resource      `json:"homepage,omitempty"`
	SeeAlso   []Resource      `json:"seeAlso,omitempty"`
	PartOf    []Ref           `json:"partOf,omitempty"`
	Items     []Canvas        `json:"items"`
}

// Ref is a reference to a manifest or collection, as an item of a
// collection or in partOf.
type Ref struct {
	ID        string     `json:"id"`
	Type      string     `json:"type"`
	Label     Lang       `json:"label"`
	Thumbnail []Resource `json:"thumbnail,omitempty"`
}

// CollectionDoc is a Presentation 3.0 collection.
type CollectionDoc struct {
	Context string `json:"@context,omitempty"`
	ID      string `json:"id"`
	Type    string `json:"type"`
	Label   Lang   `json:"label"`
	Summary Lang   `json:"summary,omitempty"`
	PartOf  []Ref  `json:"partOf,omitempty"`
	Items   []Ref  `json:"items"`
}

// ThumbSize is the size (longest side, in pixels) of thumbnails
// referenced by manifests and collections.
const ThumbSize = 256

// thumbnail references a JPEG thumbnail of img through our Image API,
// with the size it will have when img's size is known (else with the
// best-fit size form, and no size).
func (u URLs) thumbnail(img Image) Resource {
	if img.Width <= 0 || img.Height <= 0 {
		return Resource{
			ID:      fmt.Sprintf("%s/full/!%d,%d/0/default.jpg", u.Service(img.ID), ThumbSize, ThumbSize),
			Type:    "Image",
			Format:  "image/jpeg",
			Service: []Service{u.service(img.ID)},
		}
	}
	w, h := fit(img.Width, img.Height, ThumbSize)
	return Resource{
		ID:      fmt.Sprintf("%s/full/%d,%d/0/default.jpg", u.Service(img.ID), w, h),
		Type:    "Image",
		Format:  "image/jpeg",
		Width:   w,
		Height:  h,
		Service: []Service{u.service(img.ID)},
	}
}

// Thumbnail is the URL of a thumbnail of img of at most ThumbSize pixels
// on its longest side (never upscaled).
func (u URLs) Thumbnail(img Image) string { return u.thumbnail(img).ID }

func (u URLs) service(id string) Service {
	return Service{ID: u.Service(id), Type: "ImageService3", Profile: "level2"}
}

// fit scales w×h to fit within n×n, never up, keeping at least 1 px.
func fit(w, h, n int) (int, int) {
	if w <= n && h <= n {
		return max(w, 1), max(h, 1)
	}
	if w >= h {
		return n, max(1, (h*n+w/2)/w)
	}
	return max(1, (w*n+h/2)/h), n
}

func label(img Image) Lang {
	if img.Label != "" {
		return Label(img.Label)
	}
	return Label(img.ID)
}

// Manifest returns the manifest of img: one canvas of the image's size,
// painted with the full image, whose body carries our image service.
func Manifest(u URLs, img Image) ManifestDoc {
	m := u.Manifest(img.ID)
	doc := ManifestDoc{
		Context:   Context,
		ID:        m,
		Type:      "Manifest",
		Label:     label(img),
		Summary:   Lang{"en": {fmt.Sprintf("%d × %d pixels", img.Width, img.Height)}},
		Thumbnail: []Resource{u.thumbnail(img)},
		Homepage: []Resource{{
			ID: u.Viewer(img.ID), Type: "Text", Format: "text/html", Label: Lang{"en": {"Deep-zoom viewer"}},
		}},
		SeeAlso: []Resource{{
			ID: u.Service(img.ID) + "/info.json", Type: "Dataset", Format: "application/ld+json",
			Label: Lang{"en": {"IIIF image information"}},
		}},
		PartOf: []Ref{{ID: u.Collection(0), Type: "Collection", Label: Lang{"en": {"All images"}}}},
		Items:  []Canvas{u.canvas(m, 1, img)},
	}
	for i, p := range img.Parts {
		doc.Items = append(doc.Items, u.canvas(m, i+2, p))
	}
	for _, p := range img.Metadata {
		doc.Metadata = append(doc.Metadata, MetadataEntry{Label: Lang{"en": {p.Label}}, Value: Lang{"none": {p.Value}}})
	}
	return doc
}

// canvas is canvas n of manifest m, painted with img.
func (u URLs) canvas(m string, n int, img Image) Canvas {
	canvas := m + "/canvas/" + strconv.Itoa(n)
	format := img.Format
	if format == "" {
		format = "image/jpeg"
	}
	return Canvas{
		ID:     canvas,
		Type:   "Canvas",
		Label:  label(img),
		Width:  img.Width,
		Height: img.Height,
		Items: []AnnotationPage{{
			ID:   canvas + "/page/1",
			Type: "AnnotationPage",
			Items: []Annotation{{
				ID:         canvas + "/page/1/annotation/1",
				Type:       "Annotation",
				Motivation: "painting",
				Body: Resource{
					ID:      u.Service(img.ID) + "/full/max/0/default.jpg",
					Type:    "Image",
					Format:  format,
					Width:   img.Width,
					Height:  img.Height,
					Service: []Service{u.service(img.ID)},
				},
				Target: canvas,
			}},
		}},
	}
}

// ref is the collection item of img.
func (u URLs) ref(img Image) Ref {
	return Ref{ID: u.Manifest(img.ID), Type: "Manifest", Label: label(img), Thumbnail: []Resource{u.thumbnail(img)}}
}

// Pages is how many pages of at most per manifests total images make.
func Pages(total, per int) int {
	if total <= 0 || per <= 0 {
		return 0
	}
	return (total + per - 1) / per
}

// Collection returns the top collection of total images. When they fit
// in one page (per, at least 1), its items are the manifests of imgs,
// which must then be all of them; otherwise its items are the pages
// (collections 1..n, see Page) and imgs is not used. Presentation 3.0
// has no paging of its own for collections: nested collections are the
// way it offers to split a large one, and every viewer follows them.
func Collection(u URLs, title string, imgs []Image, total, per int) CollectionDoc {
	c := CollectionDoc{
		Context: Context,
		ID:      u.Collection(0),
		Type:    "Collection",
		Label:   Lang{"en": {title}},
		Summary: Lang{"en": {fmt.Sprintf("%d images", total)}},
		Items:   []Ref{},
	}
	pages := Pages(total, max(per, 1))
	if pages <= 1 {
		for _, img := range imgs {
			c.Items = append(c.Items, u.ref(img))
		}
		return c
	}
	for p := 1; p <= pages; p++ {
		first, last := (p-1)*per+1, min(p*per, total)
		c.Items = append(c.Items, Ref{
			ID: u.Collection(p), Type: "Collection",
			Label: Lang{"en": {fmt.Sprintf("Images %d to %d", first, last)}},
		})
	}
	return c
}

// Page returns page p (from 1) of the collection, holding the manifests
// of imgs, that page's images. Their sizes may be left out (zero): only
// the thumbnails use them.
func Page(u URLs, title string, imgs []Image, p, total, per int) CollectionDoc {
	first, last := (p-1)*per+1, min(p*per, total)
	c := CollectionDoc{
		Context: Context,
		ID:      u.Collection(p),
		Type:    "Collection",
		Label:   Lang{"en": {fmt.Sprintf("%s: images %d to %d", title, first, last)}},
		PartOf:  []Ref{{ID: u.Collection(0), Type: "Collection", Label: Lang{"en": {title}}}},
		Items:   []Ref{},
	}
	for _, img := range imgs {
		c.Items = append(c.Items, u.ref(img))
	}
	return c
}

// Marshal encodes a document as indented JSON.
func Marshal(doc any) ([]byte, error) {
	return json.MarshalIndent(doc, "", "  ")
}
