// Overview: requests per second, error rate and latency percentiles, live; gateway facts.

import { lineChart } from "../charts.js";
import { count, duration, html, join, latency, percent, rate } from "../format.js";

const CARDS = [
  ["rps", "Requests/s"],
  ["error-rate", "Error rate"],
  ["p50", "Latency p50"],
  ["p95", "Latency p95"],
  ["p99", "Latency p99"],
  ["requests", "Requests (total)"],
  ["open-connections", "Open connections"],
  ["in-flight", "In flight"],
  ["uptime", "Uptime"],
  ["version", "Version"],
  ["status", "Status"],
];

export function mount(element, { state }) {
  element.innerHTML = html`
    <h1>Overview</h1>
    <section class="cards">
      ${join(CARDS.map(([key, label]) => html`
        <div class="panel card"><div class="label">${label}</div>
        <div class="value" data-metric="${key}">—</div></div>`))}
    </section>
    <section class="charts">
      <div class="panel chart"><h3>Requests per second</h3><div class="plot" id="chart-rps"></div></div>
      <div class="panel chart"><h3>Error rate (5xx)</h3><div class="plot" id="chart-errors"></div></div>
      <div class="panel chart"><h3>Latency</h3><div class="plot" id="chart-latency"></div></div>
    </section>`.__raw;

  const charts = [
    [
      lineChart(element.querySelector("#chart-rps"), {
        series: [{ label: "req/s", color: "--series-1" }],
        format: { value: rate, tick: (v) => rate(v), floor: 1 },
      }),
      (h) => [h.rps],
    ],
    [
      lineChart(element.querySelector("#chart-errors"), {
        series: [{ label: "errors", color: "--series-3" }],
        format: { value: percent, tick: (v) => percent(v), floor: 0.01 },
      }),
      (h) => [h.errorRate],
    ],
    [
      lineChart(element.querySelector("#chart-latency"), {
        series: [
          { label: "p50", color: "--series-1" },
          { label: "p95", color: "--series-2" },
          { label: "p99", color: "--series-3" },
        ],
        format: { value: latency, tick: (v) => latency(v), floor: 0.001 },
      }),
      (h) => [h.p50, h.p95, h.p99],
    ],
  ];

  function show(key, text) {
    const target = element.querySelector(`[data-metric="${key}"]`);
    if (target && target.textContent !== text) target.textContent = text;
  }

  function loadHistory() {
    const h = state.history;
    for (const [chart, pick] of charts) chart.load([h.time, ...pick(h)]);
  }

  function update() {
    const message = state.latest;
    if (!message) return;
    const total = state.rates ? state.rates.total : {};
    show("rps", rate(total.rps));
    show("error-rate", total.requests ? percent(total.error_rate) : state.rates ? percent(0) : "—");
    show("p50", latency(total.p50));
    show("p95", latency(total.p95));
    show("p99", latency(total.p99));
    const requests = Object.values(message.routes).reduce((sum, r) => sum + r.requests, 0);
    show("requests", count(requests));
    show("open-connections", count(message.open_connections));
    show("in-flight", count(message.in_flight));
    show("uptime", duration(message.health.uptime_seconds));
    show("version", message.health.version || "—");
    show("status", message.health.status || "—");
    loadHistory();
  }

  loadHistory();
  update();
  return {
    update,
    rethemed() {
      for (const [chart] of charts) chart.rebuild();
      loadHistory();
    },
    destroy() {
      for (const [chart] of charts) chart.destroy();
    },
  };
}
