// The supervisor page, a live board: every operator with his presence and how long
// he has been in it, his phones and today's counts; every live call with the step
// its operator is on and the answers captured so far (script.progress); the queue of
// calls still ringing or hunting; today's missed calls with their callbacks; overdue
// promises; and the whispers sent to operators with their acknowledgements.
//
// It starts from the snapshot (its "board" when the server sends one) and is kept
// live from the frames of the supervisors' channel only: no polling. After a drop
// the feed resumes from the last seq; a fresh snapshot rebuilds everything.
//
// Actions: whisper to an operator, force him away or back, reassign what a manager
// owns, and force-close a wrap-up an operator still owes.
import { t, applyI18n, bindLangSwitch, onLangChange, currentLang } from "./i18n.js";
import { $, el, show, api, formatNumber, formatWhen, mmss, hhmmss, loginFlow, logout, Feed } from "./common.js";

const calls = new Map();     // id -> call (live, in the queue, or just ended)
const contacts = new Map();  // call id -> the contact from its pop
const operators = new Map(); // login -> operator, with phones, since and today when the board gave them
const endedAt = new Map();   // id -> when it ended, to fade it out
const progress = new Map();  // call id -> the record of script.progress
const owed = new Map();      // call id -> when its wrap-up became owed
const overdue = new Map();   // promise id -> promise
const missed = new Map();    // call id -> {call, callback}
const whispers = new Map();  // whisper id -> whisper
const picked = new Set();    // overdue promise ids ticked for a reassignment
const counted = { answered: new Set(), missed: new Set(), overdue: new Set(), kept: new Set() };
const presenceError = new Map(); // login -> error text of a failed force
let forcing = null;          // {id, reason} while a force-close is being confirmed
let conn = "connecting";
let focus = "";              // "", "op:LOGIN" or "line:LINE"
let boardSeen = false;       // the snapshot carried a board
let me = null;

applyI18n(document);
bindLangSwitch($("lang"));
onLangChange(() => { optionKeys.clear(); render(); });
$("logout").addEventListener("click", logout);

loginFlow((user) => {
  me = user;
  $("user-name").textContent = user.name || user.login;
  show($("status-group"), true);
  if (user.role === "operator") {
    show($("not-supervisor"), true);
    return;
  }
  show($("board"), true);
  show($("toolbar"), true);
  new Feed({
    onFrame,
    onState: (s) => { conn = s; renderConn(); },
    onLoggedOut: () => location.reload(),
  }).start();
  setInterval(tick, 1000);
});

// ---- frames ----

function onFrame(f) {
  switch (f.type) {
    case "snapshot":
      applySnapshot(f);
      break;
    case "call.ringing":
      if (f.call && f.call.id) {
        if (f.contact) contacts.set(f.call.id, f.contact);
        putCall(f.call);
      }
      break;
    case "call.answered":
    case "call.ended":
    case "call.missed":
      if (f.call && f.call.id) onCall(f.type, f.call);
      break;
    case "script.progress":
      if (f.call_id && f.record) progress.set(f.call_id, f.record);
      break;
    case "wrapup.done":
      if (f.call_id) wrapupDone(f.call_id);
      break;
    case "promise.overdue":
    case "promise.updated":
      if (f.promise && f.promise.id) onPromise(f.type, f.promise);
      break;
    case "presence":
      if (f.operator && f.operator.login) onPresence(f.operator);
      break;
    case "whisper":
    case "whisper.ack":
      if (f.whisper && f.whisper.id) putWhisper(f.whisper);
      break;
    default:
  }
  render();
}

