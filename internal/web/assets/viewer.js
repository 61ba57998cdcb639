// The deep-zoom viewer: fetches the image's info.json, shows the server's
// message when that fails, and hands the document to OpenSeadragon, which
// requests tiles exactly as info.json advertises them.
(function () {
  'use strict';
  var el = document.getElementById('osd');
  var status = document.getElementById('status');
  function show(msg, bad) {
    status.hidden = false;
    status.textContent = msg;
    status.className = bad ? 'error' : '';
    el.setAttribute('aria-busy', bad ? 'false' : 'true');
  }
  function done() {
    status.hidden = true;
    el.setAttribute('aria-busy', 'false');
  }
  if (typeof OpenSeadragon === 'undefined') {
    show('The viewer script (OpenSeadragon) could not be loaded; reload the page.', true);
    return;
  }
  show('Loading image information…');
  var viewer;
  function loadInfo(accessToken) {
    var headers = { Accept: 'application/ld+json' };
    if (accessToken) headers.Authorization = 'Bearer ' + accessToken;
    return fetch(el.dataset.info, { headers: headers }).then(function (res) {
      return res.text().then(function (text) {
        if (!res.ok) throw new Error('The image information could not be loaded (' + res.status + '): ' + text.trim());
        return JSON.parse(text);
      });
    });
  }
  loadInfo()
    .then(function (info) {
      var auth = window.IIIFAuth && IIIFAuth.services(info);
      if (!auth) { open(info); return; }
      return restricted(info, auth);
    })
    .catch(function (err) { show(err.message, true); });

  // restricted runs the IIIF Authorization Flow for an image whose
  // info.json declares a probe service: a token if this browser is
  // signed in already, else the access service's prompt; a degraded
  // image is shown meanwhile as far as it is open to everyone.
  function restricted(info, auth) {
    var prompt = document.getElementById('auth');
    function ask(result) {
      // A degraded image: the probe's substitute, the one size everyone
      // may see (the tiles of the image service, which viewers request
      // at every level, would be refused past it).
      var sub = result && result.substitute && result.substitute[0];
      if (sub) open({ type: 'image', url: sub.id });
      prompt.hidden = false;
      prompt.querySelector('.heading').textContent = IIIFAuth.text(result && result.heading) || IIIFAuth.text(auth.access.heading) || 'This image is restricted';
      prompt.querySelector('.note').textContent = IIIFAuth.text(result && result.note) || IIIFAuth.text(auth.access.note);
      var button = prompt.querySelector('button');
      button.textContent = IIIFAuth.text(auth.access.confirmLabel) || IIIFAuth.text(auth.access.label) || 'Sign in';
      button.hidden = auth.access.profile === 'external';
      button.onclick = function () {
        IIIFAuth.openAccess(auth.access).then(attempt).catch(function (err) { show(err.message, true); });
      };
      if (!sub) show(IIIFAuth.text(result && result.heading) || 'This image is restricted.', true);
    }
    // attempt gets a token and probes with it: on 200 the image opens
    // with the token's info.json; otherwise the prompt says why.
    function attempt() {
      return IIIFAuth.token(auth.token).then(function (msg) {
        if (msg.type !== 'AuthAccessToken2') {
          // Not signed in (missingAspect): the probe's own words, as
          // anyone sees them; other errors say what went wrong.
          return IIIFAuth.probe(auth.probe, null).then(function (result) {
            if (result.status === 200) return open(info);
            if (msg.profile !== 'missingAspect') {
              result.heading = msg.heading || auth.token.errorHeading;
              result.note = msg.note || auth.token.errorNote;
            }
            return ask(result);
          });
        }
        return IIIFAuth.probe(auth.probe, msg.accessToken).then(function (result) {
          if (result.status !== 200) return ask(result);
          prompt.hidden = true;
          if (auth.logout) {
            var out = document.getElementById('logout');
            out.hidden = false;
            out.textContent = IIIFAuth.text(auth.logout.label) || 'Sign out';
            out.onclick = function () { window.open(auth.logout.id, 'iiifd-access'); setTimeout(function () { location.reload(); }, 1000); };
          }
          return loadInfo(msg.accessToken).then(open);
        });
      });
    }
    return attempt();
  }

  // Keyboard: R and Shift+R rotate (OpenSeadragon's own keys zoom and pan).
  el.addEventListener('keydown', function (e) {
    if (viewer && (e.key === 'r' || e.key === 'R')) { viewer.viewport.setRotation(viewer.viewport.getRotation() + (e.shiftKey ? -90 : 90)); }
  });

  // open shows a tile source in OpenSeadragon: an info.json document, or
  // a single image.
  function open(info) {
    if (viewer) viewer.destroy();
    show('Loading tiles…');
    viewer = OpenSeadragon({
      element: el,
      prefixUrl: el.dataset.prefix,
      tileSources: [info],
      showRotationControl: true,
      showFullPageControl: true,
      showNavigator: true,
      autoHideControls: false,
      navigatorPosition: 'BOTTOM_RIGHT',
      maxZoomPixelRatio: 2,
      crossOriginPolicy: 'Anonymous',
      gestureSettingsMouse: { clickToZoom: true }
    });
    window.iiifdViewer = viewer;
    var failed = 0;
    viewer.addHandler('open-failed', function (e) { show('The image could not be opened: ' + (e.message || 'unknown error'), true); });
    viewer.addHandler('tile-loaded', function () { done(); });
    viewer.addHandler('tile-load-failed', function (e) {
      failed++;
      show('A tile could not be loaded' + (failed > 1 ? ' (' + failed + ' so far)' : '') + ': ' + (e.message || e.tile && e.tile.getUrl && e.tile.getUrl() || ''), true);
    });
    el.focus();
  }
}());
