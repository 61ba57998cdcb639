package config

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/iiifd/iiifd/internal/iiif"
	"github.com/iiifd/iiifd/internal/plan"
)

func load(t *testing.T, args []string, env map[string]string) (Config, error) {
	t.Helper()
	c := Default()
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c.Bind(fs)
	_, err := Load(fs, args, func(k string) string { return env[k] })
	if err == nil {
		err = c.Validate()
	}
	return c, err
}

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "iiifd.toml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaults(t *testing.T) {
	c, err := load(t, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != ":8080" || c.Root != "" || c.TileSize != 512 || c.JPEGQuality != 85 {
		t.Errorf("unexpected defaults: %+v", c)
	}
	if c.FormatLimits[iiif.FormatWebP].MaxWidth != 16383 {
		t.Errorf("webp built-in limit missing: %+v", c.FormatLimits)
	}
	if !c.HotRequests {
		t.Error("the memo of hot requests is off by default")
	}
	for _, off := range []struct {
		args []string
		env  map[string]string
	}{
		{[]string{"--hot-requests=false"}, nil},
		{nil, map[string]string{"IIIFD_HOT_REQUESTS": "false"}},
	} {
		c, err := load(t, off.args, off.env)
		if err != nil {
			t.Fatal(err)
		}
		if c.HotRequests {
			t.Errorf("%v %v: the memo of hot requests is still on", off.args, off.env)
		}
	}
}

// TestPrecedence checks flags > env > file > defaults, setting by setting.
func TestPrecedence(t *testing.T) {
	file := writeFile(t, `
addr = "127.0.0.1:7000"
root = "/from/file"
max-width = 1000
max-height = 900
shutdown-timeout = "5s"
`)
	env := map[string]string{
		"IIIFD_CONFIG":    file,
		"IIIFD_ROOT":      "/from/env",
		"IIIFD_MAX_WIDTH": "2000",
	}
	c, err := load(t, []string{"--max-width", "3000"}, env)
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:7000" {
		t.Errorf("addr from file: got %q", c.Addr)
	}
	if c.Root != "/from/env" {
		t.Errorf("root: env must win over file, got %q", c.Root)
	}
	if c.MaxWidth != 3000 {
		t.Errorf("max-width: flag must win over env, got %d", c.MaxWidth)
	}
	if c.MaxHeight != 900 {
		t.Errorf("max-height from file: got %d", c.MaxHeight)
	}
	if c.ShutdownTimeout != 5*time.Second {
		t.Errorf("shutdown-timeout from file: got %v", c.ShutdownTimeout)
	}
}

func TestConfigFlagWinsOverEnvFile(t *testing.T) {
	a := writeFile(t, `addr = "127.0.0.1:1"`)
	b := writeFile(t, `addr = "127.0.0.1:2"`)
	c, err := load(t, []string{"--config=" + b}, map[string]string{"IIIFD_CONFIG": a})
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:2" {
		t.Errorf("got %q, want the --config file's addr", c.Addr)
	}
}

