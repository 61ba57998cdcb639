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
  fetch(el.dataset.info, { headers: { Accept: 'application/ld+json' } })
    .then(function (res) {
      return res.text().then(function (text) {
        if (!res.ok) throw new Error('The image information could not be loaded (' + res.status + '): ' + text.trim());
        return JSON.parse(text);
      });
    })
    .then(function (info) {
      show('Loading tiles…');
      var viewer = OpenSeadragon({
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
      // Keyboard: R and Shift+R rotate (OpenSeadragon's own keys zoom and pan).
      el.addEventListener('keydown', function (e) {
        if (e.key === 'r' || e.key === 'R') { viewer.viewport.setRotation(viewer.viewport.getRotation() + (e.shiftKey ? -90 : 90)); }
      });
      el.focus();
    })
    .catch(function (err) { show(err.message, true); });
}());
