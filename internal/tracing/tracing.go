// Package tracing exports OpenTelemetry traces of the pipeline: a span per
// request and per stage, sent over OTLP when the standard OTEL_* environment
// asks for it, and nearly free when it does not.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync/atomic"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// TracerName is the instrumentation scope of iiifd's spans.
const TracerName = "github.com/iiifd/iiifd"

// Start starts a span named after a pipeline stage (resolve, source,
// plan, cache.lookup, admit, decode, transform, encode, ...) as a child
// of the span in ctx. With tracing off it costs a few nanoseconds: the
// global provider is then OpenTelemetry's no-op one.
func Start(ctx context.Context, stage string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	if !on.Load() {
		return ctx, noSpan
	}
	if len(attrs) == 0 {
		return tracer.Start(ctx, stage)
	}
	return tracer.Start(ctx, stage, trace.WithAttributes(attrs...))
}

// on says Setup installed an exporting provider. Without one, stages make
// no span at all (not even a no-op one in a new context), which keeps the
// hot path of cache hits free of allocations for tracing.
var on atomic.Bool

// On reports whether spans are being exported.
func On() bool { return on.Load() }

// noSpan is the span of every stage when tracing is off.
var noSpan trace.Span = noop.Span{}

// tracer follows the global provider: spans go to the exporter Setup
// installs, even from tracers taken before it ran.
var tracer = otel.Tracer(TracerName)

// End ends span, recording err (when not nil) as its status.
func End(span trace.Span, err error) {
	if err != nil && span.IsRecording() {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// Enabled reports whether the standard OpenTelemetry environment
// asks for traces to be exported: an OTLP endpoint is set and neither
// OTEL_SDK_DISABLED nor OTEL_TRACES_EXPORTER=none turns them off.
func Enabled(getenv func(string) string) bool {
	if strings.EqualFold(getenv("OTEL_SDK_DISABLED"), "true") {
		return false
	}
	if e := strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")); e != "" && e != "otlp" {
		return false
	}
	return getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// Setup installs a global tracer provider exporting over OTLP when
// the standard environment variables ask for it (see Enabled), and
// the W3C trace-context propagator, so that spans join the traces of
// callers (a CDN, a viewer's backend). Everything else follows the
// OpenTelemetry conventions, read by the SDK: OTEL_EXPORTER_OTLP_PROTOCOL
// (http/protobuf, the default, or grpc), OTEL_EXPORTER_OTLP_HEADERS,
// OTEL_SERVICE_NAME (default iiifd), OTEL_RESOURCE_ATTRIBUTES,
// OTEL_TRACES_SAMPLER and its argument. The returned function flushes
// spans still buffered and stops the exporter; it is a no-op when tracing
// is off.
func Setup(ctx context.Context, version string) (shutdown func(context.Context) error, enabled bool, err error) {
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	if !Enabled(os.Getenv) {
		return func(context.Context) error { return nil }, false, nil
	}
	proto := os.Getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if proto == "" {
		proto = os.Getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	var exp sdktrace.SpanExporter
	switch proto {
	case "", "http/protobuf":
		exp, err = otlptracehttp.New(ctx)
	case "grpc":
		exp, err = otlptracegrpc.New(ctx)
	default:
		return nil, false, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL=%q: iiifd exports traces over http/protobuf or grpc", proto)
	}
	if err != nil {
		return nil, false, fmt.Errorf("OTLP trace exporter: %w", err)
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(semconv.ServiceName("iiifd"), semconv.ServiceVersion(version)),
		resource.WithFromEnv(), resource.WithHost(), resource.WithProcessPID())
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, false, fmt.Errorf("OpenTelemetry resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	otel.SetTracerProvider(tp)
	on.Store(true)
	return func(ctx context.Context) error {
		on.Store(false)
		return tp.Shutdown(ctx)
	}, true, nil
}

// StartRequest starts the server span of an HTTP request, continuing the
// trace of the caller when the request carries a W3C traceparent. Its
// name is the method and a route name, never the identifier.
func StartRequest(r *http.Request, route, requestID string) (context.Context, trace.Span) {
	if !on.Load() && len(r.Header["Traceparent"]) == 0 {
		return r.Context(), noSpan
	}
	ctx := otel.GetTextMapPropagator().Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	return tracer.Start(ctx, r.Method+" "+route,
		trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(
			semconv.HTTPRequestMethodKey.String(r.Method),
			semconv.URLPath(r.URL.EscapedPath()),
			semconv.HTTPRoute(route),
			attribute.String("iiifd.request_id", requestID),
		))
}

// EndRequest ends a server span with the response's facts; 5xx answers
// mark the span as failed.
func EndRequest(span trace.Span, status int, bytes int64, cacheResult string) {
	if span.IsRecording() {
		span.SetAttributes(
			semconv.HTTPResponseStatusCode(status),
			semconv.HTTPResponseBodySize(int(bytes)),
			attribute.String("iiifd.cache", cacheResult))
		if status >= 500 {
			span.SetStatus(codes.Error, http.StatusText(status))
		}
	}
	span.End()
}
