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
//
// Media mode (the desk carries the audio): on a live media call the supervisor
// listens, whispers or barges (the desk rings his own phone), switches mode or
// stops; the board shows everyone monitoring each call (from the calls' "monitors"
// and call.monitor frames). "Recent calls" lists the answered calls of the last
// 24 hours (GET /api/calls/recent, read at start and again on every snapshot, so a
// reload or a long drop loses none) merged with those that end while the board is
// open (call.ended); a recorded one has ▶, which puts a player on its recording.
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
const monitors = new Map();  // call id -> Map(supervisor login -> {supervisor, mode, state, since, name})
const monitorError = new Map(); // call id -> {supervisor, reason} of the last monitor that failed on it
const monitorBusy = new Map(); // call id -> {gone} while this supervisor's request is in flight
const recent = new Map();    // call id -> an answered call that is over: of the last day, or ended while the board was open
const players = new Map();   // call id -> its <audio>, kept across renders so playback goes on
const unplayable = new Set(); // call ids whose recording the player could not load
const names = new Map();     // login -> display name of every user, when the list could be read
const MODES = ["listen", "whisper", "barge"];
const RECENT_MAX = 100;      // as many as GET /api/calls/recent gives
const RECENT_HOURS = 24;
let recentLoading = false;   // GET /api/calls/recent in flight
let recentAgain = false;     // asked again meanwhile: read once more when it answers
let recentError = "";        // why the last read failed
let snapshots = 0;
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
  loadNames();
  loadRecent();
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
    case "call.monitor":
      // The frame carries the call as it now stands, with its monitors, and the change.
      if (f.call && f.call.id && calls.has(f.call.id) && !endedAt.has(f.call.id)) putCall(f.call);
      onMonitor(f);
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
  // Calls may have ended while the feed was down: read the recent ones again (the
  // first snapshot follows the read made at start).
  if (snapshots++ > 0) loadRecent();
  calls.clear();
  endedAt.clear();
  owed.clear();
  monitors.clear();
  for (const c of f.calls || []) if (c && c.id) { calls.set(c.id, c); setMonitors(c); }
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
      if (c && c.id) { calls.set(c.id, { ...calls.get(c.id), ...c }); setMonitors(c); seenAttempts(c); }
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
  setMonitors(c);
}

