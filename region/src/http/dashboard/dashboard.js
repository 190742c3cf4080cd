// Meridian's live dashboard: polls this node's JSON endpoints and /metrics every second and
// renders them. Plain JavaScript, no dependency, nothing loaded from anywhere but this node.
// Every piece of text coming from the API is set with textContent, never parsed as HTML.
//
// Elements a test reads have stable ids (the same string in data-testid); numbers are also in
// data-value (raw, unformatted; empty when there is none) and states in data-status.
"use strict";

const POLL_MS = 1000;
const TIMEOUT_MS = 3000;
const MAX_EVENTS = 200;
const HISTORY = 60;
const PALETTE = ["#2f6fdb", "#1f9d55", "#d98a1c", "#9b51e0", "#d93838", "#12a4b4", "#7a5c3e", "#e05297", "#5f6b7a"];

const state = {
  polls: 0,
  prev: null, // the last complete snapshot, for rates and events
  events: [],
  ring: null,
  ringVersion: null,
  history: [], // {writes, reads} per second
  connected: null,
  seeded: false,
};

// ---------------------------------------------------------------------------------------------
// Fetching

// With API authentication on (auth.enabled) the endpoints need a token with the read scope:
// open the page as /dashboard#token=TOKEN. The fragment never leaves the browser; the token is
// kept in this tab's sessionStorage and the fragment is removed from the address bar.
const TOKEN = (() => {
  const m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  try {
    if (m) {
      sessionStorage.setItem("meridian-token", decodeURIComponent(m[1]));
      history.replaceState(null, "", location.pathname + location.search);
    }
    return sessionStorage.getItem("meridian-token");
  } catch (_) {
    return m ? m[1] : null;
  }
})();

async function fetchOk(path) {
  const headers = TOKEN ? { Authorization: "Bearer " + TOKEN } : {};
  const r = await fetch(path, { cache: "no-store", headers, signal: AbortSignal.timeout(TIMEOUT_MS) });
  if (!r.ok) {
    let msg = "HTTP " + r.status;
    try { const body = await r.json(); if (body && body.message) msg += ": " + body.message; } catch (_) { /* not JSON */ }
    throw new Error(path + ": " + msg);
  }
  return r;
}
const getJson = async (path) => (await fetchOk(path)).json();
const getText = async (path) => (await fetchOk(path)).text();

/// Prometheus text format → [{name, labels, value}] (comments and malformed lines skipped).
function parseMetrics(text) {
  const out = [];
  const line = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/;
  const label = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
  for (const l of text.split("\n")) {
    if (l === "" || l[0] === "#") continue;
    const m = line.exec(l);
    if (!m) continue;
    const labels = {};
    if (m[2]) for (const lm of m[2].matchAll(label)) labels[lm[1]] = lm[2].replace(/\\(.)/g, (_, c) => (c === "n" ? "\n" : c));
    const value = Number(m[3]);
    if (!Number.isNaN(value)) out.push({ name: m[1], labels, value });
  }
  return out;
}

/// Sum of the samples of `name` whose labels include `filter`; null if there is none.
function metric(samples, name, filter = {}) {
  let sum = null;
  for (const s of samples || []) {
    if (s.name !== name) continue;
    if (Object.entries(filter).some(([k, v]) => s.labels[k] !== v)) continue;
    sum = (sum || 0) + s.value;
  }
  return sum;
}

// ---------------------------------------------------------------------------------------------
// Formatting and DOM helpers

