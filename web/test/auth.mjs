// The IIIF Authorization Flow API 2.0 end to end in real Chromium, driven
// by playwright-core. Run by internal/app/auth_browser_test.go, which
// starts iiifd (restricted images, built-in users, an OpenID Connect
// provider), the provider, and two client pages on other origins:
//   IIIFD_URL      iiifd's base URL
//   CLIENT_URL     a client page on another origin, allowed by the token service
//   FOREIGN_URL    a client page on an origin the token service refuses
//   IMAGE          the identifier of a login-only image
//   IMAGE_DEGRADED the identifier of a degraded image
//   USER, PASSWORD a built-in user
//   OIDC_USER, OIDC_PASSWORD  a user of the OpenID Connect provider
//   TOKEN_TTL      the access tokens' lifetime in seconds
//   CHROMIUM       the browser binary (default /usr/bin/chromium)
// Prints one line per check and exits non-zero on the first failure.
import { chromium } from 'playwright-core';

const env = process.env;
const base = env.IIIFD_URL;
for (const k of ['IIIFD_URL', 'CLIENT_URL', 'FOREIGN_URL', 'IMAGE', 'IMAGE_DEGRADED', 'USER', 'PASSWORD', 'OIDC_USER', 'OIDC_PASSWORD', 'TOKEN_TTL']) {
  if (!env[k]) { console.error('auth.mjs: ' + k + ' must be set'); process.exit(2); }
}
const image = env.IMAGE;
const infoURL = base + '/iiif/3/' + encodeURIComponent(image) + '/info.json';

