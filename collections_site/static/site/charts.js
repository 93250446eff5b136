// The dashboards' charts: Chart.js 4 (static/vendor/chart.umd.min.js) drawn from the JSON the page
// embeds with json_script. Each <canvas data-chart="ID"> reads <script id="ID" type="application/json">:
//   {type: "bar"|"line", labels: [...], stacked: bool, palette: "buckets"|"promises"|undefined,
//    datasets: [{label, data: ["12.50", null, ...], axis: "y"|"y2", type?: "line", series?: n}],
//    y: {title, format: "count"|"money"|"percent"}, y2?: {...}}
// Numbers come as strings (money is Decimal on the server) and are read here only to draw; the exact
// figures are in the table under each chart. Labels are already translated; numbers on the axes and in
// tooltips are formatted for the page's language. Charts in content swapped in by htmx are drawn too.
(function () {
  "use strict";
  const PALETTES = {
    // Colour-blind-safe (Okabe-Ito) for series that are not ordered.
    default: ["#1f5fbf", "#e69f00", "#009e73", "#d55e00", "#cc79a7", "#56b4e9", "#8c6d1f", "#444444"],
    // From light to dark as arrears age.
    buckets: ["#e9c46a", "#f4a261", "#e76f51", "#b5332e", "#6d1a1a"],
    // kept, partly kept, broken, open, cancelled, ..., the kept-rate line.
    promises: ["#17794a", "#8fc79f", "#b42318", "#9aa5b1", "#d8dde4", "#000", "#000", "#1f5fbf"],
  };

  function locale() {
    return document.documentElement.lang || undefined;
  }

  function formatter(format) {
    const lang = locale();
    if (format === "percent") {
      const f = new Intl.NumberFormat(lang, { style: "percent", maximumFractionDigits: 1 });
      return (v) => (v === null || v === undefined ? "–" : f.format(v));
    }
    if (format === "money") {
      const f = new Intl.NumberFormat(lang, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
      const axis = new Intl.NumberFormat(lang, { notation: "compact", maximumFractionDigits: 1 });
      const fn = (v) => (v === null || v === undefined ? "–" : f.format(v));
      fn.axis = (v) => axis.format(v);
      return fn;
    }
    const f = new Intl.NumberFormat(lang, { maximumFractionDigits: 0 });
    return (v) => (v === null || v === undefined ? "–" : f.format(v));
  }

  function scale(spec, position, stacked) {
    const fmt = formatter(spec.format);
    return {
      position: position,
      beginAtZero: true,
      stacked: stacked,
      max: spec.format === "percent" ? 1 : undefined,
      grid: position === "right" ? { drawOnChartArea: false } : undefined,
      title: { display: Boolean(spec.title), text: spec.title },
      ticks: { callback: fmt.axis || fmt, precision: spec.format === "count" ? 0 : undefined },
    };
  }

  function config(spec) {
    const colours = PALETTES[spec.palette] || PALETTES.default;
    const stacked = Boolean(spec.stacked);
    const scales = { x: { stacked: stacked }, y: scale(spec.y, "left", stacked) };
    if (spec.y2) scales.y2 = scale(spec.y2, "right", false);
    const formats = { y: formatter(spec.y.format), y2: spec.y2 ? formatter(spec.y2.format) : null };
    const datasets = spec.datasets.map(function (d, i) {
      const colour = colours[(d.series !== undefined ? d.series : i) % colours.length];
      const line = (d.type || spec.type) === "line";
      return {
        label: d.label,
        type: d.type,
        data: d.data.map((v) => (v === null ? null : Number(v))),
        yAxisID: d.axis || "y",
        backgroundColor: colour,
        borderColor: colour,
        borderWidth: line ? 2 : 0,
        pointRadius: line ? 3 : 0,
        spanGaps: true,
        stack: stacked && (d.axis || "y") === "y" ? "stack" : undefined,
        order: line ? 0 : 1,
      };
    });
    return {
      type: spec.type,
      data: { labels: spec.labels, datasets: datasets },
      options: {
        locale: locale(),
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        interaction: { mode: "index", intersect: false },
        scales: scales,
        plugins: {
          legend: { position: "bottom", labels: { boxWidth: 12 } },
          tooltip: {
            callbacks: {
              label: function (item) {
                const fmt = formats[item.dataset.yAxisID] || formats.y;
                return item.dataset.label + ": " + fmt(item.raw);
              },
            },
          },
        },
      },
    };
  }

  function draw(root) {
    if (typeof Chart === "undefined") return;
    root.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      const source = document.getElementById(canvas.dataset.chart);
      if (!source || Chart.getChart(canvas)) return;
      try {
        new Chart(canvas, config(JSON.parse(source.textContent)));
      } catch (error) {
        // A chart that cannot be drawn leaves its table, which holds the same figures.
        canvas.hidden = true;
        console.error(error);
      }
    });
  }

  function forget(root) {
    if (typeof Chart === "undefined" || !root) return;
    root.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      const chart = Chart.getChart(canvas);
      if (chart) chart.destroy();
    });
  }

  if (window.htmx) {
    htmx.onLoad(draw);
    document.addEventListener("htmx:beforeSwap", (event) => forget(event.detail.target));
  } else {
    document.addEventListener("DOMContentLoaded", () => draw(document));
  }
})();
