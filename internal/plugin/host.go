// Package plugin runs iiifd's WebAssembly extensions on wazero: it loads
// each module once (compiled through a shared compilation cache), keeps a
// pool of instances per module for concurrent calls, bounds every call in
// time and every instance in memory, gives guests no filesystem or
// network (only clocks and random numbers), reloads a module when its file
// changes, and adapts the hooks a module exports (resolve, authorize,
// info, overlay) to the request pipeline. A request sees the plugins
// through one Snapshot, taken as it starts, so that a reload never mixes
// two versions of a module in one answer. The ABI is documented in
// docs/PLUGINS.md.
package plugin

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"

	"github.com/iiifd/iiifd/internal/fault"
)

// Hook names: the exports a module may have besides the ABI's own.
const (
	HookResolve   = "resolve"
	HookAuthorize = "authorize"
	HookInfo      = "info"
	HookOverlay   = "overlay"
)

var hooks = [...]string{HookResolve, HookAuthorize, HookInfo, HookOverlay}

// ABI exports.
const (
	exportAlloc     = "iiifd_alloc"
	exportConfigure = "configure"
	exportInit      = "_initialize"
)

// Spec names a module to load and its configuration.
type Spec struct {
	Path string
	// Config is handed to every instance at start (the configure
	// export), as fields in key order.
	Config map[string]string
}

// Name is the plugin's name: its file name without the .wasm extension.
func (s Spec) Name() string { return strings.TrimSuffix(filepath.Base(s.Path), ".wasm") }

// Options bound and tune every plugin of a host.
type Options struct {
	// Timeout bounds each call into a guest (default 100 ms).
	Timeout time.Duration
	// MemoryLimit bounds each instance's linear memory, in bytes
	// (default 64 MiB; rounded down to 64 KiB pages).
	MemoryLimit int64
	// Reload is how often plugin files are checked for changes (default
	// 1 s; negative turns hot reload off).
	Reload time.Duration
	// Pool is how many instances of each module run at once (default
	// GOMAXPROCS); further calls wait for one, without that wait
	// counting against Timeout, so the limit measures the guest's own
	// work and a burst cannot oversubscribe the CPUs.
	Pool int
	// CacheDir, when set, keeps compiled machine code in this directory
	// too, so a restart (or another process) skips compiling unchanged
	// modules. wazero keys entries by its version and the module's bytes.
	CacheDir string
	Logger   *slog.Logger
}

