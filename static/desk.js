// The operator page: sign in, presence switch, phone and connection state; the card
// of the call on this operator's phone with the caller's history and the line's
// script as a working form (script.js); the wrap-up the operator owes after an
// answered call; and his open promises with their countdowns (promises.js).
// In media mode a banner says which supervisor is on his call, and how (listening,
// coaching him, or in the conversation), from the live calls' "monitors" and the
// call.monitor frames.
import { t, applyI18n, bindLangSwitch, onLangChange } from "./i18n.js";
import { $, el, show, api, formatNumber, mmss, loginFlow, logout, Feed, store } from "./common.js";
import { Outbox } from "./outbox.js";
import { ScriptForm } from "./script.js";
import { PromisePanel } from "./promises.js";
import { History } from "./card.js";
import { WhisperPins } from "./whisper.js";

const POP_PREFIX = "desk.pop.";
const POP_KEEP_MS = 24 * 3600 * 1000;

const state = {
  me: null,
  away: false,
  registered: false,
  conn: "connecting",
  call: null,          // the call on the card
  pop: null,           // its call.ringing payload, when we had it
  timer: null,
  wrapups: new Map(),  // call id -> call: answered calls whose wrap-up is still owed
  promisesLoaded: false,
  monitors: new Map(), // call id -> Map(supervisor login -> {supervisor, name, mode, state}) on this operator's calls
};

applyI18n(document);
bindLangSwitch($("lang"));
$("logout").addEventListener("click", logout);

const outbox = new Outbox({
  onAck: (callId, op, record) => { if (callId === form.callId) form.ack(op, record); },
  onReject: (callId, op, status, body) => { if (callId === form.callId) form.reject(op, status, body); },
  onChange: () => { if (form) form.paint(); renderOutbox(); },
});

const form = new ScriptForm({
  box: $("script"), list: $("script-steps"), title: $("script-title"),
  back: $("step-back"), next: $("step-next"), close: $("close-call"), msg: $("script-msg"),
  outbox,
  onClosed: (callId, result) => closed(callId, result),
});

let feed = null;
let panel = null;
let history = null;
let pins = null;

onLangChange(() => { form.relabel(); if (panel) panel.render(); if (history) history.relabel(); if (pins) pins.render(); render(); renderMonitors(); });

loginFlow((user) => {
  state.me = user;
  $("user-name").textContent = user.name || user.login;
  show($("status-group"), true);
  show($("desk"), true);
  panel = new PromisePanel({ list: $("promise-list"), count: $("promises-count"), empty: $("no-promises"), me: user });
  history = new History();
  pins = new WhisperPins({ box: $("whisper-pins"), list: $("whisper-list"), me: user });
  forgetOldPops();
  feed = new Feed({
    onFrame,
    onState: (s) => {
      state.conn = s;
      renderStatus();
      // Back online: what the operator typed while the feed was down goes now.
      if (s === "connected") outbox.flush();
    },
    onLoggedOut: () => location.reload(),
  });
  feed.start();
  outbox.flush();
  render();
});

window.addEventListener("online", () => outbox.flush());
// A slow safety net besides the outbox's own backoff.
setInterval(() => { if (outbox.pending() && !outbox.running && !outbox.timer) outbox.flush(); }, 15000);

$("presence-switch").addEventListener("change", (e) => {
  const away = !e.target.checked;
  if (feed && feed.send({ type: "presence", away })) {
    state.away = away;
  } else {
    e.target.checked = !state.away;
  }
  renderStatus();
});

$("wrapup-open").addEventListener("click", () => {
  const next = [...state.wrapups.values()].find((c) => !state.call || c.id !== state.call.id);
  if (next) showCall(next);
});

function applyOperator(op) {
  if (!op || !state.me || op.login !== state.me.login) return;
  state.away = !!op.away;
  state.registered = !!op.registered;
}

