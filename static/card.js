// The known caller's history on the card: last calls, the open interest and its
// stage, open promises, notes (with "add a note"), and the personal manager with a
// control to change him. A recorded past call has ▶ for supervisors and admins,
// which puts a player on GET /api/calls/ID/recording (the server checks the role
// again); nobody else sees the button.
import { t, currentLang } from "./i18n.js";
import { $, el, show, api, mmss, formatWhen } from "./common.js";

let operators = null; // [{login, name}] once read, or [] when this user may not list them
let role = null;      // the signed-in user's role: given, or read from the session when a recorded call needs it
let roleAsked = null; // the session read in flight

const STAFF = ["supervisor", "admin"];

// askRole reads the user's role from the session once, then calls done.
function askRole(done) {
  if (!roleAsked) {
    roleAsked = api("GET", "/api/session")
      .then((r) => { role = r.ok && r.data && typeof r.data.role === "string" ? r.data.role : ""; })
      .catch(() => { roleAsked = null; });
  }
  roleAsked.then(done);
}

function recordingURL(id) { return `/api/calls/${encodeURIComponent(id)}/recording`; }

async function loadOperators() {
  if (operators) return operators;
  let r;
  try { r = await api("GET", "/api/operators"); } catch { r = { status: 0 }; }
  operators = r.ok && Array.isArray(r.data) ? r.data.filter((o) => o && o.login) : [];
  return operators;
}

export function operatorName(login) {
  const o = operators && operators.find((x) => x.login === login);
  return o && o.name ? o.name : login || "";
}

// tr translates a code with a prefix, falling back to the code itself.
function tr(prefix, code) {
  const k = prefix + code;
  const v = t(k);
  return v === k ? code : v;
}

export class History {
  // me is the signed-in user, when the page passes him; else the role is read
  // from the session the first time a recorded call is shown.
  constructor({ me } = {}) {
    if (me && typeof me.role === "string") role = me.role;
    this.contactId = null;
    this.callId = null;
    this.card = null;
    this.players = new Map(); // call id -> the row of its player, kept across redraws so playback goes on
    $("note-form").addEventListener("submit", (e) => { e.preventDefault(); this.addNote(); });
    $("manager-change").addEventListener("click", () => this.editManager());
    $("manager-cancel").addEventListener("click", () => this.closeManager());
    $("manager-form").addEventListener("submit", (e) => { e.preventDefault(); this.saveManager(); });
    $("manager-form").addEventListener("keydown", (e) => { if (e.key === "Escape") this.closeManager(); });
  }

  // show fills the history for the call on the card; contact may be null.
  show(call, pop) {
    const contact = pop && pop.contact;
    const contactId = (contact && contact.id) || (call && call.contact_id) || null;
    const card = pop && pop.card;
    if (this.callId === (call && call.id) && this.card === card && this.contactId === contactId) return;
    this.callId = call ? call.id : null;
    if (this.contactId !== contactId) this.players.clear();
    this.contactId = contactId;
    this.card = card || null;
    this.closeManager();
    show($("history"), !!contactId);
    show($("manager-change"), !!contactId);
    $("note-error").textContent = "";
    if (!contactId) return;
    const c = card || { calls: [], promises: [], notes: [] };
    this.renderCalls(c.calls || []);
    this.renderInterest(c.interest);
    this.renderPromises(c.promises || []);
    this.renderNotes(c.notes || []);
  }

  // relabel draws the history again in the new language.
  relabel() {
    if (!this.contactId) return;
    const c = this.card || { calls: [], promises: [] };
    this.renderCalls(c.calls || []);
    this.renderInterest(c.interest);
    this.renderPromises(c.promises || []);
  }

  renderCalls(calls) {
    const body = $("history-calls");
    body.replaceChildren();
    if (role === null && calls.some((s) => s && s.recorded)) {
      const contactId = this.contactId;
      askRole(() => { if (role !== null && this.contactId === contactId && this.card) this.renderCalls(this.card.calls || []); });
    }
    for (const s of calls) {
      const tr_ = el("tr", "history-call");
      if (s.call_id) tr_.dataset.id = s.call_id;
      tr_.dataset.recorded = s.recorded ? "true" : "false";
      tr_.append(el("td", "num", formatWhen(s.at, currentLang())), el("td", "", operatorName(s.operator)),
        el("td", `outcome outcome-${s.outcome || ""}`, tr("o_", s.outcome || "")), el("td", "num", mmss((s.seconds || 0) * 1000)),
        this.recordingCell(s));
      body.append(tr_);
      // A player opened before this redraw keeps playing, on its own row below.
      const player = s.call_id && s.recorded && STAFF.includes(role) ? this.players.get(s.call_id) : null;
      if (player) body.append(player);
    }
    show($("history-calls-table"), calls.length > 0);
    show($("no-history"), calls.length === 0);
  }

