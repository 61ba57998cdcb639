// The iiifd edge worker: the IIIF Image API served by iiifd's engine
// compiled to WebAssembly (cmd/iiifd-edge). This module is the
// JavaScript half: it instantiates the Go module on the first request,
// gives it the store (an HTTP origin read with Range requests, or the R2
// bucket binding IMAGES) and the Cache API, and turns its answers into
// Responses. Built into dist/edge/ by `make edge`.
import "./wasm_exec.js";
import wasm from "./iiifd-edge.wasm";

// The longest one read of the store may take before the request is a
// 504 (ORIGIN_TIMEOUT, seconds).
const defaultTimeout = 10;
// An origin that ignores Range and sends a whole object larger than this
// is refused rather than read into the isolate.
const maxWhole = 64 << 20;

let ready = null;
// Cache puts still running: each request keeps its worker alive until
// the puts made while it was served are done (ctx.waitUntil).
const pendingPuts = new Set();
let memory = null;
let exited = false;

class StoreError {
  constructor(status, message) {
    this.status = status;
    this.message = message;
  }
}

function timeoutOf(env) {
  const s = Number(env.ORIGIN_TIMEOUT || defaultTimeout);
  return (s > 0 ? s : defaultTimeout) * 1000;
}

function withTimeout(env, promise) {
  const ms = timeoutOf(env);
  let timer;
  const t = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new StoreError(504, `no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, t]).finally(() => clearTimeout(timer));
}

// originURL makes the URL of a key under ORIGIN: each segment encoded,
// so that a key never leaves the origin's prefix (the Go side has
// already refused "..", empty and hidden segments).
function originURL(env, key) {
  return env.ORIGIN.replace(/\/+$/, "") + "/" + key.split("/").map(encodeURIComponent).join("/");
}

async function originFetch(env, key, headers) {
  let r;
  try {
    r = await fetch(originURL(env, key), {
      headers,
      redirect: "manual",
      signal: AbortSignal.timeout(timeoutOf(env)),
    });
  } catch (e) {
    if (e && (e.name === "TimeoutError" || e.name === "AbortError")) {
      throw new StoreError(504, "origin did not answer in time");
    }
    throw new StoreError(502, "origin unreachable: " + e);
  }
  if (r.status === 404 || r.status === 410) {
    await r.body?.cancel();
    throw new StoreError(404, "not found");
  }
  if (r.status >= 300 && r.status < 400) {
    await r.body?.cancel();
    throw new StoreError(502, "origin answered with a redirect, which is not followed");
  }
  if (r.status !== 200 && r.status !== 206 && r.status !== 416) {
    await r.body?.cancel();
    throw new StoreError(502, "origin answered " + r.status);
  }
  return r;
}

function facts(r, size) {
  const lm = Date.parse(r.headers.get("Last-Modified") || "");
  const etag = r.headers.get("ETag");
  return {
    size,
    version: etag || `${size}-${isNaN(lm) ? 0 : lm}`,
    modTime: isNaN(lm) ? 0 : lm,
  };
}

async function body(r, env) {
  try {
    return new Uint8Array(await withTimeout(env, r.arrayBuffer()));
  } catch (e) {
    if (e instanceof StoreError) throw e;
    throw new StoreError(502, "origin's answer broke off: " + e);
  }
}

function originStore(env) {
  return {
    async open(key, head) {
      const r = await originFetch(env, key, { Range: `bytes=0-${head - 1}` });
      if (r.status === 416) {
        await r.body?.cancel();
        return { ...facts(r, 0), body: new Uint8Array(0) };
      }
      if (r.status === 200) {
        const n = Number(r.headers.get("Content-Length") || -1);
        if (n > maxWhole) {
          await r.body?.cancel();
          throw new StoreError(502, "origin does not answer range requests");
        }
        const b = await body(r, env);
        return { ...facts(r, b.length), body: b };
      }
      const m = /\/(\d+)$/.exec(r.headers.get("Content-Range") || "");
      if (!m) {
        await r.body?.cancel();
        throw new StoreError(502, "origin's partial answer has no size");
      }
      return { ...facts(r, Number(m[1])), body: await body(r, env) };
    },
    async readRange(key, version, off, n) {
      const r = await originFetch(env, key, { Range: `bytes=${off}-${off + n - 1}` });
      if (r.status !== 206 && r.status !== 200) {
        await r.body?.cancel();
        throw new StoreError(502, "origin refused a range");
      }
      const now = facts(r, 0);
      if (r.headers.get("ETag") && now.version !== version) {
        await r.body?.cancel();
        throw new StoreError(502, "the object changed while it was read");
      }
      const b = await body(r, env);
      return r.status === 200 ? b.subarray(off, off + n) : b;
    },
    async get(key, max) {
      const r = await originFetch(env, key, {});
      const n = Number(r.headers.get("Content-Length") || -1);
      if (n > max) {
        await r.body?.cancel();
        throw new StoreError(502, "object larger than expected");
      }
      const b = await body(r, env);
      if (b.length > max) throw new StoreError(502, "object larger than expected");
      return { ...facts(r, b.length), body: b };
    },
  };
}

function r2Store(env) {
  const bucket = env.IMAGES;
  const o = (obj, size) => ({
    size,
    version: obj.etag,
    modTime: obj.uploaded ? obj.uploaded.getTime() : 0,
  });
  const read = async (key, opts) => {
    let obj;
    try {
      obj = await withTimeout(env, bucket.get(key, opts));
    } catch (e) {
      if (e instanceof StoreError) throw e;
      throw new StoreError(502, "bucket: " + e);
    }
    if (obj === null) throw new StoreError(404, "not found");
    return obj;
  };
  return {
    async open(key, head) {
      const obj = await read(key, { range: { offset: 0, length: head } });
      return { ...o(obj, obj.size), body: new Uint8Array(await withTimeout(env, obj.arrayBuffer())) };
    },
    async readRange(key, version, off, n) {
      const obj = await read(key, { range: { offset: off, length: n }, onlyIf: { etagMatches: version } });
      if (!obj.body) throw new StoreError(502, "the object changed while it was read");
      return new Uint8Array(await withTimeout(env, obj.arrayBuffer()));
    },
    async get(key, max) {
      const obj = await read(key, {});
      if (obj.size > max) throw new StoreError(502, "object larger than expected");
      return { ...o(obj, obj.size), body: new Uint8Array(await withTimeout(env, obj.arrayBuffer())) };
    },
  };
}

// The Cache API, keyed by the response's ETag; its failures are misses.
function cacheOf() {
  const url = (key) => "https://cache.iiifd.invalid/" + encodeURIComponent(key);
  return {
    async cacheGet(key) {
      try {
        const r = await caches.default.match(url(key));
        if (!r) return null;
        return { body: new Uint8Array(await r.arrayBuffer()), type: r.headers.get("Content-Type") || "" };
      } catch {
        return null;
      }
    },
    cachePut(key, body, type) {
      try {
        const r = new Response(body, {
          headers: { "Content-Type": type, "Cache-Control": "public, max-age=31536000" },
        });
        const p = caches.default.put(url(key), r).catch(() => {});
        pendingPuts.add(p);
        p.finally(() => pendingPuts.delete(p));
      } catch {}
    },
  };
}

// start instantiates the Go module once per isolate; the host object it
// reads is per request (the store and cache are rebound on each call).
function start(env) {
  if (ready) return ready;
  ready = (async () => {
    const go = new Go();
    const inst = await WebAssembly.instantiate(wasm, go.importObject);
    memory = inst.exports.mem;
    exited = false;
    const up = new Promise((resolve, reject) => {
      globalThis.__iiifdHost = {
        env,
        ...(env.IMAGES ? r2Store(env) : originStore(env)),
        ...cacheOf(),
        ready(err) {
          if (err) reject(new Error(err));
          else resolve();
        },
      };
    });
    go.run(inst).finally(() => {
      exited = true;
      ready = null;
    });
    await up;
  })();
  ready.catch(() => {
    ready = null;
  });
  return ready;
}

// headerPairs turns the module's headers (names and values, each ended
// by a NUL) into [name, value] pairs, in order.
function headerPairs(s) {
  const parts = s.split("\0");
  const out = [];
  for (let i = 0; i + 1 < parts.length; i += 2) out.push([parts[i], parts[i + 1]]);
  return out;
}

const cors = {
  "Access-Control-Allow-Origin": "*",
  "Access-Control-Expose-Headers": "Link, ETag, Last-Modified, X-Request-Id, X-Cache, Content-Length",
};

function failure(status, msg) {
  return new Response(`${status} ${status === 503 ? "Service Unavailable" : "Internal Server Error"}: ${msg}\n`, {
    status,
    headers: { ...cors, "Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store" },
  });
}

export default {
  async fetch(request, env, ctx) {
    const url = new URL(request.url);
    if (url.pathname === "/_edge/memory") {
      // The WebAssembly memory never shrinks: its size is the peak of
      // every request this isolate served.
      return Response.json({ wasmMemoryBytes: memory ? memory.buffer.byteLength : 0 }, { headers: { "Cache-Control": "no-store" } });
    }
    try {
      await start(env);
    } catch (e) {
      return failure(500, "the worker is misconfigured: " + e.message);
    }
    if (!env.IMAGES && !env.ORIGIN) {
      return failure(500, "the worker is misconfigured: set ORIGIN or bind an R2 bucket as IMAGES");
    }
    let out;
    try {
      out = await globalThis.__iiifdServe({
        method: request.method,
        path: url.pathname,
        origin: url.origin,
        headers: request.headers,
      });
    } catch (e) {
      if (exited) ready = null;
      return failure(500, "internal server error");
    } finally {
      if (pendingPuts.size) ctx.waitUntil(Promise.allSettled([...pendingPuts]));
    }
    const body = request.method === "HEAD" || out.status === 204 || out.status === 304 ? null : out.body ?? null;
    return new Response(body, { status: out.status, headers: headerPairs(out.headers) });
  },
};
