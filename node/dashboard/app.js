"use strict";
// crisismesh dashboard: reads the node's local API (the session cookie set
// by the /login form authenticates; the browser's Origin on every POST is
// this page's own), and follows the server-sent event stream.
const $ = (id) => document.getElementById(id);
const api = async (path, opts) => {
  const r = await fetch(path, Object.assign({ credentials: "same-origin", headers: { "Content-Type": "application/json" } }, opts));
  const body = await r.json();
  if (!r.ok) throw new Error(body.message || r.statusText);
  return body;
};
const el = (tag, cls, text) => { const e = document.createElement(tag); if (cls) e.className = cls; if (text !== undefined) e.textContent = text; return e; };

function showCrisis(c) {
  $("banner").className = "level-" + c.level;
  $("level").textContent = c.level;
  $("ipcr").textContent = c.ipcr_mode;
  $("phase").textContent = c.phase;
  $("exercise").hidden = !c.exercise;
  $("summary").textContent = c.summary;
  $("source").textContent = c.source + " @" + c.applied_index;
  $("age").textContent = c.age_ms < 0 ? "(no leader contact yet)" : "(leader contact " + Math.round(c.age_ms / 1000) + " s ago)";
  $("closing").hidden = !c.closed;
  $("closing").textContent = c.closed ? "Closed " + new Date(c.closed).toLocaleString() + ": " + c.close_reason + (c.lessons ? " · Lessons learned: " + c.lessons : "") : "";
  crisisNow = c;
  showDecisions();
  showMap(c.affected_states || []);
  const rq = $("requests"); rq.replaceChildren();
  const alerts = [];
  for (const r of c.reserve_requests) {
    const left = Math.round(r.left_ms / 60000);
    const state = r.closed_at ? r.status + " by " + (r.closed_by || "?") + " at " + new Date(r.closed_at).toLocaleString()
      : r.overdue ? "open, OVERDUE by " + (-left) + " min" : "open, " + left + " min left";
    const li = el("li", r.overdue ? "overdue" : "", r.sector + ": " + r.services.join(", ") + " — " + state);
    rq.append(li);
    if (r.status === "open" && left < 120) alerts.push("Reserve request " + r.id.slice(0, 8) + " deadline in " + left + " min");
  }
  showAlerts("deadline", alerts);
}

// when formats an API time for a person ("–" for none).
const when = (t) => t && !t.startsWith("0001") ? new Date(t).toLocaleString() : "–";

// decisionItem is one decision as a list item: what was decided, by whom
// and when; a refusal with its rule.
function decisionItem(d) {
  const li = el("li", d.outcome, when(d.at) + " · ");
  li.dataset.index = d.index;
  if (d.exercise) li.append(el("span", "exercise-mark", "EXERCISE "));
  if (d.outcome === "refused") {
    li.append("REFUSED " + (d.kind || "command") + " by " + (d.by || "–") + ": rule ", el("span", "rule", d.rule || "?"), ": " + d.detail);
  } else {
    li.append(d.what + " — by " + d.by);
  }
  li.append(" (term " + d.term + ", index " + d.index + ")");
  return li;
}

// showDecisions lists the provisional decisions, then the newest decided
// ones (committed and refused) from the history.
let crisisNow = null, decisions = [];
function showDecisions() {
  const d = $("decisions"); d.replaceChildren();
  for (const p of crisisNow ? crisisNow.pending : []) {
    d.append(el("li", "provisional", "PROVISIONAL " + p.kind + " by " + p.signer + ", seen " + when(p.seen) + ": waiting for a Raft commit"));
  }
  for (const x of decisions.slice(-8).reverse()) d.append(decisionItem(x));
  showLevelStrip();
}

// levelOf reads the level a committed decision set from its text, or
// returns -1 when it set none.
function levelOf(d) {
  if (d.outcome !== "committed") return -1;
  const m = d.kind === "open" ? / at level (\d) \([^)]*\), phase detection(;|$)/.exec(d.what)
    : ["advise-level-2", "escalate-level-3", "set-ipcr-mode", "de-escalate"].includes(d.kind) ? /^[^"]*?level (\d)/.exec(d.what) : null;
  return m ? Number(m[1]) : -1;
}

