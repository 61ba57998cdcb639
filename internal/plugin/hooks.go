package plugin

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/iiifd/iiifd/internal/fault"
	"github.com/iiifd/iiifd/internal/plan"
)

// Resolve asks the plugins running now where the image of identifier id
// is (Snapshot.Resolve).
func (h *Host) Resolve(ctx context.Context, id string) (string, error) {
	s := h.Snapshot()
	defer s.Release()
	return s.Resolve(ctx, id)
}

// Resolve asks the plugins exporting resolve, in order, where the image of
// identifier id is. The first that answers with a key decides; one that
// answers "notfound" makes the identifier unknown (404). When none
// answers (or there are no plugins), the identifier is its own key.
func (s *Snapshot) Resolve(ctx context.Context, id string) (string, error) {
	if !s.Has(HookResolve) {
		return id, nil
	}
	for i, m := range s.set.mods {
		if !m.hooks[HookResolve] {
			continue
		}
		reply, err := s.call(ctx, i, HookResolve, Fields{{"id", id}})
		if err != nil {
			return "", err
		}
		if reply.Has("notfound") {
			return "", fault.New(fault.NotFound, "no image with identifier %q", id)
		}
		if k := reply.Get("key"); k != "" {
			return k, nil
		}
	}
	return id, nil
}

// Request is the facts authorize and overlay are given about a request.
type Request struct {
	ID      string
	Version int
	// Kind is "image" or "info".
	Kind string
	// The IIIF parameters as requested (empty for info.json).
	Region, Size, Rotation, Quality, Format string
	// HTTP facts: method, headers, client address (host:port as the
	// connection gives it).
	Method string
	Header http.Header
	Client string
}

func (r *Request) fields() Fields {
	f := make(Fields, 0, 12+len(r.Header))
	f.Append("id", r.ID)
	f.Append("version", strconv.Itoa(r.Version))
	f.Append("kind", r.Kind)
	if r.Kind == "image" {
		f.Append("region", r.Region)
		f.Append("size", r.Size)
		f.Append("rotation", r.Rotation)
		f.Append("quality", r.Quality)
		f.Append("format", r.Format)
	}
	f.Append("method", r.Method)
	f.Append("client", r.Client)
	for name, vals := range r.Header {
		key := "header:" + strings.ToLower(name)
		for _, v := range vals {
			f.Append(key, v)
		}
		if name == "Cookie" {
			for _, v := range vals {
				if cs, err := http.ParseCookie(v); err == nil {
					for _, c := range cs {
						f.Append("cookie:"+c.Name, c.Value)
					}
				}
			}
		}
	}
	return f
}

// Access is what authorize allowed: full access, or at most MaxWidth ×
// MaxHeight pixels (0 = not limited).
type Access struct {
	MaxWidth, MaxHeight int
}

// Limited reports whether access is degraded.
func (a Access) Limited() bool { return a.MaxWidth > 0 || a.MaxHeight > 0 }

// Denied is a request authorize refused (401 or 403) or redirected.
type Denied struct {
	Status   int
	Message  string
	Location string // for redirects
	// Challenge is the WWW-Authenticate header of a 401.
	Challenge string
}

func (d *Denied) Error() string   { return d.Message }
func (d *Denied) HTTPStatus() int { return d.Status }

// ResponseHeader returns the headers the refusal needs.
func (d *Denied) ResponseHeader() http.Header {
	h := http.Header{}
	if d.Location != "" {
		h.Set("Location", d.Location)
	}
	if d.Challenge != "" {
		h.Set("WWW-Authenticate", d.Challenge)
	}
	return h
}

// Authorize asks the plugins running now (Snapshot.Authorize).
func (h *Host) Authorize(ctx context.Context, r *Request) (Access, error) {
	s := h.Snapshot()
	defer s.Release()
	return s.Authorize(ctx, r)
}

