// Live stock on a menu page: when a dish's stock changes (another customer just ordered the
// last one), fetch the page again and swap in that dish as the server now renders it —
// "Sold out", "Only 2 left today", the add button gone. After a dropped connection every
// dish is swapped in again, since changes made meanwhile were not heard.
(function () {
  "use strict";
  var main = document.getElementById("main");
  if (!main || !main.dataset.restaurantId || !window.PasslineLive) return;

  function swap(itemId) {
    fetch(window.location.href, { credentials: "same-origin", headers: { "X-Requested-With": "live" } })
      .then(function (response) { return response.ok ? response.text() : Promise.reject(response.status); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = itemId ? [doc.getElementById("item-" + itemId)] : doc.querySelectorAll('[id^="item-"]');
        Array.prototype.forEach.call(fresh, function (item) {
          var current = item && document.getElementById(item.id);
          if (current) current.replaceWith(document.importNode(item, true));
        });
      })
      .catch(function () { /* the next change tries again */ });
  }

  window.PasslineLive.open("/ws/menus/" + main.dataset.restaurantId + "/", {
    state: function (state) { main.dataset.live = state === "open" ? "on" : "off"; },
    opened: function (again) { if (again) swap(null); },
    frame: function (frame) { if (frame.type === "menu.stock") swap(frame.menu_item_id); }
  });
})();
