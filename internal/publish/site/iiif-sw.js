// iiif-sw.js: the Service Worker of a site written by `iiifd publish`.
// For the pages of the site it answers every IIIF Image API request
// under iiif/ from the stored level-0 tiles: stored tiles come from the
// network as they are; everything else (regions, sizes, rotations,
// qualities, formats) is rendered by iiifd's engine compiled to
// WebAssembly, one request at a time, and kept in Cache Storage
// (bounded). info.json is the engine's own, level 2 with the per-format
// limits. Manifests get absolute ids and a level-2 service. What was
// seen stays available offline.
importScripts('wasm_exec.js', 'iiif-host.js');

const { Engine, fetchStore, boundedCache, renderedCache, failure } = self.IIIFHost;

const scope = self.registration.scope; // ends with "/"
const scopePath = new URL(scope).pathname;

// Bounds of Cache Storage: stored tiles and documents read, rendered
// answers, and the site's pages and scripts.
const tiles = boundedCache('iiifd-tiles', 4000);
const rendered = boundedCache('iiifd-rendered', 500);
const site = boundedCache('iiifd-site', 200);

const shell = ['./', 'index.html', 'viewer.html', 'sw-register.js', 'iiif-host.js', 'wasm_exec.js', 'iiifd-edge.wasm',
  'assets/site.css', 'assets/viewer.js', 'assets/osd/openseadragon.min.js'];

const engine = new Engine({
  wasmURL: new URL('iiifd-edge.wasm', scope).href,
  // The edge's limits (FORMAT_LIMITS jpg=4096x4096,png=3584x3584 and
  // MAX_AREA 4096² by default), with the JPEG limit as maxWidth and
  // maxHeight too, so that info.json advertises what a render may be.
  env: { BASE_URL: scope.replace(/\/$/, ''), MAX_WIDTH: '4096', MAX_HEIGHT: '4096' },
  store: fetchStore((key) => new URL('iiif/3/' + key.split('/').map(encodeURIComponent).join('/').replace(/%2C/g, ','), scope).href, tiles),
  cache: renderedCache(scope, rendered),
});

// Unhandled rejections are bugs of this worker: logged, and counted for
// the stats message below.
let unhandled = 0;
self.addEventListener('unhandledrejection', (e) => {
  unhandled++;
  console.error('iiif-sw.js: unhandled rejection:', e.reason);
});

// A page may ask, through a MessageChannel, how the worker is doing:
// {served, maxActive (renders at once: 1), unhandled}.
self.addEventListener('message', (event) => {
  if (event.data === 'iiifd-stats' && event.ports[0]) {
    event.ports[0].postMessage({ ...engine.stats, unhandled });
  }
});

