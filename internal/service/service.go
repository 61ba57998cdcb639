// Package service is the request pipeline of iiifd, one readable function
// per endpoint: resolve the identifier, open the source, describe it from
// its header, plan the request, and render it. It knows nothing of HTTP
// beyond the errors' kinds; the httpapi package turns its results into
// responses.
package service

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/iiifd/iiifd/internal/cache"
	"github.com/iiifd/iiifd/internal/describe"
	"github.com/iiifd/iiifd/internal/engine"
	"github.com/iiifd/iiifd/internal/fault"
	"github.com/iiifd/iiifd/internal/iiif"
	"github.com/iiifd/iiifd/internal/limit"
	"github.com/iiifd/iiifd/internal/output"
	"github.com/iiifd/iiifd/internal/plan"
	"github.com/iiifd/iiifd/internal/plugin"
	"github.com/iiifd/iiifd/internal/probe"
	"github.com/iiifd/iiifd/internal/resolve"
	"github.com/iiifd/iiifd/internal/source"
	"github.com/iiifd/iiifd/internal/source/prefetch"
	"github.com/iiifd/iiifd/internal/source/pyramid"
	"github.com/iiifd/iiifd/internal/tracing"
)

// Engine decodes, transforms and encodes pixels. It is defined here, where
// it is used, with the pure types of package engine, so that the pipeline
// builds without cgo: natively package pixels implements it with libvips,
// and a pure-Go engine implements it for WebAssembly.
type Engine interface {
	// Render reads in, executes p and writes the encoded image to w.
	Render(ctx context.Context, in engine.Input, p *plan.Plan, w io.Writer) error
	// Header describes images that the pure-Go probe cannot size
	// (in.Level is not used).
	Header(ctx context.Context, in engine.Input) (probe.Info, error)
	// RenderMosaic executes p on the image that the tiles of m form
	// (p.LevelRegion is in its pixels) and writes the encoded image to w.
	RenderMosaic(ctx context.Context, m engine.Mosaic, p *plan.Plan, w io.Writer) error
	// Formats lists the output formats the engine can write.
	Formats() []iiif.Format
	// Trim hands memory that a large render freed back to the operating
	// system, where the engine's allocator keeps it otherwise.
	Trim()
}

// JPEGCropper is an Engine that can cut a part of a JPEG whose corner is
// on an MCU boundary losslessly, in the DCT domain; with it the edge
// tiles of a JPEG-tiled TIFF pass through too (cropped), and so do the
// unscaled parts of stored tiles (tiles.TIFFCrop), where an engine
// without it renders them.
type JPEGCropper interface {
	CropJPEG(jpeg []byte, part image.Rectangle) ([]byte, error)
}

// JPEGJoiner is an Engine that can join the part of the image that JPEG
// tiles coded alike form, across to a row, losslessly, in the DCT
// domain; with it an unscaled region over several stored tiles of a
// JPEG-tiled TIFF (tiles.TIFFJoin) is sent as the stored pixels, where an
// engine without it renders it.
type JPEGJoiner interface {
	JoinJPEG(tiles [][]byte, across int, part image.Rectangle) ([]byte, error)
}

// Config is what the pipeline needs from the server's configuration.
type Config struct {
	Limits plan.Limits
	// IgnoreOrientation serves images as stored, ignoring the EXIF or
	// TIFF orientation tag, for sites whose clients relied on that; by
	// default the orientation is applied: info.json gives the displayed
	// size and every region is in displayed coordinates. It changes
	// output bytes, so it must be part of Variant.
	IgnoreOrientation bool
	// TileSize is advertised for sources that are not tiled.
	TileSize int
	// Variant distinguishes settings that change output bytes (encoder
	// qualities): it is part of every ETag.
	Variant string
	// Admit, when set, admits every render that decodes pixels (stored
	// tiles passed through need no admission): a worker slot and the
	// plan's estimated memory.
	Admit *limit.Admitter
	// Cache, when set, keeps rendered images and info.json documents:
	// looked up before admission, filled from the finished output
	// buffer before the client is sent anything.
	Cache *cache.Cache
	// Plugins, when set, runs the WebAssembly extensions' hooks:
	// authorize and resolve first, info before info.json is cached,
	// overlay before encoding.
	Plugins *plugin.Host
	// PrefetchPerRender bounds the bytes of stored tiles one render of a
	// remote tiled TIFF fetches before it is admitted (see
	// prefetch.TIFF); zero means config.DefaultPrefetchPerRender, a negative
	// value fetches no tiles ahead. What all renders not admitted yet
	// hold together is bounded by Admit (limit.Config.Prefetched).
	PrefetchPerRender int64
	// Gate, when set, restricts images by identifier before plugins and
	// the cache are asked (see Gate).
	Gate Gate
	// Output says where finished images wait for their clients (see
	// package output); its Budget is Admit when set.
	Output output.Config
	// SlideCheck, when set, is asked before OpenSlide reads a file in
	// this process (see package slidecheck): a slide that crashes
	// OpenSlide is refused rather than crashing the server.
	SlideCheck SlideChecker
}

