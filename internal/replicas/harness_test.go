package replicas

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/iiifd/iiifd/internal/cache/redis/redistest"
	"github.com/iiifd/iiifd/internal/samples"
	"github.com/iiifd/iiifd/internal/source/s3/s3test"
)

// needTool finds a program, failing the test when it is missing and
// IIIFD_TEST_TOOLS=1 (scripts/test), skipping it otherwise.
func needTool(t *testing.T, name string, dirs ...string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, d := range dirs {
		if p := filepath.Join(d, name); fileExists(p) {
			return p
		}
	}
	msg := name + " not found (scripts/test installs it)"
	if os.Getenv(s3test.ToolsEnv) == "1" || os.Getenv("IIIFD_REQUIRE_TOOLS") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// binary builds cmd/iiifd once per test run.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "iiifd-replicas-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "iiifd")
		out, err := exec.Command("go", "build", "-o", binPath, "github.com/iiifd/iiifd/cmd/iiifd").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// cluster is the shared state of the replicas: the store and Redis.
type cluster struct {
	t      *testing.T
	bin    string
	env    []string // of every replica
	redis  *redistest.Server
	store  *s3test.Server
	bucket string
}

const adminToken = "replicas-admin-token-0123"

// newCluster starts versitygw with the sample images in a bucket, and
// Redis.
func newCluster(t *testing.T, extraEnv ...string) *cluster {
	t.Helper()
	bin := binary(t)
	st := s3test.Start(t)
	bucket := st.Bucket("images")
	dir := t.TempDir()
	if err := samples.Extract(dir); err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		files[e.Name()] = b
	}
	st.Put(bucket, files)
	rs := redistest.Start(t)
	env := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "TMPDIR=" + t.TempDir(),
		"AWS_ACCESS_KEY_ID=" + s3test.AccessKey, "AWS_SECRET_ACCESS_KEY=" + s3test.SecretKey,
		"AWS_REGION=" + s3test.Region, "AWS_ENDPOINT_URL=" + st.Endpoint(),
		"AWS_CONFIG_FILE=/nonexistent", "AWS_SHARED_CREDENTIALS_FILE=/nonexistent",
		"IIIFD_ROOT=s3://" + bucket + "/",
		"IIIFD_CACHE_REDIS=" + rs.URL(),
		"IIIFD_CACHE_MEMORY=64MiB",
		"IIIFD_ADMIN_TOKEN=" + adminToken,
		"IIIFD_DRAIN_DELAY=1s",
		"IIIFD_SHUTDOWN_TIMEOUT=10s",
		"IIIFD_WORKERS=2",
		"IIIFD_LOG_LEVEL=warn",
	}
	return &cluster{t: t, bin: bin, env: append(env, extraEnv...), redis: rs, store: st, bucket: bucket}
}

// replica is one iiifd process.
type replica struct {
	c    *cluster
	name string
	port int
	cmd  *exec.Cmd
	done chan error
	logs *strings.Builder
	mu   sync.Mutex
}

func (c *cluster) replica(name string) *replica {
	r := &replica{c: c, name: name, port: freePort(c.t)}
	r.start()
	c.t.Cleanup(func() { r.kill() })
	return r
}

func (r *replica) url() string { return "http://127.0.0.1:" + strconv.Itoa(r.port) }

func (r *replica) start() {
	r.c.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	cmd := exec.Command(r.c.bin, "serve")
	cmd.Env = append(append([]string(nil), r.c.env...), "IIIFD_ADDR=127.0.0.1:"+strconv.Itoa(r.port))
	r.logs = new(strings.Builder)
	cmd.Stderr = &lockedWriter{w: r.logs}
	if err := cmd.Start(); err != nil {
		r.c.t.Fatal(err)
	}
	r.cmd = cmd
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	r.done = done
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		resp, err := http.Get(r.url() + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case err := <-done:
			r.c.t.Fatalf("%s exited at start: %v\n%s", r.name, err, r.logs.String())
		default:
		}
		if time.Now().After(deadline) {
			r.c.t.Fatalf("%s not ready: %v", r.name, err)
		}
	}
}

// kill ends the process with SIGKILL, as a crash would.
func (r *replica) kill() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil {
		return
	}
	r.cmd.Process.Signal(syscall.SIGKILL)
	<-r.done
	r.cmd = nil
}

// stop sends SIGTERM and waits for the process to end by itself; it
// returns its exit error (nil: a clean exit).
func (r *replica) stop() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-r.done:
		r.cmd = nil
		return err
	case <-time.After(30 * time.Second):
		r.cmd.Process.Kill()
		<-r.done
		r.cmd = nil
		return errors.New("did not stop within 30 s of SIGTERM")
	}
}

// metric returns the value of a counter from the replica's /metrics.
func (r *replica) metric(name string) float64 {
	r.c.t.Helper()
	resp, err := http.Get(r.url() + "/metrics")
	if err != nil {
		r.c.t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f
		}
	}
	r.c.t.Fatalf("%s: no metric %s", r.name, name)
	return 0
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// haproxy is a real HAProxy in front of replicas.
type haproxy struct {
	port  int
	stats string // its stats socket
}

