// Live tracking of one order. The server renders the page; this script keeps it current:
// it listens on /ws/orders/<id>/, and when a newer version arrives it fetches the page again
// and swaps the main content, so the browser always shows what the server would render.
// On every (re)connect and with every heartbeat it resumes after the version it shows (the
// live layer may drop any update, the last one included, and the server answers with only
// what this page lacks), so nothing is missed and nothing is shown twice or out of order.
// The connection itself (heartbeat, back-off, going offline) is live-socket.js's.
(function () {
  "use strict";
  var main = document.getElementById("main");
  if (!main || !main.dataset.orderId || !window.PasslineLive) return;

  var orderId = main.dataset.orderId;
  var shown = parseInt(main.dataset.orderVersion, 10) || 0;
  var wanted = shown;
  var refreshing = false;

  var badge = document.createElement("p");
  badge.className = "live-state";
  badge.setAttribute("role", "status");
  badge.setAttribute("aria-live", "polite");
  badge.id = "live-state";
  var header = main.querySelector(".order-header") || main.firstElementChild;
  if (header && header.parentNode) header.parentNode.insertBefore(badge, header.nextSibling);

  // What a screen reader hears when the order moves on: a polite status region outside
  // #main (whose content is swapped on each change, and a replaced region is not read).
  var announcer = document.createElement("p");
  announcer.id = "order-status-live";
  announcer.className = "visually-hidden";
  announcer.setAttribute("role", "status");
  announcer.setAttribute("aria-live", "polite");
  document.body.appendChild(announcer);

  function announce() {
    var status = main.querySelector("#order-status");
    if (!status) return;
    var text = "Order #" + orderId + ": " + status.textContent.trim();
    // A failed payment arrives with what to do about it (the page's retry actions).
    if (main.querySelector("[data-payment-retry]")) text += ". You can top up and try again, or order again.";
    announcer.textContent = text;
  }

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
          announce();
        }
      })
      .catch(function () { /* the next update or reconnect tries again */ })
      .then(function () {
        refreshing = false;
        if (wanted > shown) window.setTimeout(refresh, 250);
      });
  }

  var STATES = {
    connecting: "Connecting to live updates…",
    open: "Live: this page updates by itself",
    reconnecting: "Connection lost: reconnecting…",
    off: "Live updates are off for this page. Reload to try again.",
    4401: "Live updates stopped: you were signed out. Log in again to follow this order.",
    4403: "Live updates stopped: this order is no longer yours to follow."
  };

  function resume() { return { type: "resume", after_version: shown }; }
  // While this page is visible the customer sees every step happen, so the server sends no
  // email or SMS for them (unless the customer asked for those too); a hidden tab does not count.
  function watching() { return { type: "watching", visible: document.visibilityState === "visible" }; }

  var live = window.PasslineLive.open("/ws/orders/" + orderId + "/", {
    state: function (state, code) { setState(state === "open" ? "live" : state, STATES[code] || STATES[state]); },
    opened: function () { live.send(watching()); live.send(resume()); },
    beat: function () { return [watching(), resume()]; },
    frame: function (frame) {
      var version = frame.type === "order.snapshot" ? frame.order.version : frame.version;
      if (typeof version === "number" && version > wanted) {
        wanted = version;
        refresh();
      }
    }
  });
  document.addEventListener("visibilitychange", function () { live.send(watching()); });
})();