// SlideChecker decides whether OpenSlide may read the local file at path
// in this process; a non-nil error is the answer to give instead.
type SlideChecker interface {
	Check(ctx context.Context, path string) error
}

// Service runs requests through the pipeline.
type Service struct {
	cfg      Config
	src      source.Source
	resolver *resolve.Resolver
	render   Engine
	formats  []iiif.Format
	headers  *headerCache
	// variant is everything besides the request and the source that
	// output bytes depend on (Config.Variant and the limits), computed
	// once for every ETag and cache key.
	variant string
	// heads keeps what renders and stored tiles of remote TIFFs read
	// besides tiles (offset arrays, IFDs, JPEG tables).
	heads *prefetch.Heads
}

// New returns a service reading sources through src and rendering with r.
func New(cfg Config, src source.Source, r Engine) (*Service, error) {
	if cfg.TileSize <= 0 {
		return nil, errors.New("service: tile size must be positive")
	}
	if err := cfg.Output.Validate(); err != nil {
		return nil, fmt.Errorf("service: %w", err)
	}
	return &Service{
		cfg:      cfg,
		src:      src,
		resolver: resolve.New(src),
		render:   r,
		formats:  r.Formats(),
		headers:  newHeaderCache(4096),
		heads:    prefetch.NewHeads(0),
		variant:  cfg.Variant + "\x00" + limitsKey(cfg.Limits),
	}, nil
}

// Info is a rendered info.json with its validators.
type Info struct {
	Body    []byte
	ModTime time.Time
	ETag    string // strong, quoted
	// CacheStatus is "HIT <tier>" or "MISS".
	CacheStatus string
	// Restricted says an access rule restricts the image: the document
	// is the client's only (Cache-Control: private).
	Restricted bool
	// Vary and ClientOnly are Job's: what the request's snapshot of the
	// plugins makes the document depend on.
	Vary       string
	ClientOnly bool
}

// Info returns the info.json of the identifier id for API version v, with
// its id under base (the public URL of the server, without trailing slash).
//
// The request sees one snapshot of the plugins, taken as it starts: its
// key, ETag and info additions all come from the same modules, whatever
// is reloaded meanwhile.
func (s *Service) Info(ctx context.Context, v iiif.Version, id, base string) (*Info, error) {
	plugins := s.cfg.Plugins.Snapshot()
	defer plugins.Release()
	key, access, err := s.admitPlugins(ctx, plugins, v, id, nil)
	if err != nil {
		return nil, err
	}
	tgt, err := s.resolve(ctx, key)
	if err != nil {
		return nil, err
	}
	defer tgt.Object.Close()
	return s.info(ctx, plugins, v, id, base, tgt, access)
}

