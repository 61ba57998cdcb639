// The JavaScript half of iiifd's engine in the browser, shared by the
// Service Worker (iiif-sw.js) and the page module (iiif-engine.mjs).
// It runs the edge worker's WebAssembly module (cmd/iiifd-edge: the IIIF
// host and the pure-Go engine) with a store that reads the site's files
// by URL and a cache in Cache Storage, and answers one request at a time
// (renders are serialized so that memory stays within one render's
// bounds, the per-format limits). A classic script, so that a classic
// Service Worker can importScripts it; it defines globalThis.IIIFHost.
(function () {
  'use strict';

  class StoreError {
    constructor(status, message) {
      this.status = status;
      this.message = message;
    }
  }

  // The answer of an engine that cannot answer: the status and reason,
  // as the server writes its errors.
  function failure(status, reason) {
    const text = { 500: 'Internal Server Error', 503: 'Service Unavailable', 502: 'Bad Gateway', 404: 'Not Found' }[status] || 'Error';
    return new Response(`${status} ${text}: ${reason}\n`, {
      status,
      headers: { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store', 'Access-Control-Allow-Origin': '*' },
    });
  }

  function facts(r, size) {
    const lm = Date.parse(r.headers.get('Last-Modified') || '');
    const etag = r.headers.get('ETag');
    return { size, version: etag || `${size}-${isNaN(lm) ? 0 : lm}`, modTime: isNaN(lm) ? 0 : lm };
  }

  // fetchStore reads objects by URL (urlOf maps a key to its URL). When
  // keep is a Cache (Cache Storage), whole objects read from the
  // network are kept there and read from it when the network fails: the
  // tiles of regions seen stay available offline.
  function fetchStore(urlOf, keep) {
    async function request(key, headers) {
      const url = urlOf(key);
      if (!url) throw new StoreError(404, 'not found');
      let r;
      try {
        r = await fetch(url, { headers, redirect: 'follow' });
      } catch (e) {
        const hit = keep && !headers.Range ? await keep.cache().then((c) => c.match(url)).catch(() => undefined) : undefined;
        if (hit) return hit;
        throw new StoreError(504, 'the site could not be reached: ' + e);
      }
      if (r.status === 404 || r.status === 410) {
        await r.body?.cancel();
        throw new StoreError(404, 'not found');
      }
      if (r.status !== 200 && r.status !== 206) {
        await r.body?.cancel();
        throw new StoreError(502, 'the site answered ' + r.status);
      }
      if (keep && r.status === 200 && !headers.Range) keep.put(url, r.clone());
      return r;
    }
    return {
      async open(key, head) {
        const r = await request(key, { Range: `bytes=0-${head - 1}` });
        const b = new Uint8Array(await r.arrayBuffer());
        if (r.status === 200) return { ...facts(r, b.length), body: b.subarray(0, head) };
        const m = /\/(\d+)$/.exec(r.headers.get('Content-Range') || '');
        if (!m) throw new StoreError(502, 'a partial answer without the size');
        return { ...facts(r, Number(m[1])), body: b };
      },
      async readRange(key, version, off, n) {
        const r = await request(key, { Range: `bytes=${off}-${off + n - 1}` });
        const b = new Uint8Array(await r.arrayBuffer());
        return r.status === 200 ? b.subarray(off, off + n) : b;
      },
      async get(key, max) {
        const r = await request(key, {});
        const b = new Uint8Array(await r.arrayBuffer());
        if (b.length > max) throw new StoreError(502, 'object larger than expected');
        return { ...facts(r, b.length), body: b };
      },
    };
  }

  // boundedCache is a Cache Storage cache of at most max entries; the
  // oldest go first (a cache lists its keys in insertion order).
  function boundedCache(name, max) {
    let opened = null;
    let puts = 0;
    const cache = () => (opened ||= caches.open(name));
    async function trim(c) {
      const keys = await c.keys();
      for (let i = 0; i < keys.length - max; i++) await c.delete(keys[i]);
    }
    return {
      cache,
      put(url, response) {
        cache()
          .then(async (c) => {
            await c.put(url, response);
            if (++puts % 16 === 0) await trim(c);
          })
          .catch(() => {}); // a full quota is a miss later, not a failure now
      },
    };
  }

  // rendered keeps the engine's outputs by their entity tags.
  function renderedCache(base, keep) {
    const url = (key) => base + '__iiifd-rendered/' + encodeURIComponent(key);
    return {
      async cacheGet(key) {
        const r = await keep.cache().then((c) => c.match(url(key)));
        if (!r) return null;
        return { body: new Uint8Array(await r.arrayBuffer()), type: r.headers.get('Content-Type') || '' };
      },
      cachePut(key, body, type) {
        keep.put(url(key), new Response(body, { headers: { 'Content-Type': type } }));
      },
    };
  }

  // Engine runs one instance of the WebAssembly module and answers
  // requests through it, one at a time.
  class Engine {
    constructor({ wasmURL, env, store, cache }) {
      this.wasmURL = wasmURL;
      this.env = env;
      this.store = store;
      this.cache = cache;
      this.started = null;
      this.queue = Promise.resolve();
      // What the worker reports when asked (iiif-sw.js): requests served,
      // and the most that ran in the engine at once (1, by the queue).
      this.stats = { served: 0, active: 0, maxActive: 0 };
    }

    start() {
      if (this.started) return this.started;
      this.started = (async () => {
        if (typeof Go !== 'function') throw new Error("Go's wasm_exec.js is not loaded");
        const res = await fetch(this.wasmURL);
        if (!res.ok) throw new Error(`the engine (${this.wasmURL}) could not be loaded: ${res.status}`);
        const go = new Go();
        const { instance } = await WebAssembly.instantiate(await res.arrayBuffer(), go.importObject);
        const ready = new Promise((resolve, reject) => {
          const store = this.store;
          const cache = this.cache;
          globalThis.__iiifdHost = {
            env: this.env,
            open: (k, h) => store.open(k, h),
            readRange: (k, v, o, n) => store.readRange(k, v, o, n),
            get: (k, m) => store.get(k, m),
            cacheGet: (k) => (cache ? cache.cacheGet(k).catch(() => null) : Promise.resolve(null)),
            cachePut: (k, b, t) => { if (cache) cache.cachePut(k, b, t); },
            ready: (err) => (err ? reject(new Error(err)) : resolve()),
          };
        });
        // The module never returns; if it stops, the next request starts
        // a new one.
        go.run(instance).then(() => { this.started = null; }, () => { this.started = null; });
        await ready;
        return globalThis.__iiifdServe;
      })();
      this.started.catch(() => { this.started = null; });
      return this.started;
    }

    // serve answers a request whose path starts at /iiif/. It never
    // rejects: a failure of the engine is a 500 or 503 that says why.
    serve({ method = 'GET', path, origin, headers = new Headers() }) {
      const run = async () => {
        const st = this.stats;
        st.active++;
        st.maxActive = Math.max(st.maxActive, st.active);
        try {
          return await this.answer(method, path, origin, headers);
        } finally {
          st.active--;
          st.served++;
        }
      };
      const answer = this.queue.then(run, run);
      this.queue = answer.catch(() => {});
      return answer;
    }

    async answer(method, path, origin, headers) {
      let fn;
      try {
        fn = await this.start();
      } catch (e) {
        return failure(503, 'the image engine could not start: ' + e.message);
      }
      try {
        const r = await fn({ method, path, origin, headers });
        return new Response(method === 'HEAD' || r.status === 204 || r.status === 304 ? null : r.body || null, {
          status: r.status,
          headers: headerPairs(r.headers),
        });
      } catch (e) {
        this.started = null;
        return failure(500, 'the image engine failed: ' + (e && e.message ? e.message : e));
      }
    }
  }

  // headerPairs turns the engine's headers (names and values, each ended
  // by a NUL) into [name, value] pairs, in order.
  function headerPairs(s) {
    const parts = s.split('\0');
    const out = [];
    for (let i = 0; i + 1 < parts.length; i += 2) out.push([parts[i], parts[i + 1]]);
    return out;
  }

  globalThis.IIIFHost = { Engine, fetchStore, boundedCache, renderedCache, failure, StoreError };
})();
