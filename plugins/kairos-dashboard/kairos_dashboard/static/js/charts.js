// Live line charts (uPlot, shipped in vendor/) that follow the theme and the container's width.

const HEIGHT = 200;
const MIN_SPAN = 30; // seconds shown at least, so the first points do not fill the width

/** The x range: at least MIN_SPAN seconds, ending at the newest point (or now). */
function timeRange(_u, min, max) {
  if (max === null || max === undefined) {
    const now = Date.now() / 1000;
    return [now - MIN_SPAN, now];
  }
  return [Math.min(min, max - MIN_SPAN), max];
}

/** The y range: from zero to a little above the highest value, at least `floor`. */
function valueRange(floor) {
  return (_u, _min, max) => [0, Math.max((max || 0) * 1.15, floor, 1e-9)];
}

/** A time axis label: the local time of day. */
function clock(seconds) {
  return new Date(seconds * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

function themeColor(name) {
  return window.getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

/**
 * A time-series chart in `element`. series: [{label, color: "--series-1"}]; format: {value, tick}.
 * load(columns) sets its points; rebuild() after a theme change; destroy() on leave.
 */
export function lineChart(element, { series, format }) {
  let plot = null;
  let data = [[], ...series.map(() => [])];

  function options(width) {
    const grid = themeColor("--grid");
    const muted = themeColor("--muted");
    const axis = { stroke: muted, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
    return {
      width,
      height: HEIGHT,
      cursor: { drag: { x: false, y: false } },
      legend: { live: true },
      scales: { x: { time: true, range: timeRange }, y: { range: valueRange(format.floor || 0) } },
      axes: [
        { ...axis, space: 70, values: (_u, ticks) => ticks.map(clock) },
        { ...axis, size: 64, values: (_u, ticks) => ticks.map((v) => format.tick(v)) },
      ],
      series: [
        {},
        ...series.map((s) => ({
          label: s.label,
          stroke: themeColor(s.color),
          width: 2,
          points: { show: false },
          value: (_u, v) => (v === null || v === undefined ? "—" : format.value(v)),
        })),
      ],
    };
  }

  function build() {
    if (plot) plot.destroy();
    const width = Math.max(element.clientWidth, 200);
    plot = new window.uPlot(options(width), data, element);
  }

  const resize = new ResizeObserver(() => {
    if (plot && element.clientWidth && Math.abs(plot.width - element.clientWidth) > 1) {
      plot.setSize({ width: element.clientWidth, height: HEIGHT });
    }
  });
  resize.observe(element);
  build();

  return {
    /** Replace every point (e.g. the history kept while another page was shown). */
    load(columns) {
      data = columns.map((column) => column.slice());
      plot.setData(data);
    },
    rebuild: build,
    destroy() {
      resize.disconnect();
      if (plot) plot.destroy();
      plot = null;
    },
  };
}