// applySnapshot rebuilds the board: the server sends a snapshot on the first
// connect, and after a reconnect when the events missed are no longer kept.
function applySnapshot(f) {
  $("board").dataset.synced = "true";
  calls.clear();
  endedAt.clear();
  owed.clear();
  for (const c of f.calls || []) if (c && c.id) calls.set(c.id, c);
  const board = f.board && typeof f.board === "object" ? f.board : null;
  if (Array.isArray(f.operators) || (board && Array.isArray(board.operators))) {
    operators.clear();
    for (const o of f.operators || []) if (o && o.login) operators.set(o.login, o);
    for (const o of (board && board.operators) || []) if (o && o.login) operators.set(o.login, { ...operators.get(o.login), ...o });
  }
  counted.answered.clear();
  counted.missed.clear();
  counted.overdue.clear();
  counted.kept.clear();
  for (const c of calls.values()) { if (c.answered) counted.answered.add(c.id); seenAttempts(c); }
  if (board) {
    boardSeen = true;
    for (const q of board.queue || []) {
      const c = q && q.call ? { ...q.call, ...ringInfo(q) } : q;
      if (c && c.id) { calls.set(c.id, { ...calls.get(c.id), ...c }); seenAttempts(c); }
    }
    for (const [id, rec] of Object.entries(board.records || {})) if (rec && typeof rec === "object") progress.set(id, rec);
    missed.clear();
    for (const m of board.missed_today || []) {
      if (m && m.call && m.call.id) { missed.set(m.call.id, { call: m.call, callback: m.callback || null }); seenAttempts(m.call); }
    }
    overdue.clear();
    for (const p of board.overdue || []) if (p && p.id) { overdue.set(p.id, p); counted.overdue.add(p.id); }
    for (const id of picked) if (!overdue.has(id)) picked.delete(id);
    // Acknowledged whispers seen on this page stay in the log; unacked ones come anew.
    for (const [id, w] of whispers) if (!w.acked_at) whispers.delete(id);
    for (const w of board.whispers || []) if (w && w.id) whispers.set(w.id, w);
  } else if (!boardSeen) {
    // A server without the board: the overdue promises from the API, once.
    boardSeen = true;
    api("GET", "/api/promises?state=overdue").then((r) => {
      if (r.ok && Array.isArray(r.data)) { for (const p of r.data) if (p && p.id) overdue.set(p.id, p); render(); }
    }).catch(() => {});
  }
  // Operators in wrap-up owe one for the call they are on, though it ended.
  for (const o of operators.values()) {
    if (o.status === "wrapup" && o.call_id) {
      owed.set(o.call_id, Date.now());
      if (!calls.has(o.call_id)) calls.set(o.call_id, { id: o.call_id, operator: o.login, state: "ended" });
    }
  }
  // A reload in the middle of a call: fetch where each operator is in his script.
  for (const c of calls.values()) {
    if ((c.state === "answered" || owed.has(c.id)) && !progress.has(c.id)) loadRecord(c.id);
  }
}

function ringInfo(q) {
  const out = {};
  for (const k of ["attempts", "ringing", "ring_started"]) if (q[k] !== undefined) out[k] = q[k];
  return out;
}

async function loadRecord(id) {
  let r;
  try { r = await api("GET", `/api/calls/${encodeURIComponent(id)}/record`); } catch { return; }
  if (r.ok && r.data && !progress.has(id)) { progress.set(id, r.data); render(); }
}

// putCall takes a call from a frame: its attempts say who rings now, so the
// board's ring start (from the snapshot) no longer applies.
function putCall(c) {
  const merged = { ...calls.get(c.id), ...c };
  delete merged.ring_started;
  delete merged.ringing;
  calls.set(c.id, merged);
  endedAt.delete(c.id);
}

function onCall(type, c) {
  putCall(c);
  countMissedAttempts(c);
  if (type === "call.missed" && c.state === "ringing") return; // one operator did not pick up; the call hunts on
  if (type === "call.answered" && !counted.answered.has(c.id)) {
    counted.answered.add(c.id);
    bump(c.operator, "answered", 1);
  }
  if (type === "call.ended" && c.answered) {
    owed.set(c.id, Date.now());
    addTalk(c);
  } else if (type === "call.ended" || type === "call.missed") {
    endedAt.set(c.id, Date.now());
  }
  if (type === "call.missed" || (type === "call.ended" && !c.answered)) {
    const m = missed.get(c.id);
    missed.set(c.id, { call: c, callback: m ? m.callback : null });
  }
}

// countMissedAttempts adds to an operator's missed count each call that rang him
// and that he did not answer, once per call, as the board counts them.
function countMissedAttempts(c) {
  for (const a of c.attempts || []) {
    const key = `${c.id}/${a.operator}`;
    if (!a.operator || !a.outcome || a.outcome === "answered" || counted.missed.has(key)) continue;
    counted.missed.add(key);
    bump(a.operator, "missed", 1);
  }
}

