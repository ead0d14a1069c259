// Config: the running configuration (secrets redacted by the gateway) and a reload button.

import { api } from "../api.js";
import { html } from "../format.js";

export function mount(element, { state, load, reloaded, failed }) {
  element.innerHTML = html`
    <h1>Configuration</h1>
    <div class="panel">
      <p class="muted">The running configuration, as the gateway validated it. Secrets are
        redacted by the gateway before they leave it. <strong>Reload</strong> reads the
        configuration file again; a file with errors is refused and the current
        configuration keeps serving.</p>
      <button type="button" class="primary" id="reload">Reload configuration</button>
      <div id="reload-result" class="result" role="status" hidden></div>
      <pre class="config" id="config-text">Loading…</pre>
    </div>`.__raw;
  const button = element.querySelector("#reload");
  const result = element.querySelector("#reload-result");
  const text = element.querySelector("#config-text");

  function render() {
    if (state.views.config) text.textContent = JSON.stringify(state.views.config, null, 2);
  }

  button.addEventListener("click", async () => {
    button.disabled = true;
    result.hidden = true;
    try {
      const { ok, body } = await api("config/reload", "POST");
      const at = new Date().toLocaleTimeString();
      result.className = `result ${ok ? "ok" : "bad"}`;
      result.dataset.outcome = ok ? "ok" : "error";
      result.textContent = ok
        ? `Reloaded at ${at}${body.workers ? ` in ${body.workers} workers` : ""}.`
        : `Reload refused at ${at}; the current configuration keeps serving.\n\n${body.error || body.message || "unknown error"}`;
      result.hidden = false;
      if (ok) await reloaded();
      render();
    } catch (error) {
      failed(error);
      result.className = "result bad";
      result.dataset.outcome = "error";
      result.textContent = `Reload failed: ${error.message}`;
      result.hidden = false;
    } finally {
      button.disabled = false;
    }
  });

  render();
  load("config").then(render);
  return { update() {}, viewChanged: render, destroy() {} };
}
