// Package app is the composition root of iiifd: it builds every component
// from a config.Config, mounts the routes and owns start-up and graceful
// shutdown. Nothing else wires components together.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/iiifd/iiifd/internal/cache"
	"github.com/iiifd/iiifd/internal/cache/disk"
	"github.com/iiifd/iiifd/internal/cache/memory"
	"github.com/iiifd/iiifd/internal/cache/redis"
	"github.com/iiifd/iiifd/internal/config"
	"github.com/iiifd/iiifd/internal/engine"
	"github.com/iiifd/iiifd/internal/fault"
	"github.com/iiifd/iiifd/internal/httpapi"
	"github.com/iiifd/iiifd/internal/ingest"
	"github.com/iiifd/iiifd/internal/limit"
	"github.com/iiifd/iiifd/internal/metrics"
	"github.com/iiifd/iiifd/internal/output"
	"github.com/iiifd/iiifd/internal/pixels"
	"github.com/iiifd/iiifd/internal/plan"
	"github.com/iiifd/iiifd/internal/plugin"
	"github.com/iiifd/iiifd/internal/purge"
	"github.com/iiifd/iiifd/internal/samples"
	"github.com/iiifd/iiifd/internal/service"
	"github.com/iiifd/iiifd/internal/slidecheck"
	"github.com/iiifd/iiifd/internal/source"
	"github.com/iiifd/iiifd/internal/source/fs"
	"github.com/iiifd/iiifd/internal/web"
)

// App is a built server, ready to serve.
type App struct {
	cfg     config.Config
	log     *slog.Logger
	handler http.Handler
	root    string
	svc     *service.Service
	cleanup []func()
	ready   atomic.Bool
	metrics http.Handler
	stores  []namedStore // remote roots, for their counters
	admit   *limit.Admitter
}

