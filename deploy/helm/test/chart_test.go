// Package charttest checks the Helm chart in deploy/helm/iiifd: helm lint
// passes, every object helm template renders decodes strictly into the
// Kubernetes API types (no unknown or misspelt field), the settings that
// must agree do (probes on real routes and the container port, the
// preStop drain and IIIFD_DRAIN_DELAY, the memory limit and the work
// budget), and the rendered configuration starts a real iiifd whose probe
// routes answer.
//
// It is a module of its own so that the Kubernetes API modules stay out
// of iiifd's go.mod (docs/RATIONALE.md, "The Helm chart's test").
package charttest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"
)

const chart = "../iiifd"

// tool finds a program from an environment variable or PATH; without it
// the test fails when IIIFD_REQUIRE_TOOLS=1 (scripts/test), else skips.
func tool(t *testing.T, env, name string) string {
	t.Helper()
	if p := os.Getenv(env); p != "" {
		return p
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	msg := fmt.Sprintf("%s not found: set %s (scripts/test builds it)", name, env)
	if os.Getenv("IIIFD_REQUIRE_TOOLS") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// rendered are the objects of one helm template run, by kind.
type rendered struct {
	deploy  *appsv1.Deployment
	config  *corev1.ConfigMap
	secret  *corev1.Secret
	service *corev1.Service
	hpa     *autoscalingv2.HorizontalPodAutoscaler
	pdb     *policyv1.PodDisruptionBudget
	monitor *monitoringv1.ServiceMonitor
}

// strict decodes a YAML document into v, refusing unknown fields.
func strict(doc []byte, v any) error {
	js, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return err
	}
	d := json.NewDecoder(bytes.NewReader(js))
	d.DisallowUnknownFields()
	return d.Decode(v)
}

func render(t *testing.T, helm string, sets ...string) rendered {
	t.Helper()
	args := []string{"template", "rel", chart}
	for _, s := range sets {
		args = append(args, "--set", s)
	}
	out, err := exec.Command(helm, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	var r rendered
	for _, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(out), -1) {
		if strings.TrimSpace(regexp.MustCompile(`(?m)^#.*$`).ReplaceAllString(doc, "")) == "" {
			continue
		}
		var head struct{ APIVersion, Kind string }
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
			t.Fatalf("not YAML: %v\n%s", err, doc)
		}
		var obj any
		switch head.APIVersion + " " + head.Kind {
		case "apps/v1 Deployment":
			r.deploy = new(appsv1.Deployment)
			obj = r.deploy
		case "v1 ConfigMap":
			r.config = new(corev1.ConfigMap)
			obj = r.config
		case "v1 Secret":
			r.secret = new(corev1.Secret)
			obj = r.secret
		case "v1 Service":
			r.service = new(corev1.Service)
			obj = r.service
		case "autoscaling/v2 HorizontalPodAutoscaler":
			r.hpa = new(autoscalingv2.HorizontalPodAutoscaler)
			obj = r.hpa
		case "policy/v1 PodDisruptionBudget":
			r.pdb = new(policyv1.PodDisruptionBudget)
			obj = r.pdb
		case "monitoring.coreos.com/v1 ServiceMonitor":
			r.monitor = new(monitoringv1.ServiceMonitor)
			obj = r.monitor
		default:
			t.Fatalf("unexpected object %s %s", head.APIVersion, head.Kind)
		}
		if err := strict([]byte(doc), obj); err != nil {
			t.Errorf("%s does not decode strictly into the API type: %v\n%s", head.Kind, err, doc)
		}
	}
	if r.deploy == nil || r.config == nil || r.service == nil {
		t.Fatalf("missing Deployment, ConfigMap or Service in:\n%s", out)
	}
	return r
}

func TestLint(t *testing.T) {
	helm := tool(t, "HELM", "helm")
	if out, err := exec.Command(helm, "lint", "--strict", chart).CombinedOutput(); err != nil {
		t.Fatalf("helm lint: %v\n%s", err, out)
	}
}

// valueSets are the configurations rendered: the defaults, everything
// on, and a fixed replica count with an existing Secret.
var valueSets = map[string][]string{
	"defaults": nil,
	"everything": {
		"s3.root=s3://images/iiif", "s3.endpoint=http://minio:9000", "s3.accessKeyId=AK", "s3.secretAccessKey=SK",
		"redis.url=redis://redis:6379/0", "adminToken=0123456789abcdef0123",
		"cache.diskSizeMiB=10240", "cache.memoryMiB=512", "resources.memoryMiB=4096", "resources.cpu=4",
		"purge.urls={http://varnish-a/,http://varnish-b/}", "purge.fastlyService=SVC", "purge.fastlyToken=tok",
		"purge.cloudflareZone=ZONE", "purge.cloudflareToken=tok2", "serviceMonitor.enabled=true",
		"baseURL=https://images.example.org", "env.OTEL_EXPORTER_OTLP_ENDPOINT=http://otel:4318", "drainDelaySeconds=7",
	},
	"fixed": {"autoscaling.enabled=false", "podDisruptionBudget.enabled=false", "replicaCount=3", "existingSecret=mine", "resources.workers=3"},
}