function onFrame(f) {
  switch (f.type) {
    case "snapshot":
      onSnapshot(f);
      break;
    case "presence":
      applyOperator(f.operator);
      break;
    case "call.ringing":
      if (f.call) {
        state.pop = f;
        if (f.call.id) store.set(POP_PREFIX + f.call.id, { at: Date.now(), pop: f });
        setCall(f.call);
      }
      break;
    case "call.answered":
    case "call.ended":
    case "call.missed":
      if (!f.call) break;
      if (f.type === "call.ended" || (f.type === "call.missed" && f.call.state !== "ringing")) state.monitors.delete(f.call.id);
      else setMonitors(f.call);
      renderMonitors();
      // A callback whose customer never answered owes no wrap-up: nobody talked.
      const talked = f.call.answered && !f.call.unreached;
      if (panel && f.call.direction === "callback" && f.call.promise_id && f.call.operator === state.me.login) {
        // The promise row stops saying "calling" and offers Call back again.
        if (f.type === "call.ended" && f.call.unreached) panel.dialEnded(f.call.promise_id, unreachedText(f.call, "short"));
        else if (f.type === "call.missed" && f.call.state !== "ringing") panel.dialEnded(f.call.promise_id, t("cb_you_missed_short"));
      }
      if (f.type === "call.ended" && talked && f.call.operator === state.me.login) state.wrapups.set(f.call.id, f.call);
      if (f.type === "call.missed" || (f.type === "call.ended" && !talked)) store.del(POP_PREFIX + f.call.id);
      if (!state.call || state.call.id === f.call.id || f.type === "call.answered") {
        if (!state.call || state.call.id !== f.call.id) state.pop = null;
        setCall(f.call);
      }
      break;
    case "call.monitor":
      if (f.call && f.call.id && f.call.state === "answered") setMonitors(f.call);
      onMonitor(f);
      break;
    case "script.progress":
      if (f.record && f.call_id === form.callId) form.applyRecord(f.record);
      break;
    case "wrapup.done":
      if (f.call_id && state.wrapups.has(f.call_id)) closed(f.call_id, null);
      break;
    case "promise.updated":
    case "promise.overdue":
      if (panel && f.promise) panel.upsert(f.promise);
      break;
    case "whisper":
    case "whisper.ack":
      if (pins) pins.onFrame(f);
      break;
    case "error":
      console.warn("desk:", f.error);
      break;
    default:
  }
  render();
}

function onSnapshot(f) {
  // Marks that the page is in sync with the server (tests wait for it too).
  $("desk").dataset.synced = "true";
  applyOperator(f.operator);
  if (pins) pins.fromSnapshot(f);
  if (Array.isArray(f.promises)) {
    panel.setAll(f.promises);
    state.promisesLoaded = true;
  } else if (!state.promisesLoaded) {
    state.promisesLoaded = true;
    api("GET", "/api/promises?state=open").then((r) => { if (r.ok && Array.isArray(r.data)) panel.setAll(r.data); }).catch(() => {});
  }
  const pending = f.wrapup && f.wrapup.call ? f.wrapup : null;
  if (pending) state.wrapups.set(pending.call.id, pending.call);
  // A page (re)opened during a call shows it from the live calls.
  const mine = (f.calls || []).find((c) => c && c.operator === state.me.login);
  if (Array.isArray(f.calls)) {
    state.monitors.clear();
    for (const c of f.calls) if (c && c.operator === state.me.login) setMonitors(c);
    renderMonitors();
  }
  if (mine) {
    if (!state.call || state.call.id !== mine.id) state.pop = null;
    setCall(mine);
  } else if (state.call && (state.call.state === "ringing" || state.call.state === "answered")) {
    state.call = { ...state.call, state: "ended" };
    if (state.call.answered) state.wrapups.set(state.call.id, state.call);
  }
  if (!mine && pending && (!state.call || state.call.id === pending.call.id || !state.wrapups.has(state.call.id))) {
    if (!state.call || state.call.id !== pending.call.id) state.pop = null;
    setCall(pending.call);
    if (pending.record) form.applyRecord(pending.record);
  }
  // The server knows about wrap-ups and owes none: one shown here was closed
  // elsewhere (another tab, a supervisor). Ask before dropping it.
  if (("wrapup" in f || Array.isArray(f.promises)) && !pending) {
    for (const id of state.wrapups.keys()) checkClosed(id);
  }
}

async function checkClosed(callId) {
  let r;
  try { r = await api("GET", `/api/calls/${encodeURIComponent(callId)}/record`); } catch { return; }
  if (r.ok && r.data && (r.data.wrapup || r.data.no_wrapup)) closed(callId, null);
}