function seenAttempts(c) {
  for (const a of c.attempts || []) if (a.operator && a.outcome && a.outcome !== "answered") counted.missed.add(`${c.id}/${a.operator}`);
}

// today returns the counts of an operator's day, when the board gave them.
function today(login) {
  const o = operators.get(login);
  return o && o.today && typeof o.today === "object" ? o.today : null;
}

function bump(login, key, by) {
  const d = today(login);
  if (d) d[key] = Math.max(0, (Number(d[key]) || 0) + by);
}

// addTalk folds a finished talk into the operator's average talk time.
function addTalk(c) {
  const d = today(c.operator);
  if (!d || !c.answered || !c.ended) return;
  const talk = (Date.parse(c.ended) - Date.parse(c.answered)) / 1000;
  if (!(talk >= 0)) return;
  let still = 0;
  for (const x of calls.values()) if (x.id !== c.id && x.operator === c.operator && x.state === "answered") still++;
  const before = Math.max(0, (Number(d.answered) || 0) - still - 1);
  d.avg_talk_seconds = ((Number(d.avg_talk_seconds) || 0) * before + talk) / (before + 1);
}

function onPromise(type, p) {
  const late = p.state !== "kept" && (type === "promise.overdue" || (overdue.has(p.id) && p.state !== "kept"));
  const was = overdue.get(p.id);
  if (late) {
    overdue.set(p.id, p);
    if (!counted.overdue.has(p.id)) { counted.overdue.add(p.id); bump(p.owner, "promises_overdue", 1); }
    if (was && was.owner !== p.owner) { bump(was.owner, "promises_overdue", -1); bump(p.owner, "promises_overdue", 1); }
  } else if (p.state === "kept") {
    if (was) { overdue.delete(p.id); picked.delete(p.id); bump(was.owner, "promises_overdue", -1); }
    if (!counted.kept.has(p.id)) { counted.kept.add(p.id); bump(p.owner, "promises_kept", 1); }
  }
  if (p.kind === "callback" && p.call_id && missed.has(p.call_id)) missed.get(p.call_id).callback = p;
  for (const m of missed.values()) if (m.callback && m.callback.id === p.id) m.callback = p;
}

function onPresence(op) {
  const old = operators.get(op.login);
  const o = { ...old, ...op };
  if (!op.since && (!old || old.status !== op.status)) o.since = new Date().toISOString();
  if (!o.registered) o.phones = [];
  operators.set(o.login, o);
  presenceError.delete(o.login);
  if (o.status === "wrapup" && o.call_id && !owed.has(o.call_id)) {
    owed.set(o.call_id, Date.now());
    if (!calls.has(o.call_id)) calls.set(o.call_id, { id: o.call_id, operator: o.login, state: "ended" });
  }
  // Free again (or on another call): whatever he owed is done.
  for (const [id, since] of owed) {
    const c = calls.get(id);
    if (c && c.operator === o.login && o.status !== "wrapup" && o.call_id !== id && Date.now() - since > 3000) wrapupDone(id);
  }
}

function putWhisper(w) {
  const old = whispers.get(w.id);
  whispers.set(w.id, old && old.acked_at && !w.acked_at ? { ...w, acked_at: old.acked_at } : { ...old, ...w });
}

function wrapupDone(id) {
  owed.delete(id);
  if (forcing && forcing.id === id) forcing = null;
  if (calls.has(id)) endedAt.set(id, Date.now());
}

// ---- ticking: only the clocks change each second, the rows stay ----

function tick() {
  const now = Date.now();
  let gone = false;
  for (const [id, at] of endedAt) {
    if (now - at > 10000) { calls.delete(id); endedAt.delete(id); progress.delete(id); gone = true; }
  }
  if (gone) render();
  else paintClocks(now);
}

// clock is a span that counts: "up" mm:ss since t0, "late" hh:mm:ss since t0,
// "left" mm:ss until t0.
function clock(cls, t0, mode) {
  const s = el("span", `clock ${cls || ""}`.trim());
  s.dataset.t0 = String(t0);
  s.dataset.mode = mode;
  paintClock(s, Date.now());
  return s;
}