// info makes (or finds in the cache) the info.json of the resolved
// source tgt, with the additions of the request's plugins.
func (s *Service) info(ctx context.Context, plugins *plugin.Snapshot, v iiif.Version, id, base string, tgt resolve.Target, access grant) (*Info, error) {
	obj := tgt.Object
	facts := []string{"info", strconv.Itoa(int(v)), id, obj.Key, obj.Version, s.variant, strconv.Itoa(s.cfg.TileSize)}
	if plugins != nil {
		facts = append(facts, accessKey(access), plugins.Fingerprint(plugin.HookInfo))
	} else if access.restricted {
		facts = append(facts, "restricted", accessKey(access))
	}
	info := &Info{
		ModTime:     obj.ModTime,
		ETag:        etag(append(facts, base)...),
		CacheStatus: "MISS",
		Restricted:  access.restricted,
	}
	info.Vary, info.ClientOnly = plugins.OverlayVary()
	// The document is cached with a placeholder for the base URL, which
	// is filled in on the way out: the base may come from each request's
	// Host and X-Forwarded-* headers, and they must not multiply entries.
	var body []byte
	var fill *cache.Fill
	if s.cfg.Cache != nil {
		hit, f, err := lookup(ctx, s.cfg.Cache, cache.Key{ID: obj.Key, Name: etag(facts...)})
		if err != nil {
			return nil, err
		}
		if hit != nil {
			defer hit.Body.Close()
			if body, err = io.ReadAll(hit.Body); err == nil {
				info.CacheStatus = "HIT " + hit.Tier
				info.Body = withBase(body, base)
				return info, nil
			}
		} else {
			fill = f
			defer fill.Abort()
		}
	}
	hdr, err := s.describeServable(ctx, tgt)
	if err != nil {
		return nil, err
	}
	is := s
	if access.Limited() {
		// The document a client with limited access sees: the limits
		// and tiles it will be served within.
		ls := *s
		ls.cfg.Limits = degraded(s.cfg.Limits, access)
		is = &ls
	}
	ii := is.imageInfo(iiif.ServiceID(basePlaceholder, v, id), hdr)
	limitInfo(&ii, access)
	s.declareServices(v, id, &ii, access)
	if body, err = iiif.MarshalInfo(v, ii); err != nil {
		return nil, fault.Wrap(fault.Internal, err, "info.json could not be written")
	}
	if body, err = addInfoFields(ctx, plugins, v, id, body); err != nil {
		return nil, err
	}
	if fill != nil {
		fill.Write(body)
		commit(ctx, fill, cache.Meta{ContentType: "application/json", ETag: info.ETag, LastModified: info.ModTime})
	}
	info.Body = withBase(body, base)
	return info, nil
}

// basePlaceholder stands for the public base URL in cached info.json
// documents; it is plain ASCII, so JSON keeps it as it is.
const basePlaceholder = "https://base.iiifd.invalid"

// withBase fills the base URL into a document holding basePlaceholder,
// JSON-escaped as the encoder would have written it.
func withBase(body []byte, base string) []byte {
	enc, _ := json.Marshal(strings.TrimSuffix(base, "/"))
	return bytes.ReplaceAll(body, []byte(basePlaceholder), enc[1:len(enc)-1])
}

