// The pick-up board follows the restaurant's orders live: on every change it fetches the
// board again and swaps the columns (server-rendered); a dropped connection reconnects.
(function () {
  "use strict";
  var main = document.getElementById("main");
  if (!main || !main.dataset.restaurantId || !("WebSocket" in window)) return;
  var delay = 1000;
  var busy = false;
  var again = false;

  function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    fetch(window.location.href, { credentials: "same-origin", headers: { "X-Requested-With": "live" } })
      .then(function (response) { return response.ok ? response.text() : Promise.reject(response.status); })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html").querySelector(".board-columns");
        var current = main.querySelector(".board-columns");
        if (fresh && current) current.replaceWith(document.importNode(fresh, true));
      })
      .catch(function () {})
      .then(function () { busy = false; if (again) { again = false; refresh(); } });
  }

  function connect() {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    var socket = new WebSocket(scheme + window.location.host + "/ws/boards/" + main.dataset.restaurantId + "/");
    socket.onopen = function () { delay = 1000; main.dataset.live = "on"; refresh(); };
    socket.onmessage = refresh;
    socket.onclose = function () {
      main.dataset.live = "off";
      window.setTimeout(connect, delay);
      delay = Math.min(delay * 2, 15000);
    };
  }
  connect();
})();