const nf = new Intl.NumberFormat("en-US");
const int = (n) => (n === null || n === undefined ? "—" : nf.format(Math.round(n)));
const pct = (f) => (f === null || f === undefined ? "—" : (f * 100).toFixed(1) + " %");
function ms(v) {
  if (v === null || v === undefined) return "—";
  if (v < 1000) return Math.round(v) + " ms";
  if (v < 60000) return (v / 1000).toFixed(2) + " s";
  return (v / 60000).toFixed(1) + " min";
}
function rate(v) {
  if (v === null || v === undefined) return "—";
  return v >= 100 ? int(v) : v.toFixed(1);
}
function clock(tMs) {
  if (!tMs) return "—";
  const d = new Date(tMs);
  return d.toLocaleTimeString("en-GB", { hour12: false });
}

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined) continue;
    if (k === "class") e.className = v;
    else if (k === "id") { e.id = v; e.dataset.testid = v; }
    else if (k.startsWith("data-")) e.setAttribute(k, String(v));
    else e.setAttribute(k, v);
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}
const chip = (text, cls) => el("span", { class: "chip " + (cls || text) }, text);

/// Sets the text of element `id`, its raw value in data-value, and optionally data-status.
function setVal(id, text, value, status) {
  const e = document.getElementById(id);
  if (!e) return;
  e.textContent = text;
  e.dataset.value = value === null || value === undefined ? "" : String(value);
  if (status !== undefined) e.dataset.status = status;
}

/// A table cell with a stable id and its raw value.
function cell(id, text, value, cls) {
  return el("td", { id, class: cls, "data-value": value === null || value === undefined ? "" : value }, text);
}

// ---------------------------------------------------------------------------------------------
// Events: derived from the difference between two polls (no endpoint keeps a history)

function addEvent(kind, text, t) {
  state.events.push({ kind, text, t: t || Date.now(), seq: state.events.length + Math.random() });
  state.events.sort((a, b) => b.t - a.t);
  if (state.events.length > MAX_EVENTS) state.events.length = MAX_EVENTS;
}

const EVENT_CHIP = {
  "node-down": "down", "node-up": "up", "node-joined": "warn", "node-left": "warn", "node-state": "warn",
  "region-fenced": "fenced", "region-unfenced": "up", "link-down": "down", "link-up": "up", "link-state": "warn",
  "repair-started": "running", "repair-done": "done", "repair-failed": "failed",
  "streaming-done": "done", "streaming-failed": "failed", "ring": "normal", "sync": "normal",
  "hints": "warn", "hints-delivered": "up", "hints-dropped": "failed", "conflict": "warn", "started": "normal",
  "unreachable": "error", "reachable": "up",
};

function repairText(r) {
  const peers = r.peers_total ? `, ${r.peers_done}/${r.peers_total} peers` + (r.peers_failed ? `, ${r.peers_failed} failed` : "") : "";
  return `${int(r.keys_repaired)} keys repaired, ${int(r.segments_differing)} segments differed${peers}`;
}

/// Events already known from the first snapshot: the node's start, its last repair, and
/// anything down at the time the page opened.
function seedEvents(s) {
  const started = metric(s.metrics, "meridian_node_start_time_seconds");
  if (started) addEvent("started", `${s.status.node} started`, started * 1000);
  const r = s.status && s.status.repair;
  if (r && r.finished_ms && (r.state === "done" || r.state === "failed")) {
    addEvent(r.state === "done" ? "repair-done" : "repair-failed",
      `repair ${r.state} (${r.trigger || "?"}): ${repairText(r)}` + (r.error ? ` — ${r.error}` : ""), r.finished_ms);
  }
  for (const n of (s.status && s.status.nodes) || []) {
    if (n.status === "down") addEvent("node-down", `node ${n.id} is down (when the page opened)`);
  }
  if (s.regions && s.regions.fenced) addEvent("region-fenced", `region ${s.regions.region} is fenced (when the page opened)`);
  for (const p of (s.regions && s.regions.peers) || []) {
    if (p.link === "down") addEvent("link-down", `link to ${p.region} is down (when the page opened)` + (p.last_error ? `: ${p.last_error}` : ""));
  }
}

