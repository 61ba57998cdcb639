// Browser tests of a site written by `iiifd publish`, served by a plain
// static file server, in real Chromium driven by playwright-core (Debian's
// chromium binary). Run by cmd/iiifd/publish_test.go, which gives:
//   SITE_URL    the site's folder on the static server (ends with "/")
//   NATIVE_URL  iiifd serve over the same source images, for parity
//   CHROMIUM    the browser binary (default /usr/bin/chromium)
//   MIRADOR     "1" when the site holds mirador.html (Mirador from npm)
// Prints one line per check, and "bench ..." lines with timings; exits
// non-zero on the first failure.
import { chromium } from 'playwright-core';

const site = process.env.SITE_URL;
const native = process.env.NATIVE_URL;
if (!site || !native) {
  console.error('publish.mjs: SITE_URL and NATIVE_URL must be set');
  process.exit(2);
}
const started = Date.now();
function check(ok, what, detail) {
  if (!ok) throw new Error(what + (detail === undefined ? '' : ': ' + JSON.stringify(detail)));
  console.log(`ok   ${what} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
}

function watch(page) {
  const problems = [];
  page.on('console', (m) => { if (m.type() === 'error') problems.push('console: ' + m.text()); });
  page.on('pageerror', (e) => problems.push('exception: ' + e.message));
  page.on('response', (r) => { if (r.status() >= 400) problems.push('HTTP ' + r.status() + ': ' + r.url()); });
  return problems;
}

// picture measures a screenshot of an element: distinct colours and the
// spread of brightness (a blank or one-colour area has few and little).
async function picture(page, selector) {
  const png = await page.locator(selector).screenshot();
  return page.evaluate(async (b64) => {
    const bmp = await createImageBitmap(await (await fetch('data:image/png;base64,' + b64)).blob());
    const c = new OffscreenCanvas(bmp.width, bmp.height);
    const g = c.getContext('2d');
    g.drawImage(bmp, 0, 0);
    const d = g.getImageData(0, 0, bmp.width, bmp.height).data;
    const colours = new Set();
    let min = 255, max = 0;
    for (let i = 0; i < d.length; i += 4 * 7) {
      colours.add((d[i] >> 4) << 8 | (d[i + 1] >> 4) << 4 | d[i + 2] >> 4);
      const y = (d[i] + d[i + 1] + d[i + 2]) / 3;
      min = Math.min(min, y); max = Math.max(max, y);
    }
    return { colours: colours.size, spread: max - min };
  }, png.toString('base64'));
}

// compare fetches one request from the page, through the Service Worker,
// and from the native server, and returns both sizes, the mean absolute
// difference of their pixels, and both times in milliseconds.
async function compare(page, path) {
  return page.evaluate(async ({ path, native }) => {
    async function get(url) {
      const t0 = performance.now();
      const r = await fetch(url, { cache: 'no-store' });
      const b = await r.blob();
      const ms = performance.now() - t0;
      if (!r.ok) return { status: r.status, text: await b.text(), ms };
      let bmp;
      try {
        bmp = await createImageBitmap(b);
      } catch (e) {
        return { status: r.status, text: 'undecodable ' + r.headers.get('Content-Type'), ms };
      }
      const c = new OffscreenCanvas(bmp.width, bmp.height);
      const g = c.getContext('2d');
      g.drawImage(bmp, 0, 0);
      return { status: r.status, w: bmp.width, h: bmp.height, data: g.getImageData(0, 0, bmp.width, bmp.height).data, ms, type: r.headers.get('Content-Type') };
    }
    const a = await get(path);
    const b = await get(native + '/' + path);
    let diff = null;
    if (a.data && b.data && a.w === b.w && a.h === b.h) {
      let sum = 0, n = 0;
      for (let i = 0; i < a.data.length; i += 4) {
        for (let k = 0; k < 3; k++) sum += Math.abs(a.data[i + k] - b.data[i + k]);
        n += 3;
      }
      diff = sum / n;
    }
    const strip = (x) => ({ status: x.status, w: x.w, h: x.h, ms: Math.round(x.ms), type: x.type, text: x.text });
    return { sw: strip(a), native: strip(b), diff };
  }, { path, native });
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-dev-shm-usage'],
});
let failed = false;
try {
  const context = await browser.newContext({ viewport: { width: 1200, height: 800 } });
  const page = await context.newPage();
  const problems = watch(page);

  // The gallery, and the Service Worker taking control.
  await page.goto(site, { waitUntil: 'load' });
  const controlled = await page.evaluate(async () => {
    await window.iiifdServiceWorker;
    return !!navigator.serviceWorker.controller;
  });
  check(controlled, 'the Service Worker installs and controls the gallery');
  const thumbs = await page.evaluate(async () => {
    const imgs = [...document.querySelectorAll('.grid img')];
    await Promise.all(imgs.map((i) => (i.complete ? null : new Promise((r) => { i.onload = i.onerror = r; }))));
    return imgs.map((i) => ({ src: i.getAttribute('src'), w: i.naturalWidth }));
  });
  check(thumbs.length === 4 && thumbs.every((t) => t.w > 0), 'the gallery shows every image', thumbs);

  // info.json for the pages: level 2, with the limits.
  const info = await page.evaluate(async () => ({ ...(await (await fetch('iiif/3/mandelbrot/info.json')).json()), want: new URL('iiif/3/mandelbrot', location.href).href }));
  check(info.profile === 'level2' && info.id === info.want && info.maxArea === 4096 * 4096 && info.maxWidth === 4096 && info.maxHeight === 4096 &&
    (info.extraFormats || []).includes('gif'), 'info.json in the site says level 2, with an absolute id and the limits', info);

  // The request, and others, against the native server.
  const requests = [
    'iiif/3/mandelbrot/1000,1000,2000,1500/600,/90/gray.png',
    'iiif/3/mandelbrot/full/!512,512/0/default.jpg',
    'iiif/3/mandelbrot/pct:10,10,30,30/,400/0/color.png',
    'iiif/3/mandelbrot/2048,1024,1024,1024/^800,/!45/default.jpg',
    'iiif/3/julia/square/300,/0/bitonal.png',
    'iiif/3/julia/full/max/0/default.png',
    'iiif/3/mandelbrot/full/600,/0/default.gif',
    'iiif/3/zoneplate/0,0,512,512/512,512/0/default.jpg',
  ];
  for (const r of requests) {
    const c = await compare(page, r);
    // The site's tiles are a JPEG encoding of the source: a bitonal
    // threshold flips a few pixels near it (each by 255), so its bound is
    // 2 % of the pixels flipped rather than a mean of 2.
    // A GIF's 256-colour palette is each engine's own choice, so it is
    // held to a looser bound.
    const bound = r.includes('bitonal') ? 255 * 0.02 : r.endsWith('.gif') ? 16 : 2;
    check(c.sw.status === 200 && c.native.status === 200 && c.sw.w === c.native.w && c.sw.h === c.native.h &&
      c.sw.type === c.native.type && c.diff !== null && c.diff <= bound, `${r} matches the native server's answer (mean abs diff ${c.diff && c.diff.toFixed(2)})`, c);
    console.log(`bench request ${r} browser_ms=${c.sw.ms} native_ms=${c.native.ms}`);
  }
  // Many renders at once from the page: the worker runs them one at a
  // time, all answered, and nothing in it was left unhandled.
  const stats = await page.evaluate(async () => {
    const urls = [0, 1, 2, 3, 4, 5].map((i) => `iiif/3/julia/${100 * i},0,400,400/${150 + i},/${30 * i}/default.jpg`);
    const statuses = await Promise.all(urls.map((u) => fetch(u).then((r) => r.status)));
    const ch = new MessageChannel();
    const got = new Promise((resolve) => { ch.port1.onmessage = (e) => resolve(e.data); });
    navigator.serviceWorker.controller.postMessage('iiifd-stats', [ch.port2]);
    return { statuses, ...(await got) };
  });
  check(stats.statuses.every((s) => s === 200) && stats.maxActive === 1 && stats.served >= 6 && stats.unhandled === 0,
    'six renders at once are answered one at a time, with no unhandled rejection', stats);

  // The engine as a module in the page, without the Service Worker's help
  // for rendering: the same answer as the Service Worker's.
  const mod = await page.evaluate(async () => {
    const { render } = await import('./iiif-engine.mjs');
    const a = await render('1000,1000,2000,1500/600,/90/gray.png', 'iiif/3/mandelbrot');
    const b = await fetch('iiif/3/mandelbrot/1000,1000,2000,1500/600,/90/gray.png');
    const [x, y] = [new Uint8Array(await a.arrayBuffer()), new Uint8Array(await b.arrayBuffer())];
    const bad = await render('full/max/0/default.pdf', 'iiif/3/mandelbrot');
    const bmp = await createImageBitmap(new Blob([x]));
    return { status: a.status, type: a.headers.get('Content-Type'), w: bmp.width, h: bmp.height, same: x.length === y.length && x.every((v, i) => v === y[i]), bad: bad.status };
  });
  check(mod.status === 200 && mod.type === 'image/png' && mod.w === 450 && mod.h === 600 && mod.same && mod.bad === 400,
    'iiif-engine.mjs render() answers in the page as the Service Worker does', mod);

  // Refusals: the same status as the server's, with the reason.
  for (const r of [
    'iiif/3/mandelbrot/full/max/0/default.pdf',
    'iiif/3/mandelbrot/0,0,100,100/200,/0/default.jpg',
    'iiif/3/mandelbrot/full/max/45x/default.jpg',
    'iiif/3/mandelbrot/99999,0,10,10/max/0/default.jpg',
    'iiif/3/nosuchimage/full/max/0/default.jpg',
  ]) {
    const c = await compare(page, r);
    check(c.sw.status >= 400 && c.sw.status < 500 && c.sw.status === c.native.status && /\S/.test(c.sw.text || ''),
      `${r} is refused as the server refuses it (${c.sw.status}: ${(c.sw.text || '').trim()})`, c);
  }

  // Past the site's per-format limit (PNG up to 3584²): a 4xx that says so.
  const big = await page.evaluate(async () => {
    const r = await fetch('iiif/3/mandelbrot/full/4000,/0/default.png');
    return { status: r.status, text: await r.text() };
  });
  check(big.status >= 400 && big.status < 500 && /png|limit|larger|exceed/i.test(big.text), `a PNG past the per-format limit is refused (${big.status}: ${big.text.trim()})`, big);

  // The refusals above are logged by the browser as failed loads; only
  // what happens from here on must be clean.
  check(problems.every((p) => /HTTP 4\d\d|status of 4\d\d/.test(p)), 'nothing but the refusals went wrong so far', problems);
  problems.length = 0;

  // The viewer: paints, zooms, fetches deeper tiles; time to first paint.
  const tileURLs = [];
  page.on('request', (r) => { if (/\/iiif\/3\/mandelbrot\/[^/]+\/[^/]+\/0\/default\.jpg/.test(r.url())) tileURLs.push(r.url()); });
  async function firstPaint(url) {
    const t0 = Date.now();
    await page.goto(url, { waitUntil: 'domcontentloaded' });
    await page.waitForFunction(() => window.iiifdViewer && window.iiifdViewer.world.getItemCount() > 0 &&
      document.getElementById('status').hidden, null, { timeout: 60000 });
    return Date.now() - t0;
  }
  const paintSite = await firstPaint(site + 'viewer.html?id=mandelbrot');
  check((await picture(page, '#osd')).colours > 20, 'the viewer paints the image');
  const before = tileURLs.length;
  await page.evaluate(() => {
    const v = window.iiifdViewer;
    v.viewport.zoomTo(v.viewport.getMaxZoom() / 2, v.viewport.getCenter(), true);
  });
  const deepTiles = () => tileURLs.slice(before).filter((u) => {
    const region = decodeURIComponent(u.split('/').slice(-4)[0]).split(',');
    return region.length === 4 && Number(region[2]) <= 1024;
  });
  for (let i = 0; i < 120 && deepTiles().length === 0; i++) await page.waitForTimeout(250);
  await page.waitForFunction(() => window.iiifdViewer.world.getItemAt(0).getFullyLoaded(), null, { timeout: 60000 });
  const deeper = deepTiles();
  check(deeper.length > 0, 'zooming in fetches deeper tiles', tileURLs.slice(before, before + 5));
  check((await picture(page, '#osd')).colours > 20, 'the zoomed view paints');
  const paintNative = await firstPaint(native + '/view/mandelbrot');
  console.log(`bench first-paint site_ms=${paintSite} native_ms=${paintNative}`);
  await page.goto(site + 'viewer.html?id=mandelbrot', { waitUntil: 'load' });
  await page.waitForFunction(() => window.iiifdViewer && window.iiifdViewer.world.getItemCount() > 0 && window.iiifdViewer.world.getItemAt(0).getFullyLoaded(), null, { timeout: 60000 });

  // Mirador, from the site, opens a published manifest and paints it.
  if (process.env.MIRADOR === '1') {
    const mp = await context.newPage();
    const mproblems = watch(mp);
    await mp.goto(site + 'mirador.html?manifest=' + encodeURIComponent('iiif/presentation/3/mandelbrot/manifest.json'), { waitUntil: 'load' });
    await mp.waitForFunction(() => {
      const c = document.querySelector('.openseadragon-canvas canvas');
      return c && c.width > 0;
    }, null, { timeout: 60000 });
    await mp.waitForTimeout(0);
    let pic = { colours: 0 };
    for (let i = 0; i < 60 && pic.colours <= 20; i++) {
      await mp.waitForTimeout(500);
      pic = await picture(mp, '.openseadragon-canvas');
    }
    check(pic.colours > 20, 'Mirador opens a published manifest from the site and paints it', pic);
    check(mproblems.length === 0, 'no console errors in Mirador', mproblems);
    await mp.close();
  }
  check(problems.length === 0, 'no console errors or exceptions in the site', problems);
  const after = await page.evaluate(async () => {
    const ch = new MessageChannel();
    const got = new Promise((resolve) => { ch.port1.onmessage = (e) => resolve(e.data); });
    navigator.serviceWorker.controller.postMessage('iiifd-stats', [ch.port2]);
    return got;
  });
  check(after.unhandled === 0 && after.maxActive === 1, 'the Service Worker never left a rejection unhandled and never rendered two at once', after);

  // Offline: a reload shows what was seen.
  await context.setOffline(true);
  await page.reload({ waitUntil: 'load' });
  await page.waitForFunction(() => window.iiifdViewer && window.iiifdViewer.world.getItemCount() > 0, null, { timeout: 60000 });
  let pic = { colours: 0 };
  for (let i = 0; i < 40 && pic.colours <= 20; i++) {
    await page.waitForTimeout(250);
    pic = await picture(page, '#osd');
  }
  check(pic.colours > 20, 'offline, a reload of the viewer shows the regions seen', pic);
  const offline = await page.evaluate(async () => {
    const r = await fetch('iiif/3/mandelbrot/1000,1000,2000,1500/600,/90/gray.png');
    return { status: r.status, cache: r.headers.get('X-Cache') };
  });
  check(offline.status === 200, 'offline, a region rendered before is answered from Cache Storage', offline);
  // And the site really is offline: tiles never seen cannot be read.
  const unseen = await page.evaluate(async () => (await fetch('iiif/3/testchart/100,100,300,300/300,/0/default.png')).status);
  check(unseen >= 500, 'offline, a region of tiles never seen is a 5xx (the site is really offline)', unseen);
  await context.setOffline(false);
} catch (e) {
  failed = true;
  console.error('FAIL ' + e.message);
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
