// Backends: health, circuit state, in-flight requests and latency per backend, live; per pool too.

import { addInto, count, delta, html, join, latency, quantile } from "../format.js";

const POLL_MS = 2000;
const CIRCUIT = { closed: "ok", half_open: "warn", open: "bad" };
const STATE_TEXT = { down: "down", ejected: "ejected", circuit_open: "circuit open" };

/** Upstream latency of a pool over the recent window: its routes' bucket deltas, merged. */
function poolLatency(state, pool) {
  const routes = (state.views.routes || []).filter((r) => r.upstream === pool).map((r) => r.name);
  const recent = state.recent;
  if (!routes.length || recent.length < 2) return null;
  const first = recent[0];
  const last = recent[recent.length - 1];
  let merged = null;
  for (const name of routes) {
    const now = last.routes[name];
    if (!now) continue;
    const before = first.routes[name];
    merged = addInto(merged, delta(now.upstream_latency_buckets, before && before.upstream_latency_buckets));
  }
  if (!merged) return null;
  const bounds = last.upstream_latency_bounds || [];
  return { p50: quantile(bounds, merged, 0.5), p95: quantile(bounds, merged, 0.95), p99: quantile(bounds, merged, 0.99) };
}

/** One backend's latency (to the response head) over the recent window: p50 and p95. */
function backendLatency(state, key) {
  const recent = state.recent;
  if (recent.length < 2) return null;
  const find = (message) => (message.backends || []).find((b) => `${b.upstream}/${b.backend}` === key);
  const now = find(recent[recent.length - 1]);
  if (!now || !now.latency_buckets) return null;
  const before = find(recent[0]);
  const counts = delta(now.latency_buckets, before && before.latency_buckets);
  const bounds = recent[recent.length - 1].backend_latency_bounds || [];
  const p50 = quantile(bounds, counts, 0.5);
  if (p50 === null) return null;
  return { p50, p95: quantile(bounds, counts, 0.95) };
}

export function mount(element, { state, load }) {
  let rows = new Map();
  let pools = new Map();

  function render() {
    const upstreams = state.views.upstreams;
    if (!upstreams) {
      element.innerHTML = html`<h1>Backends</h1><p class="empty">Loading…</p>`.__raw;
      return;
    }
    element.innerHTML = html`
      <h1>Backends</h1>
      ${upstreams.length ? "" : html`<p class="empty">No upstream pools.</p>`}
      ${join(upstreams.map((pool) => html`
        <section class="panel pool" data-pool="${pool.name}">
          <h2>${pool.name}</h2>
          <p class="muted">balancer <code>${pool.balancer}</code> ·
            health checks ${pool.health_checks ? "active" : "passive only"}
            ${pool.panic_mode ? " · panic mode" : ""} ·
            upstream latency (last ${state.windowSeconds}s):
            <span data-pool-latency>—</span></p>
          <div class="table-wrap"><table class="responsive">
            <thead><tr><th>Backend</th><th>URL</th><th>Status</th><th>Circuit</th>
              <th class="num">In flight</th><th class="num">Latency p50 / p95</th>
              <th class="num">Weight</th></tr></thead>
            <tbody>${join(pool.backends.map((b) => html`
              <tr data-backend="${pool.name}/${b.name}">
                <td data-label="Backend"><strong>${b.name}</strong></td>
                <td data-label="URL"><code>${b.url}</code></td>
                <td data-label="Status" data-field="status"></td>
                <td data-label="Circuit" data-field="circuit"></td>
                <td data-label="In flight" class="num" data-field="in_flight"></td>
                <td data-label="Latency p50 / p95" class="num" data-field="latency"></td>
                <td data-label="Weight" class="num">${b.weight}</td>
              </tr>`))}
            </tbody></table></div>
        </section>`))}`.__raw;
    rows = new Map();
    for (const pool of upstreams) {
      for (const b of pool.backends) {
        const row = element.querySelector(`tr[data-backend="${CSS.escape(`${pool.name}/${b.name}`)}"]`);
        const fields = {};
        for (const cell of row.querySelectorAll("[data-field]")) fields[cell.dataset.field] = cell;
        rows.set(`${pool.name}/${b.name}`, { info: b, fields });
      }
    }
    pools = new Map(upstreams.map((p) => [p.name, element.querySelector(`[data-pool="${CSS.escape(p.name)}"] [data-pool-latency]`)]));
    update();
  }

  function badge(cell, text, tone) {
    const markup = html`<span class="badge ${tone}">${text}</span>`.__raw;
    if (cell.innerHTML !== markup) cell.innerHTML = markup;
    cell.dataset.value = text;
  }

  function update() {
    const live = new Map();
    for (const b of (state.latest && state.latest.backends) || []) live.set(`${b.upstream}/${b.backend}`, b);
    for (const [key, { info, fields }] of rows) {
      const now = live.get(key);
      const up = now ? now.up : info.available;
      const detail = STATE_TEXT[info.state] || "down";
      badge(fields.status, up ? "up" : detail, up ? "ok" : "bad");
      const circuit = now ? now.circuit : info.circuit;
      if (circuit) badge(fields.circuit, circuit.replace("_", "-"), CIRCUIT[circuit]);
      else badge(fields.circuit, "none", "");
      const inFlight = count(now ? now.in_flight : info.in_flight);
      if (fields.in_flight.textContent !== inFlight) fields.in_flight.textContent = inFlight;
      const found = backendLatency(state, key);
      const text = found ? `${latency(found.p50)} / ${latency(found.p95)}` : "—";
      if (fields.latency.textContent !== text) fields.latency.textContent = text;
    }
    for (const [name, target] of pools) {
      const found = target && poolLatency(state, name);
      const text = found && found.p50 !== null
        ? `p50 ${latency(found.p50)} · p95 ${latency(found.p95)} · p99 ${latency(found.p99)}`
        : "no traffic";
      if (target && target.textContent !== text) target.textContent = text;
    }
  }

  async function poll() {
    await Promise.all([load("upstreams"), state.views.routes ? null : load("routes")]);
    if (rows.size === 0 || changed()) render();
    else update();
  }

  function changed() {
    const keys = new Set((state.views.upstreams || []).flatMap((p) => p.backends.map((b) => `${p.name}/${b.name}`)));
    if (keys.size !== rows.size) return true;
    for (const pool of state.views.upstreams) {
      for (const b of pool.backends) {
        const row = rows.get(`${pool.name}/${b.name}`);
        if (!row) return true;
        row.info = b;
      }
    }
    return false;
  }

  render();
  poll();
  const timer = window.setInterval(poll, POLL_MS);
  return { update, viewChanged: render, destroy: () => window.clearInterval(timer) };
}