function deriveEvents(a, b) {
  if (a.status && b.status) {
    const before = new Map(a.status.nodes.map((n) => [n.id, n]));
    const after = new Map(b.status.nodes.map((n) => [n.id, n]));
    for (const [id, n] of after) {
      const o = before.get(id);
      if (!o) { addEvent("node-joined", `node ${id} joined the membership (${n.status})`); continue; }
      if (o.status === n.status) continue;
      if (n.status === "down") addEvent("node-down", `node ${id} down (was ${o.status})`);
      else if (o.status === "down") addEvent("node-up", `node ${id} up (${n.status})`);
      else addEvent("node-state", `node ${id}: ${o.status} → ${n.status}`);
    }
    for (const id of before.keys()) if (!after.has(id)) addEvent("node-left", `node ${id} left the membership`);
    if (a.status.ring_version !== b.status.ring_version) {
      addEvent("ring", `ring version ${a.status.ring_version} → ${b.status.ring_version}`);
    }
    const ra = a.status.repair, rb = b.status.repair;
    if (rb.state === "running" && (ra.state !== "running" || ra.started_ms !== rb.started_ms)) {
      addEvent("repair-started", `repair started (${rb.trigger || "?"})`, rb.started_ms || undefined);
    }
    if ((rb.state === "done" || rb.state === "failed") && rb.finished_ms && rb.finished_ms !== ra.finished_ms) {
      addEvent(rb.state === "done" ? "repair-done" : "repair-failed",
        `repair ${rb.state} (${rb.trigger || "?"}): ${repairText(rb)}` + (rb.error ? ` — ${rb.error}` : ""), rb.finished_ms);
    }
    const sa = a.status.streaming, sb = b.status.streaming;
    if ((sb.state === "done" || sb.state === "failed") && sb.finished_ms && sb.finished_ms !== sa.finished_ms) {
      addEvent(sb.state === "done" ? "streaming-done" : "streaming-failed",
        `streaming ${sb.state}: ${sb.ranges_done}/${sb.ranges_total} ranges, ${int(sb.keys)} keys` + (sb.error ? ` — ${sb.error}` : ""), sb.finished_ms);
    }
  }
  if (a.regions && b.regions) {
    if (a.regions.fenced !== b.regions.fenced) {
      addEvent(b.regions.fenced ? "region-fenced" : "region-unfenced", `region ${b.regions.region} ${b.regions.fenced ? "fenced" : "unfenced"}`);
    }
    const before = new Map(a.regions.peers.map((p) => [p.region, p]));
    for (const p of b.regions.peers) {
      const o = before.get(p.region);
      if (!o) continue;
      if (o.link !== p.link) {
        const kind = p.link === "down" ? "link-down" : p.link === "up" ? "link-up" : "link-state";
        addEvent(kind, `link to ${p.region}: ${o.link} → ${p.link}` + (p.last_error ? ` (${p.last_error})` : ""));
      }
      if (p.full_syncs > o.full_syncs) addEvent("sync", `full sync towards ${p.region} (${int(p.full_sync_keys)} keys pushed in all)`);
    }
    const lww = b.regions.conflicts_lww_overwrites - a.regions.conflicts_lww_overwrites;
    const mvr = b.regions.conflicts_siblings_created - a.regions.conflicts_siblings_created;
    if (lww > 0) addEvent("conflict", `${int(lww)} LWW conflict${lww === 1 ? "" : "s"} resolved (a concurrent newer write won)`);
    if (mvr > 0) addEvent("conflict", `${int(mvr)} MVR merge${mvr === 1 ? "" : "s"} created siblings`);
  }
  if (a.hints && b.hints) {
    const before = new Set(a.hints.queues.map((q) => q.number));
    for (const q of b.hints.queues) {
      if (!before.has(q.number)) addEvent("hints", `hints queued for ${q.target || q.number}`);
    }
    const after = new Set(b.hints.queues.map((q) => q.number));
    for (const q of a.hints.queues) {
      if (!after.has(q.number)) addEvent("hints-delivered", `hints for ${q.target || q.number} delivered or dropped (queue empty)`);
    }
    const dropped = b.hints.dropped - a.hints.dropped;
    if (dropped > 0) addEvent("hints-dropped", `${int(dropped)} hints dropped (past the hint window or for a removed node)`);
  }
}

