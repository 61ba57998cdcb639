//go:build js && wasm

// Command iiifd-edge is the IIIF Image API as a WebAssembly module for a
// Workers runtime (workerd, Cloudflare Workers). worker.mjs instantiates
// it and sets globalThis.__iiifdHost, the JavaScript half: the worker's
// variables (env), the store (origin fetch with Range, or the R2 binding)
// and the Cache API. main reads the settings, builds the edge host with
// the pure-Go engine, and sets globalThis.__iiifdServe, which worker.mjs
// calls for each request and which returns a promise of the response.
// Each request runs on its own goroutine; calls into JavaScript that
// return promises are awaited there, while the event loop runs.
package main

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"time"

	"syscall/js"

	"github.com/iiifd/iiifd/internal/edge"
	"github.com/iiifd/iiifd/internal/engine"
	"github.com/iiifd/iiifd/internal/fault"
)

// requestTimeout bounds one request; the origin's own timeout, per fetch,
// is shorter (worker.mjs), so that a slow origin is a 504.
const requestTimeout = 50 * time.Second

func main() {
	// An isolate has 128 MB. The collector runs when the heap has grown
	// by half rather than doubled, and hard at the soft limit, so that
	// the garbage of one large render is reused by the next rather than
	// grown past.
	debug.SetGCPercent(50)
	debug.SetMemoryLimit(96 << 20)
	host := js.Global().Get("__iiifdHost")
	env := host.Get("env")
	get := func(name string) string {
		v := env.Get(name)
		if v.Type() != js.TypeString {
			return ""
		}
		return v.String()
	}
	set, err := edge.ParseSettings(get)
	if err != nil {
		host.Call("ready", "iiifd-edge: "+err.Error())
		select {}
	}
	h := edge.New(set, jsStore{host}, jsCache{host}, newEngine(engine.EncodeOptions{JPEGQuality: set.JPEGQuality}, set.Limits.MaxSourcePixels))
	js.Global().Set("__iiifdServe", js.FuncOf(func(this js.Value, args []js.Value) any {
		req := args[0]
		return newPromise(func() (js.Value, error) {
			ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
			defer cancel()
			headers := req.Get("headers")
			resp := h.Serve(ctx, edge.Request{
				Method: req.Get("method").String(),
				Path:   req.Get("path").String(),
				Origin: req.Get("origin").String(),
				Header: func(k string) string {
					v := headers.Call("get", k)
					if v.Type() != js.TypeString {
						return ""
					}
					return v.String()
				},
			})
			return toJS(resp), nil
		})
	}))
	host.Call("ready", js.Null())
	select {}
}

// toJS is the response as worker.mjs reads it: {status, headers, body},
// the headers one string of names and values each ended by a NUL (which
// HTTP headers cannot hold). One string rather than an array of pairs:
// every JavaScript value Go holds costs a reference with a finalizer,
// and the runtime's list of finalizers grows slower to insert into the
// more there are, which made an answer without pixels cost a millisecond.
func toJS(r *edge.Response) js.Value {
	o := js.Global().Get("Object").New()
	o.Set("status", r.Status)
	var hs strings.Builder
	for _, h := range r.Header {
		hs.WriteString(h[0])
		hs.WriteByte(0)
		hs.WriteString(h[1])
		hs.WriteByte(0)
	}
	o.Set("headers", hs.String())
	if r.Body != nil {
		b := js.Global().Get("Uint8Array").New(len(r.Body))
		js.CopyBytesToJS(b, r.Body)
		o.Set("body", b)
	}
	return o
}

// newPromise runs f on a goroutine and returns a promise of its result.
func newPromise(f func() (js.Value, error)) js.Value {
	var exec js.Func
	exec = js.FuncOf(func(this js.Value, args []js.Value) any {
		resolve, reject := args[0], args[1]
		exec.Release()
		go func() {
			v, err := f()
			if err != nil {
				reject.Invoke(js.Global().Get("Error").New(err.Error()))
				return
			}
			resolve.Invoke(v)
		}()
		return nil
	})
	return js.Global().Get("Promise").New(exec)
}

