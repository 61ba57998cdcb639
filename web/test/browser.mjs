// Browser tests of iiifd's web front in real Chromium, driven by
// playwright-core (Debian's chromium binary, never a downloaded one).
// Run by internal/web/browser_test.go, which starts the server and gives:
//   IIIFD_URL   the server's base URL (embedded samples, admin token set)
//   IIIFD_TOKEN the admin token
//   TIFY_URL    a page on another origin that opens ?manifest= in Tify
//   UPLOAD_FILE an image file to upload
//   CHROMIUM    the browser binary (default /usr/bin/chromium)
// Prints one line per check and exits non-zero on the first failure.
import { chromium } from 'playwright-core';

const base = process.env.IIIFD_URL;
const token = process.env.IIIFD_TOKEN;
const tifyURL = process.env.TIFY_URL;
const uploadFile = process.env.UPLOAD_FILE;
if (!base || !token || !tifyURL || !uploadFile) {
  console.error('browser.mjs: IIIFD_URL, IIIFD_TOKEN, TIFY_URL and UPLOAD_FILE must be set');
  process.exit(2);
}

const started = Date.now();
function check(ok, what, detail) {
  if (!ok) throw new Error(what + (detail === undefined ? '' : ': ' + JSON.stringify(detail)));
  console.log(`ok   ${what} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
}

// watch records a page's console errors, uncaught exceptions and failed
// requests, which every check ends by asserting are none.
function watch(page) {
  const problems = [];
  page.on('console', (m) => { if (m.type() === 'error') problems.push('console: ' + m.text()); });
  page.on('pageerror', (e) => problems.push('exception: ' + e.message));
  page.on('requestfailed', (r) => problems.push('request failed: ' + r.url() + ' ' + (r.failure() || {}).errorText));
  page.on('response', (r) => { if (r.status() >= 400) problems.push('HTTP ' + r.status() + ': ' + r.url()); });
  return problems;
}

// blankness measures a screenshot of the element: the number of distinct
// colours (coarsely quantised) and the spread of brightness. It decodes
// the PNG in the page itself, so it works whatever OpenSeadragon draws
// with (canvas 2D or WebGL).
async function picture(page, selector) {
  const png = await page.locator(selector).screenshot();
  return page.evaluate(async (b64) => {
    const blob = await (await fetch('data:image/png;base64,' + b64)).blob();
    const bmp = await createImageBitmap(blob);
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

// tileRequest parses an Image API 3 tile URL of id.
function tileRequest(url, id) {
  const p = new URL(url).pathname;
  const prefix = '/iiif/3/' + encodeURIComponent(id) + '/';
  if (!p.startsWith(prefix) || p.endsWith('/info.json')) return null;
  const [region, size, rotation, qf] = p.slice(prefix.length).split('/');
  return { region, size, rotation, qf, url };
}

// conforms tells whether a tile request is one info.json advertises: a
// region aligned to tile × scale factor, at most that large, asked at the
// size the IIIF tile algorithm gives; it returns the scale factor.
function conforms(t, info) {
  const tile = info.tiles[0];
  const tw = tile.width, th = tile.height || tile.width;
  const ceil = Math.ceil;
  const [sw, sh] = t.size.split(',').map((v) => (v === '' ? null : Number(v)));
  if (t.region === 'full') {
    for (const sf of tile.scaleFactors) {
      const w = ceil(info.width / sf), h = ceil(info.height / sf);
      if (w <= tw && h <= th && sw === w && (sh === null || sh === h)) return sf;
    }
    return 0;
  }
  const [x, y, w, h] = t.region.split(',').map(Number);
  for (const sf of tile.scaleFactors) {
    const rw = tw * sf, rh = th * sf;
    if (x % rw || y % rh) continue;
    if (w !== Math.min(rw, info.width - x) || h !== Math.min(rh, info.height - y)) continue;
    if (sw === ceil(w / sf) && (sh === null || sh === ceil(h / sf))) return sf;
  }
  return 0;
}

async function waitFullyLoaded(page, what) {
  try {
    await page.waitForFunction(() => {
      const v = window.iiifdViewer;
      return v && v.world.getItemCount() > 0 && v.world.getItemAt(0).getFullyLoaded();
    }, null, { timeout: 60000 });
  } catch (e) {
    const state = await page.evaluate(() => ({
      status: document.getElementById('status') && document.getElementById('status').textContent,
      viewer: !!window.iiifdViewer,
      items: window.iiifdViewer ? window.iiifdViewer.world.getItemCount() : -1,
    }));
    throw new Error(what + ': the viewer did not finish loading: ' + JSON.stringify(state));
  }
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  timeout: 30000,
});
let failed = false;
try {
  const ctx = await browser.newContext({ viewport: { width: 1200, height: 800 } });
  const page = await ctx.newPage();
  page.setDefaultTimeout(30000);

  // The gallery shows every sample with a loaded thumbnail.
  {
    const problems = watch(page);
    await page.goto(base + '/', { waitUntil: 'load' });
    const thumbs = await page.$$eval('ul.grid img', (imgs) => imgs.map((i) => ({ alt: i.alt, ok: i.complete && i.naturalWidth > 0, w: i.naturalWidth })));
    check(thumbs.length === 4, 'gallery lists the 4 sample images', thumbs);
    check(thumbs.every((t) => t.ok && t.w > 100), 'every thumbnail is loaded (naturalWidth > 0)', thumbs);
    check(thumbs.every((t) => t.alt.startsWith('Thumbnail of ')), 'thumbnails have alt text', thumbs);
    await page.fill('#q', 'julia');
    await page.press('#q', 'Enter');
    await page.waitForURL(/q=julia/);
    check(await page.locator('ul.grid img').count() === 1, 'the filter box narrows the gallery (server side)');
    check(problems.length === 0, 'gallery: no console errors or failed requests', problems);
  }

  // The viewer fetches tiles as info.json advertises and paints them.
  const id = 'mandelbrot.tif';
  const info = await (await fetch(base + '/iiif/3/' + id + '/info.json')).json();
  {
    const problems = watch(page);
    const tiles = [];
    page.on('request', (r) => { const t = tileRequest(r.url(), id); if (t) tiles.push(t); });
    await page.goto(base + '/view/' + id);
    await waitFullyLoaded(page, 'opening');
    await page.waitForSelector('#status', { state: 'hidden' });
    check(tiles.length > 0, 'the viewer requested tiles', tiles.length);
    const bad = tiles.filter((t) => !conforms(t, info));
    check(bad.length === 0, `every tile request matches info.json (tile ${info.tiles[0].width}, scale factors ${info.tiles[0].scaleFactors})`, bad.map((t) => t.url));
    const pic = await picture(page, '#osd');
    check(pic.colours > 20 && pic.spread > 60, 'the viewer canvas is painted (not blank)', pic);
    const before = Math.min(...tiles.map((t) => conforms(t, info)));
    const seen = tiles.length;
    await page.evaluate(() => {
      const v = window.iiifdViewer;
      v.viewport.zoomTo(v.viewport.getMaxZoom(), null, true);
    });
    await page.waitForTimeout(300);
    await waitFullyLoaded(page, 'zooming');
    const deeper = tiles.slice(seen);
    const after = Math.min(...deeper.map((t) => conforms(t, info)));
    check(deeper.length > 0 && after < before, `zooming in fetches deeper tiles (scale factor ${before} → ${after})`, deeper.length);
    check(after === 1, 'full resolution tiles are reached');
    check(deeper.every((t) => conforms(t, info)), 'deeper tiles match info.json too');
    // Rotation and the links.
    await page.focus('#osd');
    await page.keyboard.press('r');
    check(await page.evaluate(() => window.iiifdViewer.viewport.getRotation()) === 90, 'R rotates the view');
    const links = await page.$$eval('header a', (as) => as.map((a) => a.href));
    check(links.some((h) => h.endsWith('/info.json')) && links.some((h) => h.endsWith('/manifest')), 'the viewer links info.json and the manifest', links);
    check(problems.length === 0, 'viewer: no console errors or failed requests', problems);
  }

  // A viewer for an unknown image says so.
  {
    const res = await page.goto(base + '/view/nope.tif');
    check(res.status() === 404 && (await page.textContent('main')).includes('no image with identifier'), 'the viewer of an unknown image is a clear 404');
  }

  // An upload goes through and the image appears in the gallery.
  {
    const problems = watch(page);
    await page.goto(base + '/upload');
    await page.fill('#token', token);
    await page.setInputFiles('#file', uploadFile);
    await page.click('button[type=submit]');
    const link = page.locator('#uploads .state.ok a');
    await link.waitFor({ timeout: 60000 });
    const name = await link.textContent();
    check(name.endsWith('.tif'), 'the upload is converted and linked: ' + name);
    await page.goto(base + '/');
    const stem = name.replace(/\.tif$/, '');
    const img = page.locator(`img[alt="Thumbnail of ${stem}"]`);
    await img.waitFor();
    check(await img.evaluate((i) => i.complete && i.naturalWidth > 0), 'the uploaded image is in the gallery with its thumbnail');
    check(problems.length === 0, 'upload: no console errors or failed requests', problems);
  }

  // The manifest opens in Tify, a IIIF viewer on another origin.
  {
    const problems = watch(page);
    const tiles = [];
    page.on('request', (r) => { const t = tileRequest(r.url(), id); if (t) tiles.push(t); });
    const manifest = base + '/iiif/presentation/3/' + id + '/manifest';
    await page.goto(tifyURL + '?manifest=' + encodeURIComponent(manifest));
    await page.waitForFunction(() => document.body.innerText.includes('mandelbrot'), null, { timeout: 30000 });
    for (let i = 0; i < 100 && tiles.length === 0; i++) await page.waitForTimeout(100);
    check(tiles.length > 0, 'Tify shows the manifest and loads tiles from our image service', tiles.length);
    await page.waitForTimeout(500);
    check(problems.length === 0, 'Tify: no console errors or failed requests', problems);
  }
} catch (e) {
  failed = true;
  console.error('FAIL ' + e.message);
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
