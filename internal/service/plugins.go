package service

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"strconv"

	"github.com/iiifd/iiifd/internal/cache"
	"github.com/iiifd/iiifd/internal/engine"
	"github.com/iiifd/iiifd/internal/fault"
	"github.com/iiifd/iiifd/internal/iiif"
	"github.com/iiifd/iiifd/internal/plan"
	"github.com/iiifd/iiifd/internal/plugin"
)

// Client is what the HTTP edge tells the pipeline about who asks, for
// the authorize hook of plugins.
type Client struct {
	Method string
	Header http.Header
	// Addr is the client's address as the connection gives it.
	Addr string
}

type clientKey struct{}

// WithClient returns ctx carrying the facts of the client making the
// request. They travel in the context, like the request's deadline,
// because they belong to the one request and only plugins read them.
func WithClient(ctx context.Context, c *Client) context.Context {
	return context.WithValue(ctx, clientKey{}, c)
}

func clientFrom(ctx context.Context) *Client {
	if c, ok := ctx.Value(clientKey{}).(*Client); ok {
		return c
	}
	return &Client{Method: http.MethodGet}
}

// pluginRequest describes a request to plugins; req is nil for info.json.
func pluginRequest(ctx context.Context, v iiif.Version, id string, req *iiif.Request) *plugin.Request {
	c := clientFrom(ctx)
	r := &plugin.Request{ID: id, Version: int(v), Kind: "info", Method: c.Method, Header: c.Header, Client: c.Addr}
	if req != nil {
		r.Kind = "image"
		r.Region, r.Size, r.Rotation = req.Region.String(), req.Size.String(), req.Rotation.String()
		r.Quality, r.Format = string(req.Quality), string(req.Format)
	}
	return r
}

// grant is what plugins decided about a client's request before anything
// is looked up: the access authorize allowed and, for images, what the
// overlay plugins' output depends on besides the request.
type grant struct {
	plugin.Access
	// overlay is the client's values of the client fields the overlay
	// plugins declared they depend on (plugin.Host.OverlayKey), "" when
	// they declared none: part of the image's cache key and ETag, so
	// one client's overlay is never served to another.
	overlay string
	// private says the overlay depends on credentials or the client's
	// address: the image is not kept in the derivative cache at all (it
	// would serve one client only; the client's own cache revalidates
	// with the ETag).
	private bool
	// restricted says an access rule restricts the image (Gate): its
	// answers are the client's only (Cache-Control: private).
	restricted bool
	// overlayGen is the overlay plugins' load count
	// (plugin.Host.Generation) taken before anything was read of them
	// for this request: an image whose overlay was made after one was
	// swapped in is refused (errOverlayReloaded).
	overlayGen uint64
}

// admitPlugins runs the authorize hook (before anything is looked up, so
// a cached response is never served to a client that may not have it)
// and the resolve hook, and for images (req not nil) finds the overlay's
// client key. It returns the key to resolve and the grant; without
// plugins, id itself and full access.
func (s *Service) admitPlugins(ctx context.Context, v iiif.Version, id string, req *iiif.Request) (string, grant, error) {
	g, err := s.admitGate(ctx, id, req != nil)
	if err != nil {
		return "", g, err
	}
	h := s.cfg.Plugins
	if h == nil {
		return id, g, nil
	}
	var preq *plugin.Request
	if h.Has(plugin.HookAuthorize) {
		preq = pluginRequest(ctx, v, id, req)
		gate := g.MaxWidth
		if g.Access, err = h.Authorize(ctx, preq); err != nil {
			return "", g, err
		}
		g.tighten(gate)
	}
	// Before the overlay plugins' declarations, fingerprint and hooks
	// are read, here and in Image.
	g.overlayGen = h.Generation(plugin.HookOverlay)
	if vary, private := h.OverlayVary(); req != nil && (vary != "" || private) {
		// The overlay plugins declared client fields (every declared
		// field makes a Vary header or private).
		if preq == nil {
			preq = pluginRequest(ctx, v, id, req)
		}
		g.overlay, g.private = h.OverlayKey(preq), private
	}
	if !h.Has(plugin.HookResolve) {
		return id, g, nil
	}
	key, err := h.Resolve(ctx, id)
	return key, g, err
}

// cacheFor returns the derivative cache for an image of grant g: none
// when its bytes are one client's.
func (s *Service) cacheFor(g grant) *cache.Cache {
	if g.private {
		return nil
	}
	return s.cfg.Cache
}

// degraded returns the limits for a client with limited access: the
// configured ones tightened to the access's maximum size.
func degraded(l plan.Limits, a grant) plan.Limits {
	l.MaxWidth, l.MaxHeight = plan.Tighter(l.MaxWidth, a.MaxWidth), plan.Tighter(l.MaxHeight, a.MaxHeight)
	return l
}