// Authorize asks every plugin exporting authorize, in order: each must
// allow; the tightest maximum size wins. A refusal is a *Denied error.
// Without plugins, full access.
func (s *Snapshot) Authorize(ctx context.Context, r *Request) (Access, error) {
	var a Access
	if s == nil {
		return a, nil
	}
	var payload Fields
	for i, m := range s.set.mods {
		if !m.hooks[HookAuthorize] {
			continue
		}
		p := m.p
		if payload == nil {
			payload = r.fields()
		}
		reply, ok := m.decisions.get(payload)
		if !ok {
			var err error
			if reply, err = s.call(ctx, i, HookAuthorize, payload); err != nil {
				return Access{}, err
			}
			m.decisions.put(payload, reply)
		}
		switch action := reply.Get("action"); action {
		case "", "allow":
			a.MaxWidth = plan.Tighter(a.MaxWidth, atoi(reply.Get("max-width")))
			a.MaxHeight = plan.Tighter(a.MaxHeight, atoi(reply.Get("max-height")))
		case "deny":
			d := &Denied{Status: http.StatusForbidden, Message: reply.Get("message"), Challenge: reply.Get("challenge")}
			if reply.Get("status") == "401" {
				d.Status = http.StatusUnauthorized
				if d.Challenge == "" {
					d.Challenge = `Bearer realm="iiifd"`
				}
			}
			if d.Message == "" {
				d.Message = strings.ToLower(http.StatusText(d.Status))
			}
			return Access{}, d
		case "redirect":
			loc := reply.Get("location")
			if loc == "" {
				return Access{}, fault.New(fault.Internal, "plugin %s: authorize redirected without a location", p.name)
			}
			st := http.StatusFound
			if s := atoi(reply.Get("status")); s == 301 || s == 302 || s == 303 || s == 307 || s == 308 {
				st = s
			}
			return Access{}, &Denied{Status: st, Message: "see " + loc, Location: loc}
		default:
			return Access{}, fault.New(fault.Internal, "plugin %s: authorize answered the unknown action %q", p.name, action)
		}
	}
	return a, nil
}

func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// InfoFields are the fields the info hook may add to info.json.
var InfoFields = map[string]bool{"rights": true, "service": true, "partOf": true, "seeAlso": true, "license": true, "attribution": true, "logo": true}

// Info asks the plugins running now (Snapshot.Info).
func (h *Host) Info(ctx context.Context, id string, version int, doc []byte) (map[string]json.RawMessage, error) {
	s := h.Snapshot()
	defer s.Release()
	return s.Info(ctx, id, version, doc)
}

// Info asks the plugins exporting info for fields to add to the info.json
// document doc of identifier id: each replies a JSON object under "json";
// fields outside InfoFields are refused, earlier plugins win a field.
func (s *Snapshot) Info(ctx context.Context, id string, version int, doc []byte) (map[string]json.RawMessage, error) {
	extra := map[string]json.RawMessage{}
	if s == nil {
		return extra, nil
	}
	for i, m := range s.set.mods {
		if !m.hooks[HookInfo] {
			continue
		}
		p := m.p
		reply, err := s.call(ctx, i, HookInfo, Fields{{"id", id}, {"version", strconv.Itoa(version)}, {"info", string(doc)}})
		if err != nil {
			return nil, err
		}
		js := reply.Get("json")
		if js == "" {
			continue
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal([]byte(js), &m); err != nil {
			return nil, fault.Wrap(fault.Internal, err, "plugin %s: info did not answer a JSON object", p.name)
		}
		for k, v := range m {
			if !InfoFields[k] {
				return nil, fault.New(fault.Internal, "plugin %s: info may not set %q", p.name, k)
			}
			if _, ok := extra[k]; !ok {
				extra[k] = v
			}
		}
	}
	return extra, nil
}

// Overlay is an image to composite over a rendered one.
type Overlay struct {
	PNG     []byte
	X, Y    int     // top-left corner in output pixels
	Opacity float64 // 0..1
}

// clientField reports whether a request field is a fact of the client
// (its address, a header, a cookie) rather than of the IIIF request.
func clientField(key string) bool {
	return key == "client" || strings.HasPrefix(key, "header:") || strings.HasPrefix(key, "cookie:")
}

// overlayVary parses a configure reply's "overlay-vary": the client
// fields an overlay depends on, which only then it is given.
func overlayVary(s string) ([]string, error) {
	vary := parseVary(s)
	for i, k := range vary {
		if !clientField(k) || k == "header:" || k == "cookie:" {
			return nil, fmt.Errorf("overlay-vary names %q; it may name client, header:NAME and cookie:NAME (the request's own fields are always given)", k)
		}
		if name, ok := strings.CutPrefix(k, "header:"); ok {
			vary[i] = "header:" + strings.ToLower(name)
		}
	}
	slices.Sort(vary)
	return slices.Compact(vary), nil
}

// overlayFields returns the fields of all that an overlay declaring
// vary is given: the request's own, and the client fields it declared.
func overlayFields(all Fields, vary []string) Fields {
	f := make(Fields, 0, len(all))
	for _, x := range all {
		if !clientField(x.Key) || slices.Contains(vary, x.Key) {
			f = append(f, x)
		}
	}
	return f
}

// OverlayKey is Snapshot.OverlayKey of the plugins running now.
func (h *Host) OverlayKey(r *Request) string {
	s := h.Snapshot()
	defer s.Release()
	return s.OverlayKey(r)
}

// OverlayKey returns what identifies r's client among the outputs of the
// snapshot's overlay plugins: the values of the client fields they
// declared (overlay-vary), or "" when they declared none, as overlays
// that depend on the request alone. It belongs in the cache key of every
// image.
func (s *Snapshot) OverlayKey(r *Request) string {
	if s == nil {
		return ""
	}
	st := s.set
	if len(st.overlayVary) == 0 {
		return ""
	}
	return r.clientVaryKey(st.overlayVary)
}

// clientVaryKey returns varyKey(r.fields(), vary) for vary naming client
// fields only (as overlayVary leaves it), reading just those fields of r:
// the client address, the headers whose lowercased name is declared, the
// cookies of the Cookie header (parsed only when one is declared).
func (r *Request) clientVaryKey(vary []string) string {
	var fs Fields
	var cookies []*http.Cookie
	parsed := false
	for i, k := range vary {
		if slices.Contains(vary[:i], k) {
			continue // its values are in fs already
		}
		if k == "client" {
			fs = append(fs, Field{k, r.Client})
		} else if name, ok := strings.CutPrefix(k, "header:"); ok {
			for h, vals := range r.Header {
				if isLower(h, name) {
					for _, v := range vals {
						fs = append(fs, Field{k, v})
					}
				}
			}
		} else if name, ok := strings.CutPrefix(k, "cookie:"); ok {
			if !parsed {
				for _, v := range r.Header["Cookie"] {
					if cs, err := http.ParseCookie(v); err == nil {
						cookies = append(cookies, cs...)
					}
				}
				parsed = true
			}
			for _, c := range cookies {
				if c.Name == name {
					fs = append(fs, Field{k, c.Value})
				}
			}
		}
	}
	return varyKey(fs, vary)
}

// isLower reports whether strings.ToLower(s) == lower, without making
// the lowercased copy when s is ASCII.
func isLower(s, lower string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return strings.ToLower(s) == lower
		}
	}
	if len(s) != len(lower) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// OverlayVary says what the snapshot's overlay plugins' declarations make