function setCall(call) {
  state.call = call;
  if (call.unreached) {
    // A callback whose customer never answered: no script to follow and no
    // wrap-up to write. Whatever was typed while it rang is saved by unload.
    form.unload();
    return;
  }
  let pop = state.pop && state.pop.call && state.pop.call.id === call.id ? state.pop : null;
  if (!pop) {
    const saved = store.get(POP_PREFIX + call.id);
    if (saved && saved.pop && saved.pop.call && saved.pop.call.id === call.id) {
      pop = saved.pop;
      state.pop = pop;
    }
  }
  const fresh = form.load(call, pop, state.me);
  if (!form.script && call.state !== "ringing" && (call.answered || state.wrapups.has(call.id))) form.useFallback();
  form.setMode(state.wrapups.has(call.id) ? "wrapup" : "live");
  if (fresh && (call.state !== "ringing" || state.wrapups.has(call.id))) loadRecord(call.id);
  if (fresh) {
    const a = document.activeElement;
    if (!a || a === document.body || form.box.contains(a)) setTimeout(() => form.focusStep(), 0);
  }
}

function showCall(call) {
  state.pop = null;
  setCall(call);
  render();
}

async function loadRecord(callId) {
  let r;
  try { r = await api("GET", `/api/calls/${encodeURIComponent(callId)}/record`); } catch { return; }
  if (!r.ok || !r.data || form.callId !== callId) return;
  form.applyRecord(r.data);
  if (r.data.wrapup || r.data.no_wrapup) closed(callId, null);
  else form.focusStep();
}

// closed clears a wrap-up that is done; the next pending one, if any, shows.
function closed(callId, result) {
  state.wrapups.delete(callId);
  store.del(POP_PREFIX + callId);
  if (result && result.promise && panel) panel.upsert(result.promise);
  if (state.call && state.call.id === callId) {
    state.call = null;
    state.pop = null;
    form.unload();
    const next = state.wrapups.values().next().value;
    if (next) setCall(next);
  }
  render();
}

// ---- supervisors on the call (media mode) ----

function setMonitors(call) {
  if (!call || !call.id || !Array.isArray(call.monitors) || call.operator !== state.me.login) return;
  const per = new Map();
  for (const m of call.monitors) if (m && m.supervisor) per.set(m.supervisor, { ...m, name: m.name || m.supervisor_name || "" });
  if (per.size) state.monitors.set(call.id, per); else state.monitors.delete(call.id);
}

function onMonitor(f) {
  const m = f.monitor && typeof f.monitor === "object" ? { ...f, ...f.monitor } : f;
  if (!m.call_id || !m.supervisor || (m.operator && m.operator !== state.me.login)) return;
  const per = state.monitors.get(m.call_id) || new Map();
  const old = per.get(m.supervisor);
  if (m.state === "left" || m.state === "failed") {
    per.delete(m.supervisor);
  } else {
    per.set(m.supervisor, {
      ...old,
      supervisor: m.supervisor,
      name: m.supervisor_name || m.name || (old && old.name) || "",
      mode: m.mode || (old && old.mode) || "",
      state: m.state === "switched" ? "joined" : m.state || (old && old.state) || "",
    });
  }
  if (per.size) state.monitors.set(m.call_id, per); else state.monitors.delete(m.call_id);
  renderMonitors();
}

// renderMonitors shows the banner while a supervisor's phone is in one of this
// operator's calls: "Svetlana Orlova is coaching you". Ringing legs are not shown:
// he is not on the call yet.
function renderMonitors() {
  const list = $("monitor-list");
  const items = [];
  for (const [callId, per] of state.monitors) {
    for (const m of per.values()) {
      if (m.state !== "joined") continue;
      const li = el("li", `monitor-on mode-${m.mode || ""}`);
      li.dataset.callId = callId;
      li.dataset.supervisor = m.supervisor;
      li.dataset.mode = m.mode || "";
      li.append(el("strong", "monitor-name", m.name || m.supervisor), document.createTextNode(" "),
        el("span", "monitor-what", t(`monOp_${["listen", "whisper"].includes(m.mode) ? m.mode : "barge"}`)));
      items.push(li);
    }
  }
  list.replaceChildren(...items);
  const box = $("monitor-banner");
  box.dataset.mode = items.length ? items[items.length - 1].dataset.mode : "";
  show(box, items.length > 0);
}