// startHAProxy balances over the replicas round-robin, checks each on
// /readyz every 100 ms (one failure takes it out, two successes bring it
// back), and retries a failed idempotent request (refused connection,
// empty or broken answer, 502-504) on another replica, up to 3 times.
func startHAProxy(t *testing.T, rs ...*replica) *haproxy {
	t.Helper()
	bin := needTool(t, "haproxy", "/usr/sbin")
	dir := t.TempDir()
	h := &haproxy{port: freePort(t), stats: filepath.Join(dir, "stats.sock")}
	var servers strings.Builder
	for _, r := range rs {
		fmt.Fprintf(&servers, "  server %s 127.0.0.1:%d\n", r.name, r.port)
	}
	cfg := fmt.Sprintf(`global
  maxconn 2000
  stats socket %s level admin
defaults
  mode http
  timeout connect 1s
  timeout client 60s
  timeout server 60s
  retries 3
  retry-on conn-failure empty-response junk-response response-timeout 502 503 504
  option redispatch 1
frontend fe
  bind 127.0.0.1:%d
  default_backend iiifd
backend iiifd
  balance roundrobin
  option httpchk GET /readyz
  http-check expect status 200
  default-server check inter 100ms fall 1 rise 2
%s`, h.stats, h.port, servers.String())
	path := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "-c", "-f", path).CombinedOutput(); err != nil {
		t.Fatalf("haproxy -c: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "-db", "-f", path)
	var logs strings.Builder
	cmd.Stderr = &lockedWriter{w: &logs}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for _, r := range rs {
		h.waitUp(t, r.name, true)
	}
	return h
}

func (h *haproxy) url() string { return "http://127.0.0.1:" + strconv.Itoa(h.port) }

// status returns the check status HAProxy holds for a server ("UP",
// "DOWN", ...), from its stats socket.
func (h *haproxy) status(server string) string {
	c, err := net.Dial("unix", h.stats)
	if err != nil {
		return ""
	}
	defer c.Close()
	io.WriteString(c, "show stat\n")
	b, _ := io.ReadAll(c)
	var statusCol = -1
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Split(line, ",")
		if strings.HasPrefix(line, "# ") {
			for i, name := range f {
				if name == "status" {
					statusCol = i
				}
			}
			continue
		}
		if len(f) > statusCol && statusCol >= 0 && f[0] == "iiifd" && f[1] == server {
			return f[statusCol]
		}
	}
	return ""
}

// waitUp waits until HAProxy sees server up (or down).
func (h *haproxy) waitUp(t *testing.T, server string, up bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		s := h.status(server)
		if up == strings.HasPrefix(s, "UP") && s != "" {
			return
		}
	}
	t.Fatalf("haproxy: %s is %q, want up=%v", server, h.status(server), up)
}

// load is a bounded client: a fixed number of workers asking URLs in a
// loop, each answer classified.
type load struct {
	mu       sync.Mutex
	ok       int
	failed   []string // no answer, or not 200
	cut      []string // a 200 whose body broke off: it was being sent
	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
	requests int
}

func startLoad(base string, paths []string, workers int) *load {
	l := &load{stop: make(chan struct{})}
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	for w := range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for i := w; ; i++ {
				select {
				case <-l.stop:
					return
				default:
				}
				l.one(client, base+paths[i%len(paths)])
			}
		}()
	}
	return l
}

func (l *load) one(c *http.Client, u string) {
	resp, err := c.Get(u)
	if err != nil {
		l.note(&l.failed, u+": "+err.Error())
		return
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	switch {
	case resp.StatusCode != http.StatusOK:
		l.note(&l.failed, fmt.Sprintf("%s: status %d", u, resp.StatusCode))
	case err != nil || (resp.ContentLength >= 0 && n != resp.ContentLength):
		l.note(&l.cut, fmt.Sprintf("%s: %d of %d bytes: %v", u, n, resp.ContentLength, err))
	default:
		l.note(nil, "")
	}
}

func (l *load) note(list *[]string, s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.requests++
	if list == nil {
		l.ok++
		return
	}
	*list = append(*list, s)
}

// snapshot returns the counts so far and resets them.
func (l *load) snapshot() (requests, ok int, failed, cut []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	requests, ok, failed, cut = l.requests, l.ok, l.failed, l.cut
	l.requests, l.ok, l.failed, l.cut = 0, 0, nil, nil
	return
}

func (l *load) end() {
	l.stopOnce.Do(func() { close(l.stop) })
	l.wg.Wait()
}

// waitRequests waits until the load made n more requests, so that every
// phase of a test runs under load whatever the machine's speed.
func (l *load) waitRequests(ctx context.Context, n int) {
	l.mu.Lock()
	target := l.requests + n
	l.mu.Unlock()
	for ctx.Err() == nil {
		l.mu.Lock()
		done := l.requests >= target
		l.mu.Unlock()
		if done {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}
