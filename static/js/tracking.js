// Live tracking of one order. The server renders the page; this script keeps it current:
// it listens on /ws/orders/<id>/, and when a newer version arrives it fetches the page again
// and swaps the main content, so the browser always shows what the server would render.
// After a network drop it reconnects with growing back-off and resumes after the last
// version it showed, so nothing is missed and nothing is shown twice or out of order.
(function () {
  "use strict";
  var main = document.getElementById("main");
  if (!main || !main.dataset.orderId || !("WebSocket" in window)) return;

  var orderId = main.dataset.orderId;
  var shown = parseInt(main.dataset.orderVersion, 10) || 0;
  var wanted = shown;
  var delay = 1000;
  var refreshing = false;
  var socket = null;

  var badge = document.createElement("p");
  badge.className = "live-state";
  badge.setAttribute("role", "status");
  badge.setAttribute("aria-live", "polite");
  badge.id = "live-state";
  var header = main.querySelector(".order-header") || main.firstElementChild;
  if (header && header.parentNode) header.parentNode.insertBefore(badge, header.nextSibling);

  function setState(state, text) {
    badge.dataset.state = state;
    badge.textContent = text;
  }

  function refresh() {
    // One fetch at a time; if more changes arrive meanwhile, fetch again after.
    if (refreshing || wanted <= shown) return;
    refreshing = true;
    fetch(window.location.href, { credentials: "same-origin", headers: { "X-Requested-With": "live" } })
      .then(function (response) { return response.ok ? response.text() : Promise.reject(response.status); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.getElementById("main");
        var version = fresh ? parseInt(fresh.dataset.orderVersion, 10) || 0 : 0;
        if (fresh && version > shown) {
          main.innerHTML = fresh.innerHTML;
          main.dataset.orderVersion = String(version);
          main.dataset.status = fresh.dataset.status;
          var anchor = main.querySelector(".order-header") || main.firstElementChild;
          if (anchor && anchor.parentNode) anchor.parentNode.insertBefore(badge, anchor.nextSibling);
          shown = version;
        }
      })
      .catch(function () { /* the next update or reconnect tries again */ })
      .then(function () {
        refreshing = false;
        if (wanted > shown) window.setTimeout(refresh, 250);
      });
  }

  var timer = null;

  function scheduleReconnect() {
    setState("reconnecting", "Connection lost: reconnecting…");
    if (timer) window.clearTimeout(timer);
    timer = window.setTimeout(function () { timer = null; connect(); }, delay);
    delay = Math.min(delay * 2, 15000);
  }

  function drop() {
    // Give up on the current socket at once: without a network its closing handshake may
    // never finish, so waiting for its close event could leave the page silently stale.
    if (!socket) return;
    var old = socket;
    socket = null;
    old.onopen = old.onmessage = old.onclose = null;
    try { old.close(); } catch (e) { /* already closed */ }
    scheduleReconnect();
  }

  function connect() {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    var current = new WebSocket(scheme + window.location.host + "/ws/orders/" + orderId + "/");
    socket = current;
    setState("connecting", "Connecting to live updates…");
    var lastHeard = Date.now();
    // Heartbeat: a ping every 20 s; no answer within 30 s means a dead connection (a proxy
    // or a sleeping device can leave it half-open), so drop it and reconnect. Each beat also
    // resumes after the version shown: the live layer may drop any update, the last one
    // included, and the server answers with only what this page is missing (usually nothing).
    var heartbeat = window.setInterval(function () {
      if (socket !== current) { window.clearInterval(heartbeat); return; }
      if (current.readyState !== WebSocket.OPEN) return;
      if (Date.now() - lastHeard > 30000) { window.clearInterval(heartbeat); drop(); return; }
      current.send(JSON.stringify({ type: "ping" }));
      current.send(JSON.stringify({ type: "resume", after_version: shown }));
    }, 20000);
    current.onopen = function () {
      delay = 1000;
      setState("live", "Live: this page updates by itself");
      current.send(JSON.stringify({ type: "resume", after_version: shown }));
    };
    current.onmessage = function (event) {
      lastHeard = Date.now();
      var frame;
      try { frame = JSON.parse(event.data); } catch (e) { return; }
      var version = frame.type === "order.snapshot" ? frame.order.version : frame.version;
      if (typeof version === "number" && version > wanted) {
        wanted = version;
        refresh();
      }
    };
    current.onclose = function (event) {
      window.clearInterval(heartbeat);
      if (socket !== current) return;
      socket = null;
      if (event.code === 4401 || event.code === 4403) {
        setState("off", "Live updates are off for this page. Reload to try again.");
        return;
      }
      scheduleReconnect();
    };
  }

  // Drop the connection and go through the reconnect path (as a network drop would).
  document.addEventListener("passline:reconnect", drop);

  window.addEventListener("online", function () {
    // Back online: try now rather than at the end of the back-off.
    if (socket && socket.readyState === WebSocket.OPEN) return;
    if (socket) {
      var stale = socket;
      socket = null;
      stale.onopen = stale.onmessage = stale.onclose = null;
      try { stale.close(); } catch (e) { /* never opened */ }
    }
    delay = 1000;
    if (timer) { window.clearTimeout(timer); timer = null; }
    connect();
  });
  connect();
})();