// New builds the server from cfg. Close releases what it holds.
func New(cfg config.Config, log *slog.Logger) (*App, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	a := &App{cfg: cfg, log: log, root: cfg.Root}
	if a.root == "" && len(cfg.Stores.Roots) == 0 {
		dir, err := os.MkdirTemp("", "iiifd-samples-")
		if err != nil {
			return nil, err
		}
		a.cleanup = append(a.cleanup, func() { os.RemoveAll(dir) })
		if err := samples.Extract(dir); err != nil {
			a.Close()
			return nil, fmt.Errorf("sample images: %w", err)
		}
		a.root = dir
		log.Info("no --root given: serving the embedded sample images", "dir", dir)
	}
	src, err := a.buildSource(cfg)
	if err != nil {
		a.Close()
		return nil, err
	}
	vipsLog := log.With("component", "libvips")
	if err := pixels.Startup(pixels.Config{
		Concurrency: cfg.VipsConcurrency,
		Warn:        func(msg string) { vipsLog.Debug(msg) },
	}); err != nil {
		a.Close()
		return nil, fmt.Errorf("libvips: %w", err)
	}
	eng := pixels.NewEngine(engine.EncodeOptions{
		JPEGQuality: cfg.JPEGQuality, WebPQuality: cfg.WebPQuality, AVIFQuality: cfg.AVIFQuality,
		PNGCompression: cfg.PNGCompression,
	})
	admit, err := limit.New(limit.Config{
		Workers: cfg.Workers, Queue: cfg.Queue, QueueTimeout: cfg.QueueTimeout, Memory: int64(cfg.MemoryLimit),
		PerClient: cfg.ClientLimit, Prefetched: int64(cfg.PrefetchMemory),
	})
	if err != nil {
		a.Close()
		return nil, err
	}
	a.admit = admit
	dc, err := a.buildCache(cfg)
	if err != nil {
		a.Close()
		return nil, err
	}
	plugins, err := a.buildPlugins(cfg)
	if err != nil {
		a.Close()
		return nil, err
	}
	var slides service.SlideChecker
	if len(cfg.SlideCheckCommand) > 0 && !cfg.NoSlideCheck {
		slides, err = slidecheck.New(slidecheck.Config{Command: cfg.SlideCheckCommand, Timeout: cfg.SlideCheckTimeout})
		if err != nil {
			a.Close()
			return nil, err
		}
	}
	var svc *service.Service
	au, err := a.buildAuth(cfg, func(ctx context.Context, id string) error { return svc.Exists(ctx, id) })
	if err != nil {
		a.Close()
		return nil, err
	}
	svc, err = service.New(service.Config{
		Gate:              gate(au),
		Plugins:           plugins,
		Cache:             dc,
		Admit:             admit,
		Limits:            Limits(cfg),
		TileSize:          cfg.TileSize,
		IgnoreOrientation: cfg.IgnoreOrientation,
		PrefetchPerRender: prefetchPerRender(cfg.PrefetchPerRender),
		Output:            outputConfig(cfg),
		SlideCheck:        slides,
		// Everything that changes output bytes besides the request and the
		// source: encoder settings, this build, libvips and what it can
		// write. Caches that outlive an upgrade (disk, Redis) then never
		// serve bytes of another build under the same ETag.
		Variant: fmt.Sprintf("q%d/%d/%d png%d %s vips-%s %v%s", cfg.JPEGQuality, cfg.WebPQuality, cfg.AVIFQuality,
			cfg.PNGCompression, buildVersion(), pixels.Version(), pixels.Formats(), orientationVariant(cfg.IgnoreOrientation)),
	}, src, eng)
	if err != nil {
		a.Close()
		return nil, err
	}
	a.svc = svc
	m := metrics.New(metrics.Sources{Cache: dc, Admit: admit, Engine: vipsStats, Stores: a.storeCounts})
	a.metrics = m.Handler()
	front, err := a.buildWeb(cfg, svc, src)
	if err != nil {
		a.Close()
		return nil, err
	}
	trustAll, proxies, err := config.ForwardedFrom(cfg.TrustForwarded)
	if err != nil {
		a.Close()
		return nil, err
	}
	cdn, err := purge.New(purge.Config{
		URLs:          cfg.Purge.URLs,
		FastlyService: cfg.Purge.FastlyService, FastlyToken: cfg.Purge.FastlyToken,
		CloudflareZone: cfg.Purge.CloudflareZone, CloudflareToken: cfg.Purge.CloudflareToken,
	})
	if err != nil {
		a.Close()
		return nil, err
	}
	a.handler = httpapi.New(svc, httpapi.Options{
		BaseURL: cfg.BaseURL, CacheControl: cfg.CacheControl, InfoCacheControl: cfg.InfoCacheControl, Logger: log,
		Ready: a.ready.Load, AdminToken: cfg.AdminToken,
		Metrics: publicMetrics(cfg, a.metrics), Observe: m.Observe,
		TrustForwarded: trustAll, TrustedProxies: proxies,
		ClientShares: cfg.ClientLimit > 0, ClientIPHeader: cfg.ClientIPHeader,
		Web:     front,
		Private: plugins.Has(plugin.HookAuthorize), Plugins: plugins != nil,
		// Repeated memory hits skip the pipeline for as long as
		// sources reuse an object's metadata (fs.OpenFor; remote
		// stores' MetaTTL is the same second).
		HotFor:         hotFor(cfg.HotRequests),
		RequestTimeout: cfg.RequestTimeout, WriteTimeout: cfg.WriteTimeout,
		Auth: authHandler(au),
		CDN:  cdn,
	})
	return a, nil
}

// prefetchPerRender is --prefetch-per-render as service.Config takes it:
// there 0 is the default, and no tiles fetched ahead is negative.
func prefetchPerRender(n config.ByteSize) int64 {
	if n == 0 {
		return -1
	}
	return int64(n)
}

// buildWeb builds the web front: gallery, viewer, Presentation API
// documents and uploads into the served root.
func (a *App) buildWeb(cfg config.Config, svc *service.Service, src source.Source) (http.Handler, error) {
	var build ingest.Builder // nil: in this process
	if len(cfg.IngestCommand) > 0 {
		build = ingest.Subprocess(cfg.IngestCommand...)
	}
	convert := func(ctx context.Context, src, dst string, progress func(int)) error {
		// Run kills the worker (its whole process group) when ctx ends
		// and removes its work directory.
		return ingest.Run(ctx, src, dst, ingest.Options{Format: ingest.FormatPTIFF, Progress: progress}, build)
	}
	wc := web.Config{Images: svc, UploadMaxSize: int64(cfg.UploadMaxSize), Ingest: convert, IngestTimeout: cfg.IngestTimeout, Logger: a.log}
	if local, ok := src.(*fs.FS); ok {
		wc.List, wc.Root, wc.AdminToken = local, local.Root(), cfg.AdminToken
	} else {
		// Object stores and HTTP origins are not walked for a gallery,
		// nor written to by uploads; images are still viewed by
		// identifier at /view/{identifier}.
		wc.List = unlisted{}
	}
	front, err := web.New(wc)
	if err != nil {
		return nil, err
	}
	a.cleanup = append(a.cleanup, func() { front.Close() })
	return front, nil
}

