// Dashboard: draws the points balance history with uPlot from the series
// the server put in the chart element's data-series attribute (CSP allows
// no inline script, so data travels in the markup).
"use strict";
(function () {
  const el = document.getElementById("balance-chart");
  if (!el || typeof uPlot === "undefined") return;
  let series;
  try { series = JSON.parse(el.dataset.series); } catch (e) { return; }
  if (!series || !series[0] || series[0].length < 2) {
    el.textContent = "The chart appears after your first ledger entry.";
    el.classList.add("muted");
    return;
  }
  function size() { return { width: Math.max(240, el.clientWidth), height: 180 }; }
  const plot = new uPlot(Object.assign(size(), {
    series: [{}, { label: "points", stroke: "#2459d6", fill: "rgba(36,89,214,0.08)", width: 2, paths: uPlot.paths.stepped({ align: 1 }) }],
    axes: [{}, { size: 60 }],
    legend: { show: false },
    cursor: { drag: { x: false, y: false } },
  }), series, el);
  window.addEventListener("resize", () => plot.setSize(size()));
})();
