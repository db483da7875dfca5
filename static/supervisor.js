// The supervisor page: every live call and every operator's presence, kept from
// the snapshot and the frames of the "sup" channel.
import { t, applyI18n, bindLangSwitch, onLangChange } from "./i18n.js";
import { $, el, show, formatNumber, mmss, loginFlow, logout, Feed } from "./common.js";

const calls = new Map();     // id -> call
const operators = new Map(); // login -> operator
const endedAt = new Map();   // id -> when it ended, to fade it out
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
      break;
    case "call.ringing":
    case "call.answered":
    case "call.ended":
    case "call.missed":
      if (f.call && f.call.id) {
        calls.set(f.call.id, f.call);
        if (f.type === "call.ended" || f.type === "call.missed") endedAt.set(f.call.id, Date.now());
      }
      break;
    case "presence":
      if (f.operator && f.operator.login) operators.set(f.operator.login, { ...operators.get(f.operator.login), ...f.operator });
      break;
    default:
  }
  render();
}

function tick() {
  const now = Date.now();
  for (const [id, at] of endedAt) {
    if (now - at > 10000) { calls.delete(id); endedAt.delete(id); }
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
  const body = $("calls");
  body.replaceChildren();
  const list = [...calls.values()].sort((a, b) => String(a.started).localeCompare(String(b.started)));
  for (const c of list) {
    const st = c.state === "answered" ? "talking" : c.state;
    const tr = el("tr", `call state-${st}`);
    tr.dataset.id = c.id;
    tr.append(el("td", "state", t(st)));
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
    body.append(tr);
  }
  show($("no-calls"), list.length === 0);

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