// ---------------------------------------------------------------------------------------------
// Rendering

function colorOf(id, nodes) {
  const i = nodes.findIndex((n) => n.id === id);
  return PALETTE[(i < 0 ? 0 : i) % PALETTE.length];
}

function renderRegions(s) {
  const box = document.getElementById("regions");
  const cards = [];
  if (s.status) {
    const st = s.status;
    const fenced = s.regions ? s.regions.fenced : null;
    const items = st.nodes.map((n) => el("li", { id: "node-" + n.id, "data-node": n.id, "data-status": n.status, "data-testid": "node" },
      el("span", { class: "key", style: "background:" + colorOf(n.id, st.nodes) }),
      el("span", { class: "name" }, n.id),
      el("span", { id: "node-status-" + n.id, "data-status": n.status, class: "chip " + n.status }, n.status),
      n.is_self ? chip("this node", "self") : null,
      el("span", { class: "meta" },
        `${int(n.keys)} records · ${n.version || "?"} · `,
        n.http && !n.is_self ? el("a", { href: "http://" + n.http + "/dashboard", title: "this dashboard as " + n.id + " sees it" }, n.http) : (n.http || "no http"))));
    cards.push(el("div", { class: "region self", id: "region-" + st.region, "data-testid": "region", "data-region": st.region },
      el("h3", null, st.region, chip("this region", "self"),
        el("span", { id: "region-state-" + st.region, class: "chip " + (fenced ? "fenced" : "healthy"), "data-status": fenced ? "fenced" : "serving" },
          fenced === null ? "?" : fenced ? "fenced" : "serving"),
        el("span", { class: "muted", id: "region-nodes-" + st.region, "data-value": st.nodes.filter((n) => n.status === "healthy").length },
          `${st.nodes.filter((n) => n.status === "healthy").length}/${st.nodes.length} healthy`)),
      el("ul", { class: "nodes" }, ...items)));
  }
  if (s.regions) {
    for (const p of s.regions.peers) {
      cards.push(el("div", { class: "region", id: "region-" + p.region, "data-testid": "region", "data-region": p.region },
        el("h3", null, p.region,
          el("span", { id: "region-state-" + p.region, class: "chip " + p.link, "data-status": p.link }, "link " + p.link)),
        el("div", { class: "note" },
          `lag to here p99 ${ms(p.lag_p99_ms)} · backlog from here ${int(p.backlog)} · last ack ${clock(p.last_ack_ms)}`),
        p.last_error ? el("div", { class: "note error" }, p.last_error) : null,
        el("div", { class: "note" }, "its nodes are not visible from this region: open the dashboard of one of them")));
    }
  }
  box.replaceChildren(...cards);
}

function renderTraffic(s, prev) {
  const m = s.metrics;
  const w = metric(m, "meridian_requests_total", { op: "write" });
  const r = metric(m, "meridian_requests_total", { op: "read" });
  const failed = metric(m, "meridian_requests_total", { status: "failed" });
  setVal("writes-total", int(w), w);
  setVal("reads-total", int(r), r);
  setVal("requests-failed", int(failed), failed);
  let wr = null, rr = null, lat = null;
  if (prev && prev.metrics && m) {
    const dt = (s.t - prev.t) / 1000;
    const pw = metric(prev.metrics, "meridian_requests_total", { op: "write" });
    const pr = metric(prev.metrics, "meridian_requests_total", { op: "read" });
    if (dt > 0 && w !== null && pw !== null) wr = Math.max(0, (w - pw) / dt);
    if (dt > 0 && r !== null && pr !== null) rr = Math.max(0, (r - pr) / dt);
    const dc = metric(m, "meridian_request_duration_seconds_count", { op: "write" }) - metric(prev.metrics, "meridian_request_duration_seconds_count", { op: "write" });
    const ds = metric(m, "meridian_request_duration_seconds_sum", { op: "write" }) - metric(prev.metrics, "meridian_request_duration_seconds_sum", { op: "write" });
    if (dc > 0) lat = (ds / dc) * 1000;
    state.history.push({ w: wr || 0, r: rr || 0 });
    if (state.history.length > HISTORY) state.history.shift();
  }
  setVal("write-rate", rate(wr), wr);
  setVal("read-rate", rate(rr), rr);
  setVal("write-latency", lat === null ? "—" : lat < 10 ? lat.toFixed(2) + " ms" : ms(lat), lat);
  const recs = metric(m, "meridian_storage_records");
  setVal("records", int(recs), recs);
  if (s.status) setVal("total-keys", int(s.status.total_keys), s.status.total_keys);
  const rr2 = metric(m, "meridian_read_repairs_total");
  setVal("read-repairs", int(rr2), rr2);
  const hlc = metric(m, "meridian_hlc_rejected_total");
  setVal("hlc-rejected", int(hlc), hlc);
  renderSpark();
}

