// Browser test of a whole-slide image in iiifd's viewer, in real
// Chromium through playwright-core. Run by internal/web/slide_test.go,
// which starts the server on a root of generated slides and gives:
//   IIIFD_URL  the server's base URL
//   SLIDE_ID   the slide's identifier
//   CHROMIUM   the browser binary (default /usr/bin/chromium)
// It opens the viewer, then zooms in one step at a time to the deepest
// zoom, and checks that tiles were fetched at every scale factor
// info.json advertises, each answered 200 with an image. Prints one line
// per check and exits non-zero on the first failure.
import { chromium } from 'playwright-core';

const base = process.env.IIIFD_URL;
const id = process.env.SLIDE_ID;
if (!base || !id) {
  console.error('slide.mjs: IIIFD_URL and SLIDE_ID must be set');
  process.exit(2);
}
function check(ok, what, detail) {
  if (!ok) throw new Error(what + (detail === undefined ? '' : ': ' + JSON.stringify(detail)));
  console.log('ok   ' + what);
}

const info = await (await fetch(base + '/iiif/3/' + encodeURIComponent(id) + '/info.json')).json();
const tile = info.tiles[0];
const tw = tile.width, th = tile.height || tile.width;
const prefix = base + '/iiif/3/' + encodeURIComponent(id) + '/';

// scaleOf returns the scale factor of a tile request of the slide, or 0
// for other requests: the region's size over the tile size (edge tiles
// are narrower, so the larger side decides), checked against the size.
function scaleOf(url) {
  if (!url.startsWith(prefix)) return 0;
  const m = url.slice(prefix.length).match(/^(\d+),(\d+),(\d+),(\d+)\/(\d*),(\d*)\/0\/default\.(jpg|png|webp)$/);
  if (!m) return 0;
  const [x, y, w, h] = m.slice(1, 5).map(Number);
  // OpenSeadragon asks for every power of two up to the largest scale
  // factor, also where info.json lists only the slide's own levels (1,
  // 4, 16 for an SVS); iiifd serves those from the next larger level.
  const top = Math.max(...tile.scaleFactors);
  for (let sf = 1; sf <= top; sf *= 2) {
    if (x % (tw * sf) === 0 && y % (th * sf) === 0 && w <= tw * sf && h <= th * sf &&
        (w === tw * sf || x + w === info.width) && (h === th * sf || y + h === info.height)) return sf;
  }
  return -1;
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
  timeout: 30000,
});
let failed = false;
try {
  const page = await (await browser.newContext({ viewport: { width: 1000, height: 700 } })).newPage();
  page.setDefaultTimeout(30000);
  const seen = new Map(); // scale factor → tile responses
  const bad = [];
  page.on('response', (r) => {
    const sf = scaleOf(r.url());
    if (sf === 0) return;
    const type = r.headers()['content-type'] || '';
    if (sf < 0 || r.status() !== 200 || !type.startsWith('image/')) bad.push(`${r.status()} ${type} ${r.url()}`);
    else seen.set(sf, (seen.get(sf) || 0) + 1);
  });
  const loaded = () => page.waitForFunction(() => {
    const v = window.iiifdViewer;
    return v && v.world.getItemCount() > 0 && v.world.getItemAt(0).getFullyLoaded();
  }, null, { timeout: 60000 });
  await page.goto(base + '/view/' + encodeURIComponent(id));
  await loaded();
  // Zoom in by factors of two from the home view to the deepest zoom.
  for (let i = 0; i < 16; i++) {
    const done = await page.evaluate(() => {
      const v = window.iiifdViewer.viewport;
      if (v.getZoom() >= v.getMaxZoom() * 0.999) return true;
      v.zoomTo(Math.min(v.getZoom() * 2, v.getMaxZoom()), null, true);
      return false;
    });
    if (done) break;
    await page.waitForTimeout(200);
    await loaded();
  }
  check(bad.length === 0, 'every tile request is on the tile grid and answered with an image', bad);
  const want = tile.scaleFactors.filter((sf) => {
    // Scale factors whose whole image fits in one viewer-sized view
    // below the home zoom are skipped by OpenSeadragon: it starts at the
    // level that fills the viewer.
    return Math.ceil(info.width / sf) > 250 || Math.ceil(info.height / sf) > 250;
  });
  const missing = want.filter((sf) => !seen.has(sf));
  check(missing.length === 0, `tiles fetched at every zoom level (scale factors ${want}; got ${[...seen.keys()].sort((a, b) => a - b)})`, missing);
  check(seen.has(1), 'full-resolution tiles are reached');
} catch (e) {
  console.error('FAIL ' + e.message);
  failed = true;
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