function onCall(type, c) {
  putCall(c);
  countMissedAttempts(c);
  if (type === "call.missed" && c.state === "ringing") return; // one operator did not pick up; the call hunts on
  // A callback counts as answered when it ends connected: until then the
  // operator's answer does not say the customer answered too.
  const talked = !!c.answered && !c.unreached;
  const countAt = c.direction === "callback" ? "call.ended" : "call.answered";
  if (type === countAt && talked && !counted.answered.has(c.id)) {
    counted.answered.add(c.id);
    bump(c.operator, "answered", 1);
  }
  if (type === "call.ended" || (type === "call.missed" && c.state !== "ringing")) {
    monitors.delete(c.id);
    monitorError.delete(c.id);
  }
  if (type === "call.ended" && talked) addRecent(calls.get(c.id) || c);
  if (type === "call.ended" && talked) {
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

// ---- media mode: monitors and recordings ----

// setMonitors takes the monitors a call carries (snapshot or call frames), when it
// carries the list at all.
function setMonitors(c) {
  if (!c || !c.id || !Array.isArray(c.monitors)) return;
  const per = new Map();
  for (const m of c.monitors) {
    if (m && m.supervisor) per.set(m.supervisor, { ...m, name: m.name || m.supervisor_name || "" });
  }
  if (per.size) monitors.set(c.id, per); else monitors.delete(c.id);
}

// onMonitor applies a call.monitor frame: a supervisor's leg ringing, joined,
// switched to another mode, left, or failed.
function onMonitor(f) {
  const m = f.monitor && typeof f.monitor === "object" ? { ...f, ...f.monitor } : f;
  const id = m.call_id;
  if (!id || !m.supervisor) return;
  const per = monitors.get(id) || new Map();
  const old = per.get(m.supervisor);
  const name = m.supervisor_name || m.name || (old && old.name) || "";
  if (name) names.set(m.supervisor, name);
  if (m.state === "left" || m.state === "failed") {
    per.delete(m.supervisor);
    if (me && m.supervisor === me.login && monitorBusy.has(id)) monitorBusy.get(id).gone = true;
    if (m.state === "failed") monitorError.set(id, { supervisor: m.supervisor, reason: m.reason || "" });
  } else {
    per.set(m.supervisor, {
      ...old,
      supervisor: m.supervisor,
      name,
      mode: m.mode || (old && old.mode) || "",
      state: m.state === "switched" ? "joined" : m.state || (old && old.state) || "ringing",
      since: (old && old.since) || m.at || new Date().toISOString(),
    });
    const err = monitorError.get(id);
    if (err && err.supervisor === m.supervisor) monitorError.delete(id);
  }
  if (per.size) monitors.set(id, per); else monitors.delete(id);
}

function myMonitor(id) {
  const per = monitors.get(id);
  return per && me ? per.get(me.login) || null : null;
}

// startMonitor asks for a mode on a call: the desk rings this supervisor's phone,
// or, when he is already in, switches the mode without redialling.
async function startMonitor(id, mode) {
  const mine = myMonitor(id);
  if ((mine && mine.mode === mode) || monitorBusy.has(id)) return;
  const busy = { gone: false };
  monitorBusy.set(id, busy);
  monitorError.delete(id);
  render();
  let r;
  try { r = await api("POST", `/api/calls/${encodeURIComponent(id)}/monitor`, { mode }); } catch { r = { status: 0 }; }
  monitorBusy.delete(id);
  if (r.ok) {
    // The bridge reports the rest with call.monitor; until then show what was asked.
    const now = myMonitor(id);
    if (!busy.gone || now) {
      const per = monitors.get(id) || new Map();
      per.set(me.login, { ...now, supervisor: me.login, name: me.name || "", mode, state: now ? now.state : "ringing",
        since: (now && now.since) || new Date().toISOString() });
      monitors.set(id, per);
    }
  } else {
    monitorError.set(id, { supervisor: me.login, reason: (r.data && r.data.error) || t("offline") });
  }
  render();
}

async function stopMonitor(id) {
  if (monitorBusy.has(id)) return;
  monitorBusy.set(id, { gone: false });
  monitorError.delete(id);
  render();
  let r;
  try { r = await api("DELETE", `/api/calls/${encodeURIComponent(id)}/monitor`); } catch { r = { status: 0 }; }
  monitorBusy.delete(id);
  if (r.ok || r.status === 404) {
    const per = monitors.get(id);
    if (per) { per.delete(me.login); if (!per.size) monitors.delete(id); }
  } else {
    monitorError.set(id, { supervisor: me.login, reason: (r.data && r.data.error) || t("offline") });
  }
  render();
}

// monitorCell holds a live call's audio controls: the modes (the one in force
// pressed), stop, everyone on the call, and the last failure.
function monitorCell(c) {
  const box = el("div", "monitor");
  const mine = myMonitor(c.id);
  const busy = monitorBusy.has(c.id);
  box.dataset.mode = mine ? mine.mode : "";
  box.dataset.state = mine ? mine.state : "";
  box.dataset.busy = busy ? "true" : "false";
  const group = el("div", "monitor-buttons");
  group.setAttribute("role", "group");
  group.setAttribute("aria-label", t("monitorLabel"));
  for (const mode of MODES) {
    const b = el("button", `mon mon-${mode}`, t(`mon_${mode}`));
    b.type = "button";
    b.dataset.mode = mode;
    b.title = t(`monHint_${mode}`);
    b.setAttribute("aria-pressed", mine && mine.mode === mode ? "true" : "false");
    b.disabled = busy;
    b.addEventListener("click", () => startMonitor(c.id, mode));
    group.append(b);
  }
  const stop = el("button", "mon mon-stop", t("mon_stop"));
  stop.type = "button";
  stop.disabled = busy || !mine;
  stop.addEventListener("click", () => stopMonitor(c.id));
  group.append(stop);
  box.append(group);
  const per = monitors.get(c.id);
  if (per && per.size) {
    const list = el("ul", "monitors");
    for (const m of [...per.values()].sort((a, b) => String(a.since || "").localeCompare(String(b.since || "")))) {
      const li = el("li", `monitor-by ms-${m.state || ""}`);
      li.dataset.supervisor = m.supervisor;
      li.dataset.mode = m.mode || "";
      li.dataset.state = m.state || "";
      li.append(el("span", "monitor-name", supName(m)), document.createTextNode(" · "),
        el("span", "monitor-mode", MODES.includes(m.mode) ? t(`mode_${m.mode}`) : m.mode || ""));
      if (m.state && m.state !== "joined") li.append(document.createTextNode(" · "), el("span", "monitor-state", t(`ms_${m.state}`)));
      list.append(li);
    }
    box.append(list);
  }
  const err = monitorError.get(c.id);
  if (err) {
    const e = el("div", "error monitor-error", `${t("monitorFailed")}: ${supName({ supervisor: err.supervisor })}${err.reason ? ` — ${err.reason}` : ""}`);
    e.setAttribute("role", "alert");
    box.append(e);
  }
  return box;
}

function supName(m) {
  return m.name || names.get(m.supervisor) || opName(m.supervisor);
}

// loadNames reads every user's display name once, so the supervisors on a call
// show by name (the board's operators do not include them).
async function loadNames() {
  let r;
  try { r = await api("GET", "/api/users"); } catch { return; }
  if (!r.ok || !Array.isArray(r.data)) return;
  for (const u of r.data) if (u && u.login && u.name && !names.has(u.login)) names.set(u.login, u.name);
  render();
}

function addRecent(c) {
  if (!c || !c.id) return;
  recent.set(c.id, { ...recent.get(c.id), ...c });
  trimRecent();
}

function trimRecent() {
  const list = [...recent.values()].sort(byEnd);
  for (const old of list.slice(RECENT_MAX)) {
    if (players.has(old.id) && !players.get(old.id).paused) continue; // never take away what is playing
    recent.delete(old.id);
    players.delete(old.id);
    unplayable.delete(old.id);
  }
}

// loadRecent reads the calls over in the last day and merges the answered ones
// into "Recent calls" (a missed call has its own panel and no recording). The
// frames keep the list live afterwards.
async function loadRecent() {
  if (recentLoading) { recentAgain = true; return; }
  recentLoading = true;
  let r;
  try { r = await api("GET", `/api/calls/recent?hours=${RECENT_HOURS}`); } catch { r = { status: 0 }; }
  recentLoading = false;
  if (recentAgain) { recentAgain = false; loadRecent(); }
  if (!r.ok || !Array.isArray(r.data)) {
    recentError = (r.data && r.data.error) || t("offline");
    render();
    return;
  }
  recentError = "";
  const cutoff = Date.now() - RECENT_HOURS * 3600 * 1000;
  for (const [id, c] of recent) {
    // Gone from the last day (the board was open long): drop it unless it is playing.
    if (Date.parse(c.started || "") < cutoff && !players.has(id)) recent.delete(id);
  }
  for (const c of r.data) {
    if (c && c.id && c.answered && !c.unreached && c.state === "ended") recent.set(c.id, { ...c, ...recent.get(c.id) });
  }
  trimRecent();
  render();
}

function byEnd(a, b) { return String(b.ended || b.started || "").localeCompare(String(a.ended || a.started || "")); }

function recordingURL(id) { return `/api/calls/${encodeURIComponent(id)}/recording`; }

// player returns the call's audio element, made on the first ▶ and then kept, so a
// re-render does not stop what is playing.
function player(id) {
  let a = players.get(id);
  if (!a) {
    a = el("audio", "recording");
    a.controls = true;
    a.preload = "metadata";
    a.src = recordingURL(id);
    a.setAttribute("aria-label", t("recording"));
    // Not recorded after all, past its retention, or not allowed: say so under it.
    a.addEventListener("error", () => { unplayable.add(id); recentKey = ""; renderRecent(); });
    players.set(id, a);
  }
  return a;
}

let recentKey = "";
function renderRecent() {
  const list = [...recent.values()].filter(callInFocus).sort(byEnd);
  // Only a change of the rows redraws them: a player in the middle of a
  // recording is left alone by the frames.
  const key = currentLang() + recentError + JSON.stringify(list.map((c) => [c.id, !!c.recorded, c.operator, c.ended, opName(c.operator), players.has(c.id), unplayable.has(c.id)]));
  if (key === recentKey) return;
  recentKey = key;
  const body = $("recent");
  body.replaceChildren();
  for (const c of list) {
    const tr = el("tr", "recent-call");
    tr.dataset.id = c.id;
    tr.dataset.recorded = c.recorded ? "true" : "false";
    const who = callerCell(c);
    if (c.direction === "callback") who.append(el("div", "sub direction", t("dir_callback")));
    const start = Date.parse(c.answered || c.started || "");
    const end = Date.parse(c.ended || "");
    const rec = el("td", "recording-cell");
    if (c.recorded) {
      if (players.has(c.id)) {
        rec.append(player(c.id));
        if (unplayable.has(c.id)) rec.append(el("div", "sub error recording-error", t("recordingUnavailable")));
      } else {
        const b = el("button", "play", `▶ ${t("play")}`);
        b.type = "button";
        b.setAttribute("aria-label", t("playRecording"));
        b.addEventListener("click", () => {
          const a = player(c.id);
          renderRecent();
          a.play().catch(() => { /* the controls are there to press */ });
        });
        rec.append(b);
      }
    } else {
      rec.append(el("span", "sub", "—"));
    }
    tr.append(el("td", "num", formatWhen(c.ended || c.started, currentLang())), who, el("td", "", lineOf(c)),
      el("td", "operator", opName(c.operator)), el("td", "num", start && end ? mmss(end - start) : ""), rec);
    body.append(tr);
  }
  show($("no-recent"), list.length === 0 && !recentError);
  $("recent-error").textContent = recentError ? `${t("recentFailed")}: ${recentError}` : "";
  show($("recent-error"), !!recentError);
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
    if (now - at > 10000) { calls.delete(id); endedAt.delete(id); progress.delete(id); monitors.delete(id); monitorError.delete(id); gone = true; }
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
  for (const c of recent.values()) if (lineOf(c)) lines.add(lineOf(c));
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
  renderRecent();
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
    tr.dataset.media = c.media ? "true" : "false";
    const stc = el("td", "state", pending ? t("st_wrapup") : t(st));
    if (c.recorded) stc.append(el("div", "rec", `● ${t("rec")}`));
    tr.append(stc);
    const caller = callerCell(c);
    if (c.direction === "callback") caller.append(el("div", "sub direction", t("dir_callback")));
    tr.append(caller);
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
    else if (c.state === "answered" && c.media) act.append(monitorCell(c));
    else if (c.state === "answered") act.append(el("div", "sub no-audio", t("noAudio")));
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
  if (names.has(login)) return names.get(login);
  return login || "";
}
