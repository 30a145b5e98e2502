// The staff dashboard. The server renders today's figures; from then on they come from
// /ws/dashboard/[<restaurant>/]: the whole set on connect (so a reconnect catches up), whenever
// the analytics worker pushes (throttled there, the last change always sent), and on every
// {"type": "sync"} this page sends each half minute (which also moves the per-minute chart
// along when nothing happens). A frame older than the figures shown is ignored.
//
// Money arrives as strings ("12.50") and is only ever formatted, never turned into a float.
// The chart is uPlot (static/vendor/uplot/), its data [minute starts in s, orders].
(function () {
  "use strict";
  var root = document.getElementById("dashboard");
  if (!root || !window.PasslineLive) return;

  var SYNC_MS = 30000;
  var STATES = {
    connecting: "Connecting…", reconnecting: "Offline: reconnecting…", live: "Live",
    off: "Off", 4401: "Signed out: log in again", 4403: "Not allowed: this dashboard is not yours"
  };
  var symbol = root.dataset.currency || "";
  var shown = JSON.parse(document.getElementById("dashboard-figures").textContent);
  var dashboard = window.passlineDashboard = { figures: shown, chart: null, frames: 0 };

  // --- formatting (the server's |money filter, on strings) -----------------------------------

  function money(text) {
    var value = String(text);
    var negative = value.charAt(0) === "-";
    var parts = (negative ? value.slice(1) : value).split(".");
    var whole = parts[0].replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    var cents = ((parts[1] || "") + "00").slice(0, 2);
    return (negative ? "-" : "") + symbol + whole + "." + cents;
  }

  function format(element, value) {
    if (value === null || value === undefined || value === "") return element.dataset.empty || "";
    return element.dataset.format === "money" ? money(value) : String(value);
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // --- rendering ----------------------------------------------------------------------------

  function renderFigures(figures) {
    root.querySelectorAll("[data-figure]").forEach(function (element) {
      var text = format(element, figures[element.dataset.figure]);
      if (element.textContent !== text) element.textContent = text;
    });
    var asOf = document.getElementById("dash-as-of");
    var when = new Date(figures.as_of);
    asOf.setAttribute("datetime", figures.as_of);
    asOf.textContent = when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
    root.dataset.asOf = String(figures.as_of_us);
  }

  function renderDishes(dishes) {
    var list = document.getElementById("dash-top-dishes");
    var top = dishes.length ? dishes[0].quantity : 0;
    list.replaceChildren.apply(list, dishes.map(function (dish) {
      var item = el("li");
      item.dataset.menuItemId = dish.menu_item_id;
      item.style.setProperty("--share", top ? (100 * dish.quantity / top).toFixed(1) + "%" : "0%");
      item.append(el("span", "dish-name", dish.name), " ", el("span", "dish-quantity", String(dish.quantity)),
                  " ", el("span", "dish-amount", money(dish.amount)));
      return item;
    }));
    document.getElementById("dash-dishes-empty").hidden = dishes.length > 0;
  }

  var COLUMNS = ["orders_today", "paid_orders_today", "revenue_net", "avg_paid_to_ready", "refunds_count",
                 "payment_failures", "rejections"];

  function renderRestaurants(rows) {
    var body = document.getElementById("dash-restaurants");
    if (!body) return;
    body.replaceChildren.apply(body, rows.map(function (row) {
      var tr = el("tr");
      tr.dataset.restaurantId = row.restaurant_id;
      var th = el("th");
      th.scope = "row";
      var link = el("a", "", row.name);
      link.href = body.dataset.url.replace(/\/0\/$/, "/" + row.restaurant_id + "/");
      th.append(link);
      tr.append(th);
      COLUMNS.forEach(function (column) {
        var value = row[column];
        var text = column === "revenue_net" ? money(value) : (value === "" || value === null ? "—" : String(value));
        var td = el("td", "num", text);
        td.dataset.col = column;
        tr.append(td);
      });
      return tr;
    }));
  }

  // --- the chart ------------------------------------------------------------------------------

  function chartData(figures) {
    var start = figures.series_start_ms / 1000;
    return [figures.per_minute.map(function (_, i) { return start + 60 * i; }), figures.per_minute.slice()];
  }

  function chartSize(box) {
    return { width: Math.max(240, box.clientWidth), height: 220 };
  }

  // Time labels: "14:05", on whole minutes, 5, 10, 15, 30 or 60 minutes apart, whichever keeps
  // them at least TICK_SPACE px apart on this width (uPlot's default packs two-line labels
  // 50 px apart, and they overlap).
  var TICK_SPACE = 72;
  var TICK_STEPS = [60, 300, 600, 900, 1800, 3600];

  function clock(seconds) {
    var at = new Date(seconds * 1000);
    return String(at.getHours()).padStart(2, "0") + ":" + String(at.getMinutes()).padStart(2, "0");
  }

  function makeChart() {
    var box = document.getElementById("dash-chart");
    if (!window.uPlot || !box) return null;
    var accent = getComputedStyle(document.documentElement).getPropertyValue("--accent").trim() || "#c2410c";
    var size = chartSize(box);
    var chart = new window.uPlot({
      width: size.width, height: size.height,
      legend: { show: false },
      cursor: { drag: { x: false, y: false } },
      // Half a minute of room each side, so the first and the current minute's bars show whole.
      scales: { x: { time: true, range: function (u, min, max) { return [min - 30, max + 30]; } }, y: { range: function (u, min, max) { return [0, Math.max(4, Math.ceil(max * 1.15))]; } } },
      axes: [{ space: TICK_SPACE, incrs: TICK_STEPS, values: function (u, ticks) { return ticks.map(clock); } },
             { size: 40, incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000], values: function (u, ticks) {
        return ticks.map(function (tick) { return String(tick); });
      } }],
      series: [{}, { label: "Orders", stroke: accent, fill: accent + "99", width: 0,
                     paths: window.uPlot.paths.bars({ size: [0.7, 24] }), points: { show: false } }]
    }, chartData(shown), box);
    if (window.ResizeObserver) {
      new ResizeObserver(function () { chart.setSize(chartSize(box)); }).observe(box);
    }
    return chart;
  }

  // --- applying figures -------------------------------------------------------------------------

  function apply(figures) {
    if (figures.as_of_us < shown.as_of_us) return;  // computed before what is shown: stale
    shown = figures;
    dashboard.figures = figures;
    dashboard.frames += 1;
    renderFigures(figures);
    renderDishes(figures.top_dishes);
    renderRestaurants(figures.restaurants);
    if (dashboard.chart) dashboard.chart.setData(chartData(figures));
  }

  dashboard.chart = makeChart();

  var connection = document.getElementById("dash-connection");

  function setConnection(state, code) {
    connection.dataset.state = state;
    connection.textContent = STATES[code] || STATES[state] || STATES.connecting;
  }

  var live = window.PasslineLive.open(root.dataset.socket, {
    // "Live" once figures have come over this connection: an open socket alone proves little.
    state: function (state, code) { if (state !== "open") setConnection(state, code); },
    frame: function (frame) {
      if (frame.type !== "dashboard.figures") return;
      setConnection("live");
      apply(frame.figures);
    }
  });
  window.setInterval(function () { live.send({ type: "sync" }); }, SYNC_MS);
})();