func (o *Options) defaults() {
	if o.Timeout <= 0 {
		o.Timeout = 100 * time.Millisecond
	}
	if o.MemoryLimit <= 0 {
		o.MemoryLimit = 64 << 20
	}
	if o.Reload == 0 {
		o.Reload = time.Second
	}
	if o.Pool <= 0 {
		o.Pool = runtime.GOMAXPROCS(0)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Host runs a list of plugins, in order.
type Host struct {
	opt     Options
	rt      wazero.Runtime
	plugins []*Plugin
	stop    context.CancelFunc
	done    sync.WaitGroup

	// set is the plugin set running now: one module per plugin and what
	// requests need to know about them, computed when a module is
	// loaded. A reload builds a new set and swaps this pointer; swapMu
	// orders the swaps. Requests read the set through a Snapshot.
	set    atomic.Pointer[pluginSet]
	swapMu sync.Mutex
}

// pluginSet is one immutable version of the plugins: a module for each
// (in the order of Host.plugins) and the facts derived from them, so
// that a request reads the fingerprints, the overlay declarations and
// the hooks it calls from one and the same set of modules. It is
// computed once per load or reload, not per request.
type pluginSet struct {
	mods []*module
	// fingerprints holds Fingerprint's answer for each hook.
	fingerprints map[string]string
	// overlayVary is every client field (sorted) that an overlay plugin
	// declared its overlay depends on; overlayHeader is what it makes
	// of the response's Vary header, and overlayPrivate says it
	// depends on credentials or the client's address.
	overlayVary    []string
	overlayHeader  string
	overlayPrivate bool
	// refs counts the holders of the set: the host while the set is
	// current, and every snapshot not yet released. At zero the set
	// lets go of its modules and cannot be taken again.
	refs atomic.Int64
}

// acquire takes a reference to the set; false when it has been let go
// (a reload replaced it and its last snapshot was released).
func (s *pluginSet) acquire() bool {
	for {
		n := s.refs.Load()
		if n <= 0 {
			return false
		}
		if s.refs.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// release drops a reference; the last one lets go of the modules, each
// of which closes when no set holds it any more.
func (s *pluginSet) release() {
	if s.refs.Add(-1) != 0 {
		return
	}
	for _, m := range s.mods {
		if m != nil {
			m.drop()
		}
	}
}

// swap makes m the running module of p: a new set with m in p's place
// becomes current, and the set it replaces is released by the host, so
// that the module m replaces closes once the last request that saw it
// is done.
func (h *Host) swap(p *Plugin, m *module) {
	h.swapMu.Lock()
	defer h.swapMu.Unlock()
	old := h.set.Load()
	mods := make([]*module, max(p.idx+1, len(h.plugins)))
	if old != nil {
		copy(mods, old.mods)
	}
	mods[p.idx] = m
	next := newSet(mods)
	// Every module of the new set is held by the old one (or is m), so
	// none of them can be closing: taking a reference cannot revive a
	// closed module.
	for _, x := range mods {
		if x != nil {
			x.hold()
		}
	}
	next.refs.Store(1) // the host's
	h.set.Store(next)
	if old != nil {
		old.release()
	}
}

// newSet computes the facts of a set of modules.
func newSet(mods []*module) *pluginSet {
	st := &pluginSet{mods: mods, fingerprints: map[string]string{}}
	for _, hook := range hooks {
		var parts []string
		for _, m := range mods {
			if m != nil && m.hooks[hook] {
				parts = append(parts, m.p.name+"="+m.hash)
			}
		}
		st.fingerprints[hook] = strings.Join(parts, ",")
	}
	seen := map[string]bool{}
	for _, m := range mods {
		if m == nil || !m.hooks[HookOverlay] {
			continue
		}
		for _, k := range m.overlayVary {
			seen[k] = true
		}
	}
	st.overlayVary = sortedKeys(seen)
	var names []string
	for _, k := range st.overlayVary {
		switch name, isHeader := strings.CutPrefix(k, "header:"); {
		case k == "client":
			// No header names an address: only private works.
			st.overlayPrivate = true
		case strings.HasPrefix(k, "cookie:"), name == "cookie":
			st.overlayPrivate = true
			names = append(names, "Cookie")
		case isHeader:
			// Many shared caches and CDNs ignore Vary on anything but
			// a few negotiation headers, so an overlay that depends
			// on any other header (credentials, a proxy's
			// X-Institution) makes private responses: shared, they
			// would reach clients with other values.
			names = append(names, http.CanonicalHeaderKey(name))
			st.overlayPrivate = st.overlayPrivate || !sharedVary[name]
		}
	}
	st.overlayHeader = strings.Join(slices.Compact(names), ", ")
	return st
}

// sharedVary are the request headers an overlay may depend on while its
// responses stay shareable (with Vary): content negotiation headers that
// shared caches honour.
var sharedVary = map[string]bool{"accept-language": true}

// New compiles and starts every plugin of specs (each must compile,
// instantiate and accept its configuration) and begins watching their
// files. Close releases them.
func New(ctx context.Context, specs []Spec, opt Options) (*Host, error) {
	opt.defaults()
	pages := uint32(opt.MemoryLimit / 65536)
	if pages < 1 {
		return nil, errors.New("plugin: memory limit under one 64 KiB page")
	}
	cc := sharedCache
	if opt.CacheDir != "" {
		var err error
		if cc, err = dirCache(opt.CacheDir); err != nil {
			return nil, fmt.Errorf("plugin: compilation cache: %w", err)
		}
	}
	rc := wazero.NewRuntimeConfig().
		WithCompilationCache(cc).
		WithCloseOnContextDone(true).
		WithMemoryLimitPages(pages)
	h := &Host{opt: opt, rt: wazero.NewRuntimeWithConfig(ctx, rc)}
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, h.rt); err != nil {
		h.rt.Close(ctx)
		return nil, fmt.Errorf("plugin: wasi: %w", err)
	}
	// AssemblyScript imports env.abort; a call of it ends the instance.
	_, err := h.rt.NewHostModuleBuilder("env").NewFunctionBuilder().
		WithFunc(func(ctx context.Context, m api.Module, msg, file, line, col uint32) {
			m.CloseWithExitCode(ctx, 255)
		}).Export("abort").Instantiate(ctx)
	if err != nil {
		h.rt.Close(ctx)
		return nil, fmt.Errorf("plugin: env: %w", err)
	}
	names := map[string]bool{}
	for _, s := range specs {
		p := &Plugin{host: h, idx: len(h.plugins), spec: s, name: s.Name(), log: opt.Logger.With("plugin", s.Name())}
		if names[p.name] {
			h.Close()
			return nil, fmt.Errorf("plugin %s: loaded twice", p.name)
		}
		names[p.name] = true
		if err := p.load(ctx); err != nil {
			h.Close()
			return nil, err
		}
		h.plugins = append(h.plugins, p)
	}
	wctx, cancel := context.WithCancel(context.Background())
	h.stop = cancel
	if opt.Reload > 0 {
		for _, p := range h.plugins {
			h.done.Add(1)
			go func() {
				defer h.done.Done()
				p.watch(wctx, opt.Reload)
			}()
		}
	}
	return h, nil
}

// sharedCache keeps compiled machine code for the life of the process:
// a host built again (tests, a reload of the same bytes) skips compiling.
var sharedCache = wazero.NewCompilationCache()

var (
	dirCachesMu sync.Mutex
	dirCaches   = map[string]wazero.CompilationCache{}
)

// dirCache returns the process's one compilation cache for a directory.
// The directory's name gets the wazero version this binary was built
// with, since wazero cannot always tell its own version and machine code
// from another version must never be loaded; a binary that cannot tell
// (wazero replaced by a local copy) keeps compiled code in memory only.
func dirCache(dir string) (wazero.CompilationCache, error) {
	v := wazeroVersion()
	if v == "" {
		return sharedCache, nil
	}
	dir = filepath.Join(dir, "wazero-"+v)
	dirCachesMu.Lock()
	defer dirCachesMu.Unlock()
	if c, ok := dirCaches[dir]; ok {
		return c, nil
	}
	c, err := wazero.NewCompilationCacheWithDir(dir)
	if err != nil {
		return nil, err
	}
	dirCaches[dir] = c
	return c, nil
}

func wazeroVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/tetratelabs/wazero" {
				return d.Version
			}
		}
	}
	return wazeroSourceVersion()
}

