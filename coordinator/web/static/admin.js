// Admin dashboard: draws the load overview (origin egress vs edge egress
// in bytes/s per bucket, and the offload ratio) with uPlot from the
// snapshot the server put in data-overview, then follows the server-sent
// event stream (data-events), redrawing and refreshing the metering cards
// each time a bucket closes. CSP allows no inline script: data travels in
// the markup, code in this file.
"use strict";
(function () {
  const el = document.getElementById("load-chart");
  if (!el) return;
  const status = document.getElementById("load-status");
  let overview;
  try { overview = JSON.parse(el.dataset.overview); } catch (e) { return; }

  function series(ov) {
    const w = ov.bucket_seconds || 10;
    const t = [], origin = [], edge = [], fallback = [], off = [];
    for (const p of ov.points || []) {
      t.push(Date.parse(p.start) / 1000);
      origin.push(p.origin_bytes / w);
      edge.push(p.edge_bytes / w);
      fallback.push(p.fallback_bytes / w);
      off.push(p.offload < 0 ? null : p.offload);
    }
    return [t, origin, edge, fallback, off];
  }
  function rate(v) {
    if (v == null) return "—";
    const units = ["B/s", "KiB/s", "MiB/s", "GiB/s", "TiB/s"];
    let i = 0;
    while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return v.toFixed(v < 10 && i > 0 ? 1 : 0) + " " + units[i];
  }
  function pct(v) { return v == null || v < 0 ? "—" : (100 * v).toFixed(1) + "%"; }
  function bytes(v) {
    const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let i = 0;
    while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return i === 0 ? v + " B" : v.toFixed(1) + " " + units[i];
  }
  function size() { return { width: Math.max(260, el.clientWidth - 2), height: 260 }; }

  // The element keeps the number of points drawn, so tests (and people)
  // can see the chart move.
  function mark(ov) { el.dataset.points = String((ov.points || []).length); }

  let plot = null;
  if (typeof uPlot !== "undefined") {
    plot = new uPlot(Object.assign(size(), {
      scales: { x: { time: true }, bytes: { range: (u, lo, hi) => [0, Math.max(hi, 1)] }, ratio: { range: [0, 1] } },
      series: [
        {},
        { label: "origin egress", scale: "bytes", stroke: "#b3261e", width: 2, value: (u, v) => rate(v) },
        { label: "edge egress", scale: "bytes", stroke: "#1f7a3d", fill: "rgba(31,122,61,0.08)", width: 2, value: (u, v) => rate(v) },
        { label: "fallback", scale: "bytes", stroke: "#9a5b00", width: 1, dash: [4, 4], value: (u, v) => rate(v) },
        { label: "offload", scale: "ratio", stroke: "#2459d6", width: 2, value: (u, v) => pct(v) },
      ],
      axes: [
        {},
        { scale: "bytes", size: 70, values: (u, vals) => vals.map(rate) },
        { scale: "ratio", side: 1, size: 48, grid: { show: false }, values: (u, vals) => vals.map((v) => (100 * v).toFixed(0) + "%") },
      ],
      cursor: { drag: { x: false, y: false } },
    }), series(overview), el);
    window.addEventListener("resize", () => plot.setSize(size()));
  }
  mark(overview);

  function setMetric(name, text) {
    for (const n of document.querySelectorAll('[data-metric="' + name + '"]')) n.textContent = text;
  }
  function refresh(ov) {
    if (plot) plot.setData(series(ov));
    mark(ov);
    const m = ov.metering || {};
    const usd = (v) => "$" + (v > 0 && v < 0.01 ? Number(v.toPrecision(2)).toString() : (v || 0).toFixed(2));
    setMetric("offload", pct(m.offload));
    setMetric("window_offload", pct(ov.window_offload));
    setMetric("minutes_streamed", (m.minutes_streamed || 0).toFixed(1));
    setMetric("plays", String(m.plays || 0));
    setMetric("money_saved", usd(m.money_saved));
    setMetric("proven_money_saved", usd(m.proven_money_saved));
    setMetric("saved_bytes", bytes(m.saved_bytes || 0));
    setMetric("proven_saved_bytes", bytes(m.proven_saved_bytes || 0));
    setMetric("origin_bytes", bytes(m.origin_bytes || 0));
    setMetric("fallback_bytes", bytes(m.fallback_bytes || 0));
    if (ov.stats) setMetric("alive_edges", String(ov.stats.alive_edges));
  }

  if (!el.dataset.events || typeof EventSource === "undefined") return;
  const es = new EventSource(el.dataset.events);
  es.addEventListener("overview", (ev) => {
    let ov;
    try { ov = JSON.parse(ev.data); } catch (e) { return; }
    refresh(ov);
    if (status) status.textContent = "Live · updated " + new Date(ov.at).toLocaleTimeString();
    el.dataset.updates = String(Number(el.dataset.updates || 0) + 1);
  });
  es.addEventListener("error", () => {
    if (status) status.textContent = "Reconnecting to the live stream…";
  });
})();
