/* Passline: small progressive enhancements. Every page works without this file. */
(function () {
  "use strict";

  // Forms marked data-submit-once disable their buttons after the first submit, so a
  // double click sends one request. (The server is idempotent either way.)
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement)) return;
    if (form.hasAttribute("data-submit-once")) {
      if (form.dataset.submitted === "true") {
        event.preventDefault();
        return;
      }
      form.dataset.submitted = "true";
      form.setAttribute("aria-busy", "true");
    }
  });

  // A control marked data-autosubmit submits its form when it changes (no inline handlers:
  // the Content-Security-Policy allows scripts from files only).
  document.addEventListener("change", function (event) {
    var control = event.target;
    if (control instanceof Element && control.hasAttribute("data-autosubmit") && control.form) {
      control.form.submit();
    }
  });

  // Coming back with the Back button (bfcache) must not leave a form locked.
  window.addEventListener("pageshow", function (event) {
    if (!event.persisted) return;
    document.querySelectorAll("form[data-submitted]").forEach(function (form) {
      delete form.dataset.submitted;
      form.removeAttribute("aria-busy");
    });
  });

  // Phones: the navigation folds under a menu button (the CSS shows the button on narrow
  // screens only; without this script the links wrap under the wordmark instead). Escape or a
  // tap outside closes it.
  var toggle = document.getElementById("nav-toggle");
  var header = toggle ? toggle.closest(".site-header") : null;
  if (toggle && header) {
    var setOpen = function (open) {
      toggle.setAttribute("aria-expanded", open ? "true" : "false");
      header.classList.toggle("nav-open", open);
    };
    var isOpen = function () { return toggle.getAttribute("aria-expanded") === "true"; };
    header.classList.add("nav-collapsible");
    toggle.hidden = false;
    toggle.addEventListener("click", function () { setOpen(!isOpen()); });
    document.addEventListener("keydown", function (event) {
      if (event.key === "Escape" && isOpen()) {
        setOpen(false);
        toggle.focus();
      }
    });
    document.addEventListener("click", function (event) {
      if (isOpen() && !header.contains(event.target)) setOpen(false);
    });
  }

  // Messages after a redirect: move focus to the first alert so screen readers hear it.
  var alert = document.querySelector(".alerts [role='alert']");
  if (alert) {
    alert.setAttribute("tabindex", "-1");
    alert.focus({ preventScroll: true });
  }
})();