// Purge removes every cached derivative and info.json of the identifier
// id, in every tier (and so for every replica sharing a tier).
func (s *Service) Purge(ctx context.Context, id string) error {
	if s.cfg.Cache == nil {
		return nil
	}
	if !resolve.ValidIdentifier(id) {
		return resolve.ErrInvalidIdentifier
	}
	// Entries are filed under the key the identifier resolved to
	// ("photo" → "photo.tif", a pyramid → "photo/info.json"). The source
	// may be gone or ambiguous by now, so every key it could have
	// resolved to is purged, with the header facts kept for it.
	keys := map[string]bool{id: true, id + "/" + pyramid.InfoFile: true}
	for ext := range resolve.ImageExtensions {
		keys[id+"."+ext] = true
		keys[id+"."+strings.ToUpper(ext)] = true
	}
	for k := range maps.Clone(keys) {
		// A slide's associated images are filed under keys of their own.
		for _, name := range probe.AssociatedNames {
			keys[k+";"+name] = true
		}
	}
	key := id
	if plugins := s.cfg.Plugins.Snapshot(); plugins.Has(plugin.HookResolve) {
		k, err := plugins.Resolve(ctx, id)
		plugins.Release()
		if err == nil {
			key = k
			keys[k], keys[k+"/"+pyramid.InfoFile] = true, true
		}
	}
	if tgt, err := s.resolver.Resolve(ctx, key); err == nil {
		keys[tgt.Object.Key] = true
		tgt.Object.Close()
	}
	var errs []error
	for key := range keys {
		s.headers.drop(key)
		if err := s.cfg.Cache.Purge(ctx, key); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// imageInfo assembles info.json's facts (describe.ImageInfo).
func (s *Service) imageInfo(id string, h header) iiif.ImageInfo {
	ii := describe.ImageInfo(id, h.described(), s.cfg.Limits, s.cfg.TileSize, s.formats)
	if svc := physicalDimensions(h.info.Slide); svc != nil {
		ii.Extra = map[string]any{"service": []any{svc}}
	}
	return ii
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// Image resolves, describes and plans an image request, and decides how
// to produce it: stored bytes as they are (passthrough), tiles of a tile
// pyramid stitched together, or libvips on the source file. The caller
// must Close the job, rendered or not.
//
// The request sees one snapshot of the plugins, taken as it starts and
// held by the job until it is closed: the image's cache key, validators
// and caching are decided from the same modules that make its overlay
// during the render, whatever is reloaded meanwhile.
func (s *Service) Image(ctx context.Context, id string, req iiif.Request) (j *Job, err error) {
	if !slices.Contains(s.formats, req.Format) {
		// 3.0 §4.5 and 2.1 §4.5: an unsupported format should be a 400.
		return nil, fault.New(fault.BadRequest, "format: %q is not supported by this server; it can write %s", string(req.Format), formatList(s.formats))
	}
	plugins := s.cfg.Plugins.Snapshot()
	defer func() {
		if err != nil {
			plugins.Release()
		}
	}()
	key, access, err := s.admitPlugins(ctx, plugins, req.Version, id, &req)
	if err != nil {
		return nil, err
	}
	tgt, err := s.resolve(ctx, key)
	if err != nil {
		return nil, err
	}
	obj := tgt.Object
	hdr, err := s.describeServable(ctx, tgt)
	if err != nil {
		obj.Close()
		return nil, err
	}
	variant, limits := s.variant, s.cfg.Limits
	overlays := plugins.Fingerprint(plugin.HookOverlay)
	if plugins != nil || access.restricted {
		// Limited access plans within smaller limits, and the overlay
		// plugins' modules and settings make other bytes: both are
		// part of the cache key.
		limits = degraded(limits, access)
		variant += "\x00" + accessKey(access) + "\x00" + overlays
	}
	if overlays != "" {
		// The overlay is told the identifier as asked (before the
		// resolve hook maps it to a key) and the API version: they
		// key its bytes too.
		variant += "\x00" + id + "\x00" + strconv.Itoa(int(req.Version))
	}
	_, span := tracing.Start(ctx, "plan")
	p, err := plan.Make(req, hdr.img, limits)
	if err == nil {
		err = checkResolution(&p, hdr.img, access)
	}
	if err == nil && hdr.orient > 1 {
		// The plan is in displayed coordinates; the engine reads the
		// stored pixels under it and turns them.
		lw, lh := hdr.img.Width, hdr.img.Height
		if len(hdr.img.Levels) > 0 {
			lw, lh = hdr.img.Levels[p.Level].Width, hdr.img.Levels[p.Level].Height
		}
		p.Orient(hdr.orient, lw, lh)
	}
	tracing.End(span, err)
	if err != nil {
		obj.Close()
		return nil, err
	}
	canon := p.Canonical.String()
	j = &Job{
		Plan:        p,
		ContentType: engine.ContentType(req.Format),
		ModTime:     obj.ModTime,
		ETag:        etag("image", obj.Key, canon, obj.Version, variant),
		Canonical:   canon,
		obj:         obj,
		s:           s,
		cache:       s.cacheFor(access),
		Restricted:  access.restricted,
		plugins:     plugins,
	}
	j.Vary, j.ClientOnly = plugins.OverlayVary()
	if overlays != "" {
		// Made on a cache miss, by the snapshot's modules, which the
		// fingerprint in the key names.
		j.overlay = func(ctx context.Context) (*engine.Overlay, error) {
			return overlay(ctx, plugins, id, &j.Plan)
		}
	}
	if hdr.pyramid != nil {
		s.pyramidJob(j, tgt.Dir, hdr.pyramid)
	} else {
		s.fileJob(j, hdr.info)
	}
	return j, nil
}

// trimCost is the estimated size of a render after which freed memory is
// handed back to the operating system.
const trimCost = 64 << 20

// Cost estimates the memory a render of p may hold at once: libvips'
// per-operation buffers, plus four bytes a pixel for the region read from
// the chosen level and for the output (sequential decoders, stitched
// tiles, rotation and encoders that seek, such as TIFF and JPEG 2000,
// hold whole images). The region read counts whole tiles and strips
// (plan.Plan.Resident): a crop of one pixel from an image stored as one
// 8192×8192 tile holds the whole tile. It errs high for tiled sources
// read on demand.
func Cost(p *plan.Plan) int64 {
	const base = 4 << 20
	lr := p.LevelRegion
	held := max(p.Resident, int64(lr.Dx())*int64(lr.Dy()))
	return base + 4*(held+int64(p.OutWidth)*int64(p.OutHeight))
}

// describeServable describes the source, and refuses it when nothing of
// it can be shown within the source pixel limit: a decompression bomb,
// or a huge image with neither tiles nor smaller levels. The limit is
// checked on the header alone; no pixel has been decoded.
func (s *Service) describeServable(ctx context.Context, tgt resolve.Target) (header, error) {
	hdr, err := s.describe(ctx, tgt)
	if err != nil {
		return hdr, err
	}
	if lim := s.cfg.Limits.MaxSourcePixels; lim > 0 {
		if a := plan.SmallestDecode(hdr.img); a > lim {
			return header{}, fault.New(fault.NotImplemented,
				"the source image is %dx%d pixels without tiles or smaller levels; showing it would decode %d pixels, more than this server's limit of %d (maxSourcePixels); store it as a tiled pyramid (iiifd ingest)",
				hdr.info.Width, hdr.info.Height, a, lim)
		}
	}
	return hdr, nil
}

// resolve finds the object an identifier names.
func (s *Service) resolve(ctx context.Context, id string) (tgt resolve.Target, err error) {
	ctx, span := tracing.Start(ctx, "resolve")
	tgt, err = s.resolver.Resolve(ctx, id)
	if err == nil && span.IsRecording() {
		span.SetAttributes(attribute.String("iiifd.source.key", tgt.Object.Key), attribute.Int64("iiifd.source.size", tgt.Object.Size))
	}
	tracing.End(span, err)
	return tgt, err
}

// lookup asks the cache for k, in a span.
func lookup(ctx context.Context, c *cache.Cache, k cache.Key) (*cache.Hit, *cache.Fill, error) {
	ctx, span := tracing.Start(ctx, "cache.lookup")
	hit, fill, err := c.Lookup(ctx, k)
	if hit != nil && span.IsRecording() {
		span.SetAttributes(attribute.String("iiifd.cache.tier", hit.Tier))
	}
	tracing.End(span, err)
	return hit, fill, err
}

// commit stores a filled cache entry, in a span.
func commit(ctx context.Context, fill *cache.Fill, m cache.Meta) {
	_, span := tracing.Start(ctx, "cache.store")
	fill.Commit(m)
	span.End()
}

// header is what the service knows of a source from its header: the
// probe's facts, and for a tile pyramid its stored description.
type header struct {
	// info is as shown: with an orientation applied, its sizes are the
	// displayed ones (probe.Info.Displayed) and orient is the EXIF
	// orientation the stored pixels are turned by (0: none).
	info    probe.Info
	orient  int
	img     plan.Image       // info as the planner sees it
	pyramid *pyramid.Pyramid // nil for image files
}

// described is h as package describe takes it.
func (h header) described() describe.Header {
	return describe.Header{Info: h.info, Image: h.img, Pyramid: h.pyramid}
}

// describe returns the header facts of the target, from the cache when the
// same version of the object was described before.
func (s *Service) describe(ctx context.Context, tgt resolve.Target) (hdr header, err error) {
	ctx, span := tracing.Start(ctx, "source.header")
	defer func() { tracing.End(span, err) }()
	obj := tgt.Object
	key := obj.Key + "\x00" + obj.Version
	if hdr, ok := s.headers.get(key); ok {
		span.SetAttributes(attribute.Bool("iiifd.header_cached", true))
		return hdr, nil
	}
	if err := ctx.Err(); err != nil {
		return header{}, err
	}
	if tgt.Dir != "" {
		hdr, err = describePyramid(obj)
	} else {
		hdr.info, err = s.probe(ctx, obj)
	}
	if err == nil && tgt.Associated != "" {
		hdr.info, err = associatedInfo(hdr.info, tgt.Associated)
	}
	if err != nil {
		return header{}, err
	}
	if o := hdr.info.Orientation; o > 1 && o <= 8 && !s.cfg.IgnoreOrientation {
		hdr.orient = o
		hdr.info = hdr.info.Displayed()
	}
	hdr.img = describe.PlanImage(hdr.info)
	s.headers.put(key, hdr)
	return hdr, nil
}

func (s *Service) probe(ctx context.Context, obj *source.Object) (probe.Info, error) {
	hdr, err := probe.Read(obj, obj.Size)
	if errors.Is(err, probe.ErrUnknownFormat) || errors.Is(err, probe.ErrSizeUnknown) {
		// The pure-Go probe does not size every format (some HEIF);
		// libvips reads the header of anything it can decode. Files the
		// probe found malformed do not get this second chance: its
		// sanity bounds are the point. Slides in vendors' TIFF dialects
		// are ErrSizeUnknown: OpenSlide describes them, through the engine.
		in := pixelsInput(obj)
		if in.Path == "" && multiFile(obj.Key) {
			return probe.Info{}, errMultiFile
		}
		if in.Path == "" && needsFile(err, obj.Key) && obj.Local != nil {
			// A slide OpenSlide must read, from a remote store: from
			// the whole copy in the source cache.
			f, ferr := obj.Local(ctx)
			if ferr != nil {
				return probe.Info{}, engine.ReadFault(ferr)
			}
			defer f.Close()
			in = engine.Input{Path: fdPath(f)}
		}
		if in.Path != "" && s.cfg.SlideCheck != nil {
			// libvips may hand a local file to OpenSlide (its loader
			// search asks OpenSlide's detection); a slide is checked
			// in a child process before OpenSlide reads it here.
			if cerr := s.cfg.SlideCheck.Check(ctx, in.Path); cerr != nil {
				return probe.Info{}, cerr
			}
		}
		hdr, err = s.render.Header(ctx, in)
	}
	if err != nil {
		return probe.Info{}, headerError(err)
	}
	if len(hdr.Levels) == 0 {
		return probe.Info{}, fault.New(fault.Internal, "the source image is damaged or unreadable")
	}
	return hdr, nil
}

// pixelsInput says how libvips reads obj: the local file by its path (the
// fast path: libvips reads it itself), else the object's ReaderAt, of
// which only the bytes a request needs are read.
func pixelsInput(obj *source.Object) engine.Input {
	if obj.Path != "" {
		return engine.Input{Path: slidePath(obj.Path, obj.Key)}
	}
	return engine.Input{Reader: obj.ReaderAt, Size: obj.Size}
}

// headerError maps a failure to describe a source: an unknown format is
// a 501, a malformed header a 500, a fault (of libvips, or of the store)
// keeps its status, and a failed read of the source is a 502.
func headerError(err error) error {
	var se interface{ HTTPStatus() int }
	var fe *probe.FormatError
	switch {
	case errors.Is(err, probe.ErrUnknownFormat):
		return fault.Wrap(fault.NotImplemented, err, "the source image is in a format this server cannot read")
	case errors.As(err, &se), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case errors.As(err, &fe):
		return fault.Wrap(fault.Internal, err, "the source image is damaged or unreadable")
	}
	return fault.Wrap(fault.BadGateway, err, "the source image could not be read")
}

func formatList(fs []iiif.Format) string {
	s := make([]string, len(fs))
	for i, f := range fs {
		s[i] = string(f)
	}
	return strings.Join(s, ", ")
}

// limitsKey writes limits in a stable order (maps print sorted).
func limitsKey(l plan.Limits) string { return describe.LimitsKey(l) }

// etag is the strong entity tag of the parts that fully determine a
// response's bytes.
func etag(parts ...string) string { return describe.ETag(parts...) }
