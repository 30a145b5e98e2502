// The kitchen screen. Everything on it comes from /ws/kitchen/<restaurant>/: a snapshot of
// the open tickets on connect (and on every {"type": "sync"}), then the whole ticket whenever
// anything on it changes. A ticket is replaced only by a newer revision, so a late or
// duplicated frame never shows an older state. Taps go to the kitchen API; its answer is
// applied at once and every other screen follows through the socket.
//
// Built for a wall tablet that runs all day: it reconnects with back-off and pings to notice
// a dead connection (live-socket.js), asks for a fresh snapshot every minute and when it
// wakes up, keeps the screen awake where the browser allows, and chimes until someone
// acknowledges a new ticket.
//
// Accept is not sent at once: the ticket shows "Accepting… Undo" for a few seconds
// (data-accept-undo-seconds, KITCHEN_ACCEPT_UNDO_SECONDS) and the accept goes to the API only
// when they are over, so an accidental tap undone in time sends nothing and the customer hears
// nothing. A ticket accepted, rejected or cancelled elsewhere meanwhile simply ends the wait.
//
// A reload, closing the tab or leaving the page does not lose a waiting accept: leaving counts
// as not undoing, so on pagehide every waiting accept is sent at once with fetch keepalive
// (which outlives the page, and unlike sendBeacon carries the CSRF header). As a backstop for a
// page that dies without pagehide or a keepalive that never lands, each waiting or in-flight
// accept is also kept in sessionStorage; the next page of this tab, on its first snapshot,
// sends again those left unsent or in flight whose ticket is still paid (a duplicate is a
// harmless 409, not shown) and resumes, with its Undo, one whose time is not over yet.
(function () {
  "use strict";
  var body = document.body;
  var restaurantId = body.dataset.restaurantId;
  if (!restaurantId || !window.PasslineLive) return;

  var LABELS = JSON.parse(document.getElementById("status-labels").textContent);
  var OPEN = ["paid", "accepted", "preparing", "ready", "out_for_delivery"];
  var BUMPABLE = ["accepted", "preparing"];
  var RECENT_MS = 15 * 60 * 1000;
  var CHIME_EVERY_MS = 4000;
  var ACTIONS = {  // what a tap moves an order to, and the button's words
    accepted: "Accept", preparing: "Start", ready: "Ready", out_for_delivery: "Hand to courier",
    delivered: "Delivered", rejected: "Reject…"
  };
  var targetMinutes = parseInt(body.dataset.targetMinutes, 10) || 20;
  var undoMs = Math.max(0, parseInt(body.dataset.acceptUndoSeconds, 10) || 0) * 1000;
  var stations = (body.dataset.stations || "").split(",").filter(Boolean);
  var csrf = document.querySelector('meta[name="csrf-token"]').content;
  var ackKey = "passline:kitchen:" + restaurantId + ":acknowledged";

  var tickets = {};      // id -> ticket (open and recently closed)
  var clockOffset = 0;   // server time minus this device's time
  var acknowledged = loadAcknowledged();
  var accepting = {};    // id -> {until, timer}: accepts waiting out their undo time, not sent yet
  var inflight = {};     // id -> true: accepts sent, not answered yet
  var acceptKey = "passline:kitchen:" + restaurantId + ":accepting";
  var leftByLastPage = loadAccepts();  // id -> {until, sent}: what a previous page of this tab left
  var screen = window.kitchenScreen = { chimes: 0, tickets: tickets, accepting: accepting };

  // --- rendering --------------------------------------------------------------------------

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function now() { return Date.now() + clockOffset; }

  function isOpen(ticket) { return OPEN.indexOf(ticket.status) !== -1; }

  function stepAt(ticket, status) {
    for (var i = ticket.timeline.length - 1; i >= 0; i--) {
      if (ticket.timeline[i].status === status) return Date.parse(ticket.timeline[i].at);
    }
    return null;
  }

  function closedAt(ticket) {
    var last = ticket.timeline[ticket.timeline.length - 1];
    return last ? Date.parse(last.at) : Date.parse(ticket.created_at);
  }

  function visibleItems(ticket) {
    if (!stations.length) return ticket.items;
    return ticket.items.filter(function (item) { return stations.indexOf(item.station) !== -1; });
  }

  function formatElapsed(ms) {
    var total = Math.max(0, Math.floor(ms / 1000));
    var minutes = Math.floor(total / 60), seconds = total % 60;
    return minutes + ":" + (seconds < 10 ? "0" : "") + seconds;
  }

  function timerState(ticket) {
    // From payment until ready, against the restaurant's target: amber from three quarters
    // of it, red past it. Once ready the clock stops at the time it took.
    var start = ticket.paid_at ? Date.parse(ticket.paid_at) : Date.parse(ticket.created_at);
    var readyAt = stepAt(ticket, "ready");
    var running = ["paid", "accepted", "preparing"].indexOf(ticket.status) !== -1;
    var end = running ? now() : (readyAt || closedAt(ticket));
    var elapsed = end - start;
    var share = elapsed / (targetMinutes * 60000);
    return {
      text: formatElapsed(elapsed),
      tone: !running ? "stopped" : share >= 1 ? "red" : share >= 0.75 ? "amber" : "ok"
    };
  }

  function renderTicket(ticket) {
    var card = el("article", "ticket");
    var isNew = ticket.status === "paid" && !acknowledged[ticket.id];
    card.dataset.orderId = ticket.id;
    card.dataset.status = ticket.status;
    card.dataset.version = ticket.version;
    card.dataset.revision = ticket.revision;
    if (isNew) card.classList.add("is-new");
    if (ticket.priority) card.classList.add("is-priority");
    if (!isOpen(ticket)) card.classList.add("is-closed", "is-" + ticket.status);
    card.setAttribute("aria-label", "Order " + ticket.id + ", " + LABELS[ticket.status]);

    var head = el("header", "ticket-head");
    head.appendChild(el("span", "ticket-number", "#" + ticket.id));
    // Pick-up or delivery, and the time of an order placed ahead: which bag, which shelf, when.
    var handover = el("span", "ticket-handover is-" + (ticket.fulfilment || "delivery"),
      ticket.fulfilment === "pickup" ? "Pick-up" : "Delivery");
    head.appendChild(handover);
    if (ticket.scheduled_for) {
      var due = new Date(ticket.scheduled_for);
      var slot = el("span", "ticket-slot", "for " + due.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hour12: false }));
      slot.title = "Ordered ahead for " + due.toLocaleString();
      head.appendChild(slot);
      card.classList.add("is-scheduled");
    }
    var timer = el("span", "ticket-timer");
    timer.dataset.timer = "";
    head.appendChild(timer);
    if (isOpen(ticket)) {
      var flag = el("button", "ticket-flag", ticket.priority ? "★ Rush" : "☆");
      flag.type = "button";
      flag.title = ticket.priority ? "Take the rush flag off" : "Flag to go first";
      flag.setAttribute("aria-pressed", ticket.priority ? "true" : "false");
      flag.setAttribute("aria-label", "Rush");
      flag.addEventListener("click", function () {
        act(flag, ticket, "/priority", { priority: !ticket.priority });
      });
      head.appendChild(flag);
    }
    card.appendChild(head);
    if (!isOpen(ticket)) card.appendChild(el("p", "ticket-outcome", LABELS[ticket.status]));

    var items = visibleItems(ticket);
    var list = el("ul", "ticket-items");
    var bumpable = BUMPABLE.indexOf(ticket.status) !== -1;
    items.forEach(function (item) {
      var li = el("li", "ticket-item" + (item.done ? " is-done" : ""));
      li.dataset.menuItemId = item.menu_item_id;
      var content = bumpable ? el("button", "item-bump") : el("span", "item-line");
      if (bumpable) {
        content.type = "button";
        content.setAttribute("aria-pressed", item.done ? "true" : "false");
        content.title = item.done ? "Put back" : "Cross off";
        content.addEventListener("click", function () {
          // One line: the same dish with other options or another note is crossed off on its own.
          act(content, ticket, "/lines/" + item.line_id + "/done", { done: !item.done });
        });
      }
      content.appendChild(el("span", "item-qty", item.quantity + "×"));
      // Two lines at most on a narrow column (see kitchen.css); the whole name on hover and for
      // screen readers.
      var name = el("span", "item-name", item.name);
      name.title = item.name;
      content.appendChild(name);
      if (!stations.length || stations.length > 1) content.appendChild(el("span", "item-station", item.station));
      var options = optionsText(item);
      if (options) content.appendChild(el("span", "item-options", options));
      if (item.note) content.appendChild(el("span", "item-note", "Note: " + item.note));
      li.appendChild(content);
      list.appendChild(li);
    });
    card.appendChild(list);
    var elsewhere = ticket.items.length - items.length;
    if (elsewhere > 0) card.appendChild(el("p", "ticket-elsewhere", "+ " + elsewhere + " at other stations"));
    if (ticket.notes) card.appendChild(el("p", "ticket-notes", ticket.notes));

    var actions = el("footer", "ticket-actions");
    if (accepting[ticket.id]) {
      // Accept pressed, not sent yet: the only thing to do is to take it back.
      card.classList.add("is-accepting");
      var waiting = el("p", "ticket-accepting");
      waiting.appendChild(document.createTextNode("Accepting… "));
      var left = el("span", "ticket-accepting-left");
      left.dataset.acceptingLeft = "";
      left.textContent = secondsLeft(ticket.id) + " s";
      waiting.appendChild(left);
      actions.appendChild(waiting);
      var undo = el("button", "kds-button kds-button-light", "Undo");
      undo.type = "button";
      undo.dataset.action = "undo-accept";
      undo.setAttribute("aria-label", "Undo accepting order " + ticket.id);
      undo.addEventListener("click", function () { undoAccept(ticket.id); });
      actions.appendChild(undo);
      card.appendChild(actions);
      return card;
    }
    ticket.next.forEach(function (to, index) {
      var button = el("button", "kds-button" + (to === "rejected" ? " kds-button-danger" : index === 0 ? " kds-button-primary" : ""),
        to === "delivered" && ticket.status === "ready" ? "Picked up" : ACTIONS[to] || LABELS[to]);
      button.type = "button";
      button.dataset.action = to;
      button.addEventListener("click", function () {
        if (to === "rejected") { askReject(ticket); return; }
        acknowledge(ticket.id);
        if (to === "accepted" && undoMs > 0) { startAccept(ticket.id); return; }
        act(button, ticket, "/transition", { to: to });
      });
      actions.appendChild(button);
    });
    if (ticket.recall && Date.parse(ticket.recall.until) > now()) {
      var recall = el("button", "kds-button kds-button-quiet", "↶ Back to " + LABELS[ticket.recall.to].toLowerCase());
      recall.type = "button";
      recall.dataset.action = "recall";
      recall.addEventListener("click", function () { act(recall, ticket, "/recall", null); });
      actions.appendChild(recall);
    }
    if (isNew) {
      var seen = el("button", "kds-button kds-button-quiet", "Seen");
      seen.type = "button";
      seen.dataset.action = "acknowledge";
      seen.addEventListener("click", function () { acknowledge(ticket.id); render(); });
      actions.appendChild(seen);
    }
    if (actions.childNodes.length) card.appendChild(actions);
    return card;
  }

  function byUrgency(a, b) {
    if (a.priority !== b.priority) return a.priority ? -1 : 1;
    return Date.parse(a.paid_at || a.created_at) - Date.parse(b.paid_at || b.created_at);
  }

  function render() {
    settleAccepting();
    // The board is drawn anew on every change: a keyboard user's focus goes back to the same
    // button of the same ticket (or, once that button is gone, to the ticket's first one).
    var focused = document.activeElement;
    var focusCard = focused && focused.closest ? focused.closest(".ticket") : null;
    var focusId = focusCard ? focusCard.dataset.orderId : null;
    var focusAction = focusId ? focused.dataset.action : null;
    var columns = {};
    Array.prototype.forEach.call(document.querySelectorAll("[data-column]"), function (column) {
      columns[column.dataset.column] = [];
    });
    var hidden = 0;
    Object.keys(tickets).forEach(function (id) {
      var ticket = tickets[id];
      if (!isOpen(ticket) && now() - closedAt(ticket) > RECENT_MS) { delete tickets[id]; return; }
      if (stations.length && !visibleItems(ticket).length) { hidden += 1; return; }
      columns[isOpen(ticket) ? ticket.status : "done"].push(ticket);
    });
    Object.keys(columns).forEach(function (name) {
      var column = document.querySelector('[data-column="' + name + '"]');
      var list = columns[name];
      if (name === "done") list.sort(function (a, b) { return closedAt(b) - closedAt(a); });
      else list.sort(byUrgency);
      var holder = column.querySelector("[data-tickets]");
      var fragment = document.createDocumentFragment();
      list.forEach(function (ticket) { fragment.appendChild(renderTicket(ticket)); });
      holder.replaceChildren(fragment);
      column.querySelector("[data-count]").textContent = String(list.length);
    });
    renderToMake();
    if (focusId) restoreFocus(focusId, focusAction);
    var note = document.getElementById("kds-hidden");
    note.hidden = hidden === 0;
    note.textContent = hidden + " ticket" + (hidden === 1 ? "" : "s") + " only for other stations";
    tick();
    updateAlert();
  }

  // "Size: Large; Extras: Cheese, Bacon", as the site shows a line's options.
  function optionsText(item) {
    var groups = {}, names = [];
    (item.options || []).forEach(function (chosen) {
      if (!(chosen.group in groups)) { groups[chosen.group] = []; names.push(chosen.group); }
      groups[chosen.group].push(chosen.name);
    });
    return names.map(function (group) { return group + ": " + groups[group].join(", "); }).join("; ");
  }

  function renderToMake() {
    // The "all day" count: how many of each dish are still to make on this screen's
    // accepted and cooking tickets, so a cook can fire five of the same at once.
    var counts = {}, order = [];
    Object.keys(tickets).forEach(function (id) {
      var ticket = tickets[id];
      if (BUMPABLE.indexOf(ticket.status) === -1) return;
      visibleItems(ticket).forEach(function (item) {
        if (item.done) return;
        // The same dish with other options is another thing to make.
        var options = optionsText(item);
        var name = options ? item.name + " (" + options + ")" : item.name;
        if (!(name in counts)) { counts[name] = 0; order.push(name); }
        counts[name] += item.quantity;
      });
    });
    var list = document.getElementById("kds-to-make");
    var fragment = document.createDocumentFragment();
    order.sort(function (a, b) { return counts[b] - counts[a] || a.localeCompare(b); }).forEach(function (name) {
      var entry = el("li", "kds-to-make-item");
      entry.appendChild(el("strong", "", counts[name] + "×"));
      entry.appendChild(document.createTextNode(" " + name));
      fragment.appendChild(entry);
    });
    list.replaceChildren(fragment);
    list.parentNode.hidden = order.length === 0;
  }

  function tick() {
    Array.prototype.forEach.call(document.querySelectorAll(".ticket"), function (card) {
      var ticket = tickets[card.dataset.orderId];
      if (!ticket) return;
      var state = timerState(ticket);
      var timer = card.querySelector("[data-timer]");
      timer.textContent = state.text;
      card.dataset.timer = state.tone;
      var left = card.querySelector("[data-accepting-left]");
      if (left && accepting[ticket.id]) left.textContent = secondsLeft(ticket.id) + " s";
      var recall = card.querySelector('[data-action="recall"]');
      if (recall && !(ticket.recall && Date.parse(ticket.recall.until) > now())) recall.remove();
    });
    document.getElementById("kds-clock").textContent = new Date(now()).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  // --- state ------------------------------------------------------------------------------

  function apply(ticket) {
    var known = tickets[ticket.id];
    if (known && known.revision >= ticket.revision) return false;
    if (known && isOpen(known) && ticket.status === "cancelled") {
      // The customer called it off: say so, it may already be on the stove.
      toast("Order #" + ticket.id + " was cancelled by the customer.");
    }
    tickets[ticket.id] = ticket;
    return true;
  }

  function applySnapshot(frame) {
    if (frame.server_time) clockOffset = Date.parse(frame.server_time) - Date.now();
    var fresh = {};
    frame.orders.concat(frame.recent || []).forEach(function (ticket) { fresh[ticket.id] = ticket; });
    // A snapshot is the whole truth, but a newer ticket already applied stays.
    Object.keys(tickets).forEach(function (id) {
      if (fresh[id] && tickets[id].revision > fresh[id].revision) fresh[id] = tickets[id];
    });
    Object.keys(tickets).forEach(function (id) { delete tickets[id]; });
    Object.keys(fresh).forEach(function (id) { tickets[id] = fresh[id]; });
    pruneAcknowledged();
    render();
  }

  // --- new tickets: highlight and a chime until acknowledged --------------------------------

  function loadAcknowledged() {
    try { return JSON.parse(window.localStorage.getItem(ackKey)) || {}; } catch (e) { return {}; }
  }

  function saveAcknowledged() {
    try { window.localStorage.setItem(ackKey, JSON.stringify(acknowledged)); } catch (e) { /* private mode */ }
  }

  function pruneAcknowledged() {
    Object.keys(acknowledged).forEach(function (id) {
      if (!tickets[id] || tickets[id].status !== "paid") delete acknowledged[id];
    });
    saveAcknowledged();
  }

  function acknowledge(id) {
    acknowledged[id] = true;
    saveAcknowledged();
  }

  function unacknowledged() {
    return Object.keys(tickets).filter(function (id) {
      var ticket = tickets[id];
      return ticket.status === "paid" && !acknowledged[id] && (!stations.length || visibleItems(ticket).length);
    });
  }

  function updateAlert() {
    var waiting = unacknowledged();
    var alert = document.getElementById("kds-alert");
    alert.hidden = waiting.length === 0;
    body.dataset.alerting = waiting.length ? "true" : "false";
    document.getElementById("kds-alert-text").textContent = waiting.length === 1
      ? "New order #" + waiting[0] : waiting.length + " new orders";
  }

  document.getElementById("kds-ack").addEventListener("click", function () {
    unacknowledged().forEach(acknowledge);
    render();
  });

  var audio = null;
  var soundWanted = window.localStorage.getItem("passline:kitchen:sound") !== "off";
  var soundButton = document.getElementById("kds-sound");

  function showSound() {
    var state = !soundWanted ? "off" : audio && audio.state === "running" ? "on" : "blocked";
    body.dataset.sound = state;
    soundButton.setAttribute("aria-pressed", state === "on" ? "true" : "false");
    soundButton.textContent = state === "on" ? "Sound on" : state === "off" ? "Sound off" : "Tap to turn sound on";
  }

  function unlockSound() {
    // Browsers let a page make sound only after a tap on it.
    var Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) return;
    if (!audio) audio = new Context();
    if (audio.state !== "running") audio.resume().then(showSound, showSound);
    requestWakeLock();
    showSound();
  }

  soundButton.addEventListener("click", function () {
    // The tap toggles what the button shows: on becomes off; off or blocked becomes on.
    soundWanted = body.dataset.sound !== "on";
    window.localStorage.setItem("passline:kitchen:sound", soundWanted ? "on" : "off");
    if (soundWanted) unlockSound();
    showSound();
  });
  // Any first tap on the screen also unlocks the sound (not the sound button's own: it
  // decides). On click, not pointerdown: the header changing under a finger between press
  // and release would turn the tap into a click on something else.
  document.addEventListener("click", function (event) {
    if (soundWanted && event.target !== soundButton) unlockSound();
  }, { once: true });

  function chime() {
    screen.chimes += 1;
    body.dataset.chimes = String(screen.chimes);
    if (!soundWanted || !audio || audio.state !== "running") return;
    var start = audio.currentTime;
    [[880, 0], [1320, 0.18], [880, 0.36]].forEach(function (tone) {
      var oscillator = audio.createOscillator(), gain = audio.createGain();
      oscillator.frequency.value = tone[0];
      gain.gain.setValueAtTime(0.0001, start + tone[1]);
      gain.gain.exponentialRampToValueAtTime(0.4, start + tone[1] + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, start + tone[1] + 0.16);
      oscillator.connect(gain).connect(audio.destination);
      oscillator.start(start + tone[1]);
      oscillator.stop(start + tone[1] + 0.17);
    });
  }

  var lastChime = 0;
  window.setInterval(function () {
    tick();
    if (unacknowledged().length && Date.now() - lastChime >= CHIME_EVERY_MS) {
      lastChime = Date.now();
      chime();
    }
  }, 1000);

  var wakeLock = null;
  function requestWakeLock() {
    if (!("wakeLock" in navigator) || wakeLock) return;
    navigator.wakeLock.request("screen").then(function (lock) {
      wakeLock = lock;
      lock.addEventListener("release", function () { wakeLock = null; });
    }, function () { /* not allowed here: the tablet's own settings decide */ });
  }

  // --- accept, with a few seconds to undo it ------------------------------------------------

  var pendingLive = document.getElementById("kds-pending-live");
  function say(message) { if (pendingLive) pendingLive.textContent = message; }

  function secondsLeft(id) {
    return Math.max(1, Math.ceil((accepting[id].until - Date.now()) / 1000));
  }

  function loadAccepts() {
    try { return JSON.parse(window.sessionStorage.getItem(acceptKey)) || {}; } catch (e) { return {}; }
  }

  function saveAccepts() {
    var kept = {};
    // Not resumed yet (no snapshot since the load): still kept, in case this page goes too.
    if (leftByLastPage) Object.keys(leftByLastPage).forEach(function (id) { kept[id] = leftByLastPage[id]; });
    Object.keys(accepting).forEach(function (id) {
      kept[id] = { until: accepting[id].until, sent: !!accepting[id].sent };
    });
    Object.keys(inflight).forEach(function (id) { kept[id] = { until: 0, sent: true }; });
    try {
      if (Object.keys(kept).length) window.sessionStorage.setItem(acceptKey, JSON.stringify(kept));
      else window.sessionStorage.removeItem(acceptKey);
    } catch (e) { /* storage refused: pagehide still sends */ }
  }

  function resumeAccepts() {
    // On the first snapshot after a load: what the previous page left, for tickets still paid.
    var left = leftByLastPage;
    leftByLastPage = null;
    if (!left) return;
    Object.keys(left).forEach(function (id) {
      var ticket = tickets[id];
      if (!ticket || ticket.status !== "paid" || accepting[id] || inflight[id]) return;
      var remaining = left[id].until - Date.now();
      if (!left[id].sent && remaining > 0) {
        accepting[id] = {
          until: left[id].until,
          timer: window.setTimeout(function () { sendAccept(id); }, remaining)
        };
        say("Accepting order " + id + " in " + Math.round(remaining / 1000) + " seconds. Press Undo to take it back.");
      } else {
        accepting[id] = { until: Date.now(), timer: null };
        sendAccept(id, true);
      }
    });
    saveAccepts();
    render();
  }

  function sendAllNow() {
    // The page is going away: a waiting accept is sent now, with a request that outlives it.
    var any = false;
    Object.keys(accepting).forEach(function (id) {
      var waiting = accepting[id];
      if (waiting.sent) return;
      window.clearTimeout(waiting.timer);
      waiting.sent = any = true;
      try {
        fetch("/api/v1/kitchen/orders/" + id + "/transition", {
          method: "POST",
          keepalive: true,
          credentials: "same-origin",
          headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
          body: JSON.stringify({ to: "accepted" })
        }).catch(function () { /* the next page sends it again */ });
      } catch (e) { /* likewise */ }
    });
    if (any) saveAccepts();
  }
  window.addEventListener("pagehide", sendAllNow);
  window.addEventListener("pageshow", function (event) {
    // Back from the back-forward cache: what pagehide sent is checked against a fresh snapshot.
    if (!event.persisted) return;
    leftByLastPage = loadAccepts();
    Object.keys(accepting).forEach(function (id) { delete accepting[id]; });
    sync();
  });

  function startAccept(id) {
    if (accepting[id]) return;
    accepting[id] = {
      until: Date.now() + undoMs,
      timer: window.setTimeout(function () { sendAccept(id); }, undoMs)
    };
    saveAccepts();
    render();
    focusAction(id, "undo-accept");
    say("Accepting order " + id + " in " + Math.round(undoMs / 1000) + " seconds. Press Undo to take it back.");
  }

  function undoAccept(id) {
    var waiting = accepting[id];
    if (!waiting) return;
    window.clearTimeout(waiting.timer);
    delete accepting[id];
    saveAccepts();
    render();
    focusAction(id, "accepted");
    say("Order " + id + " not accepted: nothing was sent.");
  }

  function sendAccept(id, quiet) {
    if (!accepting[id]) return;
    delete accepting[id];
    var ticket = tickets[id];
    // Accepted, rejected or cancelled elsewhere in the meantime: nothing left to send.
    if (!ticket || ticket.status !== "paid") { saveAccepts(); render(); return; }
    inflight[id] = true;
    saveAccepts();
    say("Order " + id + " accepted.");
    render();
    act(document.createElement("button"), ticket, "/transition", { to: "accepted" }, {
      quiet: !!quiet,
      done: function () { delete inflight[id]; saveAccepts(); }
    });
  }

  function settleAccepting() {
    // A ticket that left "paid" (another screen accepted it, the customer cancelled, the
    // time-out rejected it) while its accept waited: the wait ends and nothing is sent.
    var ended = false;
    Object.keys(accepting).forEach(function (id) {
      var ticket = tickets[id];
      if (ticket && ticket.status === "paid") return;
      ended = true;
      window.clearTimeout(accepting[id].timer);
      delete accepting[id];
      if (ticket && ticket.status === "accepted") say("Order " + id + " was accepted on another screen.");
    });
    if (ended) saveAccepts();
  }

  function focusAction(id, action) {
    var card = document.querySelector('.ticket[data-order-id="' + id + '"]');
    if (!card) return;
    var target = card.querySelector('[data-action="' + action + '"]') || card.querySelector("button");
    if (target) target.focus();
  }

  function restoreFocus(id, action) {
    var active = document.activeElement;
    if (active && active !== document.body && document.contains(active)) return;
    if (action) focusAction(id, action);
    else focusAction(id, "");
  }

  // --- taps -------------------------------------------------------------------------------

  var toastTimer = null;
  function toast(message) {
    var box = document.getElementById("kds-toast");
    box.textContent = message;
    box.hidden = false;
    if (toastTimer) window.clearTimeout(toastTimer);
    toastTimer = window.setTimeout(function () { box.hidden = true; }, 5000);
  }

  function act(button, ticket, path, payload, options) {
    options = options || {};
    if (button.disabled) return;
    button.disabled = true;
    fetch("/api/v1/kitchen/orders/" + ticket.id + path, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
      body: payload ? JSON.stringify(payload) : "{}"
    }).then(function (response) {
      return response.json().then(function (data) { return { ok: response.ok, data: data }; });
    }).then(function (result) {
      if (result.ok) {
        if (apply(result.data)) render();
        return;
      }
      // A resent accept that had landed already (its first copy left with the last page).
      var code = result.data.error && result.data.error.code;
      if (!(options.quiet && code === "invalid_transition")) {
        toast((result.data.error && result.data.error.message) || "That did not work; the screen is up to date again.");
      }
      sync();
    }).catch(function () {
      toast("No connection: nothing was changed. Try again when the screen says Live.");
    }).then(function () {
      button.disabled = false;
      if (options.done) options.done();
    });
  }

  var rejecting = null;
  var dialog = document.getElementById("kds-reject");
  function askReject(ticket) {
    rejecting = ticket;
    dialog.querySelector("[data-reject-number]").textContent = "#" + ticket.id;
    if (typeof dialog.showModal === "function") dialog.showModal();
  }
  dialog.addEventListener("close", function () {
    var ticket = rejecting;
    rejecting = null;
    if (!ticket || dialog.returnValue !== "reject") return;
    var form = dialog.querySelector("form");
    var reason = form.elements.reason.value;
    if (reason === "other") reason = form.elements.other.value.trim() || "Rejected by the kitchen";
    acknowledge(ticket.id);
    var card = document.querySelector('.ticket[data-order-id="' + ticket.id + '"] [data-action="rejected"]');
    act(card || document.createElement("button"), ticket, "/transition", { to: "rejected", reason: reason });
  });

  // --- the socket (the connection itself is live-socket.js's) -------------------------------

  var connection = document.getElementById("kds-connection");
  var STATES = {
    connecting: "Connecting…", reconnecting: "Offline: reconnecting…", live: "Live",
    off: "Off: reload the page", 4401: "Signed out: log in again",
    4403: "Not allowed: this kitchen is not yours"
  };

  function setConnection(state, code) {
    connection.dataset.state = state;
    connection.textContent = STATES[code] || STATES[state] || STATES.connecting;
    body.dataset.connection = state;
  }

  function sync() { live.send({ type: "sync" }); }

  var live = window.PasslineLive.open("/ws/kitchen/" + restaurantId + "/", {
    // "Live" only once the snapshot is in: an open socket with an old board is not live.
    state: function (state, code) { if (state !== "open") setConnection(state, code); },
    frame: function (frame) {
      if (frame.type === "kitchen.snapshot") {
        setConnection("live");
        applySnapshot(frame);
        if (leftByLastPage) resumeAccepts();
      } else if (frame.type === "kitchen.ticket") {
        if (apply(frame.ticket)) render();
      } else if (frame.type === "order.update" && !tickets[frame.order_id]) {
        // The whole ticket follows an update; an order this screen has never seen is fetched.
        sync();
      }
    }
  });

  // A fresh snapshot every minute, and when the tablet wakes, catches anything the live
  // path lost.
  window.setInterval(sync, 60000);
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") { sync(); requestWakeLock(); }
  });

  showSound();
})();
