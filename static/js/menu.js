// Live stock on a menu page: when a dish's stock changes (another customer just ordered the
// last one), fetch the page again and swap in that dish as the server now renders it —
// "Sold out", "Only 2 left today", the add button gone. A dropped connection reconnects.
(function () {
  "use strict";
  var main = document.getElementById("main");
  if (!main || !main.dataset.restaurantId || !("WebSocket" in window)) return;
  var delay = 1000;

  function swap(itemId) {
    fetch(window.location.href, { credentials: "same-origin", headers: { "X-Requested-With": "live" } })
      .then(function (response) { return response.ok ? response.text() : Promise.reject(response.status); })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("item-" + itemId);
        var current = document.getElementById("item-" + itemId);
        if (fresh && current) current.replaceWith(document.importNode(fresh, true));
      })
      .catch(function () { /* the next change tries again */ });
  }

  function connect() {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    var socket = new WebSocket(scheme + window.location.host + "/ws/menus/" + main.dataset.restaurantId + "/");
    socket.onopen = function () { delay = 1000; main.dataset.live = "on"; };
    socket.onmessage = function (event) {
      var frame;
      try { frame = JSON.parse(event.data); } catch (e) { return; }
      if (frame.type === "menu.stock") swap(frame.menu_item_id);
    };
    socket.onclose = function () {
      main.dataset.live = "off";
      window.setTimeout(connect, delay);
      delay = Math.min(delay * 2, 15000);
    };
  }
  connect();
})();