function paintClock(s, now) {
  const t0 = Number(s.dataset.t0);
  switch (s.dataset.mode) {
    case "late": s.textContent = hhmmss(now - t0); break;
    case "left": s.textContent = t0 > now ? mmss(t0 - now) : t("expired"); break;
    default: s.textContent = mmss(now - t0);
  }
}

function paintClocks(now) {
  for (const s of document.querySelectorAll("#board .clock")) paintClock(s, now);
}

// ---- focus ----

function focusOp() { return focus.startsWith("op:") ? focus.slice(3) : ""; }
function focusLine() { return focus.startsWith("line:") ? focus.slice(5) : ""; }

function lineOf(c) { return (c && (c.line || c.to)) || ""; }

function callInFocus(c) {
  const op = focusOp();
  const line = focusLine();
  if (op) return c.operator === op || (c.attempts || []).some((a) => a.operator === op && !a.outcome);
  if (line) return lineOf(c) === line;
  return true;
}

function promiseInFocus(p) {
  const op = focusOp();
  const line = focusLine();
  if (op) return p.owner === op;
  if (line) {
    const c = calls.get(p.call_id) || (missed.get(p.call_id) || {}).call;
    return !!c && lineOf(c) === line;
  }
  return true;
}

$("focus").addEventListener("change", (e) => { focus = e.target.value; render(); });

// syncSelect refills a <select> only when its options changed, so an open list
// or a choice being made is not disturbed by the frames.
const optionKeys = new Map();
function syncSelect(sel, groups, keep) {
  const key = currentLang() + JSON.stringify(groups);
  if (optionKeys.get(sel.id) === key) return;
  optionKeys.set(sel.id, key);
  const value = keep !== undefined ? keep : sel.value;
  sel.replaceChildren();
  for (const g of groups) {
    const parent = g.label ? el("optgroup") : sel;
    if (g.label) { parent.label = g.label; sel.append(parent); }
    for (const [v, text] of g.options) {
      const o = el("option", "", text);
      o.value = v;
      parent.append(o);
    }
  }
  if ([...sel.options].some((o) => o.value === value)) sel.value = value;
}

function operatorOptions() {
  return [...operators.values()].sort(byLogin).map((o) => [o.login, o.name && o.name !== o.login ? `${o.name} (${o.login})` : o.login]);
}

function knownLines() {
  const lines = new Set();
  for (const c of calls.values()) if (lineOf(c)) lines.add(lineOf(c));
  for (const m of missed.values()) if (lineOf(m.call)) lines.add(lineOf(m.call));
  if (focusLine()) lines.add(focusLine());
  return [...lines].sort();
}

function renderFocus() {
  syncSelect($("focus"), [
    { options: [["", t("focusAll")]] },
    { label: t("operators"), options: operatorOptions().map(([v, n]) => [`op:${v}`, n]) },
    { label: t("lines"), options: knownLines().map((l) => [`line:${l}`, l]) },
  ], focus);
  $("focus").value = focus;
  $("focus-note").textContent = focusLine() ? t("focusLineNote") : "";
  document.body.dataset.focus = focus;
}

// ---- rendering ----

function renderConn() {
  const c = $("conn-state");
  c.dataset.state = conn;
  c.textContent = t(conn);
}

function render() {
  renderConn();
  renderFocus();
  // A re-render must not take the reason being typed away from the supervisor.
  const typing = document.activeElement && document.activeElement.classList.contains("force-reason");
  renderCalls();
  if (typing && forcing) {
    const input = document.querySelector(`#calls tr[data-id="${CSS.escape(forcing.id)}"] .force-reason`);
    if (input) { input.focus(); input.setSelectionRange(input.value.length, input.value.length); }
  }
  renderQueue();
  renderMissed();
  renderOverdue();
  renderOperators();
  renderWhispers();
}

function callerCell(c) {
  const who = el("td", "caller", formatNumber(c.from));
  if (c.from_display) who.append(el("div", "sub", c.from_display));
  return who;
}

