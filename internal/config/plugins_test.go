package config

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

func TestPluginSettings(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "iiifd.toml")
	os.WriteFile(file, []byte(`plugin = ["a/auth-token.wasm", "rights.wasm"]
plugin-config = ["auth-token.token=fromfile", "rights.url=http://x"]
plugin-timeout = "250ms"
`), 0o644)
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		files   []string
		config  map[string]map[string]string
		timeout time.Duration
		wantErr bool
	}{
		{name: "none", timeout: 100 * time.Millisecond},
		{
			name: "flags", args: []string{"--plugin", "x.wasm", "--plugin", "y.wasm", "--plugin-config", "x.k=v=w", "--plugin-timeout", "1s"},
			files: []string{"x.wasm", "y.wasm"}, config: map[string]map[string]string{"x": {"k": "v=w"}}, timeout: time.Second,
		},
		{
			name: "file and flag", args: []string{"--config", file, "--plugin-config", "auth-token.token=fromflag"},
			files:   []string{"a/auth-token.wasm", "rights.wasm"},
			config:  map[string]map[string]string{"auth-token": {"token": "fromflag"}, "rights": {"url": "http://x"}},
			timeout: 250 * time.Millisecond,
		},
		{
			name: "environment", env: map[string]string{"IIIFD_PLUGIN": "p.wasm,q.wasm"},
			files: []string{"p.wasm", "q.wasm"}, timeout: 100 * time.Millisecond,
		},
		{name: "not wasm", args: []string{"--plugin", "x.so"}, wantErr: true},
		{name: "bad setting", args: []string{"--plugin", "x.wasm", "--plugin-config", "x=1"}, wantErr: true},
		{name: "unknown plugin", args: []string{"--plugin", "x.wasm", "--plugin-config", "y.k=1"}, wantErr: true},
		{name: "same name", args: []string{"--plugin", "a/x.wasm", "--plugin", "b/x.wasm"}, wantErr: true},
		{name: "zero timeout", args: []string{"--plugin-timeout", "0s"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			fs := flag.NewFlagSet("serve", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			c.Bind(fs)
			_, err := Load(fs, tt.args, func(k string) string { return tt.env[k] })
			if err == nil {
				err = c.Validate()
			}
			if (err != nil) != tt.wantErr {
				t.Fatalf("error %v, want error %v", err, tt.wantErr)
			}
			if tt.wantErr {
				return
			}
			if !reflect.DeepEqual(c.Plugins.Files, tt.files) || !reflect.DeepEqual(c.Plugins.Config, tt.config) || c.PluginTimeout != tt.timeout {
				t.Errorf("got %v %v %v", c.Plugins.Files, c.Plugins.Config, c.PluginTimeout)
			}
		})
	}
}
