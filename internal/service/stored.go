package service

import (
	"context"

	"github.com/iiifd/iiifd/internal/iiif"
	"github.com/iiifd/iiifd/internal/probe"
)

// Stored returns the probe's facts of the source of id as stored: sizes
// before any orientation is applied, read afresh (not from the header
// cache). ok is false for a tile pyramid, which has no such header.
// `iiifd check` compares it with info.json, so that a server that shows
// an image turned wrong is caught by a check that does not trust it.
func (s *Service) Stored(ctx context.Context, id string) (info probe.Info, ok bool, err error) {
	plugins := s.cfg.Plugins.Snapshot()
	defer plugins.Release()
	key, _, err := s.admitPlugins(ctx, plugins, iiif.V3, id, nil)
	if err != nil {
		return probe.Info{}, false, err
	}
	tgt, err := s.resolve(ctx, key)
	if err != nil {
		return probe.Info{}, false, err
	}
	defer tgt.Object.Close()
	if tgt.Dir != "" {
		return probe.Info{}, false, nil
	}
	info, err = s.probe(ctx, tgt.Object)
	return info, err == nil, err
}