// unlisted is the gallery's lister for roots that cannot be walked.
type unlisted struct{}

func (unlisted) List(context.Context, int, func(string) bool) ([]source.Entry, error) {
	return nil, fault.New(fault.NotImplemented, "the gallery lists only a local --root; open an image at /view/{identifier}")
}

// buildPlugins loads the configured WebAssembly extensions; nil when
// there are none.
func (a *App) buildPlugins(cfg config.Config) (*plugin.Host, error) {
	if len(cfg.Plugins.Files) == 0 {
		return nil, nil
	}
	specs := make([]plugin.Spec, len(cfg.Plugins.Files))
	for i, f := range cfg.Plugins.Files {
		specs[i] = plugin.Spec{Path: f}
		specs[i].Config = cfg.Plugins.Config[specs[i].Name()]
	}
	reload := cfg.PluginReload
	if reload == 0 {
		reload = -1 // off
	}
	h, err := plugin.New(context.Background(), specs, plugin.Options{
		Timeout: cfg.PluginTimeout, MemoryLimit: int64(cfg.PluginMemory), Reload: reload, CacheDir: cfg.PluginCacheDir,
		Logger: a.log.With("component", "plugin"),
	})
	if err != nil {
		return nil, err
	}
	a.cleanup = append(a.cleanup, func() { h.Close() })
	a.log.Info("plugins loaded", "plugins", h.String())
	return h, nil
}

// buildCache builds the configured derivative cache tiers, fastest
// first; nil when none is configured. Tier faults are logged and served
// as misses.
func (a *App) buildCache(cfg config.Config) (*cache.Cache, error) {
	var tiers []cache.Tier
	if cfg.CacheMemory > 0 {
		t, err := memory.New(memory.Config{MaxBytes: int64(cfg.CacheMemory)})
		if err != nil {
			return nil, fmt.Errorf("cache-memory: %w", err)
		}
		tiers = append(tiers, t)
	}
	if cfg.CacheDir != "" {
		t, err := disk.New(disk.Config{
			Dir: cfg.CacheDir, MaxBytes: int64(cfg.CacheSize),
			OnError: func(op string, err error) { a.log.Warn("disk cache", "op", op, "error", err) },
		})
		if err != nil {
			return nil, fmt.Errorf("cache-dir: %w", err)
		}
		a.cleanup = append(a.cleanup, func() { t.Close() })
		tiers = append(tiers, t)
	}
	if cfg.CacheRedis != "" {
		t, err := redis.New(redis.Config{URL: cfg.CacheRedis})
		if err != nil {
			return nil, fmt.Errorf("cache-redis: %w", err)
		}
		a.cleanup = append(a.cleanup, func() { t.Close() })
		tiers = append(tiers, t)
	}
	if len(tiers) == 0 {
		return nil, nil
	}
	c, err := cache.New(cache.Config{OnError: func(tier, op string, k cache.Key, err error) {
		a.log.Warn("cache tier fault, served as a miss", "tier", tier, "op", op, "error", err)
	}}, tiers...)
	if err != nil {
		return nil, err
	}
	// Purges made by other replicas reach this one's local tiers.
	ctx, cancel := context.WithCancel(context.Background())
	a.cleanup = append(a.cleanup, cancel)
	go c.Watch(ctx)
	return c, nil
}

// buildVersion identifies this build: its module version and VCS
// revision (with a dirty mark), when the toolchain recorded them.
func buildVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" || s.Key == "vcs.modified" {
			v += " " + s.Value
		}
	}
	return v
}