const started = Date.now();
function check(ok, what, detail) {
  if (!ok) throw new Error(what + (detail === undefined ? '' : ': ' + JSON.stringify(detail)));
  console.log(`ok   ${what} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
}

// In the client page: the services of the image's info.json.
async function services(page) {
  return page.evaluate(async (url) => {
    const info = await (await fetch(url)).json();
    const s = IIIFAuth.services(info);
    return { context: info['@context'], s };
  }, infoURL);
}

// In the client page: a message of the token service (through the
// iframe and postMessage).
function token(page, s) {
  return page.evaluate((svc) => IIIFAuth.token(svc), s.token);
}

function probe(page, s, tok) {
  return page.evaluate(([svc, t]) => IIIFAuth.probe(svc, t), [s.probe, tok]);
}

// openAccess clicks a button of the client page that opens the access
// (or logout) service, as a user's click must, and returns its window.
async function openWindow(page, url) {
  const popup = page.waitForEvent('popup');
  await page.evaluate((u) => {
    const b = document.createElement('button');
    b.id = 'open';
    b.textContent = 'open';
    b.onclick = () => {
      window.accessClosed = IIIFAuth.openAccess({ id: u }).then(() => true);
      b.remove();
    };
    document.body.appendChild(b);
  }, url);
  await page.click('#open');
  return popup;
}

async function imageWidth(page, url) {
  return page.evaluate((u) => new Promise((resolve) => {
    const img = new Image();
    img.onload = () => resolve(img.naturalWidth);
    img.onerror = () => resolve(-1);
    img.src = u;
  }), url);
}

const browser = await chromium.launch({
  executablePath: env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  timeout: 30000,
});
let failed = false;
try {
  const ctx = await browser.newContext({ viewport: { width: 1000, height: 700 } });
  const page = await ctx.newPage();
  page.setDefaultTimeout(30000);
  await page.goto(env.CLIENT_URL);

  // info.json declares the services, the auth context first.
  const { context, s } = await services(page);
  check(Array.isArray(context) && context[0] === 'http://iiif.io/api/auth/2/context.json', 'info.json: the auth context comes first', context);
  check(s && s.probe && s.access.profile === 'active' && s.token && s.logout, 'info.json: probe, active access, token and logout services', s);

  // Before signing in: the probe says 401 with a heading, the token
  // service missingAspect, the image a 401.
  let p = await probe(page, s, null);
  check(p.type === 'AuthProbeResult2' && p.status === 401 && IIIFAuthText(p.heading), 'probe without a token: 401 with a heading', p);
  let m = await token(page, s);
  check(m.type === 'AuthAccessTokenError2' && m.profile === 'missingAspect', 'token before signing in: missingAspect', m);
  const imgURL = base + '/iiif/3/' + encodeURIComponent(image) + '/full/200,/0/default.jpg';
  check(await imageWidth(page, imgURL) === -1, 'image before signing in: refused');

  // The access service: a wrong password is refused and says why; the
  // right one signs in and the window closes itself.
  const login = await openWindow(page, s.access.id);
  await login.waitForLoadState();
  await login.fill('input[name=user]', env.USER);
  await login.fill('input[name=password]', 'not-the-password');
  const wrong = login.waitForResponse((r) => r.request().method() === 'POST');
  await login.click('button[type=submit]');
  const wr = await wrong;
  await login.waitForSelector('#error');
  check(wr.status() === 401 && /Wrong user name or password/.test(await login.textContent('#error')), 'wrong password: 401, the form says why');
  await login.fill('input[name=user]', env.USER);
  await login.fill('input[name=password]', env.PASSWORD);
  await Promise.all([login.waitForEvent('close'), login.click('button[type=submit]')]);
  check(await page.evaluate(() => window.accessClosed), 'right password: signed in, the access window closed itself');

  // Token through the iframe and postMessage; the probe says 200; the
  // image loads (the cookie).
  m = await token(page, s);
  check(m.type === 'AuthAccessToken2' && m.accessToken && m.expiresIn > 0, 'token service: AuthAccessToken2', m);
  const tok = m.accessToken;
  p = await probe(page, s, tok);
  check(p.status === 200, 'probe with the token: 200', p);
  check(await imageWidth(page, imgURL) === 200, 'image loads once signed in');

  // A foreign origin gets invalidOrigin from the token service, and the
  // token does not work from there.
  const foreign = await ctx.newPage();
  await foreign.goto(env.FOREIGN_URL);
  m = await token(foreign, s);
  check(m.type === 'AuthAccessTokenError2' && m.profile === 'invalidOrigin', 'token for a foreign origin: invalidOrigin', m);
  p = await probe(foreign, s, tok);
  check(p.status === 401, 'the token used from a foreign origin: 401', p);
  await foreign.close();

  // The token expires.
  const ttl = Number(env.TOKEN_TTL);
  await page.waitForTimeout((ttl + 1) * 1000);
  p = await probe(page, s, tok);
  check(p.status === 401 && /expired/.test(IIIFAuthText(p.note)), 'expired token: 401, the note says it expired', p);

  // Logout clears the cookie and revokes the session's tokens.
  m = await token(page, s);
  const fresh = m.accessToken;
  check((await probe(page, s, fresh)).status === 200, 'a fresh token works');
  await openWindow(page, s.logout.id);
  // Resolved by the client's poll once the window has closed itself
  // (which may be before a listener could be added to the window).
  check(await page.evaluate(() => window.accessClosed), 'logout: the window closed itself');
  p = await probe(page, s, fresh);
  check(p.status === 401 && /not known|ended/.test(IIIFAuthText(p.note)), 'after logout: the token is revoked', p);
  m = await token(page, s);
  check(m.type === 'AuthAccessTokenError2' && m.profile === 'missingAspect', 'after logout: token service missingAspect', m);
  check(await imageWidth(page, imgURL) === -1, 'after logout: image refused');

  // The built-in viewer shows the access service's prompt to someone
  // who is not signed in.
  const viewer = await ctx.newPage();
  await viewer.goto(base + '/view/' + encodeURIComponent(image));
  await viewer.waitForSelector('#auth:not([hidden])');
  check(/restricted/i.test(await viewer.textContent('#auth .heading')), 'viewer: the prompt shows the probe heading');

  // A degraded image: the viewer shows what everyone may see, and the
  // prompt from the probe, which names the substitute.
  const small = await ctx.newPage();
  await small.goto(base + '/view/' + encodeURIComponent(env.IMAGE_DEGRADED));
  await small.waitForSelector('#auth:not([hidden])');
  await small.waitForFunction(() => window.iiifdViewer && window.iiifdViewer.world.getItemCount() > 0 && document.getElementById('status').hidden, null, { timeout: 10000 })
    .catch(async (e) => { throw new Error('degraded viewer: ' + await small.evaluate(() => document.getElementById('status').textContent + ' | items ' + (window.iiifdViewer && window.iiifdViewer.world.getItemCount()))); });
  const shown = await small.evaluate(() => window.iiifdViewer.world.getItemAt(0).source.url || '');
  check(/smaller version/.test(await small.textContent('#auth .heading')) && /\/full\/!300,300\/0\/default\.jpg$/.test(shown),
    'viewer, degraded image: the probe\'s substitute is shown, with the prompt to sign in for more', shown);
  await small.close();

  // Sign in at the OpenID Connect provider from the viewer's prompt.
  const popup = viewer.waitForEvent('popup');
  await viewer.click('#auth button');
  const op = await popup;
  await op.waitForLoadState();
  await Promise.all([op.waitForURL((u) => !u.href.startsWith(base)), op.click('#oidc')]);
  await op.waitForSelector('input[name=username]');
  await op.fill('input[name=username]', env.OIDC_USER);
  await op.fill('input[name=password]', env.OIDC_PASSWORD);
  await Promise.all([op.waitForEvent('close'), op.click('button[type=submit]')]);
  check(true, 'OpenID Connect: signed in at the provider, the window closed itself');
  await viewer.waitForFunction(() => {
    const v = window.iiifdViewer;
    return document.getElementById('auth').hidden && v && v.world.getItemCount() > 0 && v.world.getItemAt(0).getFullyLoaded && document.getElementById('status').hidden;
  }, null, { timeout: 30000 });
  check(true, 'viewer: after signing in, the image opens and its tiles load');
  m = await token(page, s);
  check(m.type === 'AuthAccessToken2', 'the OpenID Connect session gives tokens to the client page too', m);
} catch (e) {
  console.error('FAIL ' + e.message);
  failed = true;
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);

function IIIFAuthText(m) {
  if (!m) return '';
  const v = m.en || m[Object.keys(m)[0]];
  return (Array.isArray(v) ? v : [v]).join(' ');
}
