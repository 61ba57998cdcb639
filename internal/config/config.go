// Package config holds the server's configuration: its fields and defaults,
// the command-line flags that set them, the IIIFD_* environment variables
// and the TOML config file, and Validate.
//
// Every flag has an environment variable (the flag's name upper-cased with
// dashes as underscores, prefixed IIIFD_: --max-width is IIIFD_MAX_WIDTH) and
// a key in the config file (the flag's name). Flags win over the
// environment, the environment over the file, the file over defaults. The
// three sources are applied through the one flag.FlagSet, so a value means
// the same thing wherever it comes from.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/iiifd/iiifd/internal/iiif"
	"github.com/iiifd/iiifd/internal/plan"
)

// EnvPrefix starts every environment variable the server reads.
const EnvPrefix = "IIIFD_"

// Config is the configuration of `iiifd serve`.
type Config struct {
	Addr    string // listen address, HOST:PORT
	Root    string // directory of source images; empty serves the embedded samples
	BaseURL string // public URL of the server (the part before /iiif/); empty derives it per request
	// TrustForwarded says whose X-Forwarded-Proto, -Host and -Prefix
	// headers make the base URL when BaseURL is empty: "" (nobody's: the
	// Host header alone), "true" (any peer's), or a comma-separated list
	// of proxy addresses and CIDR prefixes. See ForwardedFrom.
	TrustForwarded string

	MaxWidth, MaxHeight int   // output limits, 0 = none
	MaxArea             int64 // output pixel limit, 0 = none
	// MaxSourcePixels bounds the source pixels one request may decode
	// (decompression bombs, huge images without a pyramid); 0 = none.
	MaxSourcePixels int64
	// FormatLimits holds per-format output limits; see plan.ParseFormatLimits.
	FormatLimits map[iiif.Format]plan.FormatLimits

	TileSize int // tile size advertised for sources that are not tiled
	// IgnoreOrientation serves images as stored, ignoring their EXIF or
	// TIFF orientation tag (by default it is applied).
	IgnoreOrientation bool

	JPEGQuality, WebPQuality, AVIFQuality int
	// PNGCompression is the zlib level of PNG output, 1..9; 0 (the
	// default) is auto: 6 up to 2048×2048 pixels, 1 with the sub row
	// filter for larger outputs, where zlib dominates.
	PNGCompression  int
	VipsConcurrency int // libvips threads per operation, 0 = libvips' default

	// CacheControl is sent with image responses: a long lifetime by
	// default, since the URL and the source's version determine the
	// bytes. InfoCacheControl is sent with info.json, which also changes
	// with configuration.
	CacheControl, InfoCacheControl string

	// Derivative cache tiers: memory (0 = off), disk (off without a
	// directory), Redis (off without a URL).
	CacheMemory ByteSize
	// HotRequests answers a repeated image request that was just a memory
	// hit from a memo of its request line, without the pipeline (see
	// httpapi's hotRequests). Off sends every request through the
	// pipeline: for measuring what the memo is worth, or ruling it out.
	HotRequests bool
	CacheDir    string
	CacheSize   ByteSize
	CacheRedis  string
	// AdminToken enables the admin routes (cache purge) for clients that
	// send it as a bearer token; empty disables them.
	AdminToken string
	// UploadMaxSize is the largest image accepted by the upload route
	// (POST /admin/images, on with AdminToken).
	UploadMaxSize ByteSize
	// IngestTimeout bounds the ingest of one upload: this long, plus a
	// second per MiB of the upload (0 = no limit). The ingest worker is
	// killed when it runs over, and its partial output removed.
	IngestTimeout time.Duration
	// IngestCommand runs the ingest worker of uploads in a child process
	// (see ingest.Subprocess): the command and its first arguments. It is
	// set by the program, not by a flag; empty ingests in this process.
	IngestCommand []string
	// SlideCheckCommand runs the check of a slide before OpenSlide reads
	// it in the server (see package slidecheck): the command and its
	// first arguments. It is set by the program, not by a flag; empty
	// lets OpenSlide read slides unchecked.
	SlideCheckCommand []string
	// SlideCheckTimeout bounds one check of a slide.
	SlideCheckTimeout time.Duration
	// NoSlideCheck lets OpenSlide read slides in the server unchecked,
	// for sites that trust every slide they serve (it saves a process
	// start per new slide; see docs/RATIONALE.md).
	NoSlideCheck bool
	// AdminAddr, when set, serves pprof (and the metrics) on a separate
	// address meant for operators only.
	AdminAddr string

	LogFormat string // text or json
	LogLevel  string // debug, info, warn, error

	// Admission control: pixel work running at once, waiting at once, the
	// longest wait, and the memory budget of running work.
	Workers      int
	Queue        int
	QueueTimeout time.Duration
	MemoryLimit  ByteSize
	// ClientLimit is the most image operations one client may have
	// running and waiting (0 = no per-client share); ClientIPHeader names
	// the header carrying the client's address behind a proxy.
	ClientLimit    int
	ClientIPHeader string
	// RequestTimeout bounds the work of one request (0 = none).
	RequestTimeout time.Duration
	// PrefetchPerRender bounds the bytes of stored tiles one render of a
	// remote tiled TIFF fetches before it waits for a worker (0 = none
	// fetched ahead); PrefetchMemory bounds what all renders not
	// admitted yet hold together (0 = a quarter of MemoryLimit, no bound
	// without one).
	PrefetchPerRender ByteSize
	PrefetchMemory    ByteSize
	// SpillThreshold is the most bytes of one finished image kept in
	// memory while its client receives it; a larger one waits in a
	// temporary file in SpillDir (the system's temporary folder when
	// empty). 0 sends every image to a file.
	SpillThreshold ByteSize
	SpillDir       string

	ReadHeaderTimeout time.Duration
	WriteTimeout      time.Duration
	ShutdownTimeout   time.Duration
	// DrainDelay is how long /readyz answers 503 before the listener
	// closes on shutdown, so load balancers stop sending traffic first.
	DrainDelay time.Duration

	// Plugins are WebAssembly extensions, each call bounded by
	// PluginTimeout and each instance by PluginMemory; their files are
	// checked for changes every PluginReload (0 = never).
	Plugins       Plugins
	PluginTimeout time.Duration
	PluginMemory  ByteSize
	PluginReload  time.Duration
	// PluginCacheDir keeps plugins' compiled machine code across restarts.
	PluginCacheDir string
	// Remote sources (Root and Roots may be s3:// and http(s):// URLs).
	Stores StoreConfig
	// Auth restricts images: access rules, logins, sessions, tokens.
	Auth Auth
	// Purge lists the shared caches purged with the server's own.
	Purge Purge
}