function renderSpark() {
  const svg = document.getElementById("spark");
  const h = state.history;
  const max = Math.max(1, ...h.map((p) => Math.max(p.w, p.r)));
  const line = (key) => h.map((p, i) => `${(i * 300) / (HISTORY - 1)},${58 - (p[key] / max) * 54}`).join(" ");
  const ns = "http://www.w3.org/2000/svg";
  const mk = (cls, pts) => { const e = document.createElementNS(ns, "polyline"); e.setAttribute("class", cls); e.setAttribute("points", pts); return e; };
  const label = document.createElementNS(ns, "text");
  label.setAttribute("x", "4"); label.setAttribute("y", "11"); label.setAttribute("font-size", "10"); label.setAttribute("fill", "#6b7585");
  label.textContent = "max " + rate(max) + "/s";
  svg.replaceChildren(mk("r", line("r")), mk("w", line("w")), label);
}

function renderRing(s) {
  if (!s.status) return;
  const st = s.status;
  setVal("ring-version", String(st.ring_version), st.ring_version);
  setVal("ring-rf", String(st.replication_factor), st.replication_factor);
  const rows = st.nodes.map((n) => el("tr", { id: "ring-" + n.id, "data-testid": "ring-node" },
    el("td", null, el("span", { class: "key", style: "background:" + colorOf(n.id, st.nodes) }), n.id),
    cell("ring-share-" + n.id, pct(n.ownership), n.ownership, "num"),
    cell("ring-load-" + n.id, pct(n.load), n.load, "num"),
    cell("ring-tokens-" + n.id, int(n.tokens), n.tokens, "num")));
  document.getElementById("ring-rows").replaceChildren(...rows);
  // The donut: every token's primary range (previous token, token], coloured by owner.
  const svg = document.getElementById("ring");
  const ns = "http://www.w3.org/2000/svg";
  const parts = [];
  const ring = state.ring;
  const tokens = [];
  if (ring) for (const n of ring.nodes) for (const t of n.tokens) tokens.push([Number(t), n.id]);
  tokens.sort((x, y) => x[0] - y[0]);
  const FULL = 18446744073709551616;
  const arc = (a0, a1, color) => {
    const R = 100, r = 64;
    const p = (rad, ang) => `${(rad * Math.sin(ang)).toFixed(2)},${(-rad * Math.cos(ang)).toFixed(2)}`;
    const large = a1 - a0 > Math.PI ? 1 : 0;
    const e = document.createElementNS(ns, "path");
    e.setAttribute("d", `M${p(R, a0)}A${R},${R} 0 ${large} 1 ${p(R, a1)}L${p(r, a1)}A${r},${r} 0 ${large} 0 ${p(r, a0)}Z`);
    e.setAttribute("fill", color);
    return e;
  };
  if (tokens.length > 0) {
    // Merge neighbouring ranges of the same owner; the first range wraps around from the last token.
    let start = tokens[tokens.length - 1][0] - FULL;
    for (let i = 0; i < tokens.length; i++) {
      const [t, id] = tokens[i];
      const next = tokens[i + 1];
      if (!next || next[1] !== id) {
        const a0 = Math.max(0, (start / FULL) * 2 * Math.PI), a1 = (t / FULL) * 2 * Math.PI;
        if (a1 > a0) parts.push(arc(a0, a1, colorOf(id, st.nodes)));
        start = t;
      }
    }
    // The wrapped part of the first range: (last token, 2^64).
    const last = tokens[tokens.length - 1][0];
    parts.push(arc((last / FULL) * 2 * Math.PI, 2 * Math.PI - 1e-6, colorOf(tokens[0][1], st.nodes)));
  }
  const label = document.createElementNS(ns, "text");
  label.setAttribute("y", "6");
  label.textContent = `${tokens.length} tokens`;
  svg.replaceChildren(...parts, label);
}

