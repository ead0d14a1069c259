// Routes: match rules, plugin chain and live traffic, errors and latency of each route.

import { count, html, join, latency, percent, rate } from "../format.js";

const LIVE = [
  ["rps", "Req/s"],
  ["errors", "Errors"],
  ["p50", "p50"],
  ["p95", "p95"],
  ["p99", "p99"],
  ["upstream", "Upstream p95"],
  ["requests", "Requests"],
];

function matchRules(route) {
  const parts = [];
  const methods = route.methods && route.methods.length ? route.methods.join(",") : "any";
  parts.push(html`<div><code>${methods}</code> ${route.path ? html`<code>${route.path}</code>` : html`<code>${route.prefix}</code>*`}</div>`);
  if (route.hosts && route.hosts.length) parts.push(html`<div class="muted">host ${route.hosts.join(", ")}</div>`);
  for (const [name, value] of Object.entries(route.headers || {})) {
    parts.push(html`<div class="muted">header ${name}: ${value}</div>`);
  }
  if (route.rewrite) parts.push(html`<div class="muted">rewrite → ${route.rewrite}</div>`);
  else if (route.strip_prefix) parts.push(html`<div class="muted">prefix stripped</div>`);
  return join(parts);
}

function chain(links) {
  if (!links || !links.length) return html`<span class="muted">proxy only</span>`;
  return html`<div class="chain">${join(
    links.map((link) => html`<span class="badge" title="${link.phase}, priority ${link.priority}, ${link.scope}">${link.name}</span>`),
  )}</div>`;
}

export function mount(element, { state, load }) {
  let cells = new Map();

  function render() {
    const routes = state.views.routes;
    if (!routes) {
      element.innerHTML = html`<h1>Routes</h1><p class="empty">Loading…</p>`.__raw;
      return;
    }
    element.innerHTML = html`
      <h1>Routes</h1>
      <div class="panel table-wrap">
        <table class="responsive" id="routes-table">
          <thead><tr><th>Route</th><th>Match</th><th>Upstream</th><th>Chain</th>
            ${join(LIVE.map(([, label]) => html`<th class="num">${label}</th>`))}</tr></thead>
          <tbody>${join(routes.map((route) => html`
            <tr data-route="${route.name}">
              <td data-label="Route"><strong>${route.name}</strong></td>
              <td data-label="Match">${matchRules(route)}</td>
              <td data-label="Upstream"><code>${route.upstream}</code></td>
              <td data-label="Chain">${chain(route.chain)}</td>
              ${join(LIVE.map(([key, label]) => html`<td class="num" data-label="${label}" data-field="${key}">—</td>`))}
            </tr>`))}
          </tbody>
        </table>
        ${routes.length ? "" : html`<p class="empty">No routes configured.</p>`}
      </div>`.__raw;
    cells = new Map();
    for (const row of element.querySelectorAll("tr[data-route]")) {
      const fields = {};
      for (const cell of row.querySelectorAll("[data-field]")) fields[cell.dataset.field] = cell;
      cells.set(row.dataset.route, fields);
    }
    update();
  }

  function update() {
    const message = state.latest;
    if (!message) return;
    for (const [name, fields] of cells) {
      const live = state.rates && state.rates.routes[name];
      const totals = message.routes[name];
      const values = {
        rps: live ? rate(live.rps) : state.rates ? rate(0) : "—",
        errors: live && live.requests ? percent(live.error_rate) : "—",
        p50: latency(live && live.p50),
        p95: latency(live && live.p95),
        p99: latency(live && live.p99),
        upstream: latency(live && live.upstream && live.upstream.p95),
        requests: count(totals ? totals.requests : 0),
      };
      for (const [key, text] of Object.entries(values)) {
        if (fields[key].textContent !== text) fields[key].textContent = text;
      }
    }
  }

  render();
  load("routes").then(render);
  return { update, viewChanged: render, destroy() {} };
}