// of image responses: the header names for Vary ("" when none), and
// whether the output depends on credentials (cookies, Authorization) or
// the client's address, so that only the client itself may keep it
// (Cache-Control: private, and no shared derivative cache).
func (s *Snapshot) OverlayVary() (vary string, private bool) {
	if s == nil {
		return "", false
	}
	return s.set.overlayHeader, s.set.overlayPrivate
}

// Overlay asks the plugins running now (Snapshot.Overlay).
func (h *Host) Overlay(ctx context.Context, r *Request, width, height int) (*Overlay, error) {
	s := h.Snapshot()
	defer s.Release()
	return s.Overlay(ctx, r, width, height)
}

// Overlay asks the plugins exporting overlay, in order, for an image to
// put over the output of r, which is width × height pixels. The first
// that answers with a PNG decides; nil when none does. Each is given the
// request's own fields and only the client fields it declared.
func (s *Snapshot) Overlay(ctx context.Context, r *Request, width, height int) (*Overlay, error) {
	if s == nil {
		return nil, nil
	}
	var all Fields
	for i, m := range s.set.mods {
		if !m.hooks[HookOverlay] {
			continue
		}
		p := m.p
		if all == nil {
			all = r.fields()
			all.Append("width", strconv.Itoa(width))
			all.Append("height", strconv.Itoa(height))
		}
		reply, err := s.call(ctx, i, HookOverlay, overlayFields(all, m.overlayVary))
		if err != nil {
			return nil, err
		}
		png := reply.Get("png")
		if png == "" {
			continue
		}
		o := &Overlay{PNG: []byte(png), X: atoiSigned(reply.Get("x")), Y: atoiSigned(reply.Get("y")), Opacity: 1}
		if s := reply.Get("opacity"); s != "" {
			v, err := strconv.ParseFloat(s, 64)
			if err != nil || !(v >= 0 && v <= 1) { // NaN too
				return nil, fault.New(fault.Internal, "plugin %s: overlay opacity %q is not in 0..1", p.name, s)
			}
			o.Opacity = v
		}
		return o, nil
	}
	return nil, nil
}

func atoiSigned(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// String describes the host for logs.
func (h *Host) String() string {
	var names []string
	for _, p := range h.plugins {
		names = append(names, fmt.Sprintf("%s(%s)", p.name, strings.Join(sortedKeys(p.current().hooks), ",")))
	}
	return strings.Join(names, " ")
}
