// Registers the site's Service Worker (iiif-sw.js), whose scope is the
// site's root, so that the pages get the whole IIIF Image API from the
// stored tiles. Without it (an old browser, a file: URL) the pages work
// with the stored level-0 service. window.iiifdServiceWorker is a
// promise that settles when the worker controls the page (or never will).
(function () {
  'use strict';
  var sw = navigator.serviceWorker;
  if (!sw || !window.isSecureContext) {
    window.iiifdServiceWorker = Promise.resolve(null);
    return;
  }
  var me = document.currentScript && document.currentScript.src;
  var url = me ? new URL('iiif-sw.js', me).href : 'iiif-sw.js';
  window.iiifdServiceWorker = sw.register(url).then(function (reg) {
    if (sw.controller) return reg;
    return new Promise(function (resolve) {
      sw.addEventListener('controllerchange', function () { resolve(reg); }, { once: true });
    });
  }).catch(function (err) {
    console.warn('iiifd: the Service Worker could not be registered; the stored level-0 service is used:', err && err.message);
    return null;
  });
})();