func TestErrors(t *testing.T) {
	cases := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"unknown key", []string{"--config", writeFile(t, `nope = 1`)}, nil, `unknown setting "nope"`},
		{"bad toml", []string{"--config", writeFile(t, `addr = `)}, nil, "config file"},
		{"missing file", []string{"--config", "/does/not/exist.toml"}, nil, "config file"},
		{"bad env", nil, map[string]string{"IIIFD_MAX_WIDTH": "wide"}, "IIIFD_MAX_WIDTH"},
		{"bad flag", []string{"--tile-size", "x"}, nil, "tile-size"},
		{"negative limit", []string{"--max-area", "-1"}, nil, "must not be negative"},
		{"tile size", []string{"--tile-size", "4"}, nil, "tile-size"},
		{"quality", []string{"--jpeg-quality", "101"}, nil, "jpeg-quality"},
		{"png compression", []string{"--png-compression", "10"}, nil, "png-compression"},
		{"log format", []string{"--log-format", "xml"}, nil, "log-format"},
		{"base url", []string{"--base-url", "example.org"}, nil, "base-url"},
		{"format limits", []string{"--format-limits", "gif=10"}, nil, "FMT=WxH"},
		{"format name", []string{"--format-limits", "jpeg=10x10"}, nil, "not an output format"},
		{"height alone", []string{"--max-height", "500"}, nil, "needs max-width"},
		{"base url query", []string{"--base-url", "https://ex.org/p?q=1"}, nil, "base-url"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := load(t, tc.args, tc.env)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestFormatLimitsOnlyTighten(t *testing.T) {
	c, err := load(t, []string{"--format-limits", "webp=20000x100, gif=500x400x100000, png=0x0x9"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.FormatLimits[iiif.FormatWebP]; got.MaxWidth != 16383 || got.MaxHeight != 100 {
		t.Errorf("webp: got %+v, want 16383 (built-in) x 100", got)
	}
	if got := c.FormatLimits[iiif.FormatGIF]; got != (plan.FormatLimits{MaxWidth: 500, MaxHeight: 400, MaxArea: 100000}) {
		t.Errorf("gif: got %+v", got)
	}
	if got := c.FormatLimits[iiif.FormatPNG]; got != (plan.FormatLimits{MaxArea: 9}) {
		t.Errorf("png: got %+v", got)
	}
}

func TestFormatLimitsPrecedence(t *testing.T) {
	file := writeFile(t, `format-limits = "png=0x0x50000000"`)
	c, err := load(t, []string{"--config", file, "--format-limits", "png=0x0x90000000"},
		map[string]string{"IIIFD_FORMAT_LIMITS": "png=0x0x80000000"})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.FormatLimits[iiif.FormatPNG].MaxArea; got != 90000000 {
		t.Errorf("png area %d, want the flag's 90000000", got)
	}
}

func TestByteSize(t *testing.T) {
	for s, want := range map[string]ByteSize{"512MiB": 512 << 20, "2GiB": 2 << 30, "1.5gb": 1.5e9, "1048576": 1 << 20, "64k": 64 << 10, "0": 0} {
		got, err := ParseByteSize(s)
		if err != nil || got != want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", s, got, err, want)
		}
	}
	for _, s := range []string{"", "lots", "-1GiB", "1e9", "GiB", "1..2MiB"} {
		if _, err := ParseByteSize(s); err == nil {
			t.Errorf("ParseByteSize(%q) accepted", s)
		}
	}
	c, err := load(t, []string{"--memory-limit", "3GiB"}, nil)
	if err != nil || c.MemoryLimit != 3<<30 {
		t.Errorf("--memory-limit: %v %v", c.MemoryLimit, err)
	}
	if d := Default().MemoryLimit; d <= 0 {
		t.Errorf("default memory limit %v", d)
	}
}

func TestEnvName(t *testing.T) {
	if got := EnvName("max-width"); got != "IIIFD_MAX_WIDTH" {
		t.Errorf("got %s", got)
	}
}

func FuzzParseByteSize(f *testing.F) {
	for _, s := range []string{"512MiB", "2GiB", "1.5gb", "1048576", "", "k", "9999999999999TiB"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := ParseByteSize(s)
		if err != nil {
			return
		}
		if b < 0 {
			t.Fatalf("negative size %d from %q", b, s)
		}
		// What String prints parses back to the same size.
		if b2, err := ParseByteSize(b.String()); err != nil || b2 != b {
			t.Fatalf("round trip of %q: %v -> %q -> %v, %v", s, b, b.String(), b2, err)
		}
	})
}

func TestUploadMaxSize(t *testing.T) {
	tests := []struct {
		args    []string
		env     map[string]string
		want    ByteSize
		wantErr bool
	}{
		{nil, nil, 2 << 30, false},
		{[]string{"--upload-max-size", "500MiB"}, nil, 500 << 20, false},
		{nil, map[string]string{"IIIFD_UPLOAD_MAX_SIZE": "1GiB"}, 1 << 30, false},
		{[]string{"--upload-max-size", "0"}, nil, 0, true},
	}
	for _, tc := range tests {
		c, err := load(t, tc.args, tc.env)
		if err == nil {
			err = c.Validate()
		}
		if (err != nil) != tc.wantErr || (!tc.wantErr && c.UploadMaxSize != tc.want) {
			t.Errorf("%v %v: %d, %v", tc.args, tc.env, c.UploadMaxSize, err)
		}
	}
}

// TestPrefetchSettings: --prefetch-per-render and --prefetch-memory read
// sizes from flags, the environment and the file, keep their defaults
// otherwise, and refuse what is not a size or more than the memory
// budget they are part of.
func TestPrefetchSettings(t *testing.T) {
	c, err := load(t, nil, nil)
	if err != nil || c.PrefetchPerRender != 32<<20 || c.PrefetchMemory != 0 {
		t.Errorf("defaults: %v, %v, %v; want 32MiB, 0 (a quarter of memory-limit)", c.PrefetchPerRender, c.PrefetchMemory, err)
	}
	file := writeFile(t, `
memory-limit = "4GiB"
prefetch-per-render = "8MiB"
prefetch-memory = 268435456
`)
	tests := []struct {
		args              []string
		env               map[string]string
		perRender, memory ByteSize
	}{
		{[]string{"--prefetch-per-render", "16MiB", "--prefetch-memory", "1.5GiB", "--memory-limit", "4GiB"}, nil, 16 << 20, 3 << 29},
		{[]string{"--prefetch-per-render=0"}, nil, 0, 0},
		{nil, map[string]string{"IIIFD_PREFETCH_PER_RENDER": "2m", "IIIFD_PREFETCH_MEMORY": "100MB", "IIIFD_MEMORY_LIMIT": "1GiB"}, 2 << 20, 100e6},
		{[]string{"--config", file}, nil, 8 << 20, 256 << 20},
		{[]string{"--config", file, "--prefetch-memory", "512MiB"}, map[string]string{"IIIFD_PREFETCH_PER_RENDER": "4MiB"}, 4 << 20, 512 << 20},
		{[]string{"--prefetch-memory", "64GiB", "--memory-limit", "0"}, nil, 32 << 20, 64 << 30},
	}
	for _, tc := range tests {
		c, err := load(t, tc.args, tc.env)
		if err != nil || c.PrefetchPerRender != tc.perRender || c.PrefetchMemory != tc.memory {
			t.Errorf("%v %v: %v, %v, %v; want %v, %v", tc.args, tc.env, c.PrefetchPerRender, c.PrefetchMemory, err, tc.perRender, tc.memory)
		}
	}
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--prefetch-per-render", "lots"}, nil, `invalid value "lots" for flag -prefetch-per-render`},
		{[]string{"--prefetch-memory", "-1MiB"}, nil, "prefetch-memory"},
		{[]string{"--prefetch-memory", "2GiB", "--memory-limit", "1GiB"}, nil, "prefetch-memory: 2GiB is more than memory-limit 1GiB"},
		{nil, map[string]string{"IIIFD_PREFETCH_MEMORY": "1e9"}, "IIIFD_PREFETCH_MEMORY"},
		{[]string{"--config", writeFile(t, `prefetch-per-render = "32 parsecs"`)}, nil, "prefetch-per-render"},
		{[]string{"--config", writeFile(t, `prefetch-memory = -5`)}, nil, "prefetch-memory"},
	} {
		if _, err := load(t, tc.args, tc.env); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v %v: got %v, want an error containing %q", tc.args, tc.env, err, tc.want)
		}
	}
	bad := Default()
	bad.PrefetchPerRender = -1
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "prefetch-per-render") {
		t.Errorf("a negative prefetch-per-render: %v", err)
	}
}

