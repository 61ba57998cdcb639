// Package conformance is one HTTP conformance suite for iiifd's IIIF
// Image API answers, run against a base URL: the native server and the
// edge worker in workerd both pass it. It checks statuses, headers
// (CORS, Link canonical and profile, strong ETag, Cache-Control, 304,
// 303), info.json fields, every region, size, rotation, quality and
// format form of both API versions (the decoded image's size against
// the canonical request), and the errors. Requests lists the image
// requests it makes, for tests that compare two servers' pixels.
package conformance

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	_ "image/gif" // decoded to check sizes
	_ "image/jpeg"
	_ "image/png"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/iiifd/iiifd/internal/iiif"
)

// Image is a source the server under test serves.
type Image struct {
	ID            string
	Width, Height int
}

// Options say what the server under test serves.
type Options struct {
	// Images are checked one by one; each must be at least 1024×1024.
	Images []Image
	// MaxArea and the per-format limits are what the server was
	// configured with: info.json must advertise MaxArea, and requests
	// past JPEGMax (a side of a JPEG) must be refused with a 400.
	MaxArea int64
	JPEGMax int
	// Client makes the requests; nil is a client with a 60 s timeout.
	Client *http.Client
}

// Requests returns the image requests (region/size/rotation/quality.format)
// the suite makes of one image for API version v: every region form,
// every size form, rotations by 90s, mirrored and arbitrary, every
// quality and the formats jpg, png and gif.
func Requests(v iiif.Version) []string {
	var out []string
	for _, r := range []string{"full", "square", "0,0,256,256", "100,50,700,500", "pct:10,10,50,50", "900,700,400,400"} {
		out = append(out, r+"/200,/0/default.jpg")
	}
	sizes := []string{"max", "200,", ",150", "pct:25", "300,200", "!300,300", "^400,", "^,600", "^600,600", "^pct:150", "^!600,500"}
	if v == iiif.V2 {
		sizes = []string{"full", "max", "200,", ",150", "pct:25", "300,200", "!300,300", "600,"}
	}
	for _, s := range sizes {
		out = append(out, "0,0,512,512/"+s+"/0/default.jpg")
	}
	for _, r := range []string{"90", "180", "270", "!0", "!90", "22.5"} {
		out = append(out, "full/!256,256/"+r+"/default.jpg")
	}
	for _, q := range []string{"color", "gray", "bitonal"} {
		out = append(out, "full/!256,256/0/"+q+".jpg")
	}
	for _, f := range []string{"png", "gif"} {
		out = append(out, "full/!256,256/0/default."+f)
	}
	return out
}