// checkResolution refuses a plan that shows the image at a higher
// resolution than limited access allows: the limit bounds the whole
// image's size at the requested scale, so that tiles cannot add up to
// more than the client may see.
func checkResolution(p *plan.Plan, img plan.Image, a grant) error {
	if !a.Limited() {
		return nil
	}
	// Scaled full-image size, rounded down (a pixel of slack).
	fw := int64(p.Width) * int64(img.Width) / int64(max(p.Region.Dx(), 1))
	fh := int64(p.Height) * int64(img.Height) / int64(max(p.Region.Dy(), 1))
	if (a.MaxWidth > 0 && fw > int64(a.MaxWidth)) || (a.MaxHeight > 0 && fh > int64(a.MaxHeight)) {
		return fault.New(fault.Forbidden, "this image is available to you only up to %s pixels; request a smaller size", accessSize(a.Access))
	}
	return nil
}

func accessSize(a plugin.Access) string {
	w, h := "any", "any"
	if a.MaxWidth > 0 {
		w = strconv.Itoa(a.MaxWidth)
	}
	if a.MaxHeight > 0 {
		h = strconv.Itoa(a.MaxHeight)
	}
	return w + "×" + h
}

// accessKey is the part of cache keys and ETags that the grant adds:
// limited access, and the client's values of the fields an overlay
// depends on.
func accessKey(g grant) string {
	k := ""
	if g.Limited() {
		k = "access " + accessSize(g.Access)
	}
	if g.overlay != "" {
		k += "\x00overlay " + g.overlay
	}
	return k
}

// limitInfo tightens an info.json document's tiles to limited access:
// only scale factors at which the whole image fits the limits remain (the
// smallest one at least).
func limitInfo(ii *iiif.ImageInfo, a grant) {
	if !a.Limited() {
		return
	}
	for i, t := range ii.Tiles {
		var keep []int
		for _, f := range t.ScaleFactors {
			if (a.MaxWidth == 0 || ceilDiv(ii.Width, f) <= a.MaxWidth) && (a.MaxHeight == 0 || ceilDiv(ii.Height, f) <= a.MaxHeight) {
				keep = append(keep, f)
			}
		}
		if len(keep) == 0 && len(t.ScaleFactors) > 0 {
			keep = t.ScaleFactors[len(t.ScaleFactors)-1:]
		}
		ii.Tiles[i].ScaleFactors = keep
	}
}

// addInfoFields asks the info hook for fields to add to the info.json
// document body and adds them (fields the document has are kept).
func (s *Service) addInfoFields(ctx context.Context, v iiif.Version, id string, body []byte) ([]byte, error) {
	h := s.cfg.Plugins
	if !h.Has(plugin.HookInfo) {
		return body, nil
	}
	extra, err := h.Info(ctx, id, int(v), body)
	if err != nil || len(extra) == 0 {
		return body, err
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fault.Wrap(fault.Internal, err, "info.json could not be extended")
	}
	keys := make([]string, 0, len(extra))
	for k := range extra {
		if _, ok := doc[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	end := bytes.LastIndexByte(body, '}')
	if end < 0 || len(keys) == 0 {
		return body, nil
	}
	out := append([]byte(nil), body[:end]...)
	for _, k := range keys {
		kb, _ := json.Marshal(k)
		out = append(out, ',')
		out = append(out, kb...)
		out = append(out, ':')
		out = append(out, extra[k]...)
	}
	return append(out, body[end:]...), nil
}

// errOverlayReloaded refuses an image whose overlay plugins were reloaded
// while it was made (between its key and its overlay, even from A to B
// and back to A); the next try is keyed and made by the new ones.
var errOverlayReloaded = fault.New(fault.Unavailable, "the overlay plugins were reloaded while this image was being made; try again")

// errInfoReloaded refuses an info.json whose info plugins were reloaded
// while it was made (between its key and the info hook's answer, even
// from A to B and back to A); Service.Info makes it once more.
var errInfoReloaded = fault.New(fault.Unavailable, "the info plugins were reloaded while this info.json was being made; try again")

// overlay asks the overlay hook for an image to put over the output of j.
func (s *Service) overlay(ctx context.Context, id string, p *plan.Plan) (*engine.Overlay, error) {
	h := s.cfg.Plugins
	if !h.Has(plugin.HookOverlay) {
		return nil, nil
	}
	// The overlay sees the canonical form of the request, which the
	// cache key holds, not the spelling this client used.
	o, err := h.Overlay(ctx, pluginRequest(ctx, p.Canonical.Version, id, &p.Canonical), p.OutWidth, p.OutHeight)
	if err != nil || o == nil {
		return nil, err
	}
	return &engine.Overlay{PNG: o.PNG, X: o.X, Y: o.Y, Opacity: o.Opacity}, nil
}
