package main

import (
	"context"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// otlpReceiver is a real OTLP/HTTP trace endpoint on loopback: it decodes
// what the exporter sends, as a collector would.
type otlpReceiver struct {
	mu    sync.Mutex
	spans []*tracepb.Span
	res   map[string]string
}

func (o *otlpReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
		http.Error(w, "unexpected "+r.URL.Path+" "+r.Header.Get("Content-Type"), http.StatusBadRequest)
		return
	}
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	var req coltrace.ExportTraceServiceRequest
	if err := proto.Unmarshal(b, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	o.mu.Lock()
	for _, rs := range req.ResourceSpans {
		if o.res == nil {
			o.res = map[string]string{}
		}
		for _, kv := range rs.GetResource().GetAttributes() {
			o.res[kv.Key] = kv.GetValue().GetStringValue()
		}
		for _, ss := range rs.ScopeSpans {
			o.spans = append(o.spans, ss.Spans...)
		}
	}
	o.mu.Unlock()
	out, _ := proto.Marshal(&coltrace.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.Write(out)
}

// TestTracesOverOTLP serves requests with OTEL_EXPORTER_OTLP_ENDPOINT set
// and checks that the spans of every pipeline stage reach a real OTLP
// receiver, joined to the caller's trace and to each other.
func TestTracesOverOTLP(t *testing.T) {
	recv := &otlpReceiver{}
	collector := httptest.NewServer(recv)
	defer collector.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.URL)
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
	t.Setenv("OTEL_SERVICE_NAME", "iiifd-test")

	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan net.Addr, 1)
	done := make(chan int, 1)
	go func() {
		done <- serve(ctx, []string{"--addr", "127.0.0.1:0", "--drain-delay", "0s"}, io.Discard, io.Discard, func(a net.Addr) { addrc <- a })
	}()
	var base string
	select {
	case a := <-addrc:
		base = "http://" + a.String()
	case code := <-done:
		t.Fatalf("serve exited with %d", code)
	case <-time.After(30 * time.Second):
		t.Fatal("server did not start")
	}
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	for _, path := range []string{
		"/iiif/3/julia.jpg/info.json",
		"/iiif/3/julia.jpg/0,0,200,100/100,/90/gray.png",
	} {
		req, _ := http.NewRequest("GET", base+path, nil)
		req.Header.Set("traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d", path, resp.StatusCode)
		}
	}
	cancel() // shutdown flushes the spans still buffered
	if code := <-done; code != 0 {
		t.Fatalf("serve exited with %d", code)
	}

	recv.mu.Lock()
	defer recv.mu.Unlock()
	if got := recv.res["service.name"]; got != "iiifd-test" {
		t.Errorf("service.name = %q, want the OTEL_SERVICE_NAME", got)
	}
	byID := map[string]*tracepb.Span{}
	names := map[string]int{}
	for _, s := range recv.spans {
		byID[hex.EncodeToString(s.SpanId)] = s
		names[s.Name]++
		if got := hex.EncodeToString(s.TraceId); got != traceID {
			t.Errorf("span %s in trace %s, want the caller's %s", s.Name, got, traceID)
		}
	}
	t.Logf("spans: %v", names)
	for _, want := range []string{"GET info", "GET image", "resolve", "source.header", "plan", "cache.lookup", "admit", "decode", "transform", "encode", "cache.store"} {
		if names[want] == 0 {
			t.Errorf("no %q span; got %v", want, names)
		}
	}
	// Every stage span hangs below its request's server span.
	for _, s := range recv.spans {
		if s.Kind == tracepb.Span_SPAN_KIND_SERVER {
			if got := hex.EncodeToString(s.ParentSpanId); got != "00f067aa0ba902b7" {
				t.Errorf("server span %s has parent %s, want the caller's", s.Name, got)
			}
			continue
		}
		root := s
		for i := 0; i < 10 && root.Kind != tracepb.Span_SPAN_KIND_SERVER; i++ {
			p := byID[hex.EncodeToString(root.ParentSpanId)]
			if p == nil {
				break
			}
			root = p
		}
		if root.Kind != tracepb.Span_SPAN_KIND_SERVER {
			t.Errorf("span %s does not lead up to a server span (stopped at %s, parent %x)", s.Name, root.Name, root.ParentSpanId)
		}
	}
}