// wazeroSourceVersion finds wazero's version for binaries that record no
// dependencies (test binaries) in the name of the file its code was
// compiled from: the module cache holds it under
// github.com/tetratelabs/wazero@VERSION/, with -trimpath too. A local
// replacement has no version there, and gets "".
func wazeroSourceVersion() string {
	pc := reflect.ValueOf(wazero.NewRuntimeConfig).Pointer()
	fn := runtime.FuncForPC(pc)
	if fn == nil {
		return ""
	}
	file, _ := fn.FileLine(pc)
	_, rest, ok := strings.Cut(file, "github.com/tetratelabs/wazero@")
	if !ok {
		return ""
	}
	v, _, ok := strings.Cut(rest, "/")
	if !ok || v == "" {
		return ""
	}
	return v
}

// Close stops watching and releases every module and instance. Requests
// still holding a snapshot then fail their calls (a 500), never run
// without their plugins.
func (h *Host) Close() error {
	if h.stop != nil {
		h.stop()
	}
	h.done.Wait()
	if set := h.set.Load(); set != nil {
		set.release()
	}
	return h.rt.Close(context.Background())
}

// Plugins returns the loaded plugins, in call order.
func (h *Host) Plugins() []*Plugin { return h.plugins }

// Has reports whether any plugin running now exports the hook.
func (h *Host) Has(hook string) bool {
	if h == nil {
		return false
	}
	return h.set.Load().has(hook)
}

// Fingerprint identifies the modules and configurations of the plugins
// exporting hook, as loaded now (Snapshot.Fingerprint for one request).
func (h *Host) Fingerprint(hook string) string {
	if h == nil {
		return ""
	}
	return h.set.Load().fingerprints[hook]
}

// Snapshot is the plugin set as one request sees it: the modules running
// when the request began, with their fingerprints and overlay
// declarations. A reload during the request swaps the host's set, not
// the snapshot's: the request's cache keys, validators and hook calls all
// come from the same modules, and a replaced module stays open until the
// last snapshot holding it is released. A nil *Snapshot is a server
// without plugins. Its methods may be called concurrently; Release ends
// it.
type Snapshot struct {
	set *pluginSet
	// closed says the host was closed before the snapshot was taken:
	// its calls fail.
	closed   bool
	released atomic.Bool
}