// showLevelStrip draws the level of the newest crisis over time: one
// segment per change, as wide as it lasted.
function showLevelStrip() {
  const open = decisions.map((d) => d.kind === "open" && d.outcome === "committed").lastIndexOf(true);
  const changes = [];
  for (const d of open < 0 ? [] : decisions.slice(open)) {
    const level = levelOf(d);
    if (level >= 0) changes.push({ level, at: new Date(d.at), what: d.what, by: d.by });
    if (d.kind === "close" && d.outcome === "committed") changes.push({ level: -1, at: new Date(d.at), what: d.what, by: d.by });
  }
  const s = $("level-strip"); s.replaceChildren();
  if (!changes.length) { s.textContent = "no level changes yet"; return; }
  const end = Date.now();
  for (let i = 0; i < changes.length; i++) {
    const ch = changes[i];
    const until = i + 1 < changes.length ? changes[i + 1].at : end;
    const seg = el("div", "seg " + (ch.level < 0 ? "closed" : "level-" + ch.level),
      (ch.level < 0 ? "closed" : "L" + ch.level) + " " + ch.at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }));
    seg.dataset.level = ch.level < 0 ? "closed" : ch.level;
    seg.title = ch.at.toLocaleString() + ": " + ch.what + " — by " + ch.by;
    seg.style.flexGrow = ch.level < 0 ? 0 : Math.max(1, until - ch.at);
    s.append(seg);
  }
}

// showMap marks the affected member states (ISO 3166-1 alpha-2 codes) on
// the embedded map of the EU.
let mapLoaded = false;
function showMap(states) {
  $("affected").textContent = states.length ? states.join(", ") : "none";
  if (!mapLoaded) return;
  for (const g of $("map").querySelectorAll("[data-state]")) g.classList.toggle("affected", states.includes(g.dataset.state));
}
async function loadMap() {
  const r = await fetch("eu-map.svg", { credentials: "same-origin" });
  if (!r.ok) throw new Error("eu-map.svg: " + r.statusText);
  $("map").innerHTML = await r.text(); // our own embedded file
  mapLoaded = true;
  if (crisisNow) showMap(crisisNow.affected_states || []);
}

const alertSets = {};
function showAlerts(kind, list) {
  alertSets[kind] = list;
  const a = $("alerts"); a.replaceChildren();
  for (const k in alertSets) for (const t of alertSets[k]) a.append(el("li", "alert", t));
}

const seen = new Set();
function showEntry(e) {
  if (seen.has(e.id)) return;
  seen.add(e.id);
  const li = el("li");
  li.dataset.id = e.id;
  li.dataset.tlp = e.tlp || "";
  li.dataset.kind = e.kind || "";
  li.dataset.author = e.author;
  if (!authors.has(e.author)) {
    authors.add(e.author);
    const o = el("option", "", e.author); o.value = e.author;
    $("f-author").append(o);
  }
  li.append(el("span", "", new Date(e.time).toLocaleTimeString() + " "), el("strong", "", e.author + " "));
  if (e.exercise) li.append(el("span", "exercise-mark", "EXERCISE "));
  if (e.readable) {
    li.append(el("span", "tlp tlp-" + e.tlp, "TLP:" + e.tlp.toUpperCase()), el("span", "", " " + e.kind + " · " + e.priority + ": " + e.text));
  } else {
    li.append(el("span", "sealed", "sealed (" + e.priority + ")"));
  }
  $("timeline").prepend(li);
  filterEntry(li);
  countShown();
}

// The timeline's filters (TLP, kind, author) hide the entries that do not
// match, in the page only.
const authors = new Set();
const filters = { tlp: "f-tlp", kind: "f-kind", author: "f-author" };
function filterEntry(li) {
  li.hidden = Object.entries(filters).some(([k, id]) => $(id).value !== "" && li.dataset[k] !== $(id).value);
}
function countShown() {
  if (Object.values(filters).every((id) => $(id).value === "")) { $("f-count").textContent = ""; return; }
  const all = $("timeline").children, shown = [...all].filter((li) => !li.hidden).length;
  $("f-count").textContent = shown === all.length ? "" : shown + " of " + all.length + " shown";
}
for (const id of Object.values(filters)) {
  $(id).addEventListener("change", () => { for (const li of $("timeline").children) filterEntry(li); countShown(); });
}

