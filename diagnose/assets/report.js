"use strict";
// Draws the plots of a keepstate diagnostic report from the JSON in REPORT.
// Everything is inline: the page loads nothing from anywhere.
(function () {
  var SVGNS = "http://www.w3.org/2000/svg"; // a namespace name, never fetched
  var plots = 0, marks = 0;

  window.addEventListener("error", function (ev) {
    var pre = document.getElementById("js-error") || document.body.appendChild(document.createElement("pre"));
    pre.id = "js-error";
    pre.textContent += "script error: " + ev.message + "\n";
  });

  function el(name, attrs, parent, text) {
    var e = document.createElementNS(SVGNS, name);
    Object.keys(attrs).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (text !== undefined) { e.textContent = text; }
    if (parent) { parent.appendChild(e); }
    return e;
  }
  function tip(e, text) { el("title", {}, e, text); return e; }

  function newPlot(container, w, h, label) {
    var s = el("svg", { width: w, height: h, viewBox: "0 0 " + w + " " + h, "class": "plot", role: "img", "aria-label": label });
    container.appendChild(s);
    plots++;
    return s;
  }

  // ticks returns round values covering [lo, hi], about n of them.
  function ticks(lo, hi, n) {
    var span = hi - lo;
    if (!(span > 0)) { return [lo]; }
    var step = Math.pow(10, Math.floor(Math.log10(span / n)));
    var r = span / n / step;
    if (r >= 7.5) { step *= 10; } else if (r >= 3.5) { step *= 5; } else if (r >= 1.5) { step *= 2; }
    var out = [];
    for (var v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) { out.push(v); }
    return out;
  }

  // timeTicks is ticks for seconds: steps of whole seconds, minutes or hours once
  // the span is long enough to read in those units.
  var timeSteps = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400];
  function timeTicks(lo, hi, n) {
    var want = (hi - lo) / n;
    if (!(want >= 1)) { return ticks(lo, hi, n); }
    var step = timeSteps[timeSteps.length - 1];
    for (var i = 0; i < timeSteps.length; i++) {
      if (timeSteps[i] >= want) { step = timeSteps[i]; break; }
    }
    var out = [];
    for (var v = Math.ceil(lo / step) * step; v <= hi + 1e-9; v += step) { out.push(v); }
    return out;
  }

  function fmtTime(s) {
    var a = Math.abs(s);
    if (a === 0) { return "0"; }
    if (a >= 3600) {
      var h = Math.floor(a / 3600), m = Math.round((a - h * 3600) / 60);
      return (s < 0 ? "-" : "") + h + " h" + (m ? " " + m + " min" : "");
    }
    if (a >= 120) { return (s / 60).toFixed(0) + " min"; }
    if (a >= 1) { return s.toFixed(a >= 10 ? 0 : 1) + " s"; }
    if (a >= 0.001) { return (s * 1000).toFixed(a >= 0.01 ? 0 : 1) + " ms"; }
    return (s * 1e6).toFixed(0) + " \u00b5s";
  }

  function scale(d0, d1, r0, r1) {
    if (!(d1 > d0)) { d1 = d0 + 1; }
    return function (v) { return r0 + (v - d0) / (d1 - d0) * (r1 - r0); };
  }

  function xAxis(svg, x, lo, hi, y, fmt, tickFn) {
    el("line", { x1: x(lo), x2: x(hi), y1: y, y2: y, "class": "axis" }, svg);
    (tickFn || ticks)(lo, hi, 6).forEach(function (t) {
      el("line", { x1: x(t), x2: x(t), y1: y, y2: y + 4, "class": "axis" }, svg);
      el("text", { x: x(t), y: y + 16, "text-anchor": "middle" }, svg, fmt(t));
    });
  }

  function yAxis(svg, y, lo, hi, x0, x1, fmt, tickFn) {
    (tickFn || ticks)(lo, hi, 4).forEach(function (t) {
      el("line", { x1: x0, x2: x1, y1: y(t), y2: y(t), "class": "grid" }, svg);
      el("text", { x: x0 - 6, y: y(t) + 4, "text-anchor": "end" }, svg, fmt(t));
    });
    el("line", { x1: x0, x2: x0, y1: y(lo), y2: y(hi), "class": "axis" }, svg);
  }

  // hline draws a labelled horizontal line; at is where along it the label sits
  // (0 left, 1 right), so that close lines keep readable labels.
  function hline(svg, y, v, x0, x1, cls, label, at) {
    var g = el("g", {}, svg);
    el("line", { x1: x0, x2: x1, y1: y(v), y2: y(v), "class": cls }, g);
    var right = at > 0.5;
    el("text", { x: x0 + (x1 - x0) * at + (right ? -4 : 4), y: y(v) - 4, "text-anchor": right ? "end" : "start" }, g, label);
    return tip(g, label);
  }

  // Diff: one timeline per connection, lane A above lane B. A packet seen on both
  // sides is a line from its sighting on A to its sighting on B (B's clock
  // corrected by the estimated offset); one seen on one side only is a red dot.
  function drawDiffConn(container, c) {
    var W = 980, H = 150, L = 60, R = 20, YA = 36, YB = 104;
    var lo = Infinity, hi = -Infinity;
    c.marks.forEach(function (m) {
      [m[1], m[2]].forEach(function (t) { if (t >= 0) { lo = Math.min(lo, t); hi = Math.max(hi, t); } });
    });
    var pad = (hi - lo) * 0.02 || 0.001;
    var x = scale(lo - pad, hi + pad, L, W - R);
    var svg = newPlot(container, W, H, "packets of " + c.title + " on each side");
    el("line", { x1: L, x2: W - R, y1: YA, y2: YA, "class": "grid" }, svg);
    el("line", { x1: L, x2: W - R, y1: YB, y2: YB, "class": "grid" }, svg);
    el("text", { x: 8, y: YA + 4 }, svg, "A");
    el("text", { x: 8, y: YB + 4 }, svg, "B");
    c.marks.forEach(function (m) {
      var cls = m[0] ? "rep" : "req";
      var what = (m[0] ? "reply " : "request ") + m[3];
      var g = el("g", {}, svg);
      if (m[1] >= 0 && m[2] >= 0) {
        el("line", { x1: x(m[1]), y1: YA, x2: x(m[2]), y2: YB, "class": cls + " cross" }, g);
        el("circle", { cx: x(m[1]), cy: YA, r: 3, "class": cls }, g);
        el("circle", { cx: x(m[2]), cy: YB, r: 3, "class": cls }, g);
        tip(g, what + ": crossed, " + fmtTime(m[1] - lo) + " on A, " + fmtTime(m[2] - lo) + " on B");
      } else {
        var onA = m[1] >= 0;
        var t = onA ? m[1] : m[2];
        el("circle", { cx: x(t), cy: onA ? YA : YB, r: 5, "class": "lost" }, g);
        tip(g, what + ": seen only on " + (onA ? "A" : "B") + " at " + fmtTime(t - lo) + (m[4] ? " \u2014 " + m[4] : ""));
      }
      marks++;
    });
    // Ticks at round times since the connection's first packet.
    xAxis(svg, function (t) { return x(t + lo); }, 0, hi - lo, H - 26, fmtTime);
  }

  // Advise: every packet of a connection at its time (x) and the idle time
  // before it (y), against the timeout lines: a point above the red line is a gap
  // the configured timeout cuts.
  function drawAdviseConn(container, c, d) {
    var W = 980, H = 230, L = 70, R = 20, T = 14, B = 34;
    var times = c.times, n = times.length;
    var gaps = times.map(function (t, i) { return i === 0 ? 0 : t - times[i - 1]; });
    var top = Math.max.apply(null, gaps.concat([d.timeout_s, d.advised_s, d.rfc_s])) * 1.08;
    var span = n > 0 ? times[n - 1] : 1;
    var x = scale(0, span, L, W - R), y = scale(0, top, H - B, T);
    var svg = newPlot(container, W, H, "idle gaps of " + c.title);
    el("rect", { x: L, y: y(top), width: W - R - L, height: y(d.timeout_s) - y(top), "class": "cutband" }, svg);
    yAxis(svg, y, 0, top, L, W - R, fmtTime, timeTicks);
    xAxis(svg, x, 0, span, H - B, fmtTime, timeTicks);
    hline(svg, y, d.timeout_s, L, W - R, "limit", d.timeout_name + " " + d.timeout_s + " s (current)", 1);
    if (d.advised_s > 0 && d.advised_s !== d.timeout_s) {
      hline(svg, y, d.advised_s, L, W - R, "advised", "advised " + d.advised_s + " s", 0.02);
    }
    hline(svg, y, d.rfc_s, L, W - R, "rfc", "RFC 5382 " + d.rfc_s + " s", 0.5);
    var probes = {};
    c.kas.forEach(function (k) { probes[k[3]] = k; });
    times.forEach(function (t, i) {
      var g = el("g", {}, svg);
      var k = probes[i];
      if (gaps[i] > top * 0.01) {
        el("line", { x1: x(t), x2: x(t), y1: y(0), y2: y(gaps[i]), "class": "axis" }, g);
      }
      if (k) {
        var cx = x(t), cy = y(gaps[i]), s = 6;
        el("path", { d: "M" + cx + " " + (cy - s) + "L" + (cx + s) + " " + cy + "L" + cx + " " + (cy + s) + "L" + (cx - s) + " " + cy + "Z",
          "class": k[1] ? "ka" : "ka-unanswered" }, g);
        tip(g, "keep-alive probe at " + fmtTime(t) + " after " + fmtTime(gaps[i]) + " idle: " + (k[1] ? "answered" : "no answer") + (k[2] ? " (retry)" : ""));
      } else {
        el("circle", { cx: x(t), cy: y(gaps[i]), r: 2.5, "class": "pkt" }, g);
        tip(g, "packet at " + fmtTime(t) + " after " + fmtTime(gaps[i]) + " idle");
      }
      marks++;
    });
  }

  // The memory curve: the peak of tracked connections a timeout implies for the
  // capture's traffic, in MiB, against the timeout.
  function drawMemory(container, m, d) {
    var W = 980, H = 260, L = 70, R = 20, T = 14, B = 34;
    var pts = m.curve;
    var xmax = pts[pts.length - 1][0], ymax = Math.max.apply(null, pts.map(function (p) { return p[2]; })) * 1.1 || 1;
    var x = scale(0, xmax, L, W - R), y = scale(0, ymax, H - B, T);
    var svg = newPlot(container, W, H, "memory against the established timeout");
    yAxis(svg, y, 0, ymax, L, W - R, function (v) { return v.toFixed(ymax < 0.01 ? 4 : ymax < 1 ? 3 : 1) + " MiB"; });
    xAxis(svg, x, 0, xmax, H - B, function (v) { return v + " s"; }, timeTicks);
    var path = pts.map(function (p, i) { return (i ? "L" : "M") + x(p[0]).toFixed(1) + " " + y(p[2]).toFixed(1); }).join("");
    el("path", { d: path, "class": "curve" }, svg);
    pts.forEach(function (p) {
      tip(el("circle", { cx: x(p[0]), cy: y(p[2]), r: 2.5, "class": "req" }, svg),
        p[0] + " s: at most " + p[1] + " connections, " + p[2].toFixed(3) + " MiB");
      marks++;
    });
    [[d.timeout_s, "limit", "current " + m.current.timeout_s + " s: " + m.current.peak_connections + " conns, " + m.current.mib.toFixed(3) + " MiB"],
      [d.advised_s, "advised", "advised " + m.advised.timeout_s + " s: " + m.advised.peak_connections + " conns, " + m.advised.mib.toFixed(3) + " MiB"],
      [d.rfc_s, "rfc", "RFC 5382 " + d.rfc_s + " s"]].forEach(function (v, i) {
      if (!(v[0] > 0)) { return; }
      var g = el("g", {}, svg);
      el("line", { x1: x(v[0]), x2: x(v[0]), y1: y(0), y2: y(ymax), "class": v[1] }, g);
      var right = x(v[0]) > L + (W - L - R) * 0.6;
      el("text", { x: x(v[0]) + (right ? -4 : 4), y: T + 12 + 14 * i, "text-anchor": right ? "end" : "start" }, g, v[2]);
      tip(g, v[2]);
    });
  }

  var data = window.REPORT;
  if (data.kind === "diff") {
    data.conns.forEach(function (c, i) { drawDiffConn(document.getElementById("plot-" + i), c); });
  } else {
    data.conns.forEach(function (c, i) { drawAdviseConn(document.getElementById("plot-" + i), c, data); });
    if (data.memory) { drawMemory(document.getElementById("plot-memory"), data.memory, data); }
  }
  var st = document.getElementById("render-status");
  st.setAttribute("data-plots", String(plots));
  st.setAttribute("data-marks", String(marks));
  st.textContent = "drawn in this page: " + plots + " plots, " + marks + " marks";
}());