self.addEventListener('install', (event) => {
  event.waitUntil(
    caches.open('iiifd-site')
      .then((c) => c.addAll(shell.map((p) => new URL(p, scope).href)))
      .catch(() => {}) // the shell is a convenience for offline use
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener('activate', (event) => {
  event.waitUntil(self.clients.claim());
});

self.addEventListener('fetch', (event) => {
  const req = event.request;
  const url = new URL(req.url);
  if (url.origin !== self.location.origin || !url.pathname.startsWith(scopePath)) return;
  const rel = url.pathname.slice(scopePath.length);
  if (rel.startsWith('__iiifd-rendered/')) return;
  if (rel.startsWith('iiif/presentation/') && req.method === 'GET') {
    event.respondWith(presentation(req).catch((e) => failure(502, String(e))));
  } else if (rel.startsWith('iiif/')) {
    event.respondWith(image(req, url, rel).catch((e) => failure(500, 'the Service Worker failed: ' + e)));
  } else if (req.method === 'GET') {
    event.respondWith(networkFirst(req, site));
  }
});

// networkFirst fetches req and keeps the answer; offline, the kept one.
async function networkFirst(req, keep) {
  try {
    const r = await fetch(req);
    if (r.ok && r.status === 200) keep.put(req.url, r.clone());
    return r;
  } catch (e) {
    const hit = await keep.cache().then((c) => c.match(req.url, { ignoreVary: true }));
    if (hit) return hit;
    return failure(504, 'offline, and this was not seen before');
  }
}

// stored memoizes the stored info.json of each image (at most 64).
const stored = new Map();

async function storedInfo(id) {
  if (stored.has(id)) return stored.get(id);
  const url = new URL('iiif/3/' + id.split('/').map(encodeURIComponent).join('/') + '/info.json', scope).href;
  const r = await networkFirst(new Request(url), tiles);
  const info = r.ok ? await r.json().catch(() => null) : null;
  if (stored.size >= 64) stored.clear();
  if (info) stored.set(id, info);
  return info;
}

// storedTile returns the path, under the image's folder, of the stored
// file that is exactly the answer to region/size (default.jpg, no
// rotation), or null.
function storedTile(info, region, size) {
  const W = info.width;
  const H = info.height;
  const m = /^(\d+),(\d+)$/.exec(size);
  if (!m) return null;
  const sw = Number(m[1]);
  const sh = Number(m[2]);
  if (region === 'full' && (info.sizes || []).some((s) => s.width === sw && s.height === sh)) return `full/${sw},${sh}/0/default.jpg`;
  let x = 0, y = 0, w = W, h = H;
  if (region !== 'full') {
    const r = /^(\d+),(\d+),(\d+),(\d+)$/.exec(region);
    if (!r) return null;
    [x, y, w, h] = r.slice(1).map(Number);
  }
  for (const t of info.tiles || []) {
    for (const sf of t.scaleFactors || []) {
      const tw = t.width * sf;
      const th = (t.height || t.width) * sf;
      if (x % tw || y % th || x >= W || y >= H) continue;
      if (w !== Math.min(tw, W - x) || h !== Math.min(th, H - y)) continue;
      if (sw !== Math.ceil(w / sf) || sh !== Math.ceil(h / sf)) continue;
      return `${x},${y},${w},${h}/${sw},${sh}/0/default.jpg`;
    }
  }
  return null;
}

async function image(req, url, rel) {
  const segs = rel.split('/');
  // iiif/3/{id...}/{region}/{size}/{rotation}/{quality}.{format}
  if (segs[1] === '3' && segs.length >= 7 && segs[segs.length - 2] === '0' && segs[segs.length - 1] === 'default.jpg' &&
      (req.method === 'GET' || req.method === 'HEAD')) {
    let id = null;
    try {
      id = segs.slice(2, -4).map(decodeURIComponent).join('/');
    } catch (e) { /* the engine says what is wrong with the URL */ }
    const info = id && (await storedInfo(id).catch(() => null));
    const file = info && storedTile(info, decodeURIComponent(segs[segs.length - 4]), decodeURIComponent(segs[segs.length - 3]));
    if (file) {
      const tile = new URL('iiif/3/' + segs.slice(2, -4).join('/') + '/' + file, scope).href;
      const r = await networkFirst(new Request(tile), tiles);
      if (r.ok) return r;
    }
  }
  return engine.serve({
    method: req.method,
    path: '/' + rel,
    origin: url.origin,
    headers: req.headers,
  });
}

// presentation serves a stored manifest or collection with absolute ids
// (clients of Presentation documents do not resolve relative ones) and
// the image services raised to level 2, which this worker provides.
async function presentation(req) {
  const r = await networkFirst(req, tiles);
  if (!r.ok) return r;
  const doc = await r.json();
  const fix = (v) => {
    if (Array.isArray(v)) return v.map(fix);
    if (v && typeof v === 'object') {
      const out = {};
      for (const [k, x] of Object.entries(v)) {
        if (k === 'id' && typeof x === 'string') out[k] = new URL(x, scope).href;
        else if (k === 'profile' && x === 'level0' && v.type === 'ImageService3') out[k] = 'level2';
        else out[k] = fix(x);
      }
      return out;
    }
    return v;
  };
  return new Response(JSON.stringify(fix(doc)), {
    status: 200,
    headers: {
      'Content-Type': 'application/ld+json;profile="http://iiif.io/api/presentation/3/context.json"',
      'Access-Control-Allow-Origin': '*',
    },
  });
}
