// Notifications on any page: the notifier's in-browser messages about the signed-in customer's
// orders (for customers who keep "Show live notifications in my browser" on), over /ws/me/.
// A visible page shows a toast; a hidden one asks the browser to show it (the Notification
// API) when the customer allowed that. The key is the notification's: several open tabs show
// it once, and a repeated frame is ignored. The order's own tracking page shows no toast for
// that order: it shows the change itself.
(function () {
  "use strict";
  var box = document.getElementById("notifications");
  if (!box || !window.PasslineLive) return;
  var main = document.getElementById("main");
  var seen = {};

  function toast(frame) {
    var item = document.createElement(frame.link ? "a" : "div");
    item.className = "toast";
    item.dataset.key = frame.key;
    item.dataset.message = frame.message;
    if (frame.link) item.href = frame.link;
    var title = document.createElement("strong");
    title.textContent = frame.title;
    item.appendChild(title);
    if (frame.body) {
      var body = document.createElement("span");
      body.textContent = frame.body;
      item.appendChild(body);
    }
    box.appendChild(item);
    window.setTimeout(function () { item.remove(); }, 8000);
  }

  function byBrowser(frame) {
    if (!("Notification" in window) || Notification.permission !== "granted") return false;
    try {
      var shown = new Notification(frame.title, { body: frame.body, tag: frame.key });
      if (frame.link) shown.onclick = function () { window.focus(); window.location.href = frame.link; };
      return true;
    } catch (e) {
      return false;  // some browsers allow it only from a service worker
    }
  }

  // Other scripts of the page (the order history) use this same socket: every frame and every
  // (re)connect is passed on as a DOM event.
  window.PasslineLive.open("/ws/me/", {
    opened: function (again) {
      document.dispatchEvent(new CustomEvent("passline:me-opened", { detail: { again: again } }));
    },
    frame: function (frame) {
      document.dispatchEvent(new CustomEvent("passline:me-frame", { detail: frame }));
      if (frame.type !== "notification" || seen[frame.key]) return;
      seen[frame.key] = true;
      if (document.visibilityState !== "visible" && byBrowser(frame)) return;
      if (main && frame.order_id && main.dataset.orderId === String(frame.order_id)) return;
      toast(frame);
    }
  });

  // The profile page's "Allow browser notifications" button: the browser asks only on a click.
  var allow = document.getElementById("allow-browser-notifications");
  if (allow && "Notification" in window) {
    var state = document.getElementById("browser-notifications-state");
    var show = function () {
      if (state) state.textContent = { granted: "Allowed", denied: "Blocked in this browser's settings",
                                        "default": "Not asked yet" }[Notification.permission];
      allow.hidden = Notification.permission !== "default";
    };
    allow.addEventListener("click", function () { Notification.requestPermission().then(show); });
    show();
  }
})();
