// The operations page: renders the snapshot the server embedded, then asks /ops/status.json for
// a new one every few seconds (data-poll-ms). A failed poll keeps the last picture and says so;
// a 403 or a redirect to the login page (signed out) stops polling.
(function () {
  "use strict";
  var root = document.getElementById("ops");
  if (!root) return;
  var url = root.dataset.statusUrl;
  var every = parseInt(root.dataset.pollMs, 10) || 2500;
  var ops = window.passlineOps = { polls: 0, snapshot: null };

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function seconds(value) {
    if (value === null || value === undefined) return "?";
    if (value < 120) return value.toFixed(1) + " s";
    if (value < 7200) return Math.round(value / 60) + " min";
    return (value / 3600).toFixed(1) + " h";
  }

  function row(cells, className) {
    var tr = el("tr", className);
    cells.forEach(function (cell, index) {
      var node = el(index === 0 ? "th" : "td", null, cell);
      if (index === 0) node.scope = "row";
      tr.appendChild(node);
    });
    return tr;
  }

  function fill(tableId, rows, empty) {
    var body = document.querySelector("#" + tableId + " tbody");
    body.replaceChildren();
    rows.forEach(function (tr) { body.appendChild(tr); });
    if (!rows.length) {
      var tr = el("tr");
      var td = el("td", "muted", empty);
      td.colSpan = document.querySelectorAll("#" + tableId + " thead th").length;
      tr.appendChild(td);
      body.appendChild(tr);
    }
  }

  function render(data) {
    ops.snapshot = data;
    var missing = document.getElementById("ops-missing");
    missing.hidden = !data.missing.length;
    missing.textContent = data.missing.length ? "No live copy of: " + data.missing.join(", ") : "";

    var errors = document.getElementById("ops-errors");
    errors.replaceChildren();
    Object.keys(data.errors).forEach(function (part) {
      errors.appendChild(el("li", null, part + " unreadable: " + data.errors[part]));
    });
    errors.hidden = !errors.children.length;

    fill("ops-roles", data.roles.map(function (role) {
      return row([role.role, role.alive, role.alive ? seconds(role.max_beat_age) + " ago" : "—"],
        role.alive ? "" : "is-down");
    }), "No roles.");
    fill("ops-workers", data.workers.map(function (w) {
      return row([w.role, w.host, w.pid, new Date(w.started * 1000).toLocaleString(),
        seconds(w.beat_age) + " ago", w.handled, seconds(w.lag)], w.lag > 5 ? "is-behind" : "");
    }), "No worker beats.");
    fill("ops-queues", data.queues.map(function (q) {
      if (q.missing) return row([q.queue, "missing", "", ""], "is-down");
      var trouble = (q.kind === "work" && q.ready > 0 && !q.consumers) || (q.kind !== "work" && q.ready > 0);
      return row([q.queue, q.ready, q.unacked, q.consumers], trouble ? "is-behind" : "");
    }), data.errors.queues ? "RabbitMQ unreadable." : "No queues.");

    var outbox = data.outbox;
    document.getElementById("ops-outbox-unsent").textContent = outbox ? outbox.unsent : "?";
    document.getElementById("ops-outbox-age").textContent = outbox ? seconds(outbox.oldest_seconds) : "?";

    var dead = data.dead_letters;
    document.getElementById("ops-dead-total").textContent = dead ? dead.total : "?";
    var deadList = document.getElementById("ops-dead");
    deadList.replaceChildren();
    if (dead) {
      Object.keys(dead.stored).forEach(function (queue) {
        deadList.appendChild(el("li", null, queue + ": " + dead.stored[queue]));
      });
    }

    var breakers = document.getElementById("ops-breakers");
    breakers.replaceChildren();
    var names = Object.keys(data.breakers);
    names.forEach(function (name) {
      var item = el("li", "ops-breaker", name + ": ");
      var state = el("span", "ops-state", data.breakers[name]);
      state.dataset.state = data.breakers[name];
      item.appendChild(state);
      breakers.appendChild(item);
    });
    if (!names.length) breakers.appendChild(el("li", "muted", "No breakers reported."));

    var asOf = document.getElementById("ops-as-of");
    var when = new Date(data.at * 1000);
    asOf.setAttribute("datetime", when.toISOString());
    asOf.textContent = when.toLocaleTimeString();
  }

  function state(name, text) {
    var node = document.getElementById("ops-connection");
    node.dataset.state = name;
    node.textContent = text;
  }

  function poll() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" }, redirect: "manual" })
      .then(function (response) {
        if (response.status === 403 || response.type === "opaqueredirect") {
          state("off", "Signed out or not allowed: reload the page.");
          return null;
        }
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (data) {
        if (data === null) return;
        ops.polls += 1;
        render(data);
        state("live", "");
        setTimeout(poll, every);
      })
      .catch(function () {
        state("stale", "Not updating: retrying…");
        setTimeout(poll, every);
      });
  }

  render(JSON.parse(document.getElementById("ops-snapshot").textContent));
  setTimeout(poll, every);
})();