function forgetOldPops() {
  for (const k of store.keys(POP_PREFIX)) {
    const v = store.get(k);
    if (!v || !v.at || Date.now() - v.at > POP_KEEP_MS) store.del(k);
  }
}

function renderStatus() {
  const conn = $("conn-state");
  conn.dataset.state = state.conn;
  conn.textContent = t(state.conn);
  const ph = $("phone-state");
  ph.dataset.state = state.registered ? "on" : "off";
  ph.textContent = t(state.registered ? "phoneRegistered" : "phoneNotRegistered");
  $("presence-switch").checked = !state.away;
  $("presence-label").textContent = t(state.away ? "away" : "available");
  renderOutbox();
}

function renderOutbox() {
  const n = outbox.pending();
  const pill = $("outbox-state");
  show(pill, n > 0);
  pill.textContent = n > 0 ? `${t("unsavedCount")}: ${n}` : "";
}

function render() {
  renderStatus();
  renderCard();
}

function renderCard() {
  const call = state.call;
  const card = $("card");
  show($("idle"), !call);
  show(card, !!call);
  const others = [...state.wrapups.values()].filter((c) => !call || c.id !== call.id);
  show($("wrapup-other"), others.length > 0);
  $("wrapup-other-caller").textContent = others.length ? formatNumber(others[0].from) : "";
  if (!call) return;
  const st = call.state === "answered" ? "talking" : call.state; // ringing, talking, ended, missed
  card.dataset.state = st;
  const owed = state.wrapups.has(call.id);
  card.dataset.wrapup = owed ? "pending" : "";
  show($("wrapup-note"), owed);
  $("card-state").textContent = call.unreached ? unreachedText(call) : t(st);

  const pop = state.pop && state.pop.call && state.pop.call.id === call.id ? state.pop : null;
  const contact = pop ? pop.contact : null;
  const known = !!(contact && contact.name);
  $("caller-name").textContent = known ? contact.name : formatNumber(call.from);
  show($("new-caller"), !known && !!pop && pop.lookup !== "unavailable");
  $("caller-number").textContent = formatNumber(call.from);
  setFact("display", call.from_display);
  setFact("company", contact && contact.company);
  const manager = pop && (pop.manager || (contact && contact.manager));
  const contactId = (contact && contact.id) || call.contact_id;
  const m = $("caller-manager");
  if (!$("manager-form").hidden) {
    // the operator is choosing a manager: leave the row alone
  } else {
    m.textContent = manager || (contactId ? "—" : "");
  }
  show($("manager-label"), !!manager || !!contactId);
  show($("manager-row"), !!manager || !!contactId);
  $("call-line").textContent = call.line || call.to || "";
  show($("lookup-note"), !!(pop && pop.lookup === "unavailable") || !!call.lookup_failed);
  if (history) history.show(call, pop);
  renderTimer(call, st);
}

// unreachedText says why a callback's customer was not reached, by the trunk's
// status: in full on the card, short ("short") in the promise's row.
function unreachedText(call, form) {
  const status = call.unreached;
  let key = "cb_not_reached";
  if (status === 486 || status === 600) key = "cb_busy";
  else if (status === 603) key = "cb_declined";
  else if (status === 408 || status === 480 || status === 487) key = "cb_no_answer";
  return t(form === "short" ? key + "_short" : key).replace("{status}", String(status));
}

function setFact(name, value) {
  const has = typeof value === "string" && value !== "";
  show($(`${name}-label`), has);
  const dd = $(`caller-${name}`);
  show(dd, has);
  dd.textContent = has ? value : "";
}

function renderTimer(call, st) {
  const out = $("card-timer");
  clearInterval(state.timer);
  state.timer = null;
  if (st === "talking") {
    const since = Date.parse(call.answered || "") || Date.now();
    const base = Math.min(since, Date.now());
    const tick = () => { out.textContent = mmss(Date.now() - base); };
    tick();
    state.timer = setInterval(tick, 1000);
  } else if ((st === "ended" || st === "missed") && call.answered && call.ended && !call.unreached) {
    out.textContent = mmss(Date.parse(call.ended) - Date.parse(call.answered));
  } else {
    out.textContent = "";
  }
}
