// Uploads: the admin token is kept in sessionStorage (this tab only) and
// sent as a bearer token; each file is sent with XMLHttpRequest, which
// reports upload progress, then its ingest job is followed until done.
(function () {
  'use strict';
  var form = document.getElementById('upload-form');
  if (!form) return;
  var token = document.getElementById('token');
  var input = document.getElementById('file');
  var drop = document.getElementById('drop');
  var list = document.getElementById('uploads');
  var base = form.dataset.base;
  token.value = sessionStorage.getItem('iiifd-admin-token') || '';
  token.addEventListener('change', function () { sessionStorage.setItem('iiifd-admin-token', token.value); });

  function row(name) {
    var li = document.createElement('li');
    var label = document.createElement('span');
    label.textContent = name + ': ';
    var state = document.createElement('span');
    state.className = 'state';
    state.setAttribute('role', 'status');
    var bar = document.createElement('progress');
    bar.max = 100; bar.value = 0;
    bar.setAttribute('aria-label', 'Progress of ' + name);
    li.append(label, state, bar);
    list.prepend(li);
    return { li: li, state: state, bar: bar };
  }
  function fail(r, msg) {
    r.state.textContent = msg;
    r.state.className = 'state error';
    r.bar.remove();
  }
  function follow(r, url) {
    fetch(url, { headers: { Authorization: 'Bearer ' + token.value } })
      .then(function (res) { return res.json(); })
      .then(function (j) {
        if (j.state === 'failed' || j.error) return fail(r, 'Failed: ' + j.error);
        if (j.state === 'done') {
          r.bar.value = 100;
          r.state.className = 'state ok';
          r.state.textContent = 'Ready as ';
          var a = document.createElement('a');
          a.href = j.viewer; a.textContent = j.identifier;
          r.state.append(a);
          return;
        }
        r.state.textContent = (j.state === 'queued' ? 'Waiting to convert' : 'Converting into a pyramid') + ' (' + j.percent + ' %)';
        r.bar.value = j.percent;
        setTimeout(function () { follow(r, url); }, 400);
      })
      .catch(function (e) { fail(r, 'Lost track of the conversion: ' + e.message); });
  }
  function send(file) {
    var r = row(file.name);
    if (!token.value) return fail(r, 'Enter the admin token first.');
    var data = new FormData();
    data.append('file', file, file.name);
    var xhr = new XMLHttpRequest();
    xhr.open('POST', base + '/admin/images');
    xhr.setRequestHeader('Authorization', 'Bearer ' + token.value);
    xhr.upload.onprogress = function (e) {
      if (e.lengthComputable) {
        var p = Math.round(100 * e.loaded / e.total);
        r.state.textContent = 'Uploading (' + p + ' %)';
        r.bar.value = p;
      }
    };
    xhr.onerror = function () { fail(r, 'The upload failed: the connection was lost.'); };
    xhr.onload = function () {
      var j = {};
      try { j = JSON.parse(xhr.responseText); } catch (e) { /* not JSON */ }
      if (xhr.status >= 300) return fail(r, 'Refused (' + xhr.status + '): ' + (j.error || xhr.statusText));
      r.bar.value = 0;
      follow(r, j.url);
    };
    r.state.textContent = 'Uploading';
    xhr.send(data);
  }
  form.addEventListener('submit', function (e) {
    e.preventDefault();
    sessionStorage.setItem('iiifd-admin-token', token.value);
    Array.prototype.forEach.call(input.files, send);
    input.value = '';
  });
  ['dragenter', 'dragover'].forEach(function (t) {
    drop.addEventListener(t, function (e) { e.preventDefault(); drop.classList.add('over'); });
  });
  ['dragleave', 'drop'].forEach(function (t) {
    drop.addEventListener(t, function (e) { e.preventDefault(); drop.classList.remove('over'); });
  });
  drop.addEventListener('drop', function (e) {
    sessionStorage.setItem('iiifd-admin-token', token.value);
    Array.prototype.forEach.call(e.dataTransfer.files, send);
  });
}());
