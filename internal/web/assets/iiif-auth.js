// The client side of the IIIF Authorization Flow API 2.0, for the
// built-in viewer and for any page that loads this script: find the probe
// service in an info.json, ask it what this browser may see, show the
// access service's prompt, open it, get an access token through the token
// service's iframe and postMessage, and probe again.
//   IIIFAuth.services(info)        -> {probe, access, token, logout} or null
//   IIIFAuth.token(tokenService)   -> Promise of the AuthAccessToken2 or
//                                     AuthAccessTokenError2 message
//   IIIFAuth.probe(probe, token)   -> Promise of the AuthProbeResult2
//   IIIFAuth.openAccess(access)    -> Promise, resolved when its window closes
//   IIIFAuth.text(languageMap)     -> the English (or first) string
(function () {
  'use strict';
  function list(v) { return v ? (Array.isArray(v) ? v : [v]) : []; }
  function typeOf(s) { return s && (s.type || s['@type']); }
  function find(arr, type) { return list(arr).filter(function (s) { return typeOf(s) === type; })[0]; }

  function services(info) {
    var probe = find(info && info.service, 'AuthProbeService2');
    if (!probe) return null;
    // Profiles a browser client can drive: active and kiosk open a window;
    // external needs none (the token service is asked right away).
    var access = list(probe.service).filter(function (s) { return typeOf(s) === 'AuthAccessService2'; })[0];
    if (!access) return null;
    return {
      probe: probe,
      access: access,
      token: find(access.service, 'AuthAccessTokenService2'),
      logout: find(access.service, 'AuthLogoutService2')
    };
  }

  function text(m) {
    if (!m) return '';
    if (typeof m === 'string') return m;
    var v = m.en || m.none || m[Object.keys(m)[0]];
    return list(v).join(' ');
  }

  var counter = 0;
  // token loads the token service in a hidden iframe; the page there
  // posts its answer to this window, which is matched by messageId and
  // by the service's origin.
  function token(svc) {
    return new Promise(function (resolve, reject) {
      var id = 'iiifd-' + Date.now() + '-' + (++counter);
      var origin = new URL(svc.id, location.href).origin;
      var frame = document.createElement('iframe');
      var timer;
      function done(msg, err) {
        window.removeEventListener('message', onMessage);
        clearTimeout(timer);
        frame.remove();
        if (err) reject(err); else resolve(msg);
      }
      function onMessage(e) {
        if (e.origin !== origin || !e.data || e.data.messageId !== id) return;
        done(e.data);
      }
      window.addEventListener('message', onMessage);
      timer = setTimeout(function () { done(null, new Error('the token service did not answer')); }, 15000);
      frame.hidden = true;
      frame.title = 'IIIF token service';
      frame.src = svc.id + (svc.id.indexOf('?') < 0 ? '?' : '&') + 'messageId=' + encodeURIComponent(id) +
        '&origin=' + encodeURIComponent(location.origin);
      document.body.appendChild(frame);
    });
  }

  function probe(svc, accessToken) {
    var headers = {};
    if (accessToken) headers.Authorization = 'Bearer ' + accessToken;
    return fetch(svc.id, { headers: headers, credentials: 'omit' }).then(function (res) { return res.json(); });
  }

  // openAccess opens the access service in a window (it must be called
  // from a user's click, or browsers block it) and resolves when the
  // window has closed.
  function openAccess(svc) {
    return new Promise(function (resolve, reject) {
      var url = svc.id + (svc.id.indexOf('?') < 0 ? '?' : '&') + 'origin=' + encodeURIComponent(location.origin);
      var w = window.open(url, 'iiifd-access');
      if (!w) { reject(new Error('the sign-in window was blocked')); return; }
      var poll = setInterval(function () {
        if (w.closed) { clearInterval(poll); resolve(); }
      }, 250);
    });
  }

  window.IIIFAuth = { services: services, token: token, probe: probe, openAccess: openAccess, text: text };
}());
