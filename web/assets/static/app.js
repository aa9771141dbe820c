// keepstate web administration: the dashboard's charts. Everything else is
// server-rendered HTML and htmx attributes; this file only draws uPlot charts
// from the daemon's counter history.
(function () {
  "use strict";

  var palette = ["#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#65a30d", "#475569", "#ea580c"];

  function t(s) { return Date.parse(s.time) / 1000; }

  // rates turns counter samples into per-second rates between samples.
  function rates(h, get) {
    var xs = [], ys = [];
    for (var i = 1; i < h.length; i++) {
      var dt = t(h[i]) - t(h[i - 1]);
      if (dt <= 0) { continue; }
      xs.push(t(h[i]));
      ys.push(Math.max(0, (get(h[i]) - get(h[i - 1])) / dt));
    }
    return [xs, ys];
  }

  function chart(el, h) {
    var kind = el.getAttribute("data-series");
    var series = [{}], data;
    if (kind === "packets") {
      var acc = rates(h, function (s) { return s.accepted; });
      var drp = rates(h, function (s) { return s.dropped; });
      data = [acc[0], acc[1], drp[1]];
      series.push({ label: "accepted/s", stroke: palette[0] }, { label: "dropped/s", stroke: palette[1] });
    } else if (kind === "connections") {
      data = [h.map(t), h.map(function (s) { return s.connections; })];
      series.push({ label: "connections", stroke: palette[2] });
    } else {
      var reasons = {};
      h.forEach(function (s) { Object.keys(s.drops_by_reason || {}).forEach(function (r) { reasons[r] = true; }); });
      var names = Object.keys(reasons).sort();
      if (names.length === 0) {
        el.textContent = "No drops in the last hour.";
        return;
      }
      data = null;
      names.forEach(function (r, i) {
        var rr = rates(h, function (s) { return (s.drops_by_reason || {})[r] || 0; });
        if (!data) { data = [rr[0]]; }
        data.push(rr[1]);
        series.push({ label: r, stroke: palette[i % palette.length] });
      });
    }
    el.replaceChildren();
    if (data[0].length < 1) {
      el.textContent = "Collecting samples (one every 5 s)...";
      return;
    }
    var width = Math.max(280, el.clientWidth || 600);
    new uPlot({ width: width, height: 180, series: series, scales: { x: { time: true } }, legend: { live: false } }, data, el);
  }

  function draw() {
    var els = document.querySelectorAll(".chart[data-series]");
    if (els.length === 0) { return; }
    fetch("/admin/ui/history", { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : Promise.reject(new Error("history: " + r.status)); })
      .then(function (h) { els.forEach(function (el) { chart(el, h); }); })
      .catch(function () { /* the banner's poll shows when the firewall is unreachable */ });
  }

  var resizeTimer = 0;
  window.addEventListener("resize", function () {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(draw, 200);
  });
  document.addEventListener("DOMContentLoaded", function () {
    draw();
    if (document.querySelector(".chart[data-series]")) { setInterval(draw, 10000); }
  });
})();
