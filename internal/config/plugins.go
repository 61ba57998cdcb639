package config

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"
)

// Plugins configures WebAssembly extensions.
type Plugins struct {
	// Files are the modules, in call order.
	Files []string
	// Config holds each plugin's settings by plugin name (the file name
	// without .wasm), then key.
	Config map[string]map[string]string
}

// pluginFiles is the flag.Value of --plugin: each setting adds files
// (comma-separated in one setting, as the environment variable allows).
type pluginFiles struct{ files *[]string }

func (v pluginFiles) String() string {
	if v.files == nil {
		return ""
	}
	return strings.Join(*v.files, ",")
}

func (v pluginFiles) Set(s string) error {
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if !strings.HasSuffix(f, ".wasm") {
			return fmt.Errorf("%q is not a .wasm file", f)
		}
		*v.files = append(*v.files, f)
	}
	return nil
}

// pluginConfig is the flag.Value of --plugin-config NAME.KEY=VALUE.
type pluginConfig struct{ m *map[string]map[string]string }

func (v pluginConfig) String() string {
	if v.m == nil {
		return ""
	}
	var parts []string
	for name, kv := range *v.m {
		for k, val := range kv {
			parts = append(parts, name+"."+k+"="+val)
		}
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

func (v pluginConfig) Set(s string) error {
	nk, val, ok := strings.Cut(s, "=")
	name, key, ok2 := strings.Cut(nk, ".")
	if !ok || !ok2 || name == "" || key == "" {
		return fmt.Errorf("%q: want NAME.KEY=VALUE", s)
	}
	if *v.m == nil {
		*v.m = map[string]map[string]string{}
	}
	if (*v.m)[name] == nil {
		(*v.m)[name] = map[string]string{}
	}
	(*v.m)[name][key] = val
	return nil
}

// validatePlugins checks that every configured name belongs to a plugin
// and that no two plugins share a name.
func (c *Config) validatePlugins() []error {
	var errs []error
	names := map[string]bool{}
	for _, f := range c.Plugins.Files {
		n := strings.TrimSuffix(filepath.Base(f), ".wasm")
		if names[n] {
			errs = append(errs, fmt.Errorf("plugin: two plugins are named %q", n))
		}
		names[n] = true
	}
	for n := range c.Plugins.Config {
		if !names[n] {
			errs = append(errs, fmt.Errorf("plugin-config: no plugin is named %q", n))
		}
	}
	if c.PluginTimeout <= 0 {
		errs = append(errs, fmt.Errorf("plugin-timeout: must be positive"))
	}
	if c.PluginMemory < 64<<10 {
		errs = append(errs, fmt.Errorf("plugin-memory: at least 64KiB"))
	}
	return errs
}