// Snapshot takes the plugin set running now; nil without plugins. The
// caller must Release it once nothing of the request calls a hook any
// more.
func (h *Host) Snapshot() *Snapshot {
	if h == nil {
		return nil
	}
	for {
		set := h.set.Load()
		if set.acquire() {
			return &Snapshot{set: set}
		}
		if h.set.Load() == set {
			// Let go and not replaced: the host was closed.
			return &Snapshot{set: set, closed: true}
		}
		// A reload replaced the set between the load and acquire: the
		// new one is current.
	}
}

// Release gives the snapshot's modules back; later calls do nothing.
func (s *Snapshot) Release() {
	if s == nil || s.closed || !s.released.CompareAndSwap(false, true) {
		return
	}
	s.set.release()
}

// Has reports whether a plugin of the snapshot exports the hook.
func (s *Snapshot) Has(hook string) bool { return s != nil && s.set.has(hook) }

// Fingerprint identifies the modules and configurations of the
// snapshot's plugins exporting hook: responses that depend on the hook
// are cached under it, so a reloaded module or a changed configuration
// never meets an entry made by the old one. Empty when no plugin exports
// it. Since the snapshot's hooks run on the modules it names, what is
// stored under a fingerprint was made by those modules, even when a
// reload from A to B and back to A happens during the request.
func (s *Snapshot) Fingerprint(hook string) string {
	if s == nil {
		return ""
	}
	return s.set.fingerprints[hook]
}

func (s *pluginSet) has(hook string) bool {
	for _, m := range s.mods {
		if m != nil && m.hooks[hook] {
			return true
		}
	}
	return false
}

// call runs hook on the snapshot's module of plugin i; a nil reply when
// that module does not export it.
func (s *Snapshot) call(ctx context.Context, i int, hook string, payload Fields) (Fields, error) {
	m := s.set.mods[i]
	if s.closed {
		return nil, fault.New(fault.Internal, "plugin %s is not running", m.p.name)
	}
	return m.call(ctx, hook, payload)
}

// Plugin is one loaded plugin; its module may be swapped by hot reload.
type Plugin struct {
	host *Host
	// idx is the plugin's place in the host's list and in every set.
	idx  int
	spec Spec
	name string
	log  *slog.Logger
	// seen is the size and modification time of the file last loaded
	// or last refused, so a broken file is reported once.
	seenSize int64
	seenMod  time.Time
}

// Name returns the plugin's name.
func (p *Plugin) Name() string { return p.name }

// Hash returns the SHA-256 (hex) of the module running now and of its
// configuration.
func (p *Plugin) Hash() string { return p.current().hash }

// current is the plugin's module in the host's current set; nil while
// New has not loaded it yet.
func (p *Plugin) current() *module {
	if set := p.host.set.Load(); set != nil && p.idx < len(set.mods) {
		return set.mods[p.idx]
	}
	return nil
}

// module is one compiled version of a plugin with its idle instances.
type module struct {
	p        *Plugin
	compiled wazero.CompiledModule
	hash     string
	hooks    map[string]bool
	// overlayVary lists the client fields (client, header:NAME,
	// cookie:NAME) the module's overlay is given, as its configure reply
	// declared them: it sees no others, and its output is cached per
	// value of each.
	overlayVary []string
	idle        chan *instance
	slots       chan struct{} // one per running call
	// decisions remembers authorize replies that said how long they hold
	// and which request fields they depend on.
	decisions decisionCache

	// refs counts the plugin sets holding the module (see pluginSet);
	// the module closes when the last lets go of it.
	mu     sync.Mutex
	refs   int
	closed bool
}