function renderCalls() {
  const body = $("calls");
  body.replaceChildren();
  const list = [...calls.values()].filter(callInFocus).sort(byStart);
  for (const c of list) {
    const pending = owed.has(c.id);
    const st = pending ? "wrapup" : c.state === "answered" ? "talking" : c.state;
    const tr = el("tr", `call state-${st}`);
    tr.dataset.id = c.id;
    tr.dataset.operator = c.operator || "";
    tr.dataset.line = lineOf(c);
    tr.append(el("td", "state", pending ? t("st_wrapup") : t(st)));
    tr.append(callerCell(c));
    const rec = progress.get(c.id);
    const contact = contacts.get(c.id);
    const answers = (rec && rec.answers) || {};
    const name = (contact && contact.name) || answers["contact.name"] || "";
    const company = (contact && contact.company) || answers["contact.company"] || "";
    const who = el("td", "contact", name || (c.contact_id || contact ? "" : t("newCaller")));
    if (company) who.append(el("div", "sub company", company));
    tr.append(who, el("td", "line", lineOf(c)), el("td", "operator", opName(c.operator)));
    const dur = el("td", "num duration");
    const start = Date.parse(c.answered || c.started || "");
    if (start) {
      if (c.ended) dur.textContent = mmss(Date.parse(c.ended) - start);
      else dur.append(clock("", start, "up"));
    }
    tr.append(dur);
    tr.append(el("td", "step", rec && rec.step ? rec.step : ""));
    const ans = el("td", "answers");
    for (const [k, v] of Object.entries(answers).sort()) {
      if (v === "") continue;
      const item = el("div", "answer");
      item.dataset.key = k;
      item.append(el("span", "sub", `${k}: `), el("span", "", v));
      ans.append(item);
    }
    if (rec && rec.source_mismatch) {
      const m = el("div", "mismatch", `⚠ ${t("mismatch")}`);
      m.dataset.preset = rec.preset_source || "";
      ans.append(m);
      tr.classList.add("source-mismatch");
    }
    tr.append(ans);
    const act = el("td", "actions");
    if (pending) act.append(forceControl(c.id));
    tr.append(act);
    body.append(tr);
  }
  show($("no-calls"), list.length === 0);
}

function ringStart(c) {
  if (c.ring_started && Date.parse(c.ring_started) > 0) return Date.parse(c.ring_started);
  const open = (c.attempts || []).filter((a) => !a.outcome && a.started);
  const last = open.length ? open[open.length - 1] : (c.attempts || [])[(c.attempts || []).length - 1];
  return Date.parse((last && last.started) || c.started || "") || Date.now();
}

function renderQueue() {
  const body = $("queue");
  body.replaceChildren();
  const list = [...calls.values()].filter((c) => c.state === "ringing" && !endedAt.has(c.id) && callInFocus(c)).sort(byStart);
  for (const c of list) {
    const tr = el("tr", "queued");
    tr.dataset.id = c.id;
    const who = callerCell(c);
    const contact = contacts.get(c.id);
    if (contact && contact.name) who.append(el("div", "sub", contact.name));
    const ringing = (c.attempts || []).filter((a) => !a.outcome).map((a) => a.operator);
    if (!ringing.length && c.ringing) ringing.push(c.ringing);
    const rings = el("td", "ringing-for num");
    rings.append(clock("", ringStart(c), "up"));
    const waits = el("td", "waiting num");
    waits.append(clock("", Date.parse(c.started || "") || Date.now(), "up"));
    const tried = (c.attempts || []).filter((a) => a.outcome).map((a) => `${opName(a.operator)} (${t("out_" + a.outcome) || a.outcome})`);
    tr.append(who, el("td", "", lineOf(c)), el("td", "rings-at", ringing.map(opName).join(", ") || "—"), rings, waits,
      el("td", "sub", tried.join(", ")));
    body.append(tr);
  }
  show($("no-queue"), list.length === 0);
}

function callbackState(p) {
  if (!p) return "none";
  if (p.state === "kept") return "kept";
  return Date.parse(p.due) < Date.now() ? "overdue" : "open";
}