func TestTemplate(t *testing.T) {
	helm := tool(t, "HELM", "helm")
	for name, sets := range valueSets {
		t.Run(name, func(t *testing.T) {
			r := render(t, helm, sets...)
			checkDeployment(t, r)
			cm := r.config.Data
			switch name {
			case "everything":
				if r.monitor == nil || r.monitor.Spec.Endpoints[0].Port != "http" || r.monitor.Spec.Endpoints[0].Path != "/metrics" {
					t.Errorf("ServiceMonitor: %+v", r.monitor)
				}
				if r.secret == nil || r.secret.StringData["AWS_SECRET_ACCESS_KEY"] != "SK" || r.secret.StringData["IIIFD_CACHE_REDIS"] != "redis://redis:6379/0" ||
					r.secret.StringData["IIIFD_PURGE_FASTLY_TOKEN"] != "tok" {
					t.Errorf("Secret: %+v", r.secret)
				}
				for k, want := range map[string]string{
					"IIIFD_ROOT": "s3://images/iiif", "AWS_ENDPOINT_URL": "http://minio:9000", "IIIFD_WORKERS": "8",
					"IIIFD_MEMORY_LIMIT": "2048MiB", "IIIFD_CACHE_MEMORY": "512MiB", "IIIFD_CACHE_DIR": "/var/cache/iiifd",
					"IIIFD_PURGE_URL": "http://varnish-a/,http://varnish-b/", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel:4318",
				} {
					if cm[k] != want {
						t.Errorf("ConfigMap %s = %q, want %q", k, cm[k], want)
					}
				}
				for _, k := range []string{"AWS_SECRET_ACCESS_KEY", "IIIFD_ADMIN_TOKEN", "IIIFD_CACHE_REDIS"} {
					if _, leaked := cm[k]; leaked {
						t.Errorf("%s is in the ConfigMap, not the Secret", k)
					}
				}
			case "fixed":
				if r.hpa != nil || r.pdb != nil || r.secret != nil {
					t.Error("HPA, PDB or Secret rendered though turned off")
				}
				if r.deploy.Spec.Replicas == nil || *r.deploy.Spec.Replicas != 3 || cm["IIIFD_WORKERS"] != "3" {
					t.Errorf("replicas %v, workers %q", r.deploy.Spec.Replicas, cm["IIIFD_WORKERS"])
				}
				if ref := r.deploy.Spec.Template.Spec.Containers[0].EnvFrom[1].SecretRef; ref == nil || ref.Name != "mine" {
					t.Errorf("existingSecret not used: %+v", ref)
				}
			case "defaults":
				if r.hpa == nil || r.pdb == nil || r.hpa.Spec.ScaleTargetRef.Name != r.deploy.Name || r.deploy.Spec.Replicas != nil {
					t.Error("defaults: want an HPA on the Deployment (and no fixed replicas) and a PDB")
				}
				if r.pdb != nil && r.pdb.Spec.Selector.MatchLabels["app.kubernetes.io/instance"] != "rel" {
					t.Errorf("PDB selector %v", r.pdb.Spec.Selector)
				}
			}
			if r.service.Spec.Ports[0].TargetPort.StrVal != "http" {
				t.Errorf("Service targets %v", r.service.Spec.Ports[0].TargetPort)
			}
			startWith(t, cm, r.deploy)
		})
	}
}