// Limits converts the configured output limits to the planner's.
func Limits(cfg config.Config) plan.Limits {
	l := plan.Limits{MaxWidth: cfg.MaxWidth, MaxHeight: cfg.MaxHeight, MaxArea: cfg.MaxArea, MaxSourcePixels: cfg.MaxSourcePixels}
	if len(cfg.FormatLimits) > 0 {
		l.PerFormat = maps.Clone(cfg.FormatLimits)
	}
	return l
}

// Handler returns the server's HTTP handler.
func (a *App) Handler() http.Handler { return a.handler }

// Admitter returns the admission controller of image work.
func (a *App) Admitter() *limit.Admitter { return a.admit }

// Service returns the request pipeline, for commands that use it without
// HTTP (iiifd check).
func (a *App) Service() *service.Service { return a.svc }

// Root returns the directory being served.
func (a *App) Root() string { return a.root }

// Close releases the app's resources (the extracted samples).
func (a *App) Close() error {
	for i := len(a.cleanup) - 1; i >= 0; i-- {
		a.cleanup[i]()
	}
	a.cleanup = nil
	return nil
}

// Serve listens on the configured address and serves until ctx is done,
// then shuts down gracefully: it stops accepting, lets in-flight requests
// finish for up to the shutdown timeout, and returns. ready, when not nil,
// is called with the bound address once the server accepts connections.
func (a *App) Serve(ctx context.Context, ready func(addr net.Addr)) error {
	ln, err := net.Listen("tcp", a.cfg.Addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           a.handler,
		ReadHeaderTimeout: a.cfg.ReadHeaderTimeout,
		WriteTimeout:      a.cfg.WriteTimeout,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	if a.cfg.AdminAddr != "" {
		// Profiling and debugging only on the admin address, which is
		// meant to be reachable by operators alone.
		aln, err := net.Listen("tcp", a.cfg.AdminAddr)
		if err != nil {
			srv.Close()
			return fmt.Errorf("admin-addr: %w", err)
		}
		admin := &http.Server{Handler: adminMux(a.metrics), ReadHeaderTimeout: 10 * time.Second}
		go admin.Serve(aln)
		defer admin.Close()
		a.log.Info("admin endpoints listening", "addr", aln.Addr().String())
	}
	a.ready.Store(true)
	a.log.Info("iiifd listening", "addr", ln.Addr().String(), "root", a.root)
	if ready != nil {
		ready(ln.Addr())
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	// Not ready from now on: load balancers polling /readyz stop sending
	// traffic while in-flight requests finish.
	a.ready.Store(false)
	a.log.Info("shutting down", "drain_delay", a.cfg.DrainDelay.String(), "timeout", a.cfg.ShutdownTimeout.String())
	time.Sleep(a.cfg.DrainDelay)
	sctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// publicMetrics is the metrics handler for the public port: none when an
// admin address is set, as the metrics are then the operators' alone.
func publicMetrics(cfg config.Config, h http.Handler) http.Handler {
	if cfg.AdminAddr != "" {
		return nil
	}
	return h
}

// adminMux serves pprof and the metrics on the admin address.
func adminMux(m http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.Handle("/metrics", m)
	return mux
}

var _ service.Engine = pixels.Engine{}

// vipsStats reports libvips' resource use to the metrics.
func vipsStats() metrics.EngineStats {
	st := pixels.ReadStats()
	return metrics.EngineStats{Memory: st.TrackedMem, MemoryHighwater: st.MemHighwater, OpenFiles: st.TrackedFiles}
}

// orientationVariant is what --ignore-orientation adds to the variant:
// nothing by default, so that caches filled before the setting existed
// stay valid for the images without an orientation tag.
func orientationVariant(ignore bool) string {
	if ignore {
		return " stored-orientation"
	}
	return ""
}

// outputConfig says where finished images wait for their clients: in
// memory up to --spill-threshold (0 sends all of them to files), in
// --spill-dir past it.
func outputConfig(cfg config.Config) output.Config {
	t := int64(cfg.SpillThreshold)
	if t == 0 {
		t = -1 // output.Config: every body to a file
	}
	return output.Config{Threshold: t, Dir: cfg.SpillDir}
}

// hotFor is how long a memory hit is answered again without the pipeline:
// as long as sources reuse an object's metadata, or never when the memo is
// turned off (--hot-requests=false).
func hotFor(on bool) time.Duration {
	if !on {
		return 0
	}
	return fs.OpenFor
}
