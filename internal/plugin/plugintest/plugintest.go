// Package plugintest builds the example plugins of examples/plugins for
// tests, with the SDKs they use: Go examples with the running toolchain
// (GOOS=wasip1, a c-shared reactor), AssemblyScript ones with npx asc
// from examples/plugins/assemblyscript/node_modules (scripts/deps.sh
// installs it).
package plugintest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// RequireEnv, when set to 1 (scripts/test sets it), makes a missing tool
// fail the test instead of skipping it.
const RequireEnv = "IIIFD_REQUIRE_TOOLS"

var (
	mu    sync.Mutex
	dir   string
	built = map[string]string{}
)

// Root returns the repository's root directory.
func Root(t testing.TB) string {
	t.Helper()
	d, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		parent := filepath.Dir(d)
		if parent == d {
			t.Fatal("plugintest: no go.mod above the working directory")
		}
		d = parent
	}
}

// Build returns the path of the example plugin name (a folder of
// examples/plugins, or "assemblyscript/NAME" for an AssemblyScript one),
// built once per test process.
func Build(t testing.TB, name string) string {
	t.Helper()
	return BuildWith(t, name, "")
}

// BuildWith is Build of a Go example with linker flags, e.g.
// "-X main.token=other" for a variant of a plugin.
func BuildWith(t testing.TB, name, ldflags string) string {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	id := name + "\x00" + ldflags
	if p, ok := built[id]; ok {
		return p
	}
	if dir == "" {
		d, err := os.MkdirTemp("", "iiifd-plugins-")
		if err != nil {
			t.Fatal(err)
		}
		dir = d // removed with the OS's temporary files; shared by the process's tests
	}
	root := Root(t)
	out := filepath.Join(dir, fmt.Sprintf("%s-%d.wasm", strings.ReplaceAll(name, "/", "-"), len(built)))
	var cmd *exec.Cmd
	if as, ok := strings.CutPrefix(name, "assemblyscript/"); ok {
		asDir := filepath.Join(root, "examples", "plugins", "assemblyscript")
		asc := filepath.Join(asDir, "node_modules", ".bin", "asc")
		if _, err := os.Stat(asc); err != nil {
			missing(t, "AssemblyScript compiler (run scripts/deps.sh or npm ci in examples/plugins/assemblyscript)")
		}
		cmd = exec.Command(asc, filepath.Join(as, "index.ts"), "--config", "asconfig.json", "--target", "release", "--outFile", out)
		cmd.Dir = asDir
	} else {
		gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
		cmd = exec.Command(gobin, "build", "-buildmode=c-shared", "-ldflags="+ldflags, "-o", out, "./examples/plugins/"+name)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	}
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building plugin %s: %v\n%s", name, err, b)
	}
	built[id] = out
	return out
}

// Variant returns the module bin with a custom section named
// "iiifd-test" holding data appended: another file and module hash for
// the same code, to reload a plugin with.
func Variant(bin []byte, data string) []byte {
	uleb := func(out []byte, n int) []byte {
		for {
			c := byte(n & 0x7f)
			if n >>= 7; n != 0 {
				c |= 0x80
			}
			out = append(out, c)
			if n == 0 {
				return out
			}
		}
	}
	const name = "iiifd-test"
	payload := append(uleb(nil, len(name)), name...)
	payload = append(payload, data...)
	out := append(append([]byte(nil), bin...), 0) // section id 0: custom
	out = uleb(out, len(payload))
	return append(out, payload...)
}

// CacheDir is a compilation cache directory shared by the tests of every
// package and run, so each example is compiled to machine code once.
func CacheDir() string { return filepath.Join(os.TempDir(), "iiifd-test-plugin-cache") }

func missing(t testing.TB, what string) {
	t.Helper()
	if os.Getenv(RequireEnv) == "1" {
		t.Fatalf("%s is missing", what)
	}
	t.Skipf("%s is missing", what)
}
