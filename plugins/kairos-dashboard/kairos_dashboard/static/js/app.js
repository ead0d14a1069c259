// The dashboard shell: login, theme, page switching and the shared live state.

import { Unauthorized, api, forgetToken, openStream, storeToken, storedToken } from "./api.js";
import { html } from "./format.js";
import * as backends from "./pages/backends.js";
import * as config from "./pages/config.js";
import * as overview from "./pages/overview.js";
import * as plugins from "./pages/plugins.js";
import * as routes from "./pages/routes.js";

const PAGES = { overview, routes, backends, plugins, config };
const INTERVAL = streamInterval(new URLSearchParams(window.location.search).get("interval"));
const HISTORY = 300;
const WINDOW = 10; // seconds of recent updates behind windowed figures (rejections/s, pool latency)
const THEME_KEY = "kairos-dashboard-theme";

const state = {
  latest: null,
  rates: null,
  recent: [],
  windowSeconds: WINDOW,
  history: { time: [], rps: [], errorRate: [], p50: [], p95: [], p99: [] },
  views: { routes: null, upstreams: null, plugins: null, config: null },
};

const view = document.getElementById("view");
const login = document.getElementById("login");
const connection = document.getElementById("connection");
const logout = document.getElementById("logout");
let page = null;
let stream = null;

/** Seconds between stream updates: `?interval=` on the page's URL (0.2 to 60), else 1. */
function streamInterval(asked) {
  const value = Number(asked);
  return asked && Number.isFinite(value) ? Math.min(Math.max(value, 0.2), 60) : 1;
}

// -- theme: the system's preference until the toggle picks one ---------------------------------
const darkQuery = window.matchMedia("(prefers-color-scheme: dark)");

function effectiveTheme() {
  return document.documentElement.dataset.theme || (darkQuery.matches ? "dark" : "light");
}

function applyTheme(theme) {
  if (theme) document.documentElement.dataset.theme = theme;
  else delete document.documentElement.dataset.theme;
  const toggle = document.getElementById("theme-toggle");
  toggle.textContent = effectiveTheme() === "dark" ? "Light" : "Dark";
  if (page && page.rethemed) page.rethemed();
}

document.getElementById("theme-toggle").addEventListener("click", () => {
  const next = effectiveTheme() === "dark" ? "light" : "dark";
  window.localStorage.setItem(THEME_KEY, next);
  applyTheme(next);
});
darkQuery.addEventListener("change", () => applyTheme(window.localStorage.getItem(THEME_KEY)));
applyTheme(window.localStorage.getItem(THEME_KEY));

// -- data ----------------------------------------------------------------------------------------
async function load(name) {
  try {
    const { body } = await api(name);
    state.views[name] = body;
  } catch (error) {
    failed(error);
  }
  return state.views[name];
}

function receive(message) {
  state.latest = message;
  // A snapshot's rates cover everything since start over no time: only updates are rates.
  state.rates = message.type === "update" ? message.rates : null;
  state.recent.push(message);
  while (state.recent.length > 2 && message.time - state.recent[1].time >= WINDOW) state.recent.shift();
  if (message.type === "update") {
    const total = message.rates.total;
    const h = state.history;
    h.time.push(message.time);
    h.rps.push(total.rps);
    h.errorRate.push(total.requests ? total.error_rate : 0);
    h.p50.push(total.p50);
    h.p95.push(total.p95);
    h.p99.push(total.p99);
    if (h.time.length > HISTORY) for (const key of Object.keys(h)) h[key] = h[key].slice(-HISTORY);
  }
  if (page) page.update();
}

function setConnection(status) {
  connection.textContent = status;
  connection.className = `badge status-pill ${status === "live" ? "ok" : status === "offline" ? "bad" : "warn"}`;
}

// -- pages ---------------------------------------------------------------------------------------
function show() {
  const name = (window.location.hash.replace(/^#\/?/, "") || "overview").split("?")[0];
  const module = PAGES[name] || overview;
  if (page) page.destroy();
  view.innerHTML = "";
  for (const link of document.querySelectorAll("#nav a")) {
    if (link.dataset.page === (PAGES[name] ? name : "overview")) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  document.title = `${name[0].toUpperCase()}${name.slice(1)} · Kairos dashboard`;
  page = module.mount(view, { state, load, reloaded, failed });
}

async function reloaded() {
  await Promise.all(Object.keys(state.views).map(load));
  if (page && page.viewChanged) page.viewChanged();
}

// -- sign-in -------------------------------------------------------------------------------------
function failed(error) {
  if (error instanceof Unauthorized) signOut("The admin API refused the token.");
  else console.warn("kairos dashboard:", error.message);
}

function signOut(message = "") {
  if (stream) stream.stop();
  stream = null;
  if (page) page.destroy();
  page = null;
  view.innerHTML = "";
  state.latest = null;
  state.rates = null;
  state.recent = [];
  for (const key of Object.keys(state.views)) state.views[key] = null;
  for (const key of Object.keys(state.history)) state.history[key] = [];
  const hadToken = Boolean(storedToken());
  forgetToken();
  login.hidden = false;
  logout.hidden = true;
  document.body.dataset.signedOut = "";
  setConnection("signed out");
  document.getElementById("login-error").textContent = hadToken ? message : "";
  document.getElementById("token").focus();
}

async function start() {
  // Any data endpoint tells whether a token is needed; nothing is shown until it answers.
  try {
    state.views.plugins = (await api("plugins")).body;
  } catch (error) {
    if (error instanceof Unauthorized) {
      signOut("The admin API refused the token.");
    } else {
      view.innerHTML = html`<p class="empty">Cannot reach the admin API (${error.message}); retrying…</p>`.__raw;
      window.setTimeout(start, 3000);
    }
    return;
  }
  login.hidden = true;
  logout.hidden = !storedToken();
  delete document.body.dataset.signedOut;
  stream = openStream({
    interval: INTERVAL,
    onMessage: receive,
    onState: setConnection,
    onClosedEarly: async () => {
      try {
        await api("routes");
        return true;
      } catch (error) {
        failed(error);
        return !(error instanceof Unauthorized);
      }
    },
  });
  show();
}

document.getElementById("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = document.getElementById("token");
  storeToken(input.value.trim());
  input.value = "";
  document.getElementById("login-error").textContent = "";
  await start();
});

logout.addEventListener("click", () => {
  signOut();
});

window.addEventListener("hashchange", () => {
  if (stream) show();
});

start();