func TestStoreSettings(t *testing.T) {
	file := filepath.Join(t.TempDir(), "iiifd.toml")
	os.WriteFile(file, []byte(`
root = "s3://bucket/images"
key-layout = "hash:4,2"
store-read-timeout = "3s"

[[roots]]
match = "maps/**"
root = "https://maps.example.org/tiles/"

[[roots]]
match = "*.jp2"
root = "/srv/jp2"
`), 0o644)
	c := Default()
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	c.Bind(fs)
	if _, err := Load(fs, []string{"--config", file, "--roots", "x/*=s3://other"}, func(string) string { return "" }); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	want := []RootRule{{"maps/**", "https://maps.example.org/tiles/"}, {"*.jp2", "/srv/jp2"}, {"x/*", "s3://other"}}
	if !reflect.DeepEqual(c.Stores.Roots, want) || c.Root != "s3://bucket/images" || c.Stores.KeyLayout != "hash:4,2" || c.Stores.ReadTimeout != 3*time.Second {
		t.Errorf("got %+v root %q", c.Stores, c.Root)
	}
	for _, bad := range []func(*Config){
		func(c *Config) { c.Root = "s3://" },
		func(c *Config) { c.Root = "http://h/p?q" },
		func(c *Config) { c.Stores.KeyLayout = "sharded" },
		func(c *Config) { c.Stores.Roots = []RootRule{{"", "/x"}} },
		func(c *Config) { c.Stores.Retries = -1 },
		func(c *Config) { c.Stores.ReadTimeout = 0 },
	} {
		c := Default()
		bad(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("accepted %+v %q", c.Stores, c.Root)
		}
	}
}

