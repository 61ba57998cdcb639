package service

import (
	"context"
	"net/http"

	"github.com/iiifd/iiifd/internal/iiif"
	"github.com/iiifd/iiifd/internal/plan"
	"github.com/iiifd/iiifd/internal/plugin"
)

// Gate restricts images by identifier (auth.Auth: the access rules and
// the IIIF Authorization Flow API). It is asked before anything is looked
// up, so that a cached derivative is never served to a client that may
// not have it.
type Gate interface {
	// Admit decides a request for the image id (image: its pixels, else
	// its info.json) from its headers: whether the image is restricted,
	// the long side the client may see (0 = all) and, when the client may
	// not see it at all, an error that says why.
	Admit(ctx context.Context, id string, image bool, h http.Header) (restricted bool, max int, err error)
	// Services returns the services the info.json of id declares, under
	// base (nil for an image that is not restricted).
	Services(base, id string) []any
	// Context is the JSON-LD context of those services, which comes first
	// in info.json's @context.
	Context() string
}

// admitGate asks the gate about a request for the image id.
func (s *Service) admitGate(ctx context.Context, id string, image bool) (grant, error) {
	var g grant
	if s.cfg.Gate == nil {
		return g, nil
	}
	restricted, max, err := s.cfg.Gate.Admit(ctx, id, image, clientFrom(ctx).Header)
	if err != nil {
		return g, err
	}
	g.restricted = restricted
	g.MaxWidth, g.MaxHeight = max, max
	return g, nil
}

// tighten narrows the access a plugin allowed to the gate's.
func (g *grant) tighten(max int) {
	g.MaxWidth, g.MaxHeight = plan.Tighter(g.MaxWidth, max), plan.Tighter(g.MaxHeight, max)
}

// declareServices adds the gate's services of a restricted image to its
// info.json (version 3 only: the Authorization Flow API 2.0 is for Image
// API 3.0 services), the auth context first in @context.
func (s *Service) declareServices(v iiif.Version, id string, ii *iiif.ImageInfo, g grant) {
	if s.cfg.Gate == nil || !g.restricted || v != iiif.V3 {
		return
	}
	svcs := s.cfg.Gate.Services(basePlaceholder, id)
	if len(svcs) == 0 {
		return
	}
	ii.Contexts = append([]string{s.cfg.Gate.Context()}, ii.Contexts...)
	if ii.Extra == nil {
		ii.Extra = map[string]any{}
	}
	ii.Extra["service"] = svcs
}

// Exists reports whether the identifier id names an image (a nil error),
// without asking the gate or the authorize hook: the probe service's
// question, whose answer the probe gives everyone.
func (s *Service) Exists(ctx context.Context, id string) error {
	key := id
	if s.cfg.Plugins.Has(plugin.HookResolve) {
		var err error
		if key, err = s.cfg.Plugins.Resolve(ctx, id); err != nil {
			return err
		}
	}
	tgt, err := s.resolve(ctx, key)
	if err != nil {
		return err
	}
	tgt.Object.Close()
	return nil
}
