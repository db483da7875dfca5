// The supervisor page: every live call with the step its operator is on and the
// answers captured so far (script.progress), the wrap-ups operators still owe (with
// a force-close), overdue promises, and every operator's presence. All of it is kept
// from the snapshot and the frames of the "sup" channel.
import { t, applyI18n, bindLangSwitch, onLangChange, currentLang } from "./i18n.js";
import { $, el, show, api, formatNumber, formatWhen, mmss, hhmmss, loginFlow, logout, Feed } from "./common.js";

const calls = new Map();     // id -> call
const operators = new Map(); // login -> operator
const endedAt = new Map();   // id -> when it ended, to fade it out
const progress = new Map();  // call id -> the record of script.progress
const owed = new Map();      // call id -> when its wrap-up became owed
const overdue = new Map();   // promise id -> promise
let forcing = null;          // {id, reason} while a force-close is being confirmed
let conn = "connecting";

applyI18n(document);
bindLangSwitch($("lang"));
onLangChange(() => render());
$("logout").addEventListener("click", logout);

loginFlow((user) => {
  $("user-name").textContent = user.name || user.login;
  show($("status-group"), true);
  if (user.role === "operator") {
    show($("not-supervisor"), true);
    return;
  }
  show($("board"), true);
  new Feed({
    onFrame,
    onState: (s) => { conn = s; renderConn(); },
    onLoggedOut: () => location.reload(),
  }).start();
  api("GET", "/api/promises?state=overdue").then((r) => {
    if (r.ok && Array.isArray(r.data)) { for (const p of r.data) if (p && p.id) overdue.set(p.id, p); render(); }
  }).catch(() => {});
  setInterval(tick, 1000);
});

function onFrame(f) {
  switch (f.type) {
    case "snapshot":
      calls.clear();
      endedAt.clear();
      for (const c of f.calls || []) if (c && c.id) calls.set(c.id, c);
      if (Array.isArray(f.operators)) {
        operators.clear();
        for (const o of f.operators) if (o && o.login) operators.set(o.login, o);
      }
      // Operators in wrap-up owe one for the call they are on, though it ended.
      owed.clear();
      for (const o of operators.values()) {
        if (o.status === "wrapup" && o.call_id) {
          owed.set(o.call_id, Date.now());
          if (!calls.has(o.call_id)) calls.set(o.call_id, { id: o.call_id, operator: o.login, state: "ended" });
        }
      }
      break;
    case "call.ringing":
    case "call.answered":
    case "call.ended":
    case "call.missed":
      if (f.call && f.call.id) {
        calls.set(f.call.id, f.call);
        if (f.type === "call.ended" && f.call.answered) owed.set(f.call.id, Date.now());
        else if (f.type === "call.ended" || f.type === "call.missed") endedAt.set(f.call.id, Date.now());
      }
      break;
    case "script.progress":
      if (f.call_id && f.record) progress.set(f.call_id, f.record);
      break;
    case "wrapup.done":
      if (f.call_id) wrapupDone(f.call_id);
      break;
    case "promise.overdue":
      if (f.promise && f.promise.id && f.promise.state !== "kept") overdue.set(f.promise.id, f.promise);
      break;
    case "promise.updated":
      if (f.promise && f.promise.id && overdue.has(f.promise.id)) {
        if (f.promise.state === "kept") overdue.delete(f.promise.id);
        else overdue.set(f.promise.id, f.promise);
      }
      break;
    case "presence":
      if (f.operator && f.operator.login) {
        const o = { ...operators.get(f.operator.login), ...f.operator };
        operators.set(o.login, o);
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
      break;
    default:
  }
  render();
}

function wrapupDone(id) {
  owed.delete(id);
  if (forcing && forcing.id === id) forcing = null;
  if (calls.has(id)) endedAt.set(id, Date.now());
}

function tick() {
  const now = Date.now();
  for (const [id, at] of endedAt) {
    if (now - at > 10000) { calls.delete(id); endedAt.delete(id); progress.delete(id); }
  }
  render();
}

function renderConn() {
  const c = $("conn-state");
  c.dataset.state = conn;
  c.textContent = t(conn);
}

function render() {
  renderConn();
  // A re-render must not take the reason being typed away from the supervisor.
  const typing = document.activeElement && document.activeElement.classList.contains("force-reason");
  renderCalls();
  if (typing && forcing) {
    const input = document.querySelector(`#calls tr[data-id="${CSS.escape(forcing.id)}"] .force-reason`);
    if (input) { input.focus(); input.setSelectionRange(input.value.length, input.value.length); }
  }
  renderOverdue();
  renderOperators();
}

function renderCalls() {
  const body = $("calls");
  body.replaceChildren();
  const list = [...calls.values()].sort((a, b) => String(a.started).localeCompare(String(b.started)));
  for (const c of list) {
    const pending = owed.has(c.id);
    const st = pending ? "wrapup" : c.state === "answered" ? "talking" : c.state;
    const tr = el("tr", `call state-${st}`);
    tr.dataset.id = c.id;
    tr.append(el("td", "state", pending ? t("st_wrapup") : t(st)));
    const who = el("td", "caller", formatNumber(c.from));
    if (c.from_display) who.append(el("div", "sub", c.from_display));
    tr.append(who, el("td", "", c.line || c.to || ""), el("td", "", opName(c.operator)));
    let dur = "";
    const start = Date.parse(c.answered || c.started || "");
    if (start) {
      const end = c.ended ? Date.parse(c.ended) : Date.now();
      dur = mmss(end - start);
    }
    tr.append(el("td", "num", dur));
    const rec = progress.get(c.id);
    tr.append(el("td", "step", rec && rec.step ? rec.step : ""));
    const ans = el("td", "answers");
    if (rec && rec.answers) {
      for (const [k, v] of Object.entries(rec.answers).sort()) {
        if (v === "") continue;
        const item = el("div", "answer");
        item.dataset.key = k;
        item.append(el("span", "sub", `${k}: `), el("span", "", v));
        ans.append(item);
      }
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
  const now = Date.now();
  const list = [...overdue.values()].sort((a, b) => (Date.parse(a.due) || 0) - (Date.parse(b.due) || 0));
  for (const p of list) {
    const tr = el("tr", "late-promise");
    tr.dataset.id = p.id;
    const what = el("td", "", p.what || (p.kind === "callback" ? t("callBack") : t("promise")));
    if (p.phone) what.append(el("div", "sub", formatNumber(p.phone)));
    const due = Date.parse(p.due);
    tr.append(what, el("td", "", p.owner ? opName(p.owner) : "—"), el("td", "num", formatWhen(p.due, currentLang())),
      el("td", "num late", due ? hhmmss(now - due) : ""));
    body.append(tr);
  }
  show($("no-overdue"), list.length === 0);
}

function renderOperators() {
  const ob = $("operators");
  ob.replaceChildren();
  const ops = [...operators.values()].sort((a, b) => String(a.login).localeCompare(String(b.login)));
  for (const o of ops) {
    const tr = el("tr", `op status-${o.status || "offline"}`);
    tr.dataset.login = o.login;
    const name = el("td", "", o.name || o.login);
    name.append(el("div", "sub", o.login));
    tr.append(name, el("td", "status", t(`st_${o.status || "offline"}`)),
      el("td", "", t(o.page_open ? "yes" : "no")), el("td", "", t(o.registered ? "yes" : "no")));
    ob.append(tr);
  }
  show($("no-operators"), ops.length === 0);
}

function opName(login) {
  const o = operators.get(login);
  return o && o.name ? o.name : login || "";
}