// RootRule sends identifiers matching Match ("*" within a segment, "**"
// across) to Root, a directory or an s3:// or http(s):// URL.
type RootRule struct {
	Match, Root string
}

// StoreConfig holds the settings of remote sources and the caches in
// front of them.
type StoreConfig struct {
	// Roots are tried in order before Root.
	Roots []RootRule
	// KeyLayout places keys in every root: "flat" or "hash:4,2".
	KeyLayout string
	// ListPage is the most keys one bucket listing request asks for (0:
	// the store's most). Not a flag: tests set it to list in many pages.
	ListPage int32
	// ConnectTimeout and ReadTimeout bound one connection and one request
	// attempt; Retries more attempts follow a failed one.
	ConnectTimeout, ReadTimeout time.Duration
	Retries                     int
	// Concurrency bounds the range requests in flight per store;
	// RequestConcurrency per client request.
	Concurrency, RequestConcurrency int
	// BlockCache is the memory kept for fetched header and tile blocks.
	BlockCache ByteSize
	// SourceCacheDir and SourceCacheSize: the local copies of remote
	// objects that are read whole (default: a directory under the
	// system's temporary directory).
	SourceCacheDir  string
	SourceCacheSize ByteSize
}

// DefaultStoreConfig returns the remote-source defaults.
func DefaultStoreConfig() StoreConfig {
	return StoreConfig{
		KeyLayout:          "flat",
		ConnectTimeout:     2 * time.Second,
		ReadTimeout:        10 * time.Second,
		Retries:            2,
		Concurrency:        64,
		RequestConcurrency: 8,
		BlockCache:         64 << 20,
		SourceCacheSize:    2 << 30,
	}
}

// RemoteRoot reports whether root is an s3:// or http(s):// URL.
func RemoteRoot(root string) bool {
	return strings.HasPrefix(root, "s3://") || strings.HasPrefix(root, "http://") || strings.HasPrefix(root, "https://")
}

func validRoot(root string) error {
	if !RemoteRoot(root) {
		return nil
	}
	u, err := url.Parse(root)
	if err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("%q is not an s3://BUCKET/PREFIX or http(s)://HOST/PREFIX/ URL", root)
	}
	return nil
}