// Run runs the suite against the server at base (its URL before /iiif/).
func Run(t *testing.T, base string, opt Options) {
	c := &client{t: t, base: strings.TrimSuffix(base, "/"), hc: opt.Client}
	if c.hc == nil {
		c.hc = &http.Client{Timeout: 60 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	for _, img := range opt.Images {
		t.Run(img.ID, func(t *testing.T) {
			c := *c
			c.t = t
			for _, v := range []iiif.Version{iiif.V3, iiif.V2} {
				c.info(img, v, opt)
				c.redirect(img, v)
				for _, rq := range Requests(v) {
					c.image(img, v, rq)
				}
				c.errors(img, v, opt)
			}
			c.methods(img)
		})
	}
}

type client struct {
	t    *testing.T
	base string
	hc   *http.Client
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func (c *client) do(method, path string, header map[string]string) answer {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	// The path goes as written, even malformed: encoded slashes stay
	// encoded.
	req.URL.Opaque = "//" + req.URL.Host + path
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("%s %s: reading the body: %v", method, path, err)
	}
	// Every answer, errors included, is readable from any origin.
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "*" {
		c.t.Errorf("%s %s: Access-Control-Allow-Origin %q, want *", method, path, got)
	}
	if !strings.Contains(resp.Header.Get("Access-Control-Expose-Headers"), "Link") {
		c.t.Errorf("%s %s: Access-Control-Expose-Headers %q does not expose Link", method, path, resp.Header.Get("Access-Control-Expose-Headers"))
	}
	return answer{resp.StatusCode, resp.Header, b}
}

// rawStatus is the status of a GET of path, with no other check.
func (c *client) rawStatus(path string) int {
	req, err := http.NewRequest("GET", c.base, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	req.URL.Opaque = "//" + req.URL.Host + path
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatalf("GET %s: %v", path, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

var strongETag = regexp.MustCompile(`^"[^"]+"$`)

func (c *client) info(img Image, v iiif.Version, opt Options) {
	t := c.t
	path := fmt.Sprintf("/iiif/%d/%s/info.json", v, url.PathEscape(img.ID))
	a := c.do("GET", path, nil)
	if a.status != 200 {
		t.Fatalf("GET %s: %d %s", path, a.status, a.body)
	}
	wantCT := iiif.MediaTypeJSONLD3
	if v == iiif.V2 {
		wantCT = iiif.MediaTypeJSON
	}
	if got := a.header.Get("Content-Type"); got != wantCT {
		t.Errorf("GET %s: Content-Type %q, want %q", path, got, wantCT)
	}
	if got, want := a.header.Get("Link"), "<"+iiif.ProfileURI(v)+">;rel=\"profile\""; got != want {
		t.Errorf("GET %s: Link %q, want %q", path, got, want)
	}
	if !strings.Contains(a.header.Get("Cache-Control"), "max-age=") {
		t.Errorf("GET %s: Cache-Control %q", path, a.header.Get("Cache-Control"))
	}
	etag := a.header.Get("ETag")
	if !strongETag.MatchString(etag) {
		t.Errorf("GET %s: ETag %q is not strong", path, etag)
	}
	var doc map[string]any
	if err := json.Unmarshal(a.body, &doc); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	id := c.base + fmt.Sprintf("/iiif/%d/", v) + url.PathEscape(img.ID)
	num := func(k string) int64 { f, _ := doc[k].(float64); return int64(f) }
	if num("width") != int64(img.Width) || num("height") != int64(img.Height) {
		t.Errorf("GET %s: %dx%d, want %dx%d", path, num("width"), num("height"), img.Width, img.Height)
	}
	if v == iiif.V3 && opt.MaxArea > 0 && num("maxArea") != opt.MaxArea {
		t.Errorf("GET %s: maxArea %d, want %d", path, num("maxArea"), opt.MaxArea)
	}
	tiles, _ := doc["tiles"].([]any)
	if len(tiles) == 0 {
		t.Errorf("GET %s: no tiles", path)
	}
	if sizes, _ := doc["sizes"].([]any); len(sizes) == 0 {
		t.Errorf("GET %s: no sizes", path)
	}
	if v == iiif.V3 {
		for k, want := range map[string]any{"@context": "http://iiif.io/api/image/3/context.json", "id": id, "type": "ImageService3",
			"protocol": "http://iiif.io/api/image", "profile": "level2"} {
			if doc[k] != want {
				t.Errorf("GET %s: %s %v, want %v", path, k, doc[k], want)
			}
		}
		feats := fmt.Sprint(doc["extraFeatures"])
		for _, f := range []string{"canonicalLinkHeader", "profileLinkHeader", "cors", "baseUriRedirect", "regionByPct", "sizeByConfinedWh", "rotationArbitrary", "mirroring"} {
			if !strings.Contains(feats, f) {
				t.Errorf("GET %s: extraFeatures lacks %s", path, f)
			}
		}
	} else {
		for k, want := range map[string]any{"@context": "http://iiif.io/api/image/2/context.json", "@id": id, "protocol": "http://iiif.io/api/image"} {
			if doc[k] != want {
				t.Errorf("GET %s: %s %v, want %v", path, k, doc[k], want)
			}
		}
		if p, _ := doc["profile"].([]any); len(p) == 0 || p[0] != "http://iiif.io/api/image/2/level2.json" {
			t.Errorf("GET %s: profile %v", path, doc["profile"])
		}
		if a := c.do("GET", path, map[string]string{"Accept": "application/ld+json"}); a.header.Get("Content-Type") != iiif.JSONLDMediaType(v) {
			t.Errorf("GET %s as JSON-LD: Content-Type %q", path, a.header.Get("Content-Type"))
		}
	}
	// Conditional requests: 304 with the validators, no body.
	a = c.do("GET", path, map[string]string{"If-None-Match": etag})
	if a.status != 304 || len(a.body) != 0 || a.header.Get("ETag") != etag {
		t.Errorf("GET %s If-None-Match: %d, %d bytes, ETag %q", path, a.status, len(a.body), a.header.Get("ETag"))
	}
	a = c.do("HEAD", path, nil)
	if a.status != 200 || len(a.body) != 0 || a.header.Get("ETag") != etag {
		t.Errorf("HEAD %s: %d, %d bytes, ETag %q", path, a.status, len(a.body), a.header.Get("ETag"))
	}
}

func (c *client) redirect(img Image, v iiif.Version) {
	path := fmt.Sprintf("/iiif/%d/%s", v, url.PathEscape(img.ID))
	a := c.do("GET", path, nil)
	want := c.base + path + "/info.json"
	if a.status != 303 || a.header.Get("Location") != want {
		c.t.Errorf("GET %s: %d Location %q, want 303 %q", path, a.status, a.header.Get("Location"), want)
	}
}

// image checks one image request: 200, its media type, the Link header
// (canonical and profile), a strong ETag, Cache-Control, a 304, a body
// that decodes to the canonical request's size, and that the canonical
// URL answers the same entity.
func (c *client) image(img Image, v iiif.Version, rq string) {
	t := c.t
	svc := fmt.Sprintf("/iiif/%d/%s", v, url.PathEscape(img.ID))
	path := svc + "/" + rq
	a := c.do("GET", path, nil)
	if a.status != 200 {
		t.Errorf("GET %s: %d %s", path, a.status, a.body)
		return
	}
	format := rq[strings.LastIndexByte(rq, '.')+1:]
	wantCT := map[string]string{"jpg": "image/jpeg", "png": "image/png", "gif": "image/gif"}[format]
	if got := a.header.Get("Content-Type"); got != wantCT {
		t.Errorf("GET %s: Content-Type %q, want %q", path, got, wantCT)
	}
	etag := a.header.Get("ETag")
	if !strongETag.MatchString(etag) {
		t.Errorf("GET %s: ETag %q is not strong", path, etag)
	}
	if !strings.HasPrefix(a.header.Get("Cache-Control"), "public") {
		t.Errorf("GET %s: Cache-Control %q", path, a.header.Get("Cache-Control"))
	}
	link := a.header.Get("Link")
	m := regexp.MustCompile(`^<([^>]+)>;rel="canonical", <([^>]+)>;rel="profile"$`).FindStringSubmatch(link)
	if m == nil || m[2] != iiif.ProfileURI(v) || !strings.HasPrefix(m[1], c.base+svc+"/") {
		t.Errorf("GET %s: Link %q", path, link)
		return
	}
	canon := strings.TrimPrefix(m[1], c.base+svc+"/")
	segs := strings.Split(canon, "/")
	req, err := iiif.ParseImage(v, segs[0], segs[1], segs[2], segs[3])
	if err != nil || len(segs) != 4 {
		t.Errorf("GET %s: canonical %q does not parse: %v", path, canon, err)
		return
	}
	cfg, kind, err := image.DecodeConfig(bytes.NewReader(a.body))
	if err != nil || kind != map[string]string{"jpg": "jpeg", "png": "png", "gif": "gif"}[format] {
		t.Errorf("GET %s: body does not decode as %s: %v %s", path, format, err, kind)
		return
	}
	if w, h, ok := expectSize(req, img); ok && (cfg.Width != w || cfg.Height != h) {
		t.Errorf("GET %s: %dx%d, want %dx%d (canonical %s)", path, cfg.Width, cfg.Height, w, h, canon)
	}
	if a := c.do("GET", path, map[string]string{"If-None-Match": etag}); a.status != 304 {
		t.Errorf("GET %s If-None-Match: %d", path, a.status)
	}
	if canon != rq {
		if b := c.do("GET", svc+"/"+canon, nil); b.status != 200 || b.header.Get("ETag") != etag {
			t.Errorf("GET canonical %s of %s: %d ETag %q, want 200 %q", canon, rq, b.status, b.header.Get("ETag"), etag)
		}
	}
}

// expectSize is the output size of a canonical request: its region's
// size scaled as its size says, swapped by a quarter turn; false for
// arbitrary angles (their bounding box is the server's).
func expectSize(r iiif.Request, img Image) (int, int, bool) {
	rw, rh := img.Width, img.Height
	if r.Region.Kind == iiif.RegionPixels {
		rw, rh = int(r.Region.W), int(r.Region.H)
	} else if r.Region.Kind != iiif.RegionFull {
		return 0, 0, false
	}
	var w, h int
	switch r.Size.Kind {
	case iiif.SizeMax:
		w, h = rw, rh
	case iiif.SizeWidth:
		w, h = r.Size.W, iiif.AspectHeight(rw, rh, r.Size.W)
	case iiif.SizeExact:
		w, h = r.Size.W, r.Size.H
	default:
		return 0, 0, false
	}
	switch r.Rotation.Degrees {
	case 0, 180:
		return w, h, true
	case 90, 270:
		return h, w, true
	}
	return 0, 0, false
}

// errors checks the statuses of bad requests, and that errors are not
// cacheable.
func (c *client) errors(img Image, v iiif.Version, opt Options) {
	id := url.PathEscape(img.ID)
	pre := fmt.Sprintf("/iiif/%d/", v)
	up := "^"
	if v == iiif.V2 {
		up = ""
	}
	cases := []struct {
		path   string
		status int
	}{
		{pre + id + "/full/max/0/default.xyz", 400},
		{pre + id + "/bogus/max/0/default.jpg", 400},
		{pre + id + "/full/bogus/0/default.jpg", 400},
		{pre + id + "/full/max/45x/default.jpg", 400},
		{pre + id + "/full/max/0/fancy.jpg", 400},
		{pre + id + "/0,0,0,10/max/0/default.jpg", 400},
		{pre + id + fmt.Sprintf("/%d,%d,10,10/max/0/default.jpg", img.Width+10, img.Height+10), 400},
		{pre + "no-such-image.tif/info.json", 404},
		{pre + "no-such-image/info.json", 404},
		{pre + "no-such-image.tif/full/max/0/default.jpg", 404},
		{"/iiif/9/" + id + "/info.json", 404},
		{pre + "..%2F..%2Fetc%2Fpasswd/info.json", 400},
		{pre + "http:%2F%2Fexample.org%2Fx.jpg/info.json", 400},
	}
	if v == iiif.V3 {
		cases = append(cases, struct {
			path   string
			status int
		}{pre + id + fmt.Sprintf("/full/%d,/0/default.jpg", img.Width*2), 400})
	}
	if v == iiif.V3 && opt.JPEGMax > 0 {
		cases = append(cases, struct {
			path   string
			status int
		}{pre + id + fmt.Sprintf("/0,0,512,512/%s%d,/0/default.jpg", up, opt.JPEGMax+8), 400})
	}
	for _, tc := range cases {
		a := c.do("GET", tc.path, nil)
		if a.status != tc.status {
			c.t.Errorf("GET %s: %d %q, want %d", tc.path, a.status, a.body, tc.status)
			continue
		}
		if cc := a.header.Get("Cache-Control"); cc != "no-store" {
			c.t.Errorf("GET %s: Cache-Control %q, want no-store", tc.path, cc)
		}
		if a.header.Get("ETag") != "" || a.header.Get("Link") != "" {
			c.t.Errorf("GET %s: an error with ETag %q Link %q", tc.path, a.header.Get("ETag"), a.header.Get("Link"))
		}
		if !strings.HasPrefix(string(a.body), fmt.Sprint(tc.status)+" ") {
			c.t.Errorf("GET %s: body %q does not start with its status", tc.path, a.body)
		}
	}
}

// methods checks OPTIONS (a CORS preflight), HEAD and refused methods.
func (c *client) methods(img Image) {
	path := "/iiif/3/" + url.PathEscape(img.ID) + "/full/!256,256/0/default.jpg"
	a := c.do("OPTIONS", path, map[string]string{"Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "X-Custom"})
	if a.status != 204 || !strings.Contains(a.header.Get("Access-Control-Allow-Methods"), "GET") || a.header.Get("Access-Control-Allow-Headers") != "X-Custom" {
		c.t.Errorf("OPTIONS %s: %d Allow-Methods %q Allow-Headers %q", path, a.status, a.header.Get("Access-Control-Allow-Methods"), a.header.Get("Access-Control-Allow-Headers"))
	}
	get := c.do("GET", path, nil)
	a = c.do("HEAD", path, nil)
	if a.status != 200 || len(a.body) != 0 || a.header.Get("ETag") != get.header.Get("ETag") || a.header.Get("Link") != get.header.Get("Link") {
		c.t.Errorf("HEAD %s: %d, %d bytes, ETag %q, Link %q", path, a.status, len(a.body), a.header.Get("ETag"), a.header.Get("Link"))
	}
	for _, m := range []string{"POST", "PUT", "DELETE"} {
		if a := c.do(m, path, nil); a.status != 405 || !strings.Contains(a.header.Get("Allow"), "GET") {
			c.t.Errorf("%s %s: %d Allow %q, want 405", m, path, a.status, a.header.Get("Allow"))
		}
	}
	// Malformed percent-encoding: a 400 (from net/http itself natively,
	// before any handler: hence no CORS check).
	if a := c.rawStatus("/iiif/3/%ZZ/info.json"); a != 400 {
		c.t.Errorf("GET /iiif/3/%%ZZ/info.json: %d, want 400", a)
	}
}