async function refreshStatus() {
  try {
    const s = await api("/api/v1/status");
    $("node").textContent = s.member + " · " + s.entries + " entries · digest " + s.digest.slice(0, 12) + "… · Raft " + s.raft.role + " (leader " + (s.raft.leader || "–") + ")";
    const tb = $("peers").querySelector("tbody"); tb.replaceChildren();
    for (const p of s.peers) {
      const tr = el("tr");
      tr.append(el("td", "", p.member), el("td", "", p.connected ? p.profile : "down"), el("td", "", p.rtt_ms.toFixed(1) + " ms"),
        el("td", "", p.last_sync ? Math.round((Date.now() - new Date(p.last_sync)) / 1000) + " s ago" : "never"), el("td", "", p.behind));
      tb.append(tr);
    }
    showAlerts("forks", s.forks > 0 ? [s.forks + " fork(s): a member's key signed two different entries"] : []);
    showAlerts("disk", s.disk_full ? ["DISK FULL: this node stores nothing until space is freed. " + (s.disk.message || "")] : []);
    showAlerts("waiting", (s.alerts || []).filter((a) => a.code === "waiting-overdue").map((a) => a.message));
    showCrisis(s.crisis);
    await showWaiting(s.waiting, s.waiting_overdue);
  } catch (err) { $("summary").textContent = "node unreachable: " + err.message; }
}

// showWaiting says how many entries wait for their post-quantum signature
// (only when some do), and lists them when opened: headers only, as the
// API gives them (a waiting entry may be a forgery: never its text).
async function showWaiting(count, overdue) {
  $("waiting").hidden = count === 0;
  if (count === 0) return;
  $("waiting-line").textContent = count + (count === 1 ? " entry" : " entries") + " waiting for their post-quantum signature (" + overdue + " overdue)";
  $("waiting-line").className = overdue > 0 ? "overdue" : "";
  const v = await api("/api/v1/waiting");
  const ul = $("waiting-list"); ul.replaceChildren();
  for (const e of v.entries) {
    ul.append(el("li", e.status === "overdue" ? "overdue" : "", e.member + " seq " + e.seq + " · " + e.status + " · waited " + Math.round(e.waited_s) + " s" + (e.conflicting ? " · conflicting" : "")));
  }
}

// refreshMembers shows the roster, the changes waiting for approvals (with
// a button that approves one as this node's admin) and this member's groups.
async function refreshMembers() {
  try {
    const v = await api("/api/v1/members");
    $("roster-version").textContent = "roster version " + v.roster_version + " (Raft " + v.raft_roster_version + "); changes need " + v.admin_threshold + " admin(s)";
    const tb = $("members").querySelector("tbody"); tb.replaceChildren();
    for (const m of v.members) {
      const tr = el("tr", m.status === "active" ? "" : "revoked");
      tr.append(el("td", "", m.name), el("td", "", m.roles.join(", ")), el("td", "", m.voter ? "yes" : ""), el("td", "", m.admin ? "yes" : ""),
        el("td", "", m.status + (m.reason ? " (" + m.reason + ")" : "")));
      tb.append(tr);
    }
    const pl = $("pending"); pl.replaceChildren();
    for (const p of v.pending) {
      const li = el("li", p.expired ? "refused" : "provisional", p.op + " " + p.target + ": " + p.approvals + " of " + p.needed + " admins (" + p.approvers.join(", ") + ")" + (p.expired ? " EXPIRED " : " "));
      li.dataset.update = p.update_id;
      const b = el("button", "approve", "approve");
      b.addEventListener("click", async () => {
        try {
          const r = await api("/api/v1/members/updates/" + p.update_id + "/approve", { method: "POST", body: "{}" });
          $("approve-result").textContent = r.op + " " + r.target + ": " + r.status + (r.rule ? " (" + r.rule + ": " + r.detail + ")" : "");
        } catch (err) { $("approve-result").textContent = err.message; }
        refreshMembers();
      });
      if (!p.expired) li.append(b);
      pl.append(li);
    }
    const gl = $("groups"); gl.replaceChildren();
    for (const g of await api("/api/v1/groups")) {
      if (g.member) gl.append(el("li", "", g.name + ": " + g.members.join(", ") + " (key epoch " + g.epoch + ")"));
    }
  } catch (err) { $("roster-version").textContent = "roster unavailable: " + err.message; }
}

