// The pick-up board follows the restaurant's orders live: on every change, and on every
// (re)connect, it fetches the board again and swaps the columns (server-rendered).
(function () {
  "use strict";
  var main = document.getElementById("main");
  if (!main || !main.dataset.restaurantId || !window.PasslineLive) return;
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

  window.PasslineLive.open("/ws/boards/" + main.dataset.restaurantId + "/", {
    state: function (state) { main.dataset.live = state === "open" ? "on" : "off"; },
    opened: refresh,
    frame: refresh
  });
})();