func (s *StoreConfig) validate() []error {
	var errs []error
	for _, r := range s.Roots {
		if r.Match == "" || r.Root == "" {
			errs = append(errs, fmt.Errorf("roots: %q=%q needs a pattern and a root", r.Match, r.Root))
		} else if err := validRoot(r.Root); err != nil {
			errs = append(errs, fmt.Errorf("roots: %v", err))
		}
	}
	if s.KeyLayout != "" && s.KeyLayout != "flat" && !strings.HasPrefix(s.KeyLayout, "hash:") {
		errs = append(errs, fmt.Errorf("key-layout: %q is neither flat nor hash:W1,W2,...", s.KeyLayout))
	}
	if s.ConnectTimeout <= 0 || s.ReadTimeout <= 0 {
		errs = append(errs, errors.New("store-connect-timeout, store-read-timeout: must be positive"))
	}
	if s.Retries < 0 || s.Retries > 10 {
		errs = append(errs, errors.New("store-retries: must be within 0..10"))
	}
	if s.Concurrency < 1 || s.RequestConcurrency < 1 {
		errs = append(errs, errors.New("store-concurrency, store-request-concurrency: must be at least 1"))
	}
	if s.BlockCache < 0 || s.SourceCacheSize < 0 {
		errs = append(errs, errors.New("block-cache, source-cache-size: must not be negative"))
	}
	return errs
}

// rootsValue is the flag.Value of --roots: each use adds a rule
// PATTERN=ROOT; in the config file, [[roots]] tables with match and root.
type rootsValue struct{ r *[]RootRule }

func (v rootsValue) String() string {
	if v.r == nil {
		return ""
	}
	var parts []string
	for _, r := range *v.r {
		parts = append(parts, r.Match+"="+r.Root)
	}
	return strings.Join(parts, ",")
}

func (v rootsValue) Set(s string) error {
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		m, root, ok := strings.Cut(part, "=")
		if !ok || m == "" || root == "" {
			return fmt.Errorf("%q: want PATTERN=ROOT", part)
		}
		*v.r = append(*v.r, RootRule{Match: m, Root: root})
	}
	return nil
}

// trustValue is the flag.Value of --trust-forwarded: a boolean flag
// (--trust-forwarded alone means any peer) that also takes a list of
// proxy addresses.
type trustValue struct{ s *string }

func (v trustValue) String() string {
	if v.s == nil {
		return ""
	}
	return *v.s
}

func (v trustValue) Set(s string) error {
	if s == "false" {
		s = ""
	}
	*v.s = s
	_, _, err := ForwardedFrom(s)
	return err
}

func (trustValue) IsBoolFlag() bool { return true }