function renderMissed() {
  const body = $("missed");
  body.replaceChildren();
  const list = [...missed.values()].filter((m) => callInFocus(m.call) || (focusOp() && m.callback && m.callback.owner === focusOp()))
    .sort((a, b) => (Date.parse(b.call.started) || 0) - (Date.parse(a.call.started) || 0));
  for (const m of list) {
    const c = m.call;
    const tr = el("tr", "missed-call");
    tr.dataset.id = c.id;
    const tried = new Set((c.attempts || []).map((a) => a.operator).filter(Boolean));
    if (c.operator) tried.add(c.operator);
    const cb = el("td", "callback");
    const st = callbackState(m.callback);
    cb.dataset.state = st;
    if (m.callback) {
      cb.append(el("span", `cb-state cb-${st}`, t("cb_" + st)));
      cb.append(el("div", "sub", `${m.callback.owner ? opName(m.callback.owner) : t("pool")} · ${t("colDue")} ${formatWhen(m.callback.due, currentLang())}`));
    } else {
      cb.append(el("span", "cb-state cb-none", t("cb_none")));
    }
    tr.append(el("td", "num", formatWhen(c.started, currentLang())), callerCell(c), el("td", "", lineOf(c)),
      el("td", "", [...tried].map(opName).join(", ") || "—"), cb);
    if (c.reason) tr.children[1].append(el("div", "sub", c.reason));
    body.append(tr);
  }
  show($("no-missed"), list.length === 0);
}

function forceControl(id) {
  if (!forcing || forcing.id !== id) {
    const b = el("button", "force", t("forceClose"));
    b.type = "button";
    b.addEventListener("click", () => {
      forcing = { id, reason: "", error: "" };
      render();
      const input = document.querySelector(`#calls tr[data-id="${CSS.escape(id)}"] .force-reason`);
      if (input) input.focus();
    });
    return b;
  }
  const form = el("form", "force-form");
  const input = el("input", "force-reason");
  input.placeholder = t("forceReason");
  input.setAttribute("aria-label", t("forceReason"));
  input.value = forcing.reason;
  input.addEventListener("input", () => { forcing.reason = input.value; });
  const ok = el("button", "", t("forceClose"));
  ok.type = "submit";
  const cancel = el("button", "link", t("cancel"));
  cancel.type = "button";
  cancel.addEventListener("click", () => { forcing = null; render(); });
  form.append(input, ok, cancel, el("span", "error", forcing.error || ""));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const reason = forcing.reason.trim();
    if (!reason) { input.focus(); return; }
    let r;
    try { r = await api("POST", `/api/calls/${encodeURIComponent(id)}/wrapup/force`, { reason }); } catch { r = { status: 0 }; }
    if (r.ok) {
      forcing = null;
      wrapupDone(id);
    } else if (forcing) {
      forcing.error = (r.data && r.data.error) || t("offline");
    }
    render();
  });
  return form;
}

function renderOverdue() {
  const body = $("overdue");
  body.replaceChildren();
  const list = [...overdue.values()].filter(promiseInFocus).sort((a, b) => (Date.parse(a.due) || 0) - (Date.parse(b.due) || 0));
  for (const p of list) {
    const tr = el("tr", "late-promise");
    tr.dataset.id = p.id;
    const box = el("input", "pick");
    box.type = "checkbox";
    box.checked = picked.has(p.id);
    box.setAttribute("aria-label", t("pickForReassign"));
    box.addEventListener("change", () => { if (box.checked) picked.add(p.id); else picked.delete(p.id); });
    const pick = el("td");
    pick.append(box);
    const what = el("td", "", p.what || (p.kind === "callback" ? t("callBack") : t("promise")));
    if (p.phone) what.append(el("div", "sub", formatNumber(p.phone)));
    const due = Date.parse(p.due);
    const late = el("td", "num late");
    if (due) late.append(clock("", due, "late"));
    tr.append(pick, what, el("td", "owner", p.owner ? opName(p.owner) : "—"), el("td", "num", formatWhen(p.due, currentLang())), late);
    body.append(tr);
  }
  show($("no-overdue"), list.length === 0);
}