// await waits for a JavaScript promise. A rejection is the store's
// failure: an object {status, message}, mapped to ErrNotFound (404),
// a gateway timeout (504) or a bad gateway (anything else).
func await(ctx context.Context, p js.Value) (js.Value, error) {
	type result struct {
		v   js.Value
		err error
	}
	ch := make(chan result, 1)
	var then, catch js.Func
	then = js.FuncOf(func(this js.Value, args []js.Value) any {
		then.Release()
		catch.Release()
		ch <- result{v: args[0]}
		return nil
	})
	catch = js.FuncOf(func(this js.Value, args []js.Value) any {
		then.Release()
		catch.Release()
		ch <- result{err: jsError(args[0])}
		return nil
	})
	p.Call("then", then, catch)
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
		return js.Undefined(), ctx.Err()
	}
}

func jsError(v js.Value) error {
	status, msg := 502, "the source image could not be read"
	detail := ""
	if v.Type() == js.TypeObject {
		if s := v.Get("status"); s.Type() == js.TypeNumber {
			status = s.Int()
		}
		if m := v.Get("message"); m.Type() == js.TypeString {
			detail = m.String()
		}
	}
	cause := errors.New("store: " + detail)
	switch status {
	case 404:
		return fmt.Errorf("%w: %s", edge.ErrNotFound, detail)
	case 504:
		return fault.Wrap(fault.GatewayTimeout, cause, "the source image could not be read in time")
	}
	return fault.Wrap(fault.BadGateway, cause, "%s", msg)
}

func bytesOf(v js.Value) []byte {
	if v.Type() != js.TypeObject {
		return nil
	}
	b := make([]byte, v.Get("length").Int())
	js.CopyBytesToGo(b, v)
	return b
}

// jsStore is the store of worker.mjs: open, readRange and get return
// promises of {size, version, modTime, body}.
type jsStore struct{ host js.Value }

func object(key string, v js.Value) edge.Object {
	o := edge.Object{Key: key, Size: int64(v.Get("size").Float()), Version: v.Get("version").String()}
	if mt := v.Get("modTime"); mt.Type() == js.TypeNumber && mt.Float() > 0 {
		o.ModTime = time.UnixMilli(int64(mt.Float())).UTC()
	}
	return o
}

func (s jsStore) Open(ctx context.Context, key string, head int) (edge.Object, error) {
	v, err := await(ctx, s.host.Call("open", key, head))
	if err != nil {
		return edge.Object{}, err
	}
	o := object(key, v)
	o.Head = bytesOf(v.Get("body"))
	return o, nil
}

func (s jsStore) ReadRange(ctx context.Context, obj edge.Object, off, n int64) ([]byte, error) {
	v, err := await(ctx, s.host.Call("readRange", obj.Key, obj.Version, float64(off), float64(n)))
	if err != nil {
		return nil, err
	}
	return bytesOf(v), nil
}

func (s jsStore) Get(ctx context.Context, key string, max int64) ([]byte, edge.Object, error) {
	v, err := await(ctx, s.host.Call("get", key, float64(max)))
	if err != nil {
		return nil, edge.Object{}, err
	}
	return bytesOf(v.Get("body")), object(key, v), nil
}

// jsCache is the Cache API through worker.mjs; its failures are misses.
type jsCache struct{ host js.Value }

func (c jsCache) Get(ctx context.Context, key string) ([]byte, string, bool) {
	v, err := await(ctx, c.host.Call("cacheGet", key))
	if err != nil || v.Type() != js.TypeObject {
		return nil, "", false
	}
	return bytesOf(v.Get("body")), v.Get("type").String(), true
}

func (c jsCache) Put(ctx context.Context, key string, body []byte, contentType string) {
	b := js.Global().Get("Uint8Array").New(len(body))
	js.CopyBytesToJS(b, body)
	c.host.Call("cachePut", key, b, contentType)
}