// ForwardedFrom parses a TrustForwarded value: whether forwarded headers
// are trusted from any peer, else the proxies they are trusted from
// (none: not trusted at all).
func ForwardedFrom(s string) (any bool, proxies []netip.Prefix, err error) {
	switch strings.TrimSpace(s) {
	case "", "false":
		return false, nil, nil
	case "true":
		return true, nil, nil
	}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if p, perr := netip.ParsePrefix(part); perr == nil {
			proxies = append(proxies, p.Masked())
			continue
		}
		a, aerr := netip.ParseAddr(part)
		if aerr != nil {
			return false, nil, fmt.Errorf("trust-forwarded: %q is not an address or CIDR prefix", part)
		}
		proxies = append(proxies, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return false, proxies, nil
}

// DefaultFormatLimits are the hard limits of the output formats themselves:
// encoders refuse larger images, so the planner must refuse them first.
func DefaultFormatLimits() map[iiif.Format]plan.FormatLimits {
	return map[iiif.Format]plan.FormatLimits{
		iiif.FormatJPG:  {MaxWidth: 65535, MaxHeight: 65535},
		iiif.FormatWebP: {MaxWidth: 16383, MaxHeight: 16383},
		iiif.FormatGIF:  {MaxWidth: 65535, MaxHeight: 65535},
		iiif.FormatAVIF: {MaxWidth: 16384, MaxHeight: 16384},
		iiif.FormatHEIC: {MaxWidth: 16384, MaxHeight: 16384},
	}
}

// DefaultMaxArea bounds output images by default. IIIF 3.0 requires a
// maxWidth or maxArea from servers that upscale, and without any limit a
// single "full/max" request on a gigapixel image would ask for gigabytes.
const DefaultMaxArea = 100_000_000

// DefaultMaxSourcePixels bounds what one request may decode: a gigapixel
// takes seconds of a core to decode even when it is streamed; larger
// images are served from pyramids, whose levels and tiles need far less.
const DefaultMaxSourcePixels = 1_000_000_000

// Default returns the default configuration.
func Default() Config {
	return Config{
		Addr:              ":8080",
		MaxArea:           DefaultMaxArea,
		MaxSourcePixels:   DefaultMaxSourcePixels,
		TileSize:          512,
		JPEGQuality:       85,
		WebPQuality:       80,
		AVIFQuality:       60,
		CacheControl:      "public, max-age=31536000",
		InfoCacheControl:  "public, max-age=86400",
		CacheMemory:       256 << 20,
		HotRequests:       true,
		CacheSize:         10 << 30,
		UploadMaxSize:     2 << 30,
		IngestTimeout:     10 * time.Minute,
		SlideCheckTimeout: 30 * time.Second,
		LogFormat:         "text",
		LogLevel:          "info",
		Workers:           2 * runtime.NumCPU(),
		Queue:             16 * runtime.NumCPU(),
		QueueTimeout:      10 * time.Second,
		MemoryLimit:       defaultMemoryLimit(),
		RequestTimeout:    60 * time.Second,
		PrefetchPerRender: DefaultPrefetchPerRender,
		SpillThreshold:    DefaultSpillThreshold,
		ReadHeaderTimeout: 10 * time.Second,
		PluginTimeout:     100 * time.Millisecond,
		PluginMemory:      64 << 20,
		PluginReload:      time.Second,
		WriteTimeout:      5 * time.Minute,
		ShutdownTimeout:   30 * time.Second,
		FormatLimits:      DefaultFormatLimits(),
		Stores:            DefaultStoreConfig(),
		Auth:              DefaultAuth(),
	}
}

// DefaultSpillThreshold is the default of --spill-threshold: 2 MiB keeps
// every tile and thumbnail a viewer asks for (tens to a few hundred KiB)
// in memory, while the rare large download (a full-size TIFF of tens of
// MiB) waits for a slow client in a file, not in memory.
const DefaultSpillThreshold = 2 << 20

// DefaultPrefetchPerRender is the default of --prefetch-per-render, and
// what the pipeline fetches ahead when not told (service.Config).
const DefaultPrefetchPerRender = 32 << 20

// defaultMemoryLimit is half of the memory the process may use (the rest
// is for the Go heap, the OS and the page cache), or 2 GiB when unknown.
func defaultMemoryLimit() ByteSize {
	if m := MachineMemory(); m > 0 {
		return ByteSize(m / 2)
	}
	return 2 << 30
}

// Validate reports the first problem with c, naming the setting.
func (c *Config) Validate() error {
	var errs []error
	if c.Addr == "" {
		errs = append(errs, errors.New("addr: must not be empty"))
	}
	if _, _, err := ForwardedFrom(c.TrustForwarded); err != nil {
		errs = append(errs, err)
	}
	if c.BaseURL != "" {
		u, err := url.Parse(c.BaseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			errs = append(errs, fmt.Errorf("base-url: %q is not an absolute http(s) URL", c.BaseURL))
		}
	}
	if c.MaxWidth < 0 || c.MaxHeight < 0 || c.MaxArea < 0 || c.MaxSourcePixels < 0 {
		errs = append(errs, errors.New("max-width, max-height, max-area, max-source-pixels: must not be negative"))
	}
	if c.MaxHeight > 0 && c.MaxWidth == 0 {
		// IIIF 3.0 §5.2: maxHeight MUST NOT appear without maxWidth.
		errs = append(errs, errors.New("max-height: needs max-width too (IIIF publishes maxHeight only with maxWidth)"))
	}
	for f := range c.FormatLimits {
		if !f.Valid() {
			errs = append(errs, fmt.Errorf("format-limits: %q is not an output format", string(f)))
		}
	}
	if c.TileSize < 16 || c.TileSize > 8192 {
		errs = append(errs, fmt.Errorf("tile-size: %d is outside 16..8192", c.TileSize))
	}
	for name, q := range map[string]int{"jpeg-quality": c.JPEGQuality, "webp-quality": c.WebPQuality, "avif-quality": c.AVIFQuality} {
		if q < 1 || q > 100 {
			errs = append(errs, fmt.Errorf("%s: %d is outside 1..100", name, q))
		}
	}
	if c.PNGCompression < 0 || c.PNGCompression > 9 {
		errs = append(errs, fmt.Errorf("png-compression: %d is outside 0..9", c.PNGCompression))
	}
	if c.VipsConcurrency < 0 {
		errs = append(errs, errors.New("vips-concurrency: must not be negative"))
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		errs = append(errs, fmt.Errorf("log-format: %q is neither text nor json", c.LogFormat))
	}
	c.LogLevel = strings.ToLower(c.LogLevel)
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log-level: %q is not one of debug, info, warn, error", c.LogLevel))
	}
	if c.CacheMemory < 0 || c.CacheSize < 0 {
		errs = append(errs, errors.New("cache-memory, cache-size: must not be negative"))
	}
	if c.CacheDir != "" && c.CacheSize == 0 {
		errs = append(errs, errors.New("cache-size: the disk cache needs a size"))
	}
	if c.CacheRedis != "" {
		if u, err := url.Parse(c.CacheRedis); err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
			errs = append(errs, fmt.Errorf("cache-redis: %q is not a redis://HOST:PORT/DB URL", c.CacheRedis))
		}
	}
	if c.UploadMaxSize <= 0 {
		errs = append(errs, errors.New("upload-max-size: must be positive"))
	}
	if c.AdminToken != "" && len(c.AdminToken) < 16 {
		errs = append(errs, errors.New("admin-token: use at least 16 characters"))
	}
	if c.Workers < 1 {
		errs = append(errs, errors.New("workers: must be at least 1"))
	}
	if c.Queue < 0 || c.QueueTimeout < 0 || c.MemoryLimit < 0 || c.RequestTimeout < 0 || c.ClientLimit < 0 {
		errs = append(errs, errors.New("queue, queue-timeout, memory-limit, request-timeout, client-limit: must not be negative"))
	}
	if c.PrefetchPerRender < 0 || c.PrefetchMemory < 0 || c.SpillThreshold < 0 {
		errs = append(errs, errors.New("prefetch-per-render, prefetch-memory, spill-threshold: must not be negative"))
	}
	if c.SpillDir != "" {
		if fi, err := os.Stat(c.SpillDir); err != nil || !fi.IsDir() {
			errs = append(errs, fmt.Errorf("spill-dir: %q is not a folder", c.SpillDir))
		}
	}
	if c.MemoryLimit > 0 && c.PrefetchMemory > c.MemoryLimit {
		errs = append(errs, fmt.Errorf("prefetch-memory: %v is more than memory-limit %v, which it is part of", c.PrefetchMemory, c.MemoryLimit))
	}
	if c.ShutdownTimeout < 0 || c.WriteTimeout < 0 || c.ReadHeaderTimeout < 0 || c.DrainDelay < 0 || c.PluginReload < 0 || c.IngestTimeout < 0 || c.SlideCheckTimeout < 0 {
		errs = append(errs, errors.New("timeouts must not be negative"))
	}
	errs = append(errs, c.validatePlugins()...)
	if err := validRoot(c.Root); err != nil {
		errs = append(errs, fmt.Errorf("root: %v", err))
	}
	errs = append(errs, c.Stores.validate()...)
	errs = append(errs, c.Auth.validate()...)
	errs = append(errs, c.Purge.validate()...)
	return errors.Join(errs...)
}