// TestSpillSettings: --spill-threshold and --spill-dir read from flags,
// the environment and the file, default to 2 MiB and the system's
// temporary folder, and refuse a negative size or a folder that is not
// one.
func TestSpillSettings(t *testing.T) {
	c, err := load(t, nil, nil)
	if err != nil || c.SpillThreshold != 2<<20 || c.SpillDir != "" {
		t.Errorf("defaults: %v, %q, %v; want 2MiB, \"\"", c.SpillThreshold, c.SpillDir, err)
	}
	dir := t.TempDir()
	for _, tc := range []struct {
		args      []string
		env       map[string]string
		threshold ByteSize
	}{
		{[]string{"--spill-threshold", "512KiB", "--spill-dir", dir}, nil, 512 << 10},
		{[]string{"--spill-threshold=0", "--spill-dir", dir}, nil, 0},
		{nil, map[string]string{"IIIFD_SPILL_THRESHOLD": "8MiB", "IIIFD_SPILL_DIR": dir}, 8 << 20},
		{[]string{"--config", writeFile(t, "spill-threshold = \"1MiB\"\nspill-dir = \""+dir+"\"\n")}, nil, 1 << 20},
	} {
		c, err := load(t, tc.args, tc.env)
		if err != nil || c.SpillThreshold != tc.threshold || c.SpillDir != dir {
			t.Errorf("%v %v: %v, %q, %v; want %v, %q", tc.args, tc.env, c.SpillThreshold, c.SpillDir, err, tc.threshold, dir)
		}
	}
	notDir := writeFile(t, "x")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--spill-threshold", "-1MiB"}, "spill-threshold"},
		{[]string{"--spill-threshold", "lots"}, `invalid value "lots" for flag -spill-threshold`},
		{[]string{"--spill-dir", notDir}, "spill-dir"},
		{[]string{"--spill-dir", filepath.Join(dir, "missing")}, "spill-dir"},
	} {
		if _, err := load(t, tc.args, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: got %v, want an error containing %q", tc.args, err, tc.want)
		}
	}
}

// TestTrustForwarded: --trust-forwarded alone trusts any peer; with
// addresses, those proxies only; a bad address is refused.
func TestTrustForwarded(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		any     bool
		proxies string
		bad     bool
	}{
		{nil, false, "", false},
		{[]string{"--trust-forwarded"}, true, "", false},
		{[]string{"--trust-forwarded=false"}, false, "", false},
		{[]string{"--trust-forwarded=10.0.0.5, 10.1.0.0/16,::ffff:192.0.2.1"}, false, "[10.0.0.5/32 10.1.0.0/16 192.0.2.1/32]", false},
		{[]string{"--trust-forwarded=proxy.example"}, false, "", true},
	} {
		c := Default()
		fs := flag.NewFlagSet("serve", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		c.Bind(fs)
		err := fs.Parse(tc.args)
		if tc.bad {
			if err == nil {
				t.Errorf("%v: accepted", tc.args)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		anyPeer, proxies, err := ForwardedFrom(c.TrustForwarded)
		got := ""
		if len(proxies) > 0 {
			got = fmt.Sprint(proxies)
		}
		if err != nil || anyPeer != tc.any || got != tc.proxies {
			t.Errorf("%v: any %v proxies %s %v, want %v %s", tc.args, anyPeer, got, err, tc.any, tc.proxies)
		}
	}
}

func FuzzForwardedFrom(f *testing.F) {
	for _, s := range []string{"", "true", "false", "10.0.0.1", "10.0.0.0/8, ::1", "x", "1.2.3.4/33", ",,"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		anyPeer, proxies, err := ForwardedFrom(s)
		if err != nil && (anyPeer || proxies != nil) {
			t.Fatalf("%q: error %v with a result", s, err)
		}
		for _, p := range proxies {
			if !p.IsValid() || p != p.Masked() {
				t.Fatalf("%q: prefix %v", s, p)
			}
		}
	})
}