// checkDeployment checks the settings of the pod that must agree with
// each other and with iiifd.
func checkDeployment(t *testing.T, r rendered) {
	t.Helper()
	pod := r.deploy.Spec.Template.Spec
	c := pod.Containers[0]
	cm := r.config.Data
	port := c.Ports[0]
	if port.Name != "http" || ":"+strconv.Itoa(int(port.ContainerPort)) != cm["IIIFD_ADDR"] {
		t.Errorf("container port %+v, IIIFD_ADDR %q", port, cm["IIIFD_ADDR"])
	}
	for name, p := range map[string]*corev1.Probe{"/readyz": c.ReadinessProbe, "/healthz": c.LivenessProbe} {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != name || p.HTTPGet.Port.StrVal != "http" {
			t.Errorf("probe for %s: %+v", name, p)
		}
	}
	drain, err := time.ParseDuration(cm["IIIFD_DRAIN_DELAY"])
	if err != nil || c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil ||
		time.Duration(c.Lifecycle.PreStop.Sleep.Seconds)*time.Second != drain {
		t.Errorf("preStop %+v does not match IIIFD_DRAIN_DELAY %q", c.Lifecycle, cm["IIIFD_DRAIN_DELAY"])
	}
	shutdown, _ := time.ParseDuration(cm["IIIFD_SHUTDOWN_TIMEOUT"])
	if g := pod.TerminationGracePeriodSeconds; g == nil || time.Duration(*g)*time.Second < 2*drain+shutdown {
		t.Errorf("grace period %v shorter than preStop + drain + shutdown %v", g, 2*drain+shutdown)
	}
	lim := c.Resources.Limits[corev1.ResourceMemory]
	budget := mib(t, cm["IIIFD_MEMORY_LIMIT"]) + mib(t, cm["IIIFD_CACHE_MEMORY"])
	if lim.IsZero() || budget<<20 > lim.Value() {
		t.Errorf("memory limit %s below the work budget and memory tier (%d MiB)", lim.String(), budget)
	}
	if req := c.Resources.Requests[corev1.ResourceMemory]; req.Cmp(lim) != 0 {
		t.Errorf("memory request %s != limit %s", req.String(), lim.String())
	}
	sc := c.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Errorf("container security context %+v", sc)
	}
	if ps := pod.SecurityContext; ps == nil || ps.RunAsNonRoot == nil || !*ps.RunAsNonRoot || ps.RunAsUser == nil || *ps.RunAsUser == 0 {
		t.Errorf("pod security context %+v", ps)
	}
	var tmp bool
	for _, m := range c.VolumeMounts {
		tmp = tmp || m.MountPath == "/tmp"
		if m.MountPath == "/var/cache/iiifd" && cm["IIIFD_CACHE_DIR"] != m.MountPath {
			t.Errorf("cache volume without IIIFD_CACHE_DIR")
		}
	}
	if !tmp {
		t.Error("no writable /tmp under a read-only root file system")
	}
	sel := r.deploy.Spec.Selector.MatchLabels
	for k, v := range sel {
		if r.deploy.Spec.Template.Labels[k] != v || r.service.Spec.Selector[k] != v {
			t.Errorf("selector label %s=%s not on the pods or the Service", k, v)
		}
	}
}

func mib(t *testing.T, s string) int64 {
	n, err := strconv.ParseInt(strings.TrimSuffix(s, "MiB"), 10, 64)
	if err != nil {
		t.Errorf("%q is not N MiB", s)
	}
	return n
}

// startWith runs iiifd with the rendered ConfigMap as its environment (on
// a loopback port, the store and Redis left out: they are not here) and
// asks the probes' routes on the probes' port, so that a setting iiifd
// refuses or a probe path it does not serve fails here.
func startWith(t *testing.T, cm map[string]string, d *appsv1.Deployment) {
	t.Helper()
	bin := tool(t, "IIIFD_BIN", "iiifd")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	env := []string{"PATH=" + os.Getenv("PATH"), "TMPDIR=" + t.TempDir()}
	for k, v := range cm {
		switch k {
		case "IIIFD_ROOT", "AWS_ENDPOINT_URL", "OTEL_EXPORTER_OTLP_ENDPOINT", "IIIFD_PURGE_URL", "IIIFD_PURGE_FASTLY_SERVICE", "IIIFD_PURGE_CLOUDFLARE_ZONE":
			continue // services that are not here
		case "IIIFD_ADDR":
			v = addr
		case "IIIFD_CACHE_DIR":
			v = filepath.Join(t.TempDir(), "cache")
		}
		env = append(env, k+"="+v)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, d.Spec.Template.Spec.Containers[0].Args...)
	cmd.Env = env
	var logs bytes.Buffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); cmd.Wait() })
	c := d.Spec.Template.Spec.Containers[0]
	for _, p := range []*corev1.Probe{c.StartupProbe, c.ReadinessProbe, c.LivenessProbe} {
		url := "http://" + addr + p.HTTPGet.Path
		var status int
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if resp, err := http.Get(url); err == nil {
				resp.Body.Close()
				status = resp.StatusCode
				break
			}
		}
		if status != http.StatusOK {
			t.Errorf("probe %s: status %d\n%s", url, status, logs.String())
		}
	}
}

// TestValuesDocumented: every top-level value and every key of a
// top-level map in values.yaml has a comment (on its line or above it,
// or above its parent block).
func TestValuesDocumented(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(chart, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	key := regexp.MustCompile(`^([a-zA-Z][a-zA-Z0-9]*):`)
	for i, l := range lines {
		m := key.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		if i == 0 || !strings.HasPrefix(strings.TrimSpace(lines[i-1]), "#") {
			t.Errorf("values.yaml: %s has no comment above it", m[1])
		}
	}
	readme, err := os.ReadFile(filepath.Join(chart, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var values map[string]any
	if err := yaml.Unmarshal(b, &values); err != nil {
		t.Fatal(err)
	}
	for k := range values {
		if !strings.Contains(string(readme), "`"+k) {
			t.Errorf("chart README does not mention %s", k)
		}
	}
}