function renderWan(s) {
  const body = document.getElementById("wan-rows");
  if (!s.regions) return;
  const rows = s.regions.peers.map((p) => el("tr", { id: "wan-" + p.region, "data-testid": "wan-pair", "data-peer": p.region },
    el("td", null, el("b", null, p.region), el("span", { class: "muted" }, ` ⇄ ${s.regions.region}`)),
    el("td", { id: "wan-link-" + p.region, "data-status": p.link }, chip(p.link)),
    cell("wan-lag-p50-" + p.region, ms(p.lag_p50_ms), p.lag_p50_ms, "num"),
    cell("wan-lag-p99-" + p.region, ms(p.lag_p99_ms), p.lag_p99_ms, "num"),
    cell("wan-backlog-" + p.region, int(p.backlog), p.backlog, "num"),
    cell("wan-shipped-" + p.region, int(p.shipped), p.shipped, "num"),
    cell("wan-applied-" + p.region, int(p.applied), p.applied, "num"),
    cell("wan-ack-" + p.region, clock(p.last_ack_ms), p.last_ack_ms, "num"),
    cell("wan-syncs-" + p.region, int(p.full_syncs), p.full_syncs, "num"),
    el("td", { class: "err", title: p.last_error || "" }, p.last_error || "")));
  if (rows.length === 0) rows.push(el("tr", { class: "empty" }, el("td", { colspan: "10" }, "no peer region configured")));
  body.replaceChildren(...rows);
}

function renderHints(s) {
  const h = s.hints;
  if (!h) return;
  const pending = h.queues.reduce((a, q) => a + q.pending, 0);
  setVal("hints-pending", int(pending), pending);
  setVal("hints-stored", int(h.stored), h.stored);
  setVal("hints-replayed", int(h.replayed), h.replayed);
  setVal("hints-dropped", int(h.dropped), h.dropped);
  const rows = h.queues.map((q) => {
    const name = q.target || q.number;
    return el("tr", { id: "hint-queue-" + name, "data-testid": "hint-queue" },
      el("td", null, name),
      cell("hint-pending-" + name, int(q.pending), q.pending, "num"),
      cell("hint-age-" + name, ms(q.oldest_age_ms), q.oldest_age_ms, "num"),
      el("td", null, chip(q.target_live ? "live" : "down", q.target_live ? "up" : "down")));
  });
  if (rows.length === 0) rows.push(el("tr", { class: "empty" }, el("td", { colspan: "4" }, "no hints pending")));
  document.getElementById("hint-rows").replaceChildren(...rows);
}

function renderConflictsAndRepair(s) {
  if (s.regions) {
    setVal("conflicts-lww", int(s.regions.conflicts_lww_overwrites), s.regions.conflicts_lww_overwrites);
    setVal("conflicts-mvr", int(s.regions.conflicts_siblings_created), s.regions.conflicts_siblings_created);
  }
  if (s.status) {
    const r = s.status.repair;
    const e = document.getElementById("repair-state");
    e.replaceChildren(chip(r.state, r.state === "idle" ? "normal" : r.state));
    e.dataset.status = r.state;
    document.getElementById("repair-detail").textContent = r.state === "idle" ? "" :
      `${r.trigger || ""} · ${repairText(r)}` + (r.finished_ms ? ` · finished ${clock(r.finished_ms)}` : "") + (r.error ? ` · ${r.error}` : "");
    setVal("repair-last", r.last_complete_ms ? clock(r.last_complete_ms) : "none yet", r.last_complete_ms);
    const st = s.status.streaming;
    setVal("streaming-state", st.state === "idle" ? "idle" : `${st.state}: ${st.ranges_done}/${st.ranges_total} ranges, ${int(st.keys)} keys`, null, st.state);
  }
}