function renderOperators() {
  const ob = $("operators");
  ob.replaceChildren();
  const op = focusOp();
  const ops = [...operators.values()].filter((o) => !op || o.login === op).sort(byLogin);
  const now = Date.now();
  for (const o of ops) {
    const status = o.status || "offline";
    const tr = el("tr", `op status-${status}`);
    tr.dataset.login = o.login;
    const name = el("td", "", o.name || o.login);
    name.append(el("div", "sub", o.login));

    const st = el("td", "status", t(`st_${status}`));
    const since = Date.parse(o.since || "") || (status === "available" ? Date.parse(o.idle_since || "") : 0);
    if (since && since > 0) {
      const d = el("div", "sub in-state");
      d.append(clock("", Math.min(since, now), "up"));
      st.append(d);
    }
    if (o.page_open === false) st.append(el("div", "sub", t("pageClosed")));

    const phones = el("td", "phones");
    const list = Array.isArray(o.phones) ? o.phones : [];
    for (const b of list) {
      const p = el("div", "phone");
      p.append(el("span", "transport", String(b.transport || "").toUpperCase() || "SIP"));
      const exp = Date.parse(b.expires || "");
      if (exp) {
        p.append(document.createTextNode(` ${t("expiresIn")} `));
        p.append(clock("expires", exp, "left"));
      }
      if (b.source || b.user_agent) p.append(el("div", "sub", [b.source, b.user_agent].filter(Boolean).join(" · ")));
      phones.append(p);
    }
    if (!list.length) phones.textContent = o.registered ? t("yes") : "—";

    const call = el("td", "current-call");
    const c = o.call_id ? calls.get(o.call_id) : null;
    if (c) {
      call.append(el("div", "", formatNumber(c.from)), el("div", "sub", lineOf(c)));
    } else if (o.call_id) {
      call.textContent = "…";
    }

    const d = o.today && typeof o.today === "object" ? o.today : null;
    const td = el("td", "today num");
    if (d) {
      const avg = Number(d.avg_talk_seconds) || 0;
      td.dataset.answered = String(d.answered || 0);
      td.dataset.missed = String(d.missed || 0);
      td.append(el("div", "", `${d.answered || 0} / ${d.missed || 0}`));
      td.append(el("div", "sub", `${mmss(avg * 1000)} · ${d.promises_kept || 0} / ${d.promises_overdue || 0}`));
    } else {
      td.textContent = "—";
    }

    const act = el("td", "op-actions");
    const wb = el("button", "whisper-open", t("whisper"));
    wb.type = "button";
    wb.addEventListener("click", () => {
      $("whisper-to").value = o.login;
      $("whisper-text").focus();
    });
    const away = status === "away" || o.away;
    const pb = el("button", "presence-force", away ? t("makeAvailable") : t("forceAway"));
    pb.type = "button";
    pb.dataset.away = away ? "true" : "false";
    pb.addEventListener("click", () => forcePresence(o.login, !away));
    act.append(wb, pb);
    const last = lastWhisper(o.login);
    if (last) act.append(whisperState(last, "div"));
    if (presenceError.has(o.login)) act.append(el("div", "error", presenceError.get(o.login)));

    tr.append(name, st, phones, call, td, act);
    ob.append(tr);
  }
  show($("no-operators"), ops.length === 0);
}

async function forcePresence(login, away) {
  let r;
  try { r = await api("PUT", `/api/operators/${encodeURIComponent(login)}/presence`, { away }); } catch { r = { status: 0 }; }
  if (!r.ok) presenceError.set(login, (r.data && r.data.error) || t("offline"));
  else presenceError.delete(login);
  render();
}

// ---- whispers ----

function lastWhisper(login) {
  let last = null;
  for (const w of whispers.values()) if (w.operator === login && (!last || String(w.at) > String(last.at))) last = w;
  return last;
}

function hm(iso) {
  const d = new Date(iso);
  if (isNaN(d)) return "";
  return d.toLocaleTimeString(currentLang() === "ru" ? "ru-RU" : "en-GB", { hour: "2-digit", minute: "2-digit" });
}

function whisperState(w, tag) {
  const acked = !!w.acked_at;
  const s = el(tag, "w-state", acked ? `${t("acknowledged")} ${hm(w.acked_at)}` : `${t("sent")} ${hm(w.at)}`);
  s.dataset.state = acked ? "acked" : "sent";
  return s;
}

function renderWhispers() {
  syncSelect($("whisper-to"), [{ options: operatorOptions() }], $("whisper-to").value || focusOp());
  const body = $("whispers");
  body.replaceChildren();
  const op = focusOp();
  const list = [...whispers.values()].filter((w) => !op || w.operator === op)
    .sort((a, b) => String(b.at).localeCompare(String(a.at))).slice(0, 30);
  for (const w of list) {
    const tr = el("tr", "whisper-row");
    tr.dataset.id = w.id;
    tr.dataset.operator = w.operator;
    const text = el("td", "w-text", w.text);
    text.append(el("div", "sub", `${opName(w.by) || w.by} → ${opName(w.operator)}`));
    const st = el("td");
    st.append(whisperState(w, "span"));
    tr.append(el("td", "num", hm(w.at)), text, st);
    body.append(tr);
  }
  show($("no-whispers"), list.length === 0);
}

