// Notifications on any page: the signed-in customer's orders, as they move (only for
// customers who keep "Show live notifications in my browser" on). The order's own tracking
// page updates itself, so it shows no toast for that order.
(function () {
  "use strict";
  var box = document.getElementById("notifications");
  if (!box || !window.PasslineLive) return;
  var main = document.getElementById("main");
  var base = box.dataset.ordersUrl || "/orders/";
  var seen = {};

  function toast(frame) {
    var item = document.createElement("a");
    item.className = "toast";
    item.href = base + frame.order_id + "/";
    item.textContent = "Order #" + frame.order_id + ": " + frame.label;
    box.appendChild(item);
    window.setTimeout(function () { item.remove(); }, 8000);
  }

  window.PasslineLive.open("/ws/me/", {
    frame: function (frame) {
      if (frame.type !== "order.update") return;
      if ((seen[frame.order_id] || 0) >= frame.version) return;  // duplicate or older
      seen[frame.order_id] = frame.version;
      if (main && main.dataset.orderId === String(frame.order_id)) return;
      toast(frame);
    }
  });
})();