// load reads, compiles and checks the plugin's file, and swaps the new
// module in; on failure the running module (if any) stays.
func (p *Plugin) load(ctx context.Context) error {
	fi, err := os.Stat(p.spec.Path)
	if err != nil {
		return fmt.Errorf("plugin %s: %w", p.name, err)
	}
	p.seenSize, p.seenMod = fi.Size(), fi.ModTime()
	bin, err := os.ReadFile(p.spec.Path)
	if err != nil {
		return fmt.Errorf("plugin %s: %w", p.name, err)
	}
	sum := sha256.New()
	sum.Write(bin)
	for _, k := range sortedKeys(p.spec.Config) {
		fmt.Fprintf(sum, "\x00%s\x00%s", k, p.spec.Config[k])
	}
	hash := hex.EncodeToString(sum.Sum(nil))
	if old := p.current(); old != nil && old.hash == hash {
		return nil
	}
	cm, err := p.host.rt.CompileModule(ctx, bin)
	if err != nil {
		return fmt.Errorf("plugin %s: compile: %w", p.name, err)
	}
	m := &module{p: p, compiled: cm, hash: hash, hooks: map[string]bool{}, idle: make(chan *instance, p.host.opt.Pool), slots: make(chan struct{}, p.host.opt.Pool)}
	exports := cm.ExportedFunctions()
	if _, ok := exports[exportAlloc]; !ok {
		cm.Close(ctx)
		return fmt.Errorf("plugin %s: the module does not export %s (build it with an iiifd SDK)", p.name, exportAlloc)
	}
	for _, hk := range hooks {
		if _, ok := exports[hk]; ok {
			m.hooks[hk] = true
		}
	}
	if len(m.hooks) == 0 {
		cm.Close(ctx)
		return fmt.Errorf("plugin %s: the module exports none of the hooks %s", p.name, strings.Join(hooks[:], ", "))
	}
	// One instance now: a module that cannot start or refuses its
	// configuration is refused before it takes traffic.
	inst, configured, err := m.instantiate(ctx)
	if err != nil {
		cm.Close(ctx)
		return err
	}
	if m.overlayVary, err = overlayVary(configured.Get("overlay-vary")); err != nil {
		inst.mod.Close(ctx)
		cm.Close(ctx)
		return fmt.Errorf("plugin %s: configure: %w", p.name, err)
	}
	m.idle <- inst
	p.host.swap(p, m)
	p.log.Info("plugin loaded", "hooks", strings.Join(sortedKeys(m.hooks), ","), "sha256", hash[:12])
	return nil
}

// watch reloads the plugin when its file's size or modification time
// changes, until ctx ends.
func (p *Plugin) watch(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		fi, err := os.Stat(p.spec.Path)
		if err != nil || (fi.Size() == p.seenSize && fi.ModTime().Equal(p.seenMod)) {
			continue
		}
		if err := p.load(ctx); err != nil {
			p.log.Error("plugin reload failed; the previous module keeps running", "error", err)
		}
	}
}

// instance is one instantiated module serving one call at a time.
type instance struct {
	mod   api.Module
	alloc api.Function
	hooks map[string]api.Function
	out   *logWriter
	stack []uint64
	// buf and bufCap are the guest's input buffer, from its last
	// iiifd_alloc: payloads that fit are written there without asking
	// again (one guest call per hook call, not two).
	buf, bufCap uint32
	// enc is the buffer payloads are encoded into, reused by every call
	// of the instance (one call at a time).
	enc []byte
	// deadline closes the instance when a call runs over its time
	// limit; made once, reset for each call.
	deadline *time.Timer
}

// maxEncKeep is the largest encoding buffer an instance keeps between
// calls; a larger payload (an info.json document) gets a buffer of its
// own.
const maxEncKeep = 64 << 10

// instantiate starts an instance of m and configures it; it returns the
// instance and the reply of configure (nil when the module exports none).
func (m *module) instantiate(ctx context.Context) (*instance, Fields, error) {
	p := m.p
	out := &logWriter{log: p.log}
	cfg := wazero.NewModuleConfig().
		WithName("").
		WithStartFunctions().
		WithStdout(out).WithStderr(out).
		WithSysWalltime().WithSysNanotime().
		WithRandSource(rand.Reader)
	// Instantiation runs the guest's initialisation (its runtime and
	// globals): bounded like a call.
	cctx, cancel := context.WithTimeout(ctx, 10*p.host.opt.Timeout)
	defer cancel()
	mod, err := p.host.rt.InstantiateModule(cctx, m.compiled, cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("plugin %s: instantiate: %w", p.name, err)
	}
	inst := &instance{mod: mod, alloc: mod.ExportedFunction(exportAlloc), hooks: map[string]api.Function{}, out: out, stack: make([]uint64, 2)}
	if f := mod.ExportedFunction(exportInit); f != nil {
		if _, err := f.Call(cctx); err != nil {
			mod.Close(ctx)
			return nil, nil, fmt.Errorf("plugin %s: %s: %w", p.name, exportInit, err)
		}
	}
	for hk := range m.hooks {
		inst.hooks[hk] = mod.ExportedFunction(hk)
	}
	var configured Fields
	if f := mod.ExportedFunction(exportConfigure); f != nil {
		var cf Fields
		for _, k := range sortedKeys(p.spec.Config) {
			cf.Append(k, p.spec.Config[k])
		}
		reply, err := inst.call(cctx, f, cf.AppendEncode(nil))
		if err != nil {
			mod.Close(ctx)
			return nil, nil, fmt.Errorf("plugin %s: configure: %w", p.name, err)
		}
		if msg := reply.Get("error"); msg != "" {
			mod.Close(ctx)
			return nil, nil, fmt.Errorf("plugin %s: configuration refused: %s", p.name, msg)
		}
		configured = reply
	}
	return inst, configured, nil
}

