// The payee page's script (a static file: the page's CSP allows no inline script).
// It shows times in the viewer's time zone, enables the copy button and follows the
// state live over server-sent events. Without it the page is still right: the server
// renders the state and a <noscript> refresh reloads it.
"use strict";

function localTime(el) {
  const unix = Number(el.dataset.unix);
  if (unix) {
    el.textContent = new Date(unix * 1000).toLocaleString();
  }
}

function render(s) {
  const box = document.getElementById("state");
  box.dataset.state = s.state;
  box.className = "state state-" + s.state;
  document.getElementById("state-words").textContent = s.words;
  document.getElementById("state-reason").textContent = s.reason || "";
  const paid = document.getElementById("paid-at");
  paid.textContent = "";
  if (s.paid_at) {
    const t = document.createElement("time");
    t.id = "paid-time";
    t.dataset.unix = String(s.paid_at);
    t.dateTime = new Date(s.paid_at * 1000).toISOString();
    localTime(t);
    paid.appendChild(t);
  }
}

function copyButton() {
  const button = document.getElementById("copy");
  const text = document.getElementById("bolt12");
  if (!button || !text) {
    return;
  }
  button.hidden = false;
  button.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(text.value);
    } catch (e) {
      text.select();
      document.execCommand("copy");
    }
    button.textContent = "Copied";
  });
}

function follow() {
  const stream = document.getElementById("stream");
  if (!stream || !window.EventSource) {
    return;
  }
  const source = new EventSource(stream.dataset.events);
  source.addEventListener("state", (e) => render(JSON.parse(e.data)));
  source.addEventListener("end", () => source.close());
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("time[data-unix]").forEach(localTime);
  copyButton();
  follow();
});
