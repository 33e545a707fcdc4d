// The spacerouter dashboard: everything comes from the admin API
// (SPEC.md section 13); changes carry the page's CSRF token.
"use strict";

const csrf = document.querySelector('meta[name="csrf-token"]').content;
let current = null; // the app whose detail and lines are shown
let source = null;  // the EventSource of its live lines

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function row(cells) {
  const tr = el("tr");
  for (const c of cells) {
    const td = el("td");
    if (c instanceof Node) td.appendChild(c); else td.textContent = c === undefined || c === null ? "" : String(c);
    tr.appendChild(td);
  }
  return tr;
}

function status(msg) { document.getElementById("status").textContent = msg || ""; }

async function api(method, path, body) {
  const opts = { method, headers: { "Accept": "application/json" }, credentials: "same-origin" };
  if (method !== "GET") opts.headers["X-CSRF-Token"] = csrf;
  if (body !== undefined) { opts.headers["Content-Type"] = "application/json"; opts.body = JSON.stringify(body); }
  const resp = await fetch(path, opts);
  if (resp.status === 401) { location.href = "/auth/login?next=" + encodeURIComponent(location.pathname); throw new Error("signed out"); }
  const data = resp.headers.get("Content-Type") === "application/json" ? await resp.json() : null;
  if (!resp.ok) throw new Error((data && data.error) || resp.statusText);
  return data;
}

function day(t) { return t ? t.slice(0, 10) : ""; }

// counts writes "key: count" pairs; with a window, each with its rate
// per minute too.
function counts(m, seconds) {
  return Object.keys(m || {}).sort().map(k => k + ": " + m[k] +
    (seconds ? " (" + (m[k] * 60 / seconds).toFixed(1) + "/min)" : "")).join(", ");
}

async function loadApps() {
  const apps = await api("GET", "/api/apps");
  const tbody = document.querySelector("#apps tbody");
  tbody.replaceChildren();
  for (const a of apps) {
    const name = el("button", a.name, "link");
    name.type = "button";
    name.dataset.app = a.name;
    name.addEventListener("click", () => showApp(a.name));
    const dynos = el("span");
    for (const d of a.dynos || []) {
      dynos.appendChild(el("span", d.name + " " + d.state, d.state));
      dynos.appendChild(document.createTextNode(" "));
    }
    const t = a.last_5m || {};
    const rate = t.window_seconds ? (t.requests / t.window_seconds).toFixed(2) + "/s" : "";
    const maint = el("span");
    maint.appendChild(el("span", a.maintenance ? "on" : "off", a.maintenance ? "on maintenance" : "maintenance"));
    if (a.role === "owner" || a.role === "admin") {
      const b = el("button", a.maintenance ? "Turn off" : "Turn on");
      b.type = "button";
      b.className = "toggle-maintenance";
      b.dataset.app = a.name;
      b.addEventListener("click", () => toggle(a.name, !a.maintenance));
      maint.appendChild(document.createTextNode(" "));
      maint.appendChild(b);
    }
    const tr = row([name, a.role, dynos, t.requests, rate, (t.per_minute || []).join(" "), counts(t.statuses),
      counts(t.codes, t.window_seconds), a.tls_source, a.mtls_mode, maint]);
    tr.dataset.app = a.name;
    tbody.appendChild(tr);
  }
}

async function toggle(app, on) {
  try {
    await api("PUT", "/api/apps/" + encodeURIComponent(app) + "/maintenance", { maintenance: on });
    status("");
    await loadApps();
  } catch (e) { status("Maintenance of " + app + ": " + e.message); }
}

async function showApp(app) {
  current = app;
  document.getElementById("detail").hidden = false;
  document.getElementById("detail-name").textContent = app;
  const d = await api("GET", "/api/apps/" + encodeURIComponent(app));
  const certs = document.querySelector("#certs tbody");
  certs.replaceChildren();
  for (const c of d.certificates || []) {
    certs.appendChild(row([c.source, (c.names || [c.domain]).join(" "), el("span", c.state + (c.last_error ? ": " + c.last_error : ""), c.state),
      c.serial, c.issuer, day(c.not_after)]));
  }
  const clients = document.querySelector("#clients tbody");
  clients.replaceChildren();
  for (const c of await api("GET", "/api/apps/" + encodeURIComponent(app) + "/clients")) {
    clients.appendChild(row([c.id, c.name, el("span", c.status, c.status), day(c.not_after)]));
  }
  startLines(app);
}

function startLines(app) {
  stopLines();
  const pre = document.getElementById("lines");
  pre.textContent = "";
  source = new EventSource("/api/lines?app=" + encodeURIComponent(app));
  source.onmessage = ev => {
    pre.appendChild(el("div", ev.data, "line"));
    while (pre.childNodes.length > 1000) pre.removeChild(pre.firstChild);
    pre.scrollTop = pre.scrollHeight;
  };
  source.addEventListener("dropped", ev => status(ev.data + " lines were dropped: the page fell behind"));
  source.onerror = () => { if (source && source.readyState === EventSource.CLOSED) status("The live lines stopped: reload the page."); };
}

function stopLines() {
  if (source) { source.close(); source = null; }
}

async function loadTLS() {
  const s = await api("GET", "/api/tls/summary");
  const sum = document.getElementById("tls-summary");
  sum.replaceChildren(el("p", s.connections + " open; " + s.without_client_certificate + " without a client certificate"));
  const ul = el("ul");
  for (const b of s.by_served_certificate) ul.appendChild(el("li", b.app + " serial " + b.serial + " (expires " + day(b.not_after) + "): " + b.connections));
  for (const b of s.by_client_ca) ul.appendChild(el("li", "client CA " + (b.ca || b.issuer) + ": " + b.connections));
  sum.appendChild(ul);
  const tbody = document.querySelector("#tls tbody");
  tbody.replaceChildren();
  for (const c of await api("GET", "/api/tls/connections")) {
    const cl = c.client_certificate;
    tbody.appendChild(row([c.remote_addr, c.app, c.sni, c.tls_version, c.cipher_suite, c.alpn, c.served_certificate.serial,
      day(c.served_certificate.not_after), cl ? cl.subject + " (" + cl.status + ")" : "", cl ? cl.ca || cl.issuer : "", c.age_seconds + "s", c.requests]));
  }
}

async function refresh() {
  try {
    await loadApps();
    await loadTLS();
    status("");
  } catch (e) { status(e.message); }
}

document.getElementById("logout").addEventListener("click", async () => {
  stopLines();
  await fetch("/auth/logout", { method: "POST", headers: { "X-CSRF-Token": csrf }, credentials: "same-origin" });
  document.body.replaceChildren(el("p", "Signed out. "), Object.assign(el("a", "Sign in again"), { href: "/auth/login" }));
});
document.getElementById("stop-lines").addEventListener("click", stopLines);

refresh();
setInterval(refresh, 10000);