// call hands payload to the guest function f and returns its reply.
func (i *instance) call(ctx context.Context, f api.Function, payload []byte) (Fields, error) {
	s := i.stack
	if uint64(len(payload)) > uint64(i.bufCap) || i.bufCap == 0 {
		size := max(len(payload), 4096)
		s[0] = uint64(size)
		if err := i.alloc.CallWithStack(ctx, s[:1]); err != nil {
			return nil, err
		}
		i.buf, i.bufCap = uint32(s[0]), uint32(size)
	}
	ptr := i.buf
	if !i.mod.Memory().Write(ptr, payload) {
		return nil, fmt.Errorf("%s returned %d, outside memory for %d bytes", exportAlloc, ptr, len(payload))
	}
	s[0], s[1] = uint64(ptr), uint64(len(payload))
	if err := f.CallWithStack(ctx, s[:2]); err != nil {
		return nil, err
	}
	rptr, rlen := uint32(s[0]>>32), uint32(s[0])
	if rlen > maxPayload {
		return nil, fmt.Errorf("reply of %d bytes is over the %d byte limit", rlen, maxPayload)
	}
	b, ok := i.mod.Memory().Read(rptr, rlen)
	if !ok {
		return nil, fmt.Errorf("reply at %d+%d is outside memory", rptr, rlen)
	}
	// Decode copies every value out of guest memory.
	return Decode(b)
}

// Call runs hook of the plugin with payload, on the module running now
// (Snapshot holds one set of modules for a whole request). A nil reply
// when the module does not export the hook.
func (p *Plugin) Call(ctx context.Context, hook string, payload Fields) (Fields, error) {
	s := p.host.Snapshot()
	defer s.Release()
	return s.call(ctx, p.idx, hook, payload)
}

// call runs hook of the module with payload, on an idle instance (or a
// new one), within the host's timeout; the caller holds the module (a
// snapshot of a set that has it). A guest that traps, exits, runs out of
// memory or time fails this call only: its instance is discarded. The
// error is a fault: 500 with a message naming the plugin and the hook, or
// ctx's error when the caller went away.
func (m *module) call(ctx context.Context, hook string, payload Fields) (Fields, error) {
	p := m.p
	if !m.hooks[hook] {
		return nil, nil
	}
	select {
	case m.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-m.slots }()
	var inst *instance
	select {
	case inst = <-m.idle:
	default:
		var err error
		if inst, _, err = m.instantiate(ctx); err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fault.Wrap(fault.Internal, err, "plugin %s could not start", p.name)
		}
	}
	inst.enc = payload.AppendEncode(inst.enc[:0])
	reply, err, intact := inst.callBounded(ctx, p.host.opt.Timeout, inst.hooks[hook], inst.enc)
	if cap(inst.enc) > maxEncKeep {
		inst.enc = nil
	}
	if err != nil {
		oom := inst.outOfMemory(p.host.opt.MemoryLimit)
		mem := inst.memorySize()
		inst.mod.Close(context.Background())
		return nil, p.callError(ctx, hook, err, oom, mem)
	}
	if !intact {
		// The deadline passed as the call returned: the instance may be
		// closing; the reply was read before, so it stands.
		inst.mod.Close(context.Background())
	} else {
		m.put(inst)
	}
	return reply, nil
}

