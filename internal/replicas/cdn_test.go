package replicas

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/iiifd/iiifd/internal/purge"
)

// varnish is a real varnishd with the xkey module, running the VCL of
// deploy/varnish in front of replicas.
type varnish struct {
	port int
}

func (v *varnish) url() string { return "http://127.0.0.1:" + strconv.Itoa(v.port) }

// startVarnish runs deploy/varnish/iiifd.vcl with a backends.vcl naming
// the replicas (health-checked on /readyz) and this machine as the only
// purger. Its files are in a directory of their own that the unprivileged
// user varnishd's compiler runs as can read.
func startVarnish(t *testing.T, port int, rs ...*replica) *varnish {
	t.Helper()
	bin := needTool(t, "varnishd", "/usr/sbin")
	if !fileExists("/usr/lib/x86_64-linux-gnu/varnish/vmods/libvmod_xkey.so") && !fileExists("/usr/lib/aarch64-linux-gnu/varnish/vmods/libvmod_xkey.so") {
		needTool(t, "libvmod_xkey.so (varnish-modules)")
	}
	dir, err := os.MkdirTemp("", "iiifd-varnish-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	vcl, err := os.ReadFile("../../deploy/varnish/iiifd.vcl")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString("probe ready { .url = \"/readyz\"; .interval = 200ms; .timeout = 1s; .window = 2; .threshold = 1; }\n")
	for _, r := range rs {
		fmt.Fprintf(&b, "backend %s { .host = \"127.0.0.1\"; .port = \"%d\"; .probe = ready; }\n", r.name, r.port)
	}
	b.WriteString("sub vcl_init {\n  new iiifd = directors.round_robin();\n")
	for _, r := range rs {
		fmt.Fprintf(&b, "  iiifd.add_backend(%s);\n", r.name)
	}
	b.WriteString("}\nacl purgers { \"127.0.0.1\"; }\n")
	for name, body := range map[string][]byte{"iiifd.vcl": vcl, "backends.vcl": []byte(b.String())} {
		if err := os.WriteFile(filepath.Join(dir, name), body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	v := &varnish{port: port}
	cmd := exec.Command(bin, "-F", "-a", "127.0.0.1:"+strconv.Itoa(port), "-f", filepath.Join(dir, "iiifd.vcl"),
		"-p", "vcl_path="+dir, "-n", filepath.Join(dir, "work"), "-s", "malloc,256m", "-p", "thread_pool_min=10")
	var logs strings.Builder
	cmd.Stdout = &lockedWriter{w: &logs}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-done })
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get(v.url() + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return v
			}
		}
		select {
		case <-done:
			t.Fatalf("varnishd exited: %s", logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("varnish not answering: %v\n%s", err, logs.String())
		}
	}
}

// getVia asks u and returns the status, the X-Varnish-Cache header and
// the response headers.
func getVia(t *testing.T, u string) (int, string, http.Header) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("X-Varnish-Cache"), resp.Header
}

// TestCDNPurgeByTag: Varnish (xkey) in front of two replicas. Every image
// response carries its identifier's tag; a purge through one replica's
// admin route removes from Varnish every URL of that image, under every
// spelling, and nothing else.
func TestCDNPurgeByTag(t *testing.T) {
	vport := freePort(t)
	c := newCluster(t, "IIIFD_PURGE_URL=http://127.0.0.1:"+strconv.Itoa(vport)+"/")
	r1, r2 := c.replica("r1"), c.replica("r2")
	v := startVarnish(t, vport, r1, r2)
	urls := func(id, file string) []string {
		return []string{
			"/iiif/3/" + id + "/info.json",
			"/iiif/3/" + id + "/full/256,/0/default.jpg",
			"/iiif/3/" + id + "/0,0,256,256/128,/0/default.jpg",
			"/iiif/2/" + file + "/full/100,/0/default.png", // the other spelling
			"/iiif/2/" + id + "/info.json",
		}
	}
	purged := append(urls("julia", "julia.jpg"), "/iiif/3/julia.jpg/full/64,/0/default.jpg")
	kept := append(urls("mandelbrot", "mandelbrot.tif"), urls("testchart", "testchart.png")...)
	// The replicas tag what they answer.
	for _, u := range purged {
		for _, r := range []*replica{r1, r2} {
			_, _, hd := getVia(t, r.url()+u)
			if hd.Get("Surrogate-Key") != purge.Tag("julia") || hd.Get("Cache-Tag") != purge.Tag("julia") {
				t.Errorf("%s%s: Surrogate-Key %q Cache-Tag %q, want %q", r.name, u, hd.Get("Surrogate-Key"), hd.Get("Cache-Tag"), purge.Tag("julia"))
			}
		}
	}
	all := append(append([]string(nil), purged...), kept...)
	for _, u := range all {
		if st, _, _ := getVia(t, v.url()+u); st != http.StatusOK {
			t.Fatalf("%s: %d", u, st)
		}
	}
	for _, u := range all {
		if _, x, _ := getVia(t, v.url()+u); x != "HIT" {
			t.Fatalf("%s not cached by Varnish: %q", u, x)
		}
	}
	req, _ := http.NewRequest(http.MethodDelete, r2.url()+"/admin/cache/julia", nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("purge: %d", resp.StatusCode)
	}
	for _, u := range purged {
		if _, x, _ := getVia(t, v.url()+u); x != "MISS" {
			t.Errorf("%s: %q after the purge of julia, want MISS", u, x)
		}
	}
	for _, u := range kept {
		if _, x, _ := getVia(t, v.url()+u); x != "HIT" {
			t.Errorf("%s: %q after the purge of julia, want HIT (another image)", u, x)
		}
	}
	// Varnish refuses purges from elsewhere than its purgers, and a
	// purge without a tag.
	req, _ = http.NewRequest("PURGE", v.url()+"/", nil)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("PURGE without xkey-purge: %d, want 400", resp.StatusCode)
	}
}
