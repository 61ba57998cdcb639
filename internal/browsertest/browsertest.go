// Package browsertest finds what the browser tests need: Node.js 20 or
// later, Debian's Chromium and the npm packages of web/ (playwright-core
// and the viewers the tests drive). Every browser test of the project
// asks it, so that a missing tool is reported alike everywhere: the test
// is skipped, or fails when IIIFD_BROWSER_TESTS is set, as scripts/test
// sets it, so that CI can never pass by skipping.
package browsertest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// Required is the environment variable that makes a missing tool fail
// a browser test instead of skipping it.
const Required = "IIIFD_BROWSER_TESTS"

// Tools are the programs a browser test runs and where the npm packages
// are.
type Tools struct {
	Node, Chromium string
	// Web is the absolute path of the repository's web/ folder, whose
	// node_modules and test scripts the tests use.
	Web string
}

// Find returns the tools, or skips or fails t (see Required) naming what
// is missing. files are paths under web/ the test needs besides
// playwright-core (a viewer's bundle, say). CHROMIUM overrides the
// browser's path.
func Find(t testing.TB, files ...string) Tools {
	t.Helper()
	if testing.Short() {
		t.Skip("browser tests are not short")
	}
	_, here, _, _ := runtime.Caller(0)
	tools := Tools{Web: filepath.Join(filepath.Dir(here), "..", "..", "web"), Chromium: os.Getenv("CHROMIUM")}
	if tools.Chromium == "" {
		tools.Chromium = "/usr/bin/chromium"
	}
	var missing []string
	node, err := exec.LookPath("node")
	if err != nil {
		missing = append(missing, "node (Debian nodejs)")
	} else if major := nodeMajor(node); major < 20 {
		// playwright-core needs Node.js 20 or later.
		missing = append(missing, fmt.Sprintf("Node.js 20 or later (have %d)", major))
	}
	tools.Node = node
	if _, err := os.Stat(tools.Chromium); err != nil {
		missing = append(missing, tools.Chromium+" (Debian chromium)")
	}
	for _, p := range append([]string{"node_modules/playwright-core/package.json"}, files...) {
		if _, err := os.Stat(filepath.Join(tools.Web, p)); err != nil {
			missing = append(missing, "web/"+p+" (scripts/web-assets)")
		}
	}
	if len(missing) > 0 {
		msg := "browser tests need: " + strings.Join(missing, ", ")
		if os.Getenv(Required) != "" {
			t.Fatal(msg)
		}
		t.Skip(msg + "; scripts/test installs them")
	}
	return tools
}

// Script is the path of the test script name under web/test.
func (tl Tools) Script(name string) string { return filepath.Join(tl.Web, "test", name) }

func nodeMajor(node string) int {
	out, err := exec.Command(node, "-p", "process.versions.node.split('.')[0]").Output()
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(out)))
	return n
}