// Bind registers the serve flags on fs, each writing into c. The current
// values of c are the defaults shown in -help.
func (c *Config) Bind(fs *flag.FlagSet) {
	fs.String("config", "", "read settings from this TOML `file` (keys are flag names)")
	fs.StringVar(&c.Addr, "addr", c.Addr, "listen on this `HOST:PORT`")
	fs.StringVar(&c.Root, "root", c.Root, "serve the images under this `directory` (default: the embedded sample images)")
	fs.StringVar(&c.BaseURL, "base-url", c.BaseURL, "public `URL` the server is reached at, e.g. https://example.org/images, so image ids are https://example.org/images/iiif/3/{id} (default: from each request's Host header, and X-Forwarded-Proto/Host/Prefix with --trust-forwarded)")
	fs.Var(trustValue{&c.TrustForwarded}, "trust-forwarded", "let X-Forwarded-Proto/Host/Prefix make the base URL (when --base-url is not set): alone or =true from any peer, or =`ADDRS`, a comma-separated list of proxy addresses and CIDR prefixes (default: never; the Host header alone)")
	fs.IntVar(&c.MaxWidth, "max-width", c.MaxWidth, "largest output width in `pixels` (0 = no limit)")
	fs.IntVar(&c.MaxHeight, "max-height", c.MaxHeight, "largest output height in `pixels` (0 = no limit)")
	fs.Int64Var(&c.MaxArea, "max-area", c.MaxArea, "largest output area in `pixels` (0 = no limit, which also turns off upscaling: IIIF requires a limit for it)")
	fs.Int64Var(&c.MaxSourcePixels, "max-source-pixels", c.MaxSourcePixels, "most source `pixels` one request may decode, checked from headers before decoding: refuses decompression bombs and full views of huge images without a pyramid (0 = no limit)")
	fs.Var(formatLimitsValue{&c.FormatLimits}, "format-limits", "per-format output limits, `FMT=WxH[xAREA],...` (e.g. gif=2000x2000,png=0x0x50000000); they can only tighten a format's built-in limits")
	fs.IntVar(&c.TileSize, "tile-size", c.TileSize, "tile size in `pixels` advertised for images that are not tiled")
	fs.BoolVar(&c.IgnoreOrientation, "ignore-orientation", c.IgnoreOrientation, "serve images as stored, ignoring their EXIF or TIFF orientation tag (by default images are shown upright, as the tag says, and info.json gives the displayed size)")
	fs.IntVar(&c.JPEGQuality, "jpeg-quality", c.JPEGQuality, "JPEG encoding `quality` 1..100")
	fs.IntVar(&c.PNGCompression, "png-compression", c.PNGCompression, "PNG zlib `level` 1..9 (smaller and slower as it grows); 0: auto, 6 up to 2048x2048 pixels, 1 with the sub filter beyond")
	fs.IntVar(&c.WebPQuality, "webp-quality", c.WebPQuality, "WebP encoding `quality` 1..100")
	fs.IntVar(&c.AVIFQuality, "avif-quality", c.AVIFQuality, "AVIF/HEIC encoding `quality` 1..100")
	fs.IntVar(&c.VipsConcurrency, "vips-concurrency", c.VipsConcurrency, "libvips worker `threads` per image operation (0 = libvips' default)")
	fs.StringVar(&c.CacheControl, "cache-control", c.CacheControl, "Cache-Control `header` of image responses")
	fs.StringVar(&c.InfoCacheControl, "info-cache-control", c.InfoCacheControl, "Cache-Control `header` of info.json responses")
	fs.Var(&c.CacheMemory, "cache-memory", "in-process derivative cache `size`, e.g. 256MiB (0 = off)")
	fs.BoolVar(&c.HotRequests, "hot-requests", c.HotRequests, "answer a repeated request that was just a memory-cache hit from a memo of its request line, skipping the pipeline (false = every request goes through it)")
	fs.StringVar(&c.CacheDir, "cache-dir", c.CacheDir, "disk derivative cache `directory` (empty = off)")
	fs.Var(&c.CacheSize, "cache-size", "size bound of the disk cache, e.g. 10GiB")
	fs.StringVar(&c.CacheRedis, "cache-redis", c.CacheRedis, "shared derivative cache, `redis://HOST:PORT/DB` (empty = off)")
	fs.StringVar(&c.AdminToken, "admin-token", c.AdminToken, "bearer `token` for the admin routes (DELETE /admin/cache/{identifier}, uploads); empty = no admin routes")
	fs.Var(&c.UploadMaxSize, "upload-max-size", "largest image `size` accepted by uploads (POST /admin/images, /upload), e.g. 2GiB")
	fs.DurationVar(&c.IngestTimeout, "ingest-timeout", c.IngestTimeout, "longest `time` to ingest one upload, plus a second per MiB of it (0 = none)")
	fs.BoolVar(&c.NoSlideCheck, "no-slide-check", c.NoSlideCheck, "let OpenSlide read whole-slide images in the server without first checking each in a child process (only for slides you trust: a slide that crashes OpenSlide then crashes the server)")
	fs.DurationVar(&c.SlideCheckTimeout, "slide-check-timeout", c.SlideCheckTimeout, "longest `time` a child process may take to check a whole-slide image before OpenSlide reads it in the server; a slide that takes longer is refused (0 = the default)")
	fs.StringVar(&c.AdminAddr, "admin-addr", c.AdminAddr, "serve pprof profiles and metrics on this operators-only `HOST:PORT` (empty = off)")
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "log `format`: text or json")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "log `level`: debug, info, warn or error")
	fs.IntVar(&c.Workers, "workers", c.Workers, "image `operations` running at once")
	fs.IntVar(&c.Queue, "queue", c.Queue, "image operations waiting at once; more are refused with 503 (0 = unbounded)")
	fs.DurationVar(&c.QueueTimeout, "queue-timeout", c.QueueTimeout, "longest wait for a worker before 503 (0 = until the request ends)")
	fs.IntVar(&c.ClientLimit, "client-limit", c.ClientLimit, "image operations one client address may have running and waiting at once; more get 429 with Retry-After (0 = no per-client limit; leave it off behind a CDN, whose few addresses carry everyone's requests)")
	fs.StringVar(&c.ClientIPHeader, "client-ip-header", c.ClientIPHeader, "`header` whose last value is the client address for --client-limit, e.g. X-Forwarded-For behind one trusted proxy (default: the peer address)")
	fs.Var(&c.MemoryLimit, "memory-limit", "memory `size` (e.g. 4GiB) the estimated cost of running image operations may add up to (0 = no budget)")
	fs.Var(&c.PrefetchPerRender, "prefetch-per-render", "most bytes (`size`, e.g. 32MiB) of stored tiles one render of a remote tiled TIFF fetches before it waits for a worker; a render needing more reads its tiles as it decodes (0 = none fetched ahead)")
	fs.Var(&c.PrefetchMemory, "prefetch-memory", "most bytes (`size`, e.g. 512MiB) that renders fetch ahead and hold together, counted in --memory-limit (0 = a quarter of --memory-limit, no bound without one)")
	fs.Var(&c.SpillThreshold, "spill-threshold", "most bytes (`size`, e.g. 2MiB) of one finished image kept in memory, counted in --memory-limit, while its client receives it; a larger one waits in a temporary file, so that slow clients hold neither workers nor memory (0 = every image to a file)")
	fs.StringVar(&c.SpillDir, "spill-dir", c.SpillDir, "`folder` of the temporary files of --spill-threshold (default: the system's temporary folder)")
	fs.DurationVar(&c.RequestTimeout, "request-timeout", c.RequestTimeout, "longest time for the work of one request (0 = none)")
	fs.DurationVar(&c.ReadHeaderTimeout, "read-header-timeout", c.ReadHeaderTimeout, "time allowed to read request headers")
	fs.DurationVar(&c.WriteTimeout, "write-timeout", c.WriteTimeout, "time allowed to write a whole response")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", c.ShutdownTimeout, "time allowed for in-flight requests on shutdown")
	fs.DurationVar(&c.DrainDelay, "drain-delay", c.DrainDelay, "on shutdown, time /readyz answers 503 before new connections are refused")
	fs.Var(pluginFiles{&c.Plugins.Files}, "plugin", "load this WebAssembly extension `FILE.wasm` (repeatable; the order is the call order)")
	fs.Var(pluginConfig{&c.Plugins.Config}, "plugin-config", "a plugin setting, `NAME.KEY=VALUE` (repeatable; NAME is the file name without .wasm)")
	fs.DurationVar(&c.PluginTimeout, "plugin-timeout", c.PluginTimeout, "longest `time` of one plugin call")
	fs.Var(&c.PluginMemory, "plugin-memory", "memory `size` of each plugin instance, e.g. 64MiB")
	fs.StringVar(&c.PluginCacheDir, "plugin-cache-dir", c.PluginCacheDir, "keep plugins' compiled machine code in this `directory` across restarts (empty = in memory only)")
	fs.DurationVar(&c.PluginReload, "plugin-reload", c.PluginReload, "how often plugin files are checked for changes and reloaded (0 = never)")
	c.Auth.bind(fs)
	st := &c.Stores
	fs.Var(rootsValue{&st.Roots}, "roots", "send identifiers matching a pattern to another root, `PATTERN=ROOT` (repeatable; \"*\" within a path segment, \"**\" across; first match wins, then --root); in the config file: [[roots]] tables with match and root")
	fs.StringVar(&st.KeyLayout, "key-layout", st.KeyLayout, "`layout` of keys in every root: flat, or hash:W1,W2,... (hash:4,2 stores 3972b16287e5.tif as 3972/b1/3972b16287e5.tif)")
	fs.DurationVar(&st.ConnectTimeout, "store-connect-timeout", st.ConnectTimeout, "longest time to connect to an object store or HTTP origin")
	fs.DurationVar(&st.ReadTimeout, "store-read-timeout", st.ReadTimeout, "longest time for one request to an object store or HTTP origin")
	fs.IntVar(&st.Retries, "store-retries", st.Retries, "further attempts of a failed read from a store (with backoff)")
	fs.IntVar(&st.Concurrency, "store-concurrency", st.Concurrency, "range requests in flight per store")
	fs.IntVar(&st.RequestConcurrency, "store-request-concurrency", st.RequestConcurrency, "range requests in flight per client request")
	fs.Var(&st.BlockCache, "block-cache", "memory `size` for blocks fetched from stores (headers, IFDs, tiles), e.g. 64MiB")
	fs.StringVar(&st.SourceCacheDir, "source-cache-dir", st.SourceCacheDir, "`directory` for whole local copies of remote images read whole (flat JPEG, PNG, ...; default: under the temporary directory)")
	fs.Var(&st.SourceCacheSize, "source-cache-size", "size bound of the source cache, e.g. 2GiB")
	c.Purge.bind(fs)
}