// callBounded is call with the guest stopped when d passes or ctx ends.
// The guest is called with a context that has no Done channel, and a
// timer and a context callback close the module instead: wazero then
// starts no watcher goroutine per call, which would cost a goroutine
// switch (tens of microseconds on a busy machine) on every call. The
// compiled code checks for a closed module at function entries and loop
// heads (WithCloseOnContextDone), so a runaway guest stops either way.
// intact is false when the instance may have been closed.
func (i *instance) callBounded(ctx context.Context, d time.Duration, f api.Function, payload []byte) (reply Fields, err error, intact bool) {
	bg := context.Background()
	if i.deadline == nil {
		i.deadline = time.AfterFunc(d, func() { i.mod.CloseWithExitCode(bg, sys.ExitCodeDeadlineExceeded) })
	} else {
		i.deadline.Reset(d)
	}
	stop := func() bool { return true }
	if ctx.Done() != nil {
		// A context that cannot end (iiifd check, benchmarks) needs no
		// watching.
		stop = context.AfterFunc(ctx, func() { i.mod.CloseWithExitCode(bg, sys.ExitCodeContextCanceled) })
	}
	i.out.oom = false
	reply, err = i.call(bg, f, payload)
	intact = i.deadline.Stop()
	if !stop() && ctx.Err() != nil {
		intact = false
	}
	return reply, err, intact
}

// memorySize is the size of the instance's linear memory, in bytes.
func (i *instance) memorySize() int64 {
	if mem := i.mod.Memory(); mem != nil {
		return int64(mem.Size())
	}
	return 0
}

// outOfMemory tells whether a failed instance ran out of memory: its
// memory is within a few MiB of the limit (allocators ask for chunks),
// or its runtime said so (Go prints "out of memory" before it aborts).
func (i *instance) outOfMemory(limit int64) bool {
	if mem := i.mod.Memory(); mem != nil && int64(mem.Size())+4<<20 >= limit {
		return true
	}
	return i.out.oom
}

func (p *Plugin) callError(ctx context.Context, hook string, err error, oom bool, memory int64) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var ee *sys.ExitError
	reason := "failed"
	switch {
	case errors.As(err, &ee) && ee.ExitCode() == sys.ExitCodeDeadlineExceeded:
		reason = fmt.Sprintf("ran over its %v time limit", p.host.opt.Timeout)
	case oom:
		reason = fmt.Sprintf("ran out of memory (limit %d MiB)", p.host.opt.MemoryLimit>>20)
	case errors.As(err, &ee):
		reason = fmt.Sprintf("exited with code %d (a panic or out of memory)", ee.ExitCode())
	case errors.Is(err, errMalformed):
		reason = "sent a malformed reply"
	default:
		reason = "trapped"
	}
	p.log.Error("plugin call failed; instance discarded", "hook", hook, "reason", reason, "memory", memory, "error", err)
	// The cause is kept as text only: wazero's exit error matches
	// context.DeadlineExceeded, which would read as the request's own
	// deadline (a 503) rather than the plugin's fault.
	return fault.Wrap(fault.Internal, errors.New(err.Error()), "plugin %s: %s %s", p.name, hook, reason)
}

// hold takes a reference to the module for a plugin set.
func (m *module) hold() {
	m.mu.Lock()
	m.refs++
	m.mu.Unlock()
}

// drop lets go of a reference; the last one closes the module. No call
// runs on it then: every call runs within a snapshot, which holds a set
// that holds the module.
func (m *module) drop() {
	m.mu.Lock()
	m.refs--
	last := m.refs == 0 && !m.closed
	if last {
		m.closed = true
	}
	m.mu.Unlock()
	if last {
		m.close()
	}
}

// put returns an instance to the idle pool, or closes it when the pool is
// full.
func (m *module) put(inst *instance) {
	select {
	case m.idle <- inst:
	default:
		inst.mod.Close(context.Background())
	}
}

func (m *module) close() {
	ctx := context.Background()
	for {
		select {
		case inst := <-m.idle:
			inst.mod.Close(ctx)
		default:
			m.compiled.Close(ctx)
			return
		}
	}
}

// logWriter sends a guest's stdout and stderr to the log, a line at a
// time, with the plugin's name.
type logWriter struct {
	log *slog.Logger
	buf []byte
	// oom is set when the guest printed "out of memory" during the
	// current call (Go's runtime does, then a stack trace, then aborts).
	oom bool
}

func (w *logWriter) Write(b []byte) (int, error) {
	w.buf = append(w.buf, b...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		line := string(w.buf[:i])
		w.oom = w.oom || strings.Contains(line, "out of memory")
		w.log.Info("plugin output", "line", line)
		w.buf = w.buf[i+1:]
	}
	if len(w.buf) > 4096 {
		w.log.Info("plugin output", "line", string(w.buf))
		w.buf = w.buf[:0]
	}
	return len(b), nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
