// Live updates: the server pushes "change" (Server-Sent Events); we re-fetch the
// server-rendered fragment of this page and swap it in. No build step, no framework.
(function () {
  "use strict";
  var live = document.getElementById("live");
  var status = document.getElementById("live-status");
  if (!live && status) { status.hidden = true; }  // a page that does not update itself (Reports)
  if (!live || !window.EventSource) { return; }
  var url = live.getAttribute("data-fragment");
  var baseTitle = document.title.replace(/^\(\d+\) /, "");
  var busy = false, again = false;

  function setStatus(text, cls) {
    if (status) { status.textContent = text; status.className = "live " + cls; }
  }

  function retitle() {
    var root = live.querySelector(".live-root");
    var unacked = root ? parseInt(root.getAttribute("data-unacked") || "0", 10) : 0;
    document.title = (unacked > 0 ? "(" + unacked + ") " : "") + baseTitle;
  }

  function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (response) {
        if (response.status === 401) { window.location.assign("/login?next=" + encodeURIComponent(window.location.pathname)); return null; }
        return response.ok ? response.text() : null;
      })
      .then(function (html) {
        if (html !== null && html !== undefined) { live.innerHTML = html; retitle(); }
      })
      .catch(function () { setStatus("Offline, retrying\u2026", "off"); })
      .then(function () {
        busy = false;
        if (again) { again = false; refresh(); }
      });
  }

  var source = new EventSource("/live");
  source.addEventListener("change", refresh);
  source.onopen = function () { setStatus("Live", "on"); };
  source.onerror = function () { setStatus("Reconnecting\u2026", "off"); };
  window.setInterval(refresh, 60000);  // durations ("missing for") keep ticking
  retitle();
})();
