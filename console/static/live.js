// Live inbox: when the server says the pending list changed, fetch the list fragment and swap it in.
// Without this script (or EventSource) the page still works: the Refresh link reloads it.
(function () {
  "use strict";
  var box = document.getElementById("inbox-list");
  if (!box) return;
  var src = box.getAttribute("data-src");
  var busy = false;
  function reload() {
    if (busy) return;
    busy = true;
    fetch(src, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) { box.innerHTML = html; })
      .catch(function () {})
      .then(function () { busy = false; });
  }
  if (window.EventSource) {
    var es = new EventSource(box.getAttribute("data-events"));
    es.addEventListener("changed", reload);
    // A stream compares against the list as it was when it (re)connected, so catch up on what changed since the page (or the last stream) read it.
    es.addEventListener("open", reload);
    es.onerror = function () {
      // The browser reconnects by itself; a closed stream falls back to polling.
      if (es.readyState === EventSource.CLOSED) setInterval(reload, 15000);
    };
  } else {
    setInterval(reload, 15000);
  }
})();
