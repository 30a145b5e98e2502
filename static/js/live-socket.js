// One live connection to a Passline WebSocket, the way every live page needs it. A page says
// what it does with frames; this keeps the connection honest:
//   - a ping every 20 s; 30 s of silence means a dead connection (a proxy or a sleeping
//     tablet can leave one half-open), so it is dropped and opened again;
//   - reconnects with back-off (1 s doubling to 15 s), at once when the browser comes back
//     online or the page becomes visible again;
//   - a dropped socket is given up at once: without a network its close may never come;
//   - 4401 / 4403 / 4404 (signed out, not allowed, no such thing; also on an open socket whose
//     session or token was revoked or whose user lost the right to it) and 1009 (a frame too
//     big) end it for good: retrying cannot help. One exception: a 4401 on a socket that was
//     live is retried once at once (at most once a minute), because the browser may still be
//     signed in under a new session key (a password change in another tab cycles it); the
//     retry's own 4401 ends it. 4429 (too many frames, or too many sockets
//     from this address) is retried after the longest back-off; 1001 (the server going away:
//     a restart or a deploy) is retried after 1 to 2 s, spread so that a server's thousand
//     pages do not all come back in the same instant, and the page resumes where it was;
//     anything else (1013 while the server's Redis is away, a crash) is retried, and the
//     back-off starts again only once the server has said something.
// Usage: var live = PasslineLive.open("/ws/orders/7/", {
//   frame: function (frame) {},           // every frame but pong
//   opened: function (again) {},          // connected (again: after a drop)
//   state: function (state, code) {},     // connecting | open | reconnecting | off
//   beat: function () { return []; }      // frames to send with each ping
// }); live.send({...}); live.drop();
(function () {
  "use strict";
  var HEARTBEAT_MS = 20000;
  var SILENCE_MS = 30000;
  var FIRST_RETRY_MS = 1000;
  var LAST_RETRY_MS = 15000;
  var FINAL_CODES = [4401, 4403, 4404, 1009];
  var SLOW_DOWN = 4429;
  var GOING_AWAY = 1001;
  var SIGNED_OUT = 4401;
  var REAUTH_EVERY_MS = 60000;

  function open(path, handlers) {
    var socket = null;
    var delay = FIRST_RETRY_MS;
    var retry = null;
    var opens = 0;
    var ended = false;
    var lastReauth = -Infinity;

    function state(name, code) {
      if (handlers.state) handlers.state(name, code);
    }

    function send(frame) {
      if (!socket || socket.readyState !== WebSocket.OPEN) return false;
      socket.send(JSON.stringify(frame));
      return true;
    }

    function forget() {
      if (!socket) return;
      var old = socket;
      socket = null;
      old.onopen = old.onmessage = old.onclose = null;
      try { old.close(); } catch (e) { /* never opened */ }
    }

    function scheduleReconnect() {
      state("reconnecting");
      if (retry) window.clearTimeout(retry);
      retry = window.setTimeout(function () { retry = null; connect(); }, delay);
      delay = Math.min(delay * 2, LAST_RETRY_MS);
    }

    function drop() {
      if (!socket) return;
      forget();
      scheduleReconnect();
    }

    function reconnectNow() {
      if (ended || (socket && socket.readyState === WebSocket.OPEN)) return;
      forget();
      delay = FIRST_RETRY_MS;
      if (retry) { window.clearTimeout(retry); retry = null; }
      connect();
    }

    function connect() {
      var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
      var current = new WebSocket(scheme + window.location.host + path);
      socket = current;
      state("connecting");
      var lastHeard = Date.now();
      var openedAt = null;
      var heartbeat = window.setInterval(function () {
        if (socket !== current) { window.clearInterval(heartbeat); return; }
        if (current.readyState !== WebSocket.OPEN) return;
        if (Date.now() - lastHeard > SILENCE_MS) { window.clearInterval(heartbeat); drop(); return; }
        send({ type: "ping" });
        (handlers.beat ? handlers.beat() : []).forEach(send);
      }, HEARTBEAT_MS);
      current.onopen = function () {
        opens += 1;
        openedAt = Date.now();
        state("open");
        if (handlers.opened) handlers.opened(opens > 1);
      };
      current.onmessage = function (event) {
        lastHeard = Date.now();
        // Not on open: a socket refused with a close right after its accept would retry every second.
        delay = FIRST_RETRY_MS;
        var frame;
        try { frame = JSON.parse(event.data); } catch (e) { return; }
        if (frame.type !== "pong") handlers.frame(frame);
      };
      current.onclose = function (event) {
        window.clearInterval(heartbeat);
        if (socket !== current) return;
        socket = null;
        // Was live: a refusal is closed right after its accept; a revocation comes with a frame
        // or the server's timer, long after.
        var wasLive = openedAt !== null && Date.now() - openedAt >= 1000;
        if (event.code === SIGNED_OUT && wasLive && Date.now() - lastReauth > REAUTH_EVERY_MS) {
          lastReauth = Date.now();
          state("reconnecting");
          connect();
          return;
        }
        if (FINAL_CODES.indexOf(event.code) !== -1) {
          ended = true;
          state("off", event.code);
          return;
        }
        if (event.code === SLOW_DOWN) delay = LAST_RETRY_MS;
        if (event.code === GOING_AWAY) delay = FIRST_RETRY_MS * (1 + Math.random());
        scheduleReconnect();
      };
    }

    // Tests (and a page that knows better) can force the reconnect path.
    document.addEventListener("passline:reconnect", drop);
    window.addEventListener("online", reconnectNow);
    document.addEventListener("visibilitychange", function () {
      if (document.visibilityState === "visible") reconnectNow();
    });
    connect();
    return { send: send, drop: drop };
  }

  window.PasslineLive = { open: open };
})();
