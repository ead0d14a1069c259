// Plugins: what is installed and enabled; rate-limit rejections and cache hit ratio, live.

import { count, html, join, percent, rate } from "../format.js";

const RATE_LIMIT = "kairos_ratelimit_decisions";
const CACHE = "kairos_cache_requests";

function totals(message, family, label) {
  const byLabel = message && message.counter_labels && message.counter_labels[family];
  return (byLabel && byLabel[label]) || {};
}

/** Per-second change of one label value between the oldest and newest recent messages. */
function perSecond(state, family, label, value) {
  const recent = state.recent;
  if (recent.length < 2) return null;
  const first = recent[0];
  const last = recent[recent.length - 1];
  const seconds = last.time - first.time;
  if (seconds <= 0) return null;
  const now = totals(last, family, label)[value] || 0;
  const before = totals(first, family, label)[value] || 0;
  return Math.max(0, now - before) / seconds;
}

const STATS = {
  "kairos-ratelimit": {
    title: "Rate limiting",
    cards: [
      ["ratelimit-allowed", "Allowed", (s) => count(totals(s.latest, RATE_LIMIT, "decision").allowed || 0)],
      ["ratelimit-limited", "Rejected (429)", (s) => count(totals(s.latest, RATE_LIMIT, "decision").limited || 0)],
      ["ratelimit-rejected-rate", "Rejections/s", (s) => rate(perSecond(s, RATE_LIMIT, "decision", "limited"))],
      ["ratelimit-ratio", "Rejected share", (s) => {
        const d = totals(s.latest, RATE_LIMIT, "decision");
        const checked = (d.allowed || 0) + (d.limited || 0);
        return checked ? percent((d.limited || 0) / checked) : "—";
      }],
      ["ratelimit-errors", "Backend errors", (s) => count(totals(s.latest, RATE_LIMIT, "decision").backend_error || 0)],
    ],
  },
  "kairos-cache": {
    title: "Cache",
    cards: [
      ["cache-hit-ratio", "Hit ratio", (s) => {
        const r = totals(s.latest, CACHE, "result");
        const served = (r.hit || 0) + (r.stale || 0);
        const lookups = served + (r.miss || 0);
        return lookups ? percent(served / lookups) : "—";
      }],
      ["cache-hits", "Hits", (s) => count(totals(s.latest, CACHE, "result").hit || 0)],
      ["cache-stale", "Stale served", (s) => count(totals(s.latest, CACHE, "result").stale || 0)],
      ["cache-misses", "Misses", (s) => count(totals(s.latest, CACHE, "result").miss || 0)],
      ["cache-bypass", "Bypassed", (s) => count(totals(s.latest, CACHE, "result").bypass || 0)],
    ],
  },
};

export function mount(element, { state, load }) {
  function render() {
    const plugins = state.views.plugins;
    if (!plugins) {
      element.innerHTML = html`<h1>Plugins</h1><p class="empty">Loading…</p>`.__raw;
      return;
    }
    const installed = new Set(plugins.map((p) => p.distribution));
    const enabled = new Set(plugins.filter((p) => p.enabled).map((p) => p.distribution));
    const sections = Object.entries(STATS).filter(([dist]) => installed.has(dist));
    element.innerHTML = html`
      <h1>Plugins</h1>
      ${join(sections.map(([dist, section]) => html`
        <h2>${section.title} <span class="muted">(${dist})</span></h2>
        ${enabled.has(dist)
          ? html`<section class="cards" data-section="${dist}">
              ${join(section.cards.map(([key, label]) => html`
                <div class="panel card"><div class="label">${label}</div>
                <div class="value" data-metric="${key}">—</div></div>`))}
            </section>`
          : html`<p class="muted" data-section="${dist}">Installed; the running configuration
              does not use it.</p>`}`))}
      <h2>Installed</h2>
      <div class="panel table-wrap">
        <table class="responsive" id="plugins-table">
          <thead><tr><th>Component</th><th>Distribution</th><th>Version</th><th>Enabled</th></tr></thead>
          <tbody>${join(plugins.map((p) => html`
            <tr data-plugin="${p.name}">
              <td data-label="Component"><strong>${p.name}</strong></td>
              <td data-label="Distribution">${p.distribution || "—"}</td>
              <td data-label="Version">${p.version || "—"}</td>
              <td data-label="Enabled">${p.enabled
                ? html`<span class="badge ok">enabled</span>`
                : html`<span class="badge">installed</span>`}</td>
            </tr>`))}
          </tbody>
        </table>
      </div>
      <p class="muted">Enabled: named by the running configuration (a chain entry, a balancer, a
        listener protocol or <code>admin.plugins</code>). Installed plugins that it does not name
        are not imported.</p>`.__raw;
    update();
  }

  function update() {
    for (const section of Object.values(STATS)) {
      for (const [key, , compute] of section.cards) {
        const target = element.querySelector(`[data-metric="${key}"]`);
        if (!target) continue;
        const text = state.latest ? compute(state) : "—";
        if (target.textContent !== text) target.textContent = text;
      }
    }
  }

  render();
  load("plugins").then(render);
  return { update, viewChanged: render, destroy() {} };
}
