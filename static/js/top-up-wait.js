// The page a browser waits on while the billing worker asks the payment provider for a top-up's
// card page: polls the top-up's status and goes on as soon as there is somewhere to go (the
// provider's page, or the wallet once the top-up is settled). Without JavaScript the page
// reloads itself (a <noscript> refresh) and the server redirects.
(function () {
  "use strict";
  const box = document.getElementById("top-up-wait");
  if (!box) return;
  const url = box.dataset.statusUrl;
  const slow = box.querySelector("[data-wait-slow]");
  const unavailable = box.querySelector("[data-wait-unavailable]");
  const started = Date.now();
  let delay = 500;

  async function poll() {
    try {
      const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (response.ok) {
        const body = await response.json();
        if (body.redirect) {
          window.location.assign(body.redirect);
          return;
        }
        if (unavailable) unavailable.hidden = body.payments_available !== false;
      }
    } catch (error) {
      // A network blip: try again at the next tick.
    }
    if (slow && Date.now() - started > 8000) slow.hidden = false;
    delay = Math.min(delay * 1.5, 5000);
    window.setTimeout(poll, delay);
  }

  window.setTimeout(poll, delay);
})();