  // recordingCell holds ▶ of a recorded call, for staff only. Pressed, it opens the
  // player on a full-width row under the call: the card's column is too narrow
  // for a player's time and seek bar beside four other cells.
  recordingCell(s) {
    const td = el("td", "recording-cell");
    if (!s.recorded || !s.call_id || !STAFF.includes(role) || this.players.has(s.call_id)) return td;
    const id = s.call_id;
    const b = el("button", "play", `▶ ${t("play")}`);
    b.type = "button";
    b.setAttribute("aria-label", t("playRecording"));
    b.addEventListener("click", () => {
      const audio = el("audio", "recording");
      audio.controls = true;
      audio.preload = "metadata";
      audio.src = recordingURL(id);
      audio.setAttribute("aria-label", t("recording"));
      const cell = el("td", "recording-player");
      cell.colSpan = 5;
      cell.append(audio);
      audio.addEventListener("error", () => {
        if (!cell.querySelector(".recording-error")) cell.append(el("div", "sub error recording-error", t("recordingUnavailable")));
      });
      const row = el("tr", "history-player");
      row.dataset.for = id;
      row.append(cell);
      this.players.set(id, row);
      td.closest("tr").after(row);
      td.replaceChildren();
      audio.play().catch(() => { /* the controls are there to press */ });
    });
    td.append(b);
    return td;
  }

  renderInterest(it) {
    const box = $("interest");
    show(box, !!it);
    box.replaceChildren();
    if (!it) return;
    box.append(el("span", "interest-type", tr("it_", it.type || "interest")), el("span", "stage", tr("stage_", it.stage || "")));
    if (it.summary) box.append(el("span", "sub", it.summary));
  }

  renderPromises(list) {
    const ul = $("card-promises");
    ul.replaceChildren();
    const now = Date.now();
    for (const p of list) {
      const li = el("li", "card-promise");
      if (p.state === "open" && Date.parse(p.due) < now) li.classList.add("overdue");
      li.append(el("span", "", p.what || (p.kind === "callback" ? t("callBack") : t("promise"))), el("span", "num", formatWhen(p.due, currentLang())));
      ul.append(li);
    }
    show($("card-promises-box"), list.length > 0);
  }

  renderNotes(notes) {
    const ul = $("notes");
    ul.replaceChildren();
    for (const n of notes) ul.append(this.noteItem(n));
  }

  noteItem(n) {
    const li = el("li", "note");
    li.append(el("span", "note-text", n.text || ""), el("span", "sub", `${operatorName(n.by)} · ${formatWhen(n.at, currentLang())}`));
    return li;
  }

  async addNote() {
    const input = $("note-input");
    const text = input.value.trim();
    if (!text || !this.contactId) return;
    let r;
    try { r = await api("POST", `/api/contacts/${encodeURIComponent(this.contactId)}/notes`, { text, call_id: this.callId || "" }); } catch { r = { status: 0 }; }
    if (r.ok) {
      input.value = "";
      $("note-error").textContent = "";
      $("notes").prepend(this.noteItem(r.data || { text }));
    } else {
      $("note-error").textContent = (r.data && r.data.error) || t("offline");
    }
  }

  async editManager() {
    const list = await loadOperators();
    const box = $("manager-pick");
    box.replaceChildren();
    let control;
    if (list.length) {
      control = el("select", "manager-select");
      for (const o of list) {
        const op = el("option", "", o.name || o.login);
        op.value = o.login;
        control.append(op);
      }
    } else {
      control = el("input", "manager-input");
      control.placeholder = t("login");
    }
    control.id = "manager-value";
    control.setAttribute("aria-label", t("manager"));
    box.append(control);
    show($("manager-form"), true);
    show($("manager-change"), false);
    $("manager-error").textContent = "";
    control.focus();
  }

  closeManager() {
    show($("manager-form"), false);
    show($("manager-change"), !!this.contactId);
  }

  async saveManager() {
    const v = $("manager-value");
    const manager = v ? v.value.trim() : "";
    if (!manager || !this.contactId) return;
    let r;
    try { r = await api("PUT", `/api/contacts/${encodeURIComponent(this.contactId)}/manager`, { manager }); } catch { r = { status: 0 }; }
    if (r.ok) {
      const m = $("caller-manager");
      m.textContent = operatorName((r.data && r.data.manager) || manager);
      show(m, true);
      show($("manager-label"), true);
      show($("manager-row"), true);
      this.closeManager();
    } else {
      $("manager-error").textContent = (r.data && r.data.error) || t("offline");
    }
  }
}
