// The operator's dashboard (a static file: the page's CSP allows no inline script).
// The rune is kept in sessionStorage only and sent in the Rune header of REST calls
// (POST v1/<method>): no cookie, so no other site can make the browser act with it.
// Everything from the server is put in the page as text (textContent), never as markup.
"use strict";

const KEY = "invreq-rune";

function $(id) {
  return document.getElementById(id);
}

async function call(method, params) {
  const rune = sessionStorage.getItem(KEY);
  const resp = await fetch("v1/" + method, {
    method: "POST",
    headers: { "Content-Type": "application/json", Rune: rune || "" },
    body: JSON.stringify(params || {}),
    credentials: "omit",
  });
  const body = await resp.json();
  if (resp.status !== 201) {
    throw new Error(method + ": " + (body.message || resp.status));
  }
  return body;
}

// Every record a list command has: a filter applied here must see them all, never only a
// first page (review-web: "used", "disabled" and dates looked at the first 1,000 at most).
// A list now answers every record at once (issue 25); reading on from the last one until
// an empty answer also holds for a server that pages.
async function listAll(method, params, key, idOf) {
  const out = [];
  let start = 0;
  for (;;) {
    const got = (await call(method, { ...params, index: "created", start }))[key];
    if (got.length === 0) {
      return out;
    }
    out.push(...got);
    start = idOf(got[got.length - 1]) + 1;
  }
}

function when(unix) {
  return unix ? new Date(unix * 1000).toLocaleString() : "";
}

function stateOf(r) {
  return r.used ? "used" : r.active ? "active" : "disabled";
}

function row(tbody, cells, onClick) {
  const tr = document.createElement("tr");
  for (const c of cells) {
    const td = document.createElement("td");
    td.textContent = c === undefined || c === null ? "" : String(c);
    tr.appendChild(td);
  }
  if (onClick) {
    tr.tabIndex = 0;
    tr.className = "clickable";
    tr.addEventListener("click", onClick);
  }
  tbody.appendChild(tr);
  return tr;
}

function clear(tbody) {
  while (tbody.firstChild) {
    tbody.removeChild(tbody.firstChild);
  }
}

function showError(e) {
  $("error").textContent = e ? String(e.message || e) : "";
}

function approver(p) {
  if (p.resolved_by) {
    return p.resolved_by + " (by hand)";
  }
  if (p.payout_approval && p.payout_approval.pubkey) {
    return "device " + p.payout_approval.pubkey.slice(0, 16) + "…";
  }
  return "";
}

async function loadRequests() {
  const params = {};
  const state = $("f-state").value;
  const label = $("f-label").value;
  if (state === "active") {
    params.active_only = true;
  }
  if (label) {
    params.label = label;
  }
  const from = $("f-from").value ? Date.parse($("f-from").value) / 1000 : null;
  const to = $("f-to").value ? Date.parse($("f-to").value) / 1000 + 86400 : null;
  const all = await listAll("listinvoicerequests", params, "invoicerequests",
    (r) => r.created_index);
  const tbody = $("requests").querySelector("tbody");
  clear(tbody);
  for (const r of all) {
    if (state && stateOf(r) !== state) {
      continue;
    }
    if ((from !== null && r.created_at < from) || (to !== null && r.created_at >= to)) {
      continue;
    }
    const tr = row(
      tbody,
      [r.created_index, when(r.created_at), r.label, stateOf(r), r.invreq_id],
      () => showDetail(r.invreq_id).catch(showError),
    );
    tr.dataset.invreqId = r.invreq_id;
    tr.dataset.state = stateOf(r);
  }
}

async function loadPayments() {
  const params = {};
  if ($("p-status").value) {
    params.status = $("p-status").value;
  }
  const all = await listAll("listpayments", params, "payments", (p) => p.payment_id);
  const tbody = $("payments").querySelector("tbody");
  clear(tbody);
  for (const p of all) {
    row(tbody, [p.payment_id, p.invreq_id.slice(0, 16) + "…", p.status, p.amount_msat,
      when(p.created_at), approver(p)]);
  }
}

async function showDetail(invreqId) {
  const r = (await call("listinvoicerequests", { invreq_id: invreqId })).invoicerequests[0];
  $("detail").hidden = false;
  $("d-id").textContent = r.invreq_id;
  $("detail").dataset.state = stateOf(r);
  const dl = $("d-fields");
  clear(dl);
  const fields = [["state", stateOf(r)], ["label", r.label], ["single use", r.single_use],
    ["created", when(r.created_at)]];
  try {
    const d = await call("decode", { string: r.bolt12 });
    fields.push(["amount (msat)", d.invreq_amount_msat], ["description", d.offer_description],
      ["issuer", d.offer_issuer], ["expires", when(d.offer_absolute_expiry)]);
  } catch (e) {
    // a rune without decode: the rest is still shown
  }
  for (const [k, v] of fields) {
    if (v === undefined || v === null || v === "") {
      continue;
    }
    const dt = document.createElement("dt");
    dt.textContent = k;
    const dd = document.createElement("dd");
    dd.textContent = String(v);
    dl.append(dt, dd);
  }
  const page = $("d-page");
  page.hidden = !r.page_url;
  page.href = r.page_url || "#";
  $("d-disable").hidden = !r.active;
  $("d-disable").dataset.invreqId = r.invreq_id;
  const pays = await listAll("listpayments", { invreq_id: r.invreq_id }, "payments",
    (p) => p.payment_id);
  const pbody = $("d-payments").querySelector("tbody");
  clear(pbody);
  for (const p of pays) {
    row(pbody, [p.payment_id, p.status, p.amount_msat, when(p.created_at),
      when(p.resolved_at), approver(p)]);
  }
  const ebody = $("d-events").querySelector("tbody");
  clear(ebody);
  try {
    const events = (await call("listevents", { invreq_id: r.invreq_id })).events;
    for (const e of events) {
      row(ebody, [e.event_id, e.type, when(e.created_at), e.delivery.state]);
    }
  } catch (e) {
    // a rune without listevents
  }
}

async function disable() {
  const id = $("d-disable").dataset.invreqId;
  if (!window.confirm("Disable this request? No invoice for it will be paid.")) {
    return;
  }
  await call("disableinvoicerequest", { invreq_id: id });
  await showDetail(id);
  await loadRequests();
}

async function start() {
  showError(null);
  $("login").hidden = true;
  $("app").hidden = false;
  try {
    await call("getinfo");
  } catch (e) {
    sessionStorage.removeItem(KEY);
    $("app").hidden = true;
    $("login").hidden = false;
    showError(e);
    return;
  }
  await Promise.all([loadRequests(), loadPayments()]);
}

document.addEventListener("DOMContentLoaded", () => {
  $("login").addEventListener("submit", (ev) => {
    ev.preventDefault();
    sessionStorage.setItem(KEY, $("rune").value.trim());
    $("rune").value = "";
    start().catch(showError);
  });
  $("logout").addEventListener("click", () => {
    sessionStorage.removeItem(KEY);
    window.location.reload();
  });
  $("filters").addEventListener("submit", (ev) => {
    ev.preventDefault();
    loadRequests().catch(showError);
  });
  $("p-filters").addEventListener("submit", (ev) => {
    ev.preventDefault();
    loadPayments().catch(showError);
  });
  $("d-disable").addEventListener("click", () => disable().catch(showError));
  if (sessionStorage.getItem(KEY)) {
    start().catch(showError);
  } else {
    $("login").hidden = false;
  }
});
