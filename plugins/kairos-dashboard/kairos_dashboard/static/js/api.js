// The admin API: JSON fetches with the bearer token, and the live metrics WebSocket.

const TOKEN_KEY = "kairos-admin-token";
const STREAM_PROTOCOL = "kairos.stream";

/** The admin API's root: the dashboard lives at <root>/dashboard/. */
export const ADMIN_ROOT = new URL("../", window.location.href);

/** Raised when the admin API answers 401 (no token, or a wrong one). */
export class Unauthorized extends Error {}

export function storedToken() {
  return window.sessionStorage.getItem(TOKEN_KEY);
}

export function storeToken(token) {
  window.sessionStorage.setItem(TOKEN_KEY, token);
}

export function forgetToken() {
  window.sessionStorage.removeItem(TOKEN_KEY);
}

/** GET (or `method`) an admin endpoint; the parsed JSON body, or an Error with its message. */
export async function api(path, method = "GET") {
  const headers = { Accept: "application/json" };
  const token = storedToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  const response = await fetch(new URL(path, ADMIN_ROOT), { method, headers, cache: "no-store" });
  if (response.status === 401) throw new Unauthorized("admin token required");
  const body = await response.json().catch(() => null);
  if (!response.ok && !(body && typeof body === "object")) {
    throw new Error(`${method} /${path}: HTTP ${response.status}`);
  }
  return { status: response.status, ok: response.ok, body };
}

/** `bearer.<base64url>`: the token as a WebSocket subprotocol (browsers cannot set headers). */
function bearerProtocol(token) {
  const bytes = new TextEncoder().encode(token);
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return "bearer." + window.btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/**
 * The live metrics stream: calls onMessage with each snapshot/update and onState with
 * "live", "connecting" or "offline"; reconnects with a growing delay until stopped.
 * onClosedEarly(attempt) may return false to stop retrying (e.g. the token was refused).
 */
export function openStream({ interval, onMessage, onState, onClosedEarly }) {
  let socket = null;
  let stopped = false;
  let delay = 500;
  let timer = null;

  function connect() {
    const url = new URL(`stream?interval=${interval}`, ADMIN_ROOT);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    const token = storedToken();
    const protocols = token ? [STREAM_PROTOCOL, bearerProtocol(token)] : [STREAM_PROTOCOL];
    let opened = false;
    onState("connecting");
    socket = new WebSocket(url, protocols);
    socket.onopen = () => {
      opened = true;
      delay = 500;
      onState("live");
    };
    socket.onmessage = (event) => onMessage(JSON.parse(event.data));
    socket.onclose = async () => {
      socket = null;
      if (stopped) return;
      onState("offline");
      if (!opened && onClosedEarly && (await onClosedEarly()) === false) return;
      timer = window.setTimeout(connect, delay);
      delay = Math.min(delay * 2, 5000);
    };
  }

  connect();
  return {
    stop() {
      stopped = true;
      if (timer !== null) window.clearTimeout(timer);
      if (socket) socket.close();
    },
  };
}