// Load fills the flags of fs from the config file, then the environment,
// then args (in that order, so later sources win), and returns the
// remaining positional arguments. getenv is os.Getenv outside tests.
func Load(fs *flag.FlagSet, args []string, getenv func(string) string) ([]string, error) {
	file := configFileArg(args)
	if file == "" {
		file = getenv(EnvPrefix + "CONFIG")
	}
	if file != "" {
		if err := applyFile(fs, file); err != nil {
			return nil, err
		}
	}
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		name := EnvName(f.Name)
		if v := getenv(name); v != "" && envErr == nil {
			if err := fs.Set(f.Name, v); err != nil {
				envErr = fmt.Errorf("%s: %v", name, err)
			}
		}
	})
	if envErr != nil {
		return nil, envErr
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	return fs.Args(), nil
}

// EnvName returns the environment variable of a flag.
func EnvName(flagName string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// configFileArg finds --config in args before they are parsed, because
// the file must be applied before the flags that override it.
func configFileArg(args []string) string {
	for i, a := range args {
		if a == "--" {
			break
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || name != "config" {
			continue
		}
		if hasVal {
			return val
		}
		if i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

func applyFile(fs *flag.FlagSet, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	defer f.Close()
	return applyTOML(fs, f, path)
}

func applyTOML(fs *flag.FlagSet, r io.Reader, name string) error {
	var m map[string]any
	if _, err := toml.NewDecoder(r).Decode(&m); err != nil {
		return fmt.Errorf("config file %s: %w", name, err)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if k == "config" || fs.Lookup(k) == nil {
			return fmt.Errorf("config file %s: unknown setting %q", name, k)
		}
		vals, ok := m[k].([]any)
		if tables, isTables := m[k].([]map[string]any); isTables {
			// An array of tables ([[roots]]): each is one value.
			vals, ok = nil, true
			for _, t := range tables {
				vals = append(vals, t)
			}
		}
		if !ok {
			vals = []any{m[k]}
		}
		for _, v := range vals {
			s, err := tomlString(v)
			if err != nil {
				return fmt.Errorf("config file %s: %s: %w", name, k, err)
			}
			if err := fs.Set(k, s); err != nil {
				return fmt.Errorf("config file %s: %s: %w", name, k, err)
			}
		}
	}
	return nil
}

func tomlString(v any) (string, error) {
	switch v := v.(type) {
	case map[string]any:
		if _, ok := v["policy"]; ok {
			return accessTable(v) // an [[access]] table
		}
		// A [[roots]] table: match and root.
		m, mok := v["match"].(string)
		r, rok := v["root"].(string)
		if !mok || !rok || len(v) != 2 {
			return "", errors.New("want a table with match and root")
		}
		return m + "=" + r, nil
	case string:
		return v, nil
	case int64:
		return strconv.FormatInt(v, 10), nil
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), nil
	case bool:
		return strconv.FormatBool(v), nil
	}
	return "", fmt.Errorf("value of type %T is not supported", v)
}

// formatLimitsValue is the flag.Value of --format-limits: entries it
// parses replace the format's entry (within its built-in limits), other
// formats keep theirs.
type formatLimitsValue struct {
	m *map[iiif.Format]plan.FormatLimits
}

func (v formatLimitsValue) String() string {
	if v.m == nil || *v.m == nil {
		return ""
	}
	var parts []string
	for f, l := range *v.m {
		p := fmt.Sprintf("%s=%dx%d", f, l.MaxWidth, l.MaxHeight)
		if l.MaxArea > 0 {
			p += fmt.Sprintf("x%d", l.MaxArea)
		}
		parts = append(parts, p)
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

func (v formatLimitsValue) Set(s string) error {
	m, err := plan.ParseFormatLimits(s)
	if err != nil {
		return err
	}
	if *v.m == nil {
		*v.m = map[iiif.Format]plan.FormatLimits{}
	}
	builtin := DefaultFormatLimits()
	for f, l := range m {
		if !f.Valid() {
			return fmt.Errorf("%q is not an output format", string(f))
		}
		// Each setting replaces an earlier one for its format (so flags
		// win over the environment and the file), but never lifts the
		// encoder's own limit.
		(*v.m)[f] = tighter(builtin[f], l)
	}
	return nil
}

// tighter combines two limits, keeping the smaller non-zero value of each,
// so that configuration can tighten a format's built-in limits but never
// lift them past what the encoder accepts.
func tighter(a, b plan.FormatLimits) plan.FormatLimits {
	return plan.FormatLimits{
		MaxWidth:  plan.Tighter(a.MaxWidth, b.MaxWidth),
		MaxHeight: plan.Tighter(a.MaxHeight, b.MaxHeight),
		MaxArea:   plan.Tighter(a.MaxArea, b.MaxArea),
	}
}
