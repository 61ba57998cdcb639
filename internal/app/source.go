package app

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/iiifd/iiifd/internal/config"
	"github.com/iiifd/iiifd/internal/obs"
	"github.com/iiifd/iiifd/internal/source"
	"github.com/iiifd/iiifd/internal/source/fs"
	"github.com/iiifd/iiifd/internal/source/httpsrc"
	"github.com/iiifd/iiifd/internal/source/ranged"
	"github.com/iiifd/iiifd/internal/source/remote"
	"github.com/iiifd/iiifd/internal/source/route"
	"github.com/iiifd/iiifd/internal/source/s3"
	"github.com/iiifd/iiifd/internal/source/spool"
)

// statser is a remote source that counts what it fetched.
type statser interface {
	Stats() ranged.Stats
	Backend() *remote.Backend
}

// StorePolicy is how remote roots are read with the configured store
// settings: timeouts, retries and connections.
func StorePolicy(st config.StoreConfig) remote.Policy {
	policy := remote.DefaultPolicy()
	policy.ConnectTimeout, policy.ReadTimeout, policy.Retries = st.ConnectTimeout, st.ReadTimeout, st.Retries
	policy.Connections = st.Concurrency
	return policy
}

// Bucket builds the source of one s3:// root with the store settings st,
// as the server's own roots are built, for the commands that list or
// write a bucket outside the server (iiifd check, iiifd ingest).
func Bucket(ctx context.Context, st config.StoreConfig, root string) (*s3.Source, error) {
	bucket, prefix, err := s3.ParseURL(root)
	if err != nil {
		return nil, err
	}
	policy := StorePolicy(st)
	if err := policy.Validate(); err != nil {
		return nil, err
	}
	return s3.New(ctx, s3.Config{Bucket: bucket, Prefix: prefix, Policy: policy, Store: ranged.NewStore(ranged.Config{}), ListPage: st.ListPage})
}

// buildSource builds the source of the configured roots: --root, and the
// [[roots]] rules tried before it, each root a directory, a bucket or an
// origin, all with the configured key layout. Remote roots share one
// block cache and one source cache.
func (a *App) buildSource(cfg config.Config) (source.Source, error) {
	st := cfg.Stores
	layout, err := route.ParseLayout(st.KeyLayout)
	if err != nil {
		return nil, err
	}
	policy := StorePolicy(st)
	if err := policy.Validate(); err != nil {
		return nil, err
	}
	var blocks *ranged.Cache
	if st.BlockCache > 0 {
		blocks = ranged.NewCache(int64(st.BlockCache))
	}
	var sp *spool.Spool
	sourceCache := func() (*spool.Spool, error) {
		if sp != nil || st.SourceCacheSize == 0 {
			return sp, nil
		}
		dir := st.SourceCacheDir
		if dir == "" {
			d, err := os.MkdirTemp("", "iiifd-source-cache-")
			if err != nil {
				return nil, err
			}
			a.cleanup = append(a.cleanup, func() { os.RemoveAll(d) })
			dir = d
		}
		var err error
		sp, err = spool.New(dir, int64(st.SourceCacheSize))
		return sp, err
	}
	open := func(name, root string) (source.Source, error) {
		if !config.RemoteRoot(root) {
			s, err := fs.New(root)
			if err != nil {
				return nil, err
			}
			return route.WithLayout(s, layout), nil
		}
		cache, err := sourceCache()
		if err != nil {
			return nil, fmt.Errorf("source-cache-dir: %w", err)
		}
		store := ranged.NewStore(ranged.Config{Cache: blocks, PerObject: st.RequestConcurrency, Global: st.Concurrency})
		var s source.Source
		if strings.HasPrefix(root, "s3://") {
			bucket, prefix, err := s3.ParseURL(root)
			if err != nil {
				return nil, err
			}
			s, err = s3.New(context.Background(), s3.Config{Bucket: bucket, Prefix: prefix, Policy: policy, Store: store, Spool: cache, ListPage: st.ListPage})
			if err != nil {
				return nil, fmt.Errorf("root %s: %w", root, err)
			}
		} else {
			s, err = httpsrc.New(httpsrc.Config{Base: root, Policy: policy, Store: store, Spool: cache, UserAgent: "iiifd/" + buildVersion()})
			if err != nil {
				return nil, fmt.Errorf("root %s: %w", root, err)
			}
		}
		a.stores = append(a.stores, namedStore{name, root, s.(statser)})
		return route.WithLayout(s, layout), nil
	}
	var fallback source.Source
	if a.root != "" {
		if fallback, err = open("root", a.root); err != nil {
			return nil, err
		}
	}
	if len(st.Roots) == 0 {
		return fallback, nil
	}
	rules := make([]route.Rule, 0, len(st.Roots))
	for i, r := range st.Roots {
		s, err := open(fmt.Sprintf("roots[%d]", i), r.Root)
		if err != nil {
			return nil, fmt.Errorf("roots %s: %w", r.Match, err)
		}
		rules = append(rules, route.Rule{Pattern: r.Match, Source: s})
	}
	return route.NewRouter(rules, fallback)
}

// namedStore is a remote root with the name the metrics give it: "root"
// for --root, "roots[N]" for the Nth [[roots]] rule. Metrics never carry
// the URL, which may name a private host or bucket (and /metrics may be
// public).
type namedStore struct {
	name string
	root string
	s    statser
}

// StoreStats returns, for each remote root, the range requests made and
// bytes fetched so far.
func (a *App) StoreStats() map[string]ranged.Stats {
	out := make(map[string]ranged.Stats, len(a.stores))
	for _, s := range a.stores {
		out[s.root] = s.s.Stats()
	}
	return out
}

// storeCounts reports the remote roots to the metrics.
func (a *App) storeCounts() []obs.StoreCount {
	out := make([]obs.StoreCount, 0, len(a.stores))
	for _, s := range a.stores {
		st := s.s.Stats()
		out = append(out, obs.StoreCount{
			Root: s.name, Requests: st.Requests, Bytes: st.Bytes, CacheHits: st.CacheHits,
			BreakerOpen: s.s.Backend().Breaker().Open(),
		})
	}
	return out
}
