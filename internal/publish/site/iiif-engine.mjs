// iiif-engine.mjs: iiifd's IIIF Image API engine as an ES module, for web
// applications that want crops, sizes, rotations and other formats of
// an image in the page, without a server.
//
//   import { render } from './iiif-engine.mjs';
//   const res = await render('1000,1000,2000,1500/600,/90/gray.png', 'iiif/3/mandelbrot');
//   const blob = await res.blob();
//
// render(request, source) answers one Image API 3.0 request: request is
// "{region}/{size}/{rotation}/{quality}.{format}" or "info.json";
// source is the URL (absolute, or relative to the page) of a IIIF
// level-0 tile directory (the folder of its info.json, as `iiifd
// publish` and `iiifd ingest --format tiles` write them) or of a flat
// JPEG or PNG file (read whole, so small ones only). It returns a
// promise of a Response with the status, headers and body the iiifd
// server would send; errors are 4xx/5xx Responses that say why, never a
// rejection. Renders run one at a time, within the per-format limits.
import './wasm_exec.js';
import './iiif-host.js';

const { Engine, fetchStore } = globalThis.IIIFHost;

// Each source gets a short alias, the identifier the engine sees.
const aliases = new Map(); // alias -> URL
const byURL = new Map(); // URL -> alias
const exts = /\.(jpe?g|png)$/i;

function aliasOf(source) {
  const url = new URL(String(source), globalThis.document ? document.baseURI : import.meta.url).href.replace(/\/+$/, '');
  let a = byURL.get(url);
  if (!a) {
    const m = exts.exec(new URL(url).pathname);
    a = 's' + (byURL.size + 1) + (m ? m[0].toLowerCase() : '');
    byURL.set(url, a);
    aliases.set(a, url);
  }
  return a;
}

let engine = null;

function theEngine() {
  engine ||= new Engine({
    wasmURL: new URL('./iiifd-edge.wasm', import.meta.url).href,
    env: { BASE_URL: new URL('./', import.meta.url).href.replace(/\/$/, '') },
    store: fetchStore((key) => {
      const slash = key.indexOf('/');
      const base = aliases.get(slash < 0 ? key : key.slice(0, slash));
      if (!base) return null;
      return slash < 0 ? base : base + '/' + key.slice(slash + 1).split('/').map(encodeURIComponent).join('/').replace(/%2C/g, ',');
    }, null),
    cache: null,
  });
  return engine;
}

export function render(request, source) {
  const a = aliasOf(source);
  const path = '/iiif/3/' + a + '/' + String(request).replace(/^\/+/, '');
  return theEngine().serve({ method: 'GET', path, origin: new URL(import.meta.url).origin });
}
