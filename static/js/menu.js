// Live stock on a menu page. Each dish is rendered with what it had left (data-remaining, empty
// without a daily limit) and whether it could be ordered (data-available). On every (re)connect
// the socket first sends menu.snapshot, the stock as it is now: a dish that changed since the
// page was rendered (sold out meanwhile, or while the connection was down) is fetched again and
// swapped in as the server now renders it — "Sold out", "Only 2 left today", the add button
// gone. Then each menu.stock (another customer just ordered the last one) or menu.item (the staff
// changed a price, a name, or marked it sold out) swaps in that dish (a dish not shown yet, just
// added, brings the whole menu), and menu.state (busy mode, closed, new hours, a category added,
// renamed or moved, a dish moved) swaps in the restaurant's state and the whole menu: its
// categories, their order and every dish, whose add buttons depend on the state. A pause or a closed spell that ends by itself has no event: the page fetches its state
// again at the time the notice gives (data-next-change).
(function () {
  "use strict";
  var main = document.getElementById("main");
  if (!main || !main.dataset.restaurantId || !window.PasslineLive) return;

  var STATE_IDS = ["restaurant-badge", "today-hours", "restaurant-notice"];
  var stateTimer = null;

  function replace(fresh) {
    var current = fresh && document.getElementById(fresh.id);
    if (current) current.replaceWith(document.importNode(fresh, true));
  }

  function scheduleStateCheck() {
    var notice = document.getElementById("restaurant-notice");
    var at = notice && notice.dataset.nextChange ? Date.parse(notice.dataset.nextChange) : NaN;
    if (stateTimer) clearTimeout(stateTimer);
    stateTimer = null;
    // Within a day only (timers further out are unreliable); a second after, so the server agrees.
    if (!isNaN(at) && at - Date.now() < 86400000) {
      stateTimer = setTimeout(function () { swap(null, true); }, Math.max(at - Date.now(), 0) + 1000);
    }
  }

  function swap(itemId, withState) {
    fetch(window.location.href, { credentials: "same-origin", headers: { "X-Requested-With": "live" } })
      .then(function (response) { return response.ok ? response.text() : Promise.reject(response.status); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        if (withState || (itemId && !document.getElementById("item-" + itemId))) {
          replace(doc.getElementById("menu-body"));
        } else {
          var fresh = itemId ? [doc.getElementById("item-" + itemId)] : doc.querySelectorAll('[id^="item-"]');
          Array.prototype.forEach.call(fresh, replace);
        }
        if (withState) {
          STATE_IDS.forEach(function (id) { replace(doc.getElementById(id)); });
          scheduleStateCheck();
        }
      })
      .catch(function () { /* the next change tries again */ });
  }

  scheduleStateCheck();

  function shownDiffers(item) {
    var dish = document.getElementById("item-" + item.menu_item_id);
    if (!dish) return false;
    var remaining = item.remaining === null ? "" : String(item.remaining);
    return dish.dataset.remaining !== remaining || dish.dataset.available !== String(item.available);
  }

  function applySnapshot(snapshot) {
    // The snapshot has stock only; a reconnect may also have missed a price or a busy spell,
    // so after a reconnect (not the first connect) the whole menu and its state are fetched.
    if (connectedBefore) { swap(null, true); return; }
    connectedBefore = true;
    var changed = (snapshot.items || []).filter(shownDiffers);
    if (changed.length === 1) swap(changed[0].menu_item_id);
    else if (changed.length > 1) swap(null);
  }
  var connectedBefore = false;

  window.PasslineLive.open("/ws/menus/" + main.dataset.restaurantId + "/", {
    state: function (state) { main.dataset.live = state === "open" ? "on" : "off"; },
    frame: function (frame) {
      if (frame.type === "menu.snapshot") applySnapshot(frame);
      else if (frame.type === "menu.stock" || frame.type === "menu.item") swap(frame.menu_item_id);
      else if (frame.type === "menu.state") swap(null, true);
    }
  });
})();