function renderEvents() {
  const items = state.events.map((e) => el("li", { "data-testid": "event", "data-kind": e.kind },
    el("time", { datetime: new Date(e.t).toISOString() }, clock(e.t)),
    chip(e.kind, EVENT_CHIP[e.kind] || "normal"),
    el("span", { class: "text" }, e.text)));
  if (items.length === 0) items.push(el("li", { class: "muted" }, "nothing yet"));
  document.getElementById("events").replaceChildren(...items);
}

function setConnection(ok, text) {
  const dot = document.getElementById("conn");
  dot.dataset.state = ok ? "ok" : "error";
  dot.title = text;
  document.getElementById("conn-text").textContent = text;
}

// ---------------------------------------------------------------------------------------------
// The poll loop: one poll at a time, one per POLL_MS.

async function poll() {
  const started = Date.now();
  const [status, regions, hints, metricsText] = await Promise.allSettled([
    getJson("/api/v1/cluster/status"),
    getJson("/api/v1/regions"),
    getJson("/api/v1/cluster/hints"),
    getText("/metrics"),
  ]);
  const val = (r) => (r.status === "fulfilled" ? r.value : null);
  const errors = [status, regions, hints, metricsText].filter((r) => r.status === "rejected").map((r) => r.reason.message || String(r.reason));
  const snap = { t: Date.now(), status: val(status), regions: val(regions), hints: val(hints), metrics: metricsText.status === "fulfilled" ? parseMetrics(metricsText.value) : null };
  if (!snap.status && !snap.regions && !snap.hints && !snap.metrics) {
    if (state.connected !== false) addEvent("unreachable", "this node does not answer: " + errors[0]);
    state.connected = false;
    setConnection(false, "unreachable");
    renderEvents();
  } else {
    if (state.connected === false) addEvent("reachable", "this node answers again");
    state.connected = true;
    if (snap.status && snap.status.ring_version !== state.ringVersion) {
      try { state.ring = await getJson("/api/v1/cluster/ring"); state.ringVersion = snap.status.ring_version; } catch (e) { errors.push(e.message); }
    }
    if (!state.seeded && snap.status) { seedEvents(snap); state.seeded = true; }
    // Rates and events compare with the last poll; a source missing from either side is skipped.
    const prev = state.prev;
    if (prev) deriveEvents(prev, snap);
    if (snap.status) {
      document.getElementById("this-region").textContent = snap.status.region;
      document.getElementById("this-node").textContent = snap.status.node;
      document.title = `Meridian · ${snap.status.region}/${snap.status.node}`;
    }
    renderRegions(snap);
    renderTraffic(snap, prev);
    renderRing(snap);
    renderWan(snap);
    renderHints(snap);
    renderConflictsAndRepair(snap);
    renderEvents();
    state.prev = {
      t: snap.metrics ? snap.t : prev && prev.t,
      status: snap.status || (prev && prev.status),
      regions: snap.regions || (prev && prev.regions),
      hints: snap.hints || (prev && prev.hints),
      metrics: snap.metrics || (prev && prev.metrics),
    };
    state.polls += 1;
    setVal("polls", String(state.polls), state.polls);
    setVal("updated", clock(snap.t), snap.t);
    setConnection(errors.length === 0, errors.length === 0 ? "live" : "partial: " + errors.join("; "));
  }
  setTimeout(poll, Math.max(0, POLL_MS - (Date.now() - started)));
}

poll();
