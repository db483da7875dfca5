// The operator page: sign in, presence switch, phone and connection state, and
// the card of the call ringing on this operator's phone with the line's script.
import { t, applyI18n, bindLangSwitch, onLangChange } from "./i18n.js";
import { $, el, show, api, formatNumber, mmss, loginFlow, logout, Feed } from "./common.js";

const state = {
  me: null,
  away: false,
  registered: false,
  conn: "connecting",
  call: null,      // the call on the card
  pop: null,       // its call.ringing payload, when we had it
  timer: null,
};

applyI18n(document);
bindLangSwitch($("lang"));
onLangChange(() => render());
$("logout").addEventListener("click", logout);

let feed = null;

loginFlow((user) => {
  state.me = user;
  $("user-name").textContent = user.name || user.login;
  show($("status-group"), true);
  show($("desk"), true);
  feed = new Feed({
    onFrame,
    onState: (s) => { state.conn = s; renderStatus(); },
    onLoggedOut: () => location.reload(),
  });
  feed.start();
  render();
});

$("presence-switch").addEventListener("change", (e) => {
  const away = !e.target.checked;
  if (feed && feed.send({ type: "presence", away })) {
    state.away = away;
  } else {
    e.target.checked = !state.away;
  }
  renderStatus();
});

function applyOperator(op) {
  if (!op || !state.me || op.login !== state.me.login) return;
  state.away = !!op.away;
  state.registered = !!op.registered;
}

function onFrame(f) {
  switch (f.type) {
    case "snapshot": {
      // Marks that the page is in sync with the server (tests wait for it too).
      $("desk").dataset.synced = "true";
      applyOperator(f.operator);
      // A page (re)opened during a call shows it from the live calls.
      const mine = (f.calls || []).find((c) => c && c.operator === state.me.login);
      if (mine) {
        if (!state.call || state.call.id !== mine.id) state.pop = null;
        setCall(mine);
      } else if (state.call && (state.call.state === "ringing" || state.call.state === "answered")) {
        state.call = { ...state.call, state: "ended" };
      }
      break;
    }
    case "presence":
      applyOperator(f.operator);
      break;
    case "call.ringing":
      if (f.call) {
        state.pop = f;
        setCall(f.call);
      }
      break;
    case "call.answered":
    case "call.ended":
    case "call.missed":
      if (f.call && (!state.call || state.call.id === f.call.id || f.type === "call.answered")) {
        if (!state.call || state.call.id !== f.call.id) state.pop = null;
        setCall(f.call);
      }
      break;
    case "error":
      console.warn("desk:", f.error);
      break;
    default:
  }
  render();
}

function setCall(call) {
  state.call = call;
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
  if (!call) return;
  const st = call.state === "answered" ? "talking" : call.state; // ringing, talking, ended, missed
  card.dataset.state = st;
  $("card-state").textContent = t(st);

  const pop = state.pop && state.pop.call && state.pop.call.id === call.id ? state.pop : null;
  const contact = pop ? pop.contact : null;
  const known = !!(contact && contact.name);
  $("caller-name").textContent = known ? contact.name : formatNumber(call.from);
  show($("new-caller"), !known && !!pop && pop.lookup !== "unavailable");
  $("caller-number").textContent = formatNumber(call.from);
  setFact("display", call.from_display);
  setFact("company", contact && contact.company);
  setFact("manager", pop && (pop.manager || (contact && contact.manager)));
  $("call-line").textContent = call.line || call.to || "";
  show($("lookup-note"), !!(pop && pop.lookup === "unavailable") || !!call.lookup_failed);
  renderScript(pop && pop.script, { contact: pop && pop.contact, operator: state.me, call });
  renderTimer(call, st);
}

function setFact(name, value) {
  const has = typeof value === "string" && value !== "";
  show($(`${name}-label`), has);
  const dd = $(`caller-${name}`);
  show(dd, has);
  dd.textContent = has ? value : "";
}

let shownScript = null;

function renderScript(script, known) {
  const box = $("script");
  show(box, !!(script && script.steps && script.steps.length));
  if (!script || shownScript === script) return;
  shownScript = script;
  $("script-title").textContent = script.title || script.id || "";
  const list = $("script-steps");
  list.replaceChildren();
  for (const step of script.steps || []) {
    const li = el("li", "step");
    li.append(el("div", "step-title", step.title || step.id || ""));
    if (step.text) li.append(el("p", "step-text", fillPlaceholders(step.text, known)));
    const labels = [...(step.fields || []), ...(step.options || [])];
    if (labels.length) {
      const ul = el("ul", "step-fields");
      for (const f of labels) {
        const item = el("li", "field", f.label || f.id || "");
        if (f.required) item.append(el("span", "req", ` (${t("required")})`));
        ul.append(item);
      }
      li.append(ul);
    }
    list.append(li);
  }
}

// fillPlaceholders puts what the desk knows into {{object.field|fallback}}: the
// caller's name, the operator's name. What is not known yet (the price of a product
// not picked) shows its fallback, or an ellipsis, never the raw braces. The result
// goes into textContent, so a caller-chosen name stays text.
function fillPlaceholders(text, known) {
  return text.replace(/\{\{\s*([a-z_]+)\.([a-z_]+)\s*(?:\|([^}]*))?\}\}/g, (_, obj, field, fallback) => {
    const src = known && known[obj];
    const v = src && src[field];
    if (v !== undefined && v !== null && v !== "") return String(v);
    return fallback ? fallback : "…";
  });
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
  } else if ((st === "ended" || st === "missed") && call.answered && call.ended) {
    out.textContent = mmss(Date.parse(call.ended) - Date.parse(call.answered));
  } else {
    out.textContent = "";
  }
}