// refreshHistory shows every decision, newest first: what was decided,
// by whom and when (Raft term and index), and the refusals with their rule.
async function refreshHistory() {
  try {
    const h = await api("/api/v1/crisis/history");
    decisions = h.decisions;
    $("history").replaceChildren(...decisions.slice().reverse().map(decisionItem));
    showDecisions();
  } catch (err) { $("history").replaceChildren(el("li", "refused", "history unavailable: " + err.message)); }
}

// refreshIndicators shows the indicators from MISP and STIX intel with
// their type and value; the incident cell links to the incident's entry
// in the timeline (clicking it shows and marks that entry).
async function refreshIndicators() {
  try {
    const v = await api("/api/v1/indicators");
    const tb = $("indicators").querySelector("tbody"); tb.replaceChildren();
    for (const ind of v.indicators.slice().reverse()) {
      const tr = el("tr");
      tr.dataset.entry = ind.entry;
      const inc = el("td");
      if (ind.incident_entry) {
        const a = el("a", "incident-link", ind.incident_title || ind.incident);
        a.href = "#";
        a.dataset.entry = ind.incident_entry;
        a.addEventListener("click", (ev) => {
          ev.preventDefault();
          for (const li of $("timeline").querySelectorAll("li.linked")) li.classList.remove("linked");
          const li = $("timeline").querySelector('li[data-id="' + ind.incident_entry + '"]');
          if (li) { li.hidden = false; li.classList.add("linked"); li.scrollIntoView({ block: "center" }); }
        });
        inc.append(a);
      } else {
        inc.textContent = ind.incident || "";
      }
      const tlp = el("td");
      tlp.append(el("span", "tlp tlp-" + ind.tlp, "TLP:" + ind.tlp.toUpperCase()));
      tr.append(el("td", "", ind.type), el("td", "indicator-value", ind.value), inc, tlp);
      tb.append(tr);
    }
  } catch (err) { $("indicators").querySelector("tbody").replaceChildren(el("tr", "refused", "indicators unavailable: " + err.message)); }
}

// indicatorsChanged refreshes the indicators after new intel arrives, at
// most once every 10 s: listing them reads every intel entry the node
// holds, and an import writes thousands at once.
let indicatorsDue = null;
function indicatorsChanged() {
  if (indicatorsDue === null) indicatorsDue = setTimeout(() => { indicatorsDue = null; refreshIndicators(); }, 10000);
}

// loadEntries shows the entries held now (those already shown are
// skipped), page by page: the Crisismesh-Next header names the next page.
async function loadEntries() {
  let next = "";
  do {
    const r = await fetch("/api/v1/entries?limit=1000" + (next ? "&after=" + encodeURIComponent(next) : ""), { credentials: "same-origin" });
    const body = await r.json();
    if (!r.ok) throw new Error(body.message || r.statusText);
    for (const e of body) showEntry(e);
    next = r.headers.get("Crisismesh-Next") || "";
  } while (next);
}

async function start() {
  // Subscribe first, then load: an entry stored in between arrives by one
  // path or the other, never by neither. Every (re)connect reloads.
  const ev = new EventSource("/api/v1/events");
  window.crisismeshEvents = { source: ev, received: 0 };
  ev.addEventListener("entry", (m) => {
    window.crisismeshEvents.received++;
    const e = JSON.parse(m.data);
    showEntry(e);
    if (e.kind === "intel") indicatorsChanged();
  });
  ev.addEventListener("crisis", (m) => { window.crisismeshEvents.received++; showCrisis(JSON.parse(m.data)); refreshHistory(); });
  ev.addEventListener("open", () => { loadEntries().catch(() => {}); });
  loadMap().catch((err) => { $("map").textContent = "map unavailable: " + err.message; });
  await loadEntries();
  await refreshStatus();
  await refreshMembers();
  await refreshHistory();
  await refreshIndicators();
  setInterval(refreshStatus, 3000);
  setInterval(refreshHistory, 3000);
  setInterval(refreshMembers, 3000);
  $("post").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = { kind: $("kind").value, tlp: $("tlp").value, priority: $("priority").value, text: $("text").value };
    if ($("to").value.trim()) body.to = $("to").value.split(",").map((s) => s.trim());
    try {
      const e = await api("/api/v1/entries", { method: "POST", body: JSON.stringify(body) });
      $("post-result").textContent = "stored " + e.id.slice(0, 12);
      $("text").value = "";
    } catch (err) { $("post-result").textContent = err.message; }
  });
}
start();
