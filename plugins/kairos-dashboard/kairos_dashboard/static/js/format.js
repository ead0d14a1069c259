// Number formatting, HTML escaping and histogram arithmetic shared by the pages.

const DASH = "—";

export function escapeHtml(value) {
  return String(value ?? "")
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&#39;");
}

/** Tagged template that escapes every interpolated value unless it is marked raw(). */
export function html(strings, ...values) {
  let out = strings[0];
  values.forEach((value, index) => {
    out += value && value.__raw !== undefined ? value.__raw : escapeHtml(value);
    out += strings[index + 1];
  });
  return { __raw: out };
}

export function raw(text) {
  return { __raw: text };
}

export function join(parts) {
  return { __raw: parts.map((p) => (p && p.__raw !== undefined ? p.__raw : escapeHtml(p))).join("") };
}

export function rate(value) {
  if (value === null || value === undefined) return DASH;
  if (value >= 100) return value.toFixed(0);
  if (value >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

export function percent(ratio) {
  if (ratio === null || ratio === undefined || Number.isNaN(ratio)) return DASH;
  const value = ratio * 100;
  return `${value >= 10 || value === 0 ? value.toFixed(1) : value.toFixed(2)}%`;
}

/** Seconds as a latency: µs, ms or s. */
export function latency(seconds) {
  if (seconds === null || seconds === undefined) return DASH;
  if (seconds < 0.001) return `${(seconds * 1e6).toFixed(0)} µs`;
  if (seconds < 1) return `${(seconds * 1000).toFixed(seconds < 0.01 ? 2 : 1)} ms`;
  return `${seconds.toFixed(2)} s`;
}

export function count(value) {
  if (value === null || value === undefined) return DASH;
  return Math.round(value).toLocaleString("en-US");
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined) return DASH;
  const s = Math.floor(seconds);
  const days = Math.floor(s / 86400);
  const hours = Math.floor((s % 86400) / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  if (days) return `${days}d ${hours}h`;
  if (hours) return `${hours}h ${minutes}m`;
  if (minutes) return `${minutes}m ${s % 60}s`;
  return `${s}s`;
}

/** A quantile from histogram counts, linear within the bucket (as the gateway computes it). */
export function quantile(bounds, counts, q) {
  const total = counts.reduce((a, b) => a + b, 0);
  if (total <= 0) return null;
  const rank = q * total;
  let seen = 0;
  let lower = 0;
  for (let i = 0; i < counts.length; i += 1) {
    const upper = i < bounds.length ? bounds[i] : bounds.length ? bounds[bounds.length - 1] * 2 : 0;
    if (counts[i] && seen + counts[i] >= rank) return lower + (upper - lower) * ((rank - seen) / counts[i]);
    seen += counts[i];
    lower = upper;
  }
  return lower;
}

/** counts - before, element-wise (before may be missing: then counts as they are). */
export function delta(counts, before) {
  if (!counts) return null;
  if (!before || before.length !== counts.length) return counts.slice();
  return counts.map((value, i) => Math.max(0, value - before[i]));
}

export function addInto(target, counts) {
  if (!counts) return target;
  if (!target) return counts.slice();
  return target.map((value, i) => value + (counts[i] || 0));
}
