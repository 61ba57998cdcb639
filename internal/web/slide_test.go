package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/iiifd/iiifd/internal/slidetest"
)

// TestBrowserSlide opens a generated Aperio slide in the built-in viewer
// in headless Chromium and zooms to the deepest level: tiles come at
// every scale factor info.json advertises (web/test/slide.mjs).
func TestBrowserSlide(t *testing.T) {
	if testing.Short() {
		t.Skip("browser tests are not short")
	}
	webDir, err := filepath.Abs("../../web")
	if err != nil {
		t.Fatal(err)
	}
	chromium := os.Getenv("CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	node, nerr := exec.LookPath("node")
	_, cerr := os.Stat(chromium)
	_, perr := os.Stat(filepath.Join(webDir, "node_modules/playwright-core/package.json"))
	if nerr != nil || cerr != nil || perr != nil {
		msg := "browser tests need node, " + chromium + " and web/node_modules (scripts/web-assets)"
		if os.Getenv(browserRequired) != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	srv := server(t, slidetest.Dir(t), nil)
	// The SVS only: the Philips TIFF, read through OpenSlide, is served
	// by the same pipeline; a second slide would double the test's time.
	for _, id := range []string{"slide.svs"} {
		t.Run(id, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, node, filepath.Join(webDir, "test", "slide.mjs"))
			cmd.Env = append(os.Environ(), "IIIFD_URL="+srv.URL, "SLIDE_ID="+id, "CHROMIUM="+chromium)
			cmd.WaitDelay = 10 * time.Second
			out, err := cmd.CombinedOutput()
			t.Logf("slide.mjs:\n%s", out)
			if err != nil {
				t.Fatalf("slide browser test failed: %v", err)
			}
		})
	}
}

// TestSlideManifest reads the manifest of the generated Aperio slide:
// the scanner's facts as metadata, and a canvas for the slide and for
// each associated image, whose image service answers.
func TestSlideManifest(t *testing.T) {
	srv := server(t, slidetest.Dir(t), nil)
	res, body := get(t, srv.URL+"/iiif/presentation/3/slide.svs/manifest")
	if res.StatusCode != 200 {
		t.Fatalf("manifest: %d %s", res.StatusCode, body)
	}
	var doc struct {
		Metadata []struct{ Label, Value map[string][]string }
		Items    []struct {
			Width, Height int
			Items         []struct {
				Items []struct {
					Body struct {
						Service []struct{ ID string }
					}
				}
			}
		}
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, m := range doc.Metadata {
		got[m.Label["en"][0]] = m.Value["none"][0]
	}
	want := map[string]string{"Scanner vendor": "aperio", "Objective power": "20×", "Microns per pixel": "0.499", "Scan date": "12/29/09 09:59:15"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("metadata %v, want %v", got, want)
	}
	if len(doc.Items) != 4 {
		t.Fatalf("%d canvases, want the slide's and 3 associated images'", len(doc.Items))
	}
	for i, c := range doc.Items[1:] {
		svc := c.Items[0].Items[0].Body.Service[0].ID
		name := []string{"thumbnail", "label", "macro"}[i] // the order of the SVS pages
		if !strings.HasSuffix(svc, "/iiif/3/slide.svs%3B"+name) {
			t.Errorf("canvas %d service %s", i+2, svc)
		}
		res, body := get(t, svc+"/info.json")
		if res.StatusCode != 200 || !strings.Contains(body, fmt.Sprintf(`"width":%d`, c.Width)) {
			t.Errorf("%s: %d %.200s", svc, res.StatusCode, body)
		}
	}
}
