// Live stock on a menu page. Each dish is rendered with what it had left (data-remaining, empty
// without a daily limit) and whether it could be ordered (data-available). On every (re)connect
// the socket first sends menu.snapshot, the stock as it is now: a dish that changed since the
// page was rendered (sold out meanwhile, or while the connection was down) is fetched again and
// swapped in as the server now renders it — "Sold out", "Only 2 left today", the add button
// gone. Then each menu.stock (another customer just ordered the last one) swaps in that dish.
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

  function shownDiffers(item) {
    var dish = document.getElementById("item-" + item.menu_item_id);
    if (!dish) return false;
    var remaining = item.remaining === null ? "" : String(item.remaining);
    return dish.dataset.remaining !== remaining || dish.dataset.available !== String(item.available);
  }

  function applySnapshot(snapshot) {
    var changed = (snapshot.items || []).filter(shownDiffers);
    if (changed.length === 1) swap(changed[0].menu_item_id);
    else if (changed.length > 1) swap(null);
  }

  window.PasslineLive.open("/ws/menus/" + main.dataset.restaurantId + "/", {
    state: function (state) { main.dataset.live = state === "open" ? "on" : "off"; },
    frame: function (frame) {
      if (frame.type === "menu.snapshot") applySnapshot(frame);
      else if (frame.type === "menu.stock") swap(frame.menu_item_id);
    }
  });
})();