$("whisper-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const login = $("whisper-to").value;
  const text = $("whisper-text").value.trim();
  const err = $("whisper-error");
  err.textContent = "";
  if (!login || !text) return;
  const btn = $("whisper-send");
  btn.disabled = true;
  let r;
  try { r = await api("POST", `/api/operators/${encodeURIComponent(login)}/whisper`, { text }); } catch { r = { status: 0 }; }
  btn.disabled = false;
  if (r.ok && r.data && r.data.id) {
    putWhisper(r.data);
    $("whisper-text").value = "";
    render();
  } else {
    err.textContent = (r.data && r.data.error) || t("offline");
  }
});

$("whisper-text").addEventListener("keydown", (e) => {
  // Ctrl+Enter sends, as in a chat.
  if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); $("whisper-form").requestSubmit(); }
});

// ---- reassignment ----

const dlg = $("reassign-dialog");

$("reassign-open").addEventListener("click", () => {
  const ops = operatorOptions();
  syncSelect($("reassign-from"), [{ options: [["", "—"], ...ops] }], focusOp());
  syncSelect($("reassign-to"), [{ options: ops }]);
  $("reassign-error").textContent = "";
  $("reassign-result").textContent = "";
  if (picked.size) {
    $("reassign-kind").value = "promise";
    $("reassign-some").checked = true;
    $("reassign-ids").value = [...picked].join("\n");
    const owners = new Set([...picked].map((id) => (overdue.get(id) || {}).owner).filter(Boolean));
    $("reassign-from").value = owners.size === 1 ? [...owners][0] : "";
  } else {
    $("reassign-all").checked = true;
    $("reassign-ids").value = "";
    $("reassign-from").value = focusOp();
  }
  if (typeof dlg.showModal === "function") dlg.showModal(); else dlg.setAttribute("open", "");
  $("reassign-kind").focus();
});

$("reassign-close").addEventListener("click", () => dlg.close());

$("reassign-ids").addEventListener("input", () => { $("reassign-some").checked = true; });

$("reassign-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const err = $("reassign-error");
  const out = $("reassign-result");
  err.textContent = "";
  out.textContent = "";
  const body = { kind: $("reassign-kind").value, to: $("reassign-to").value };
  const from = $("reassign-from").value;
  if (from) body.from = from;
  if ($("reassign-some").checked) {
    body.ids = $("reassign-ids").value.split(/[\s,;]+/).filter(Boolean);
    if (!body.ids.length) { err.textContent = t("reassignNeedIds"); return; }
  } else if (!from) {
    err.textContent = t("reassignNeedFrom");
    return;
  }
  if (!body.to || body.to === from) { err.textContent = t("reassignNeedTo"); return; }
  $("reassign-submit").disabled = true;
  let r;
  try { r = await api("POST", "/api/reassign", body); } catch { r = { status: 0 }; }
  $("reassign-submit").disabled = false;
  if (!r.ok || !r.data) {
    err.textContent = (r.data && r.data.error) || t("offline");
    return;
  }
  const res = r.data;
  out.dataset.contacts = String(res.contacts || 0);
  out.dataset.interests = String(res.interests || 0);
  out.dataset.promises = String(res.promises || 0);
  out.textContent = `${t("moved")}: ${t("kind_contact")} ${res.contacts || 0}, ${t("kind_interest")} ${res.interests || 0}, ${t("kind_promise")} ${res.promises || 0}`;
  if (body.kind === "promise") picked.clear();
  render();
});

// ---- helpers ----

function byStart(a, b) { return String(a.started || "").localeCompare(String(b.started || "")); }
function byLogin(a, b) { return String(a.login).localeCompare(String(b.login)); }

function opName(login) {
  const o = operators.get(login);
  if (o && o.name) return o.name;
  if (me && me.login === login && me.name) return me.name;
  return login || "";
}
