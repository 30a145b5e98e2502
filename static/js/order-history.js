// The order history, live: each order's status follows the customer's own socket (/ws/me/,
// `order.update` frames). When a frame brings a newer version of an order on this page, the
// page is fetched again and the changed rows' statuses swapped in, so the list always shows
// what the server would render. Every (re)connect fetches it too: the live layer may have
// dropped an update while the socket was down, and the database has it.
// The socket is the notifications' (notifications.js passes its frames on as DOM events) when
// the customer keeps browser notifications on; otherwise this script opens its own.
(function () {
  "use strict";
  var list = document.querySelector("[data-live-orders]");
  if (!list || !window.PasslineLive) return;
  var announcer = document.getElementById("orders-live");
  var refreshing = false;
  var again = false;

  function row(orderId) {
    return list.querySelector('li[data-order-id="' + orderId + '"]');
  }

  function version(node) {
    return parseInt(node.dataset.orderVersion, 10) || 0;
  }

  function refresh() {
    // One fetch at a time; a change that arrives meanwhile fetches again after.
    if (refreshing) { again = true; return; }
    refreshing = true;
    again = false;
    fetch(window.location.href, { credentials: "same-origin", headers: { "X-Requested-With": "live" } })
      .then(function (response) { return response.ok ? response.text() : Promise.reject(response.status); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var said = [];
        doc.querySelectorAll("[data-live-orders] li[data-order-id]").forEach(function (fresh) {
          var current = row(fresh.dataset.orderId);
          if (!current || version(fresh) <= version(current)) return;
          var badge = current.querySelector("[data-status-badge]");
          var freshBadge = fresh.querySelector("[data-status-badge]");
          if (badge && freshBadge) {
            badge.className = freshBadge.className;
            badge.textContent = freshBadge.textContent;
          }
          // The details line too: an order that became paid gains its receipt link.
          var details = current.querySelector("[data-order-details]");
          var freshDetails = fresh.querySelector("[data-order-details]");
          if (details && freshDetails) details.innerHTML = freshDetails.innerHTML;
          current.dataset.orderVersion = fresh.dataset.orderVersion;
          current.dataset.status = fresh.dataset.status;
          var title = current.querySelector(".order-row-title");
          said.push((title ? title.textContent.trim() + ", order #" : "Order #") + current.dataset.orderId +
                    ": " + (freshBadge ? freshBadge.textContent.trim() : fresh.dataset.status));
        });
        if (announcer && said.length) announcer.textContent = said.join(". ");
      })
      .catch(function () { /* the next update or reconnect tries again */ })
      .then(function () {
        refreshing = false;
        if (again) window.setTimeout(refresh, 250);
      });
  }

  function onFrame(frame) {
    if (!frame || frame.type !== "order.update") return;
    var current = row(frame.order_id);
    if (current && typeof frame.version === "number" && frame.version > version(current)) refresh();
  }

  if (document.getElementById("notifications")) {
    document.addEventListener("passline:me-frame", function (event) { onFrame(event.detail); });
    document.addEventListener("passline:me-opened", refresh);
  } else {
    window.PasslineLive.open("/ws/me/", { frame: onFrame, opened: refresh });
  }
})();
