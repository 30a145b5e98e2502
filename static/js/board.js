// The pick-up board follows the restaurant's orders live. On every (re)connect the socket first
// sends board.snapshot, the orders the board shows now: the columns are drawn from it (numbers
// only, as the server renders them). On every board.update it fetches the board again and swaps
// the columns (server-rendered).
(function () {
  "use strict";
  var main = document.getElementById("main");
  if (!main || !main.dataset.restaurantId || !window.PasslineLive) return;
  var busy = false;
  var again = false;
  // The board's two columns: accepted and preparing orders are "preparing", ready ones "ready".
  var EMPTY = { preparing: "Nothing in the kitchen right now", ready: "No orders waiting" };

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

  function draw(snapshot) {
    Object.keys(EMPTY).forEach(function (column) {
      var list = main.querySelector('[data-column="' + column + '"]');
      if (!list) return;
      var numbers = (snapshot.orders || []).filter(function (order) {
        return (order.status === "ready" ? "ready" : "preparing") === column;
      });
      list.replaceChildren.apply(list, numbers.length ? numbers.map(function (order) {
        var item = document.createElement("li");
        item.dataset.orderId = String(order.order_id);
        item.dataset.fulfilment = order.fulfilment || "delivery";
        item.textContent = "#" + order.order_id;
        if (item.dataset.fulfilment !== "pickup") {
          var courier = document.createElement("span");
          courier.className = "board-courier";
          courier.textContent = "Courier";
          item.append(" ", courier);
        }
        return item;
      }) : [(function () {
        var item = document.createElement("li");
        item.className = "muted board-empty";
        item.textContent = EMPTY[column];
        return item;
      })()]);
    });
  }

  window.PasslineLive.open("/ws/boards/" + main.dataset.restaurantId + "/", {
    state: function (state) { main.dataset.live = state === "open" ? "on" : "off"; },
    frame: function (frame) {
      if (frame.type === "board.snapshot") draw(frame);
      else if (frame.type === "board.update") refresh();
    }
  });
})();
