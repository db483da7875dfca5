// The call script as a working form. Each step of the line's script is an item of
// #script-steps; the current one is open, the others fold to their title and can be
// opened again with a click. Every field change becomes an answer op in the outbox
// (outbox.js); the field shows saved, not saved yet, or the server's reason.
//
// Keyboard: Tab and Shift-Tab move between fields, Enter goes to the next step
// (Ctrl+Enter in a text area), and the digit keys 1-9 choose an option or a choice
// when the focus is not in a text input.
import { t, currentLang } from "./i18n.js";
import { el, show, uuid, api, formatAmount, formatWhen, localInput } from "./common.js";

const TEXT_TYPES = new Set(["text", "email", "tel", "url", "number", "date", "datetime-local", "time", "search", "password"]);
const INPUT_TYPE = { text: "text", email: "email", phone: "tel", url: "url", number: "number", date: "date", datetime: "datetime-local", time: "time" };
const DEBOUNCE_MS = 400;
// The wrap-up body's items, by the bind of the field that holds each.
const WRAPUP_BINDS = { outcome: "outcome", reason: "refusal.reason", stage: "stage", note: "note" };

// isTextTarget says whether a key press belongs to the element (typing), so the
// digit shortcuts stay out of its way.
export function isTextTarget(node) {
  if (!node || !node.tagName) return false;
  if (node.isContentEditable) return true;
  const tag = node.tagName;
  if (tag === "TEXTAREA" || tag === "SELECT") return true;
  return tag === "INPUT" && TEXT_TYPES.has(node.type);
}

// fillPlaceholders puts what the desk knows into {{object.field|fallback}}: the
// caller's name, the operator's name. What is not known yet (the price of a product
// not picked) shows its fallback, or an ellipsis, never the raw braces. The result
// goes into textContent, so a caller-chosen name stays text.
export function fillPlaceholders(text, known) {
  return text.replace(/\{\{\s*([a-z_]+)\.([a-z_]+)\s*(?:\|([^}]*))?\}\}/g, (_, obj, field, fallback) => {
    const src = known && known[obj];
    const v = src && src[field];
    if (v !== undefined && v !== null && v !== "") return String(v);
    return fallback ? fallback : "…";
  });
}

// quickLabel names a deadline preset in the page's language: "+2h" is "+2 h".
export function quickLabel(q) {
  let m = /^\+(\d+)([hmd])$/.exec(q);
  if (m) return `+${m[1]} ${t("unit_" + m[2])}`;
  m = /^(today|tomorrow) (\d{1,2}:\d{2})$/.exec(q);
  if (m) return `${t(m[1])} ${m[2]}`;
  return q;
}

// isPreset says whether a value is a deadline preset the server resolves.
function isPreset(v) { return /^\+\d+[hmd]$|^\+[\dhm]+$|^(today|tomorrow) \d{1,2}:\d{2}$/.test(v || ""); }

function fieldOptions(f, pop) {
  if (Array.isArray(f.options) && f.options.length) return f.options;
  if (Array.isArray(f.choices) && f.choices.length) return f.choices.map((c) => ({ id: c, label: c }));
  if (f.from === "price_list" && pop && Array.isArray(pop.prices)) return pop.prices.map((p) => ({ id: p.product, label: p.product }));
  return [];
}

// fallbackScript is the wrap-up alone, for a call whose script this browser never
// saw (the page was opened elsewhere): the outcome can still be recorded.
export function fallbackScript() {
  const choice = (id, bind, ids, extra) => ({ id, bind, type: "choice", label: t("f_" + id), choices: ids,
    options: ids.map((v) => ({ id: v, label: t(`${id === "refusal_reason" ? "reason" : id}_${v}`) })), ...extra });
  return { id: "", title: t("wrapupTitle"), steps: [{ id: "wrapup", kind: "wrapup", title: t("wrapupTitle"), fields: [
    choice("outcome", "outcome", ["deal", "interest", "not_prospective", "refusal"], { required: true }),
    choice("refusal_reason", "refusal.reason", ["unreachable", "competitor", "not_prospective"], { required: true, when: "outcome=refusal" }),
    choice("stage", "stage", ["first_call", "needs_identified", "meeting", "contract", "payment"]),
    { id: "note", bind: "note", type: "textarea", label: t("f_note") },
  ] }] };
}

export class ScriptForm {
  // box: the #script section; list: the <ol>; nav: the buttons and message under it.
  constructor({ box, list, title, back, next, close, msg, outbox, onClosed, onRecord }) {
    Object.assign(this, { box, list, titleEl: title, backBtn: back, nextBtn: next, closeBtn: close, msgEl: msg, outbox });
    this.onClosed = onClosed || (() => {});
    this.onRecord = onRecord || (() => {});
    this.reset();
    back.addEventListener("click", () => this.back());
    next.addEventListener("click", () => this.next());
    close.addEventListener("click", () => this.closeCall());
    list.addEventListener("keydown", (e) => this.onKey(e));
    document.addEventListener("keydown", (e) => this.onDigit(e));
    // A key handled here moves the focus; its character must not land in the field
    // that has the focus now (browsers drop it after preventDefault on keydown, a
    // synthetic or remote keyboard may still send it).
    this.swallow = null;
    const drop = (e) => { if (this.swallow && (e.key === this.swallow || e.data === this.swallow)) e.preventDefault(); };
    document.addEventListener("keypress", drop, true);
    document.addEventListener("beforeinput", drop, true);
    document.addEventListener("keyup", (e) => { if (e.key === this.swallow) this.swallow = null; }, true);
    // What is still in its debounce goes to the (persistent) outbox before the page goes.
    window.addEventListener("pagehide", () => this.commitAll());
    window.addEventListener("beforeunload", () => this.commitAll());
  }

  reset() {
    this.callId = null;
    this.script = null;
    this.pop = null;
    this.me = null;
    this.call = null;
    this.values = new Map();   // "step.field" -> value as typed
    this.server = null;        // the last record from the server
    this.errors = new Map();   // "step.field" -> the server's reason
    this.missing = new Set();  // "step.field" the wrap-up asked for
    this.timers = new Map();   // "step.field" -> debounce timer
    this.current = null;
    this.trail = [];
    this.navigated = false;
    this.mode = "live";
    this.steps = new Map();    // step id -> {step, li}
    this.fields = new Map();   // "step.field" -> {step, field, wrap, control, mark, err, extra}
  }

  get active() { return !!this.callId; }

  // load shows the script of a call; it keeps the form when it is the same call.
  load(call, pop, me) {
    const script = (pop && pop.script && pop.script.steps && pop.script.steps.length) ? pop.script : null;
    if (this.callId === call.id && (this.script === script || (!script && this.script))) {
      this.call = call;
      this.refreshTexts();
      return false;
    }
    this.commitAll();
    this.reset();
    this.callId = call.id;
    this.call = call;
    this.pop = pop;
    this.me = me;
    this.script = script;
    this.render();
    this.overlayOutbox();
    this.paint();
    return true;
  }

  // unload clears the form (the card closed).
  unload() {
    this.commitAll();
    this.reset();
    this.list.replaceChildren();
    show(this.box, false);
  }

  // useFallback shows the built-in wrap-up when the script is unknown here.
  useFallback() {
    if (this.script) return;
    this.script = fallbackScript();
    this.fallback = true;
    this.render();
    this.overlayOutbox();
    this.paint();
  }

  render() {
    const script = this.script;
    show(this.box, !!script);
    this.list.replaceChildren();
    this.steps.clear();
    this.fields.clear();
    if (!script) return;
    this.titleEl.textContent = script.title || script.id || "";
    for (const step of script.steps) {
      const li = el("li", "step");
      li.dataset.step = step.id;
      li.dataset.kind = step.kind || "";
      const title = el("button", "step-title", step.title || step.id || "");
      title.type = "button";
      title.tabIndex = -1; // the keyboard goes back with the Back button
      title.addEventListener("click", () => this.go(step.id));
      li.append(title);
      const body = el("div", "step-body");
      if (step.text) {
        const p = el("p", "step-text");
        p.dataset.text = step.text;
        body.append(p);
      }
      if (step.hint) {
        const p = el("p", "step-hint");
        p.dataset.text = step.hint;
        body.append(p);
      }
      if (step.options && step.options.length) body.append(this.renderOptions(step));
      if (step.fields && step.fields.length) {
        const ul = el("ul", "step-fields");
        for (const f of step.fields) ul.append(this.renderField(step, f));
        body.append(ul);
      }
      li.append(body);
      this.list.append(li);
      this.steps.set(step.id, { step, li });
    }
    this.current = script.steps[0].id;
    this.trail = [];
  }

  renderOptions(step) {
    const box = el("div", "options choices");
    box.setAttribute("role", "group");
    box.dataset.key = `${step.id}.option`;
    step.options.forEach((o, i) => {
      const b = el("button", "option choice", o.label || o.id);
      b.type = "button";
      b.dataset.value = o.id;
      if (i < 9) b.dataset.digit = String(i + 1);
      b.addEventListener("click", () => this.chooseOption(step, o));
      box.append(b);
    });
    return box;
  }

  renderField(step, f) {
    const key = `${step.id}.${f.id}`;
    const wrap = el("li", "field");
    wrap.dataset.field = key;
    if (f.bind) wrap.dataset.bind = f.bind;
    const type = f.type || "text";
    wrap.dataset.type = type;
    const label = el("label", "field-label");
    const cid = `f-${step.id}-${f.id}`.replace(/[^A-Za-z0-9_-]/g, "_");
    label.htmlFor = cid;
    label.append(el("span", "label-text", f.label || f.id || ""));
    if (f.required) label.append(el("span", "req", ` (${t("required")})`));
    const mark = el("span", "save-mark");
    mark.setAttribute("role", "img");
    mark.setAttribute("aria-hidden", "true");
    wrap.append(label, mark);
    let control;
    let extra = null;
    const opts = type === "choice" ? fieldOptions(f, this.pop) : [];
    if (type === "choice" && opts.length <= 9) {
      control = el("div", "choices");
      control.setAttribute("role", "group");
      control.id = cid;
      control.dataset.key = key;
      opts.forEach((o, i) => {
        const b = el("button", "choice", o.label || o.id);
        b.type = "button";
        b.dataset.value = o.id;
        b.dataset.digit = String(i + 1);
        if (f.bind === "source" && this.pop && o.id === this.pop.preset_source) b.dataset.preset = "true";
        b.addEventListener("click", () => this.change(key, this.values.get(key) === o.id && !f.required ? "" : o.id));
        control.append(b);
      });
    } else if (type === "choice") {
      control = el("select", "control");
      control.id = cid;
      control.append(el("option", "", "—"));
      control.firstChild.value = "";
      for (const o of opts) {
        const op = el("option", "", o.label || o.id);
        op.value = o.id;
        control.append(op);
      }
      control.addEventListener("change", () => this.change(key, control.value));
    } else if (type === "textarea") {
      control = el("textarea", "control");
      control.id = cid;
      control.rows = 2;
      control.addEventListener("input", () => this.change(key, control.value, true));
      control.addEventListener("blur", () => this.commit(key));
    } else if (type === "checkbox") {
      control = el("input", "control");
      control.type = "checkbox";
      control.id = cid;
      control.addEventListener("change", () => this.change(key, control.checked ? "true" : "false"));
    } else {
      control = el("input", "control");
      control.type = INPUT_TYPE[type] || "text";
      control.id = cid;
      if (type === "phone") control.autocomplete = "off";
      const ev = type === "datetime" || type === "date" || type === "time" ? "change" : "input";
      control.addEventListener(ev, () => {
        let v = control.value;
        if (type === "datetime" && v) {
          const d = new Date(v);
          v = isNaN(d) ? v : d.toISOString();
        }
        this.change(key, v, ev === "input");
      });
      control.addEventListener("blur", () => this.commit(key));
    }
    wrap.append(control);
    if (Array.isArray(f.quick) && f.quick.length) {
      const chips = el("div", "quick");
      for (const q of f.quick) {
        if (typeof q !== "string" || !q) continue;
        const dated = type === "datetime" || type === "date" || type === "time";
        const b = el("button", "chip", dated ? quickLabel(q) : q);
        b.type = "button";
        b.dataset.value = q;
        b.addEventListener("click", () => {
          if (dated) this.change(key, q);
          else {
            control.value = q;
            this.change(key, q);
          }
        });
        chips.append(b);
      }
      wrap.append(chips);
    }
    if (type === "datetime" || type === "date") {
      extra = el("p", "resolved");
      wrap.append(extra);
    }
    if (f.bind === "source" && this.pop && this.pop.preset_source) {
      extra = el("p", "mismatch");
      extra.hidden = true;
      wrap.append(extra);
    }
    if (f.bind === "price.product" || f.from === "price_list") {
      extra = el("p", "price-range");
      extra.setAttribute("aria-live", "polite");
      wrap.append(extra);
    }
    const err = el("p", "field-error");
    err.setAttribute("role", "alert");
    wrap.append(err);
    this.fields.set(key, { step, field: f, wrap, control, mark, err, extra, type });
    return wrap;
  }

  // recordKey is where the server keeps a field's answer: its bind, else STEP.FIELD.
  recordKey(key) {
    const fe = this.fields.get(key);
    if (fe) return fe.field.bind || key;
    // A question's chosen option is kept under the step's id.
    return key.endsWith(".option") ? key.slice(0, -".option".length) : key;
  }

  // valueOfBind is the page's value of the field bound to bind, or "".
  valueOfBind(bind) {
    for (const [key, fe] of this.fields) {
      if (fe.field.bind === bind && this.visible(key)) {
        const v = this.values.get(key);
        if (v) return v;
      }
    }
    return "";
  }

  visible(key) {
    const fe = this.fields.get(key);
    if (!fe || !fe.field.when) return true;
    const [other, want] = fe.field.when.split("=");
    return this.values.get(`${fe.step.id}.${other}`) === want;
  }

  // applyRecord takes what the server stored: restores the answers and the step
  // after a reload, and marks saved what it holds.
  applyRecord(record) {
    if (!record || record.call_id && record.call_id !== this.callId) return;
    this.server = record;
    const answers = record.answers || {};
    for (const key of this.keys()) {
      if (this.isPending(key)) continue;
      const rk = this.recordKey(key);
      if (Object.prototype.hasOwnProperty.call(answers, rk)) this.values.set(key, answers[rk]);
    }
    if (!this.navigated && record.step && this.steps.has(record.step)) this.current = record.step;
    this.onRecord(record);
    this.paint();
  }

  keys() {
    const out = [...this.fields.keys()];
    for (const [id, { step }] of this.steps) if (step.options && step.options.length) out.push(`${id}.option`);
    return out;
  }

  // overlayOutbox shows the values still on their way (after a reload).
  overlayOutbox() {
    for (const op of this.outbox.list(this.callId)) {
      for (const [f, v] of Object.entries(op.fields || {})) this.values.set(`${op.step}.${f}`, v);
    }
  }

  isPending(key) {
    if (this.timers.has(key)) return true;
    const dot = key.indexOf(".");
    const step = key.slice(0, dot);
    const field = key.slice(dot + 1);
    return this.outbox.list(this.callId).some((op) => op.step === step && op.fields && Object.prototype.hasOwnProperty.call(op.fields, field));
  }

  status(key) {
    if (this.errors.has(key)) return "error";
    if (this.isPending(key)) return "pending";
    const v = this.values.get(key) || "";
    const answers = (this.server && this.server.answers) || {};
    const sv = answers[this.recordKey(key)];
    if (sv !== undefined && sv === v && v !== "") return "saved";
    if (v === "" && sv !== undefined && sv !== "") return "pending";
    if (v !== "" && sv !== v) return "pending";
    const fe = this.fields.get(key);
    if (v === "" && fe && fe.field.bind === "source" && this.pop && this.pop.preset_source) return "suggested";
    return "";
  }

  // change records the operator's new value; typing waits DEBOUNCE_MS.
  change(key, value, debounce) {
    this.values.set(key, value);
    this.errors.delete(key);
    this.missing.delete(key);
    clearTimeout(this.timers.get(key));
    if (debounce) {
      this.timers.set(key, setTimeout(() => this.commit(key), DEBOUNCE_MS));
    } else {
      this.timers.delete(key);
      this.send(key);
    }
    this.paint();
  }

  // commit sends a debounced value now.
  commit(key) {
    if (!this.timers.has(key)) return;
    clearTimeout(this.timers.get(key));
    this.timers.delete(key);
    this.send(key);
    this.paint();
  }

  commitAll() {
    for (const key of [...this.timers.keys()]) this.commit(key);
  }

  send(key) {
    const dot = key.indexOf(".");
    this.push(key.slice(0, dot), { [key.slice(dot + 1)]: this.values.get(key) || "" });
  }

  push(step, fields) {
    if (!this.callId) return;
    this.outbox.push(this.callId, { op: uuid(), step, fields });
  }

  // ack is the outbox telling that an op of this call was stored.
  ack(op, record) {
    if (record && typeof record === "object" && record.answers) {
      this.server = record;
      // A preset deadline comes back resolved: show the time the server stored.
      for (const f of Object.keys(op.fields || {})) {
        const key = `${op.step}.${f}`;
        if (this.isPending(key)) continue;
        const rk = this.recordKey(key);
        if (Object.prototype.hasOwnProperty.call(record.answers, rk)) this.values.set(key, record.answers[rk]);
      }
      this.onRecord(record);
    }
    this.paint();
  }

  reject(op, status, body) {
    const reason = (body && body.error) || `HTTP ${status}`;
    const fields = Object.keys(op.fields || {});
    const named = body && typeof body.field === "string" ? body.field.replace(/^fields\./, "") : "";
    let marked = false;
    for (const f of fields) {
      const key = `${op.step}.${f}`;
      const fe = this.fields.get(key);
      if (!named || named === f || (fe && fe.field.bind === named)) {
        this.errors.set(key, reason);
        marked = true;
      }
    }
    if (!marked && fields.length) this.errors.set(`${op.step}.${fields[0]}`, reason);
    this.paint();
  }

  chooseOption(step, o) {
    this.change(`${step.id}.option`, o.id);
    const target = o.next || this.nextOf(step);
    if (target && this.steps.has(target)) this.go(target);
  }

  // go opens a step; the trail remembers where the operator came from.
  go(id, { record = true, focus = true } = {}) {
    if (!this.steps.has(id)) return;
    this.commitAll();
    if (id !== this.current) {
      if (record && this.current) this.trail.push(this.current);
      this.current = id;
      this.navigated = true;
      // The server keeps the step the operator is on, for the supervisor.
      this.push(id, {});
    }
    this.paint();
    if (focus) this.focusStep();
  }

  next() {
    const cur = this.steps.get(this.current);
    if (!cur) return;
    this.commitAll();
    const step = cur.step;
    // Moving on from the source step with the line's preset still shown confirms it.
    for (const f of step.fields || []) {
      const key = `${step.id}.${f.id}`;
      if (f.bind === "source" && !this.values.get(key) && this.pop && this.pop.preset_source) this.change(key, this.pop.preset_source);
    }
    let target = this.nextOf(step);
    if (step.options && step.options.length) {
      const chosen = step.options.find((o) => o.id === this.values.get(`${step.id}.option`));
      if (chosen) target = chosen.next || step.next;
    }
    if (target && this.steps.has(target)) this.go(target);
    else if (this.mode === "wrapup") this.closeBtn.focus();
  }

  // nextOf is the step after step: its next, or for a hand-made script without
  // resolved nexts (the loader writes them) the one written after it.
  nextOf(step) {
    if (step.next || step.kind === "wrapup" || (step.options && step.options.length)) return step.next || "";
    const steps = this.script.steps;
    const i = steps.indexOf(step);
    return i >= 0 && i + 1 < steps.length ? steps[i + 1].id : "";
  }

  back() {
    const prev = this.trail.pop();
    if (prev) this.go(prev, { record: false });
  }

  setMode(mode) {
    this.mode = mode;
    this.paint();
  }

  focusStep() {
    const cur = this.steps.get(this.current);
    if (!cur) return;
    const target = [...cur.li.querySelectorAll(".step-body button, .step-body input, .step-body textarea, .step-body select")]
      .find((n) => !n.disabled && n.offsetParent !== null);
    const pressed = target && target.closest(".choices") && target.closest(".choices").querySelector('[aria-pressed="true"]');
    const node = pressed || target || (this.nextBtn.hidden ? this.closeBtn : this.nextBtn);
    if (node && !node.hidden) node.focus({ preventScroll: true });
    this.scrollToCurrent();
  }

  scrollToCurrent() {
    const cur = this.steps.get(this.current);
    if (cur) cur.li.scrollIntoView({ block: "nearest" });
  }

  onKey(e) {
    if (e.key !== "Enter" || e.altKey || e.isComposing) return;
    const n = e.target;
    if (n.tagName === "TEXTAREA") {
      if (!(e.ctrlKey || e.metaKey)) return;
    } else if (n.tagName === "BUTTON") {
      // Enter on an option branches (its click); on a choice it moves on, as in a field.
      if (!n.classList.contains("choice") || n.classList.contains("option")) return;
    } else if (!(n.tagName === "INPUT" || n.tagName === "SELECT")) {
      return;
    }
    e.preventDefault();
    this.swallow = "Enter";
    this.next();
  }

  onDigit(e) {
    if (!this.callId || e.ctrlKey || e.metaKey || e.altKey || !/^[1-9]$/.test(e.key)) return;
    if (isTextTarget(e.target) || this.box.hidden) return;
    if (e.target.closest && e.target.closest(".promises, .history, .manager-edit")) return;
    const cur = this.steps.get(this.current);
    if (!cur) return;
    let group = e.target.closest ? e.target.closest(".step.current .choices") : null;
    if (!group) group = [...cur.li.querySelectorAll(".choices")].find((g) => g.offsetParent !== null);
    if (!group) return;
    const b = group.querySelector(`button[data-digit="${e.key}"]`);
    if (!b) return;
    e.preventDefault();
    this.swallow = e.key;
    b.focus({ preventScroll: true });
    b.click();
  }

  // known is what the placeholders may name: the caller as known and as captured,
  // the operator, the call, the price range of the picked product.
  known() {
    const contact = { ...((this.pop && this.pop.contact) || {}) };
    const bound = {};
    for (const [key, fe] of this.fields) {
      const v = this.values.get(key);
      if (fe.field.bind && v) bound[fe.field.bind] = v;
    }
    for (const [b, v] of Object.entries(bound)) if (b.startsWith("contact.")) contact[b.slice(8)] = v;
    const price = {};
    const pr = this.priceOf(bound["price.product"]);
    if (pr) {
      const lang = currentLang();
      Object.assign(price, { product: pr.product, min: formatAmount(pr.min, lang), max: formatAmount(pr.max, lang), currency: pr.currency });
    }
    const promise = { what: bound["promise.what"], due: bound["promise.due"] && !isPreset(bound["promise.due"]) ? formatWhen(bound["promise.due"], currentLang()) : "" };
    const meeting = { at: bound["meeting.at"] ? formatWhen(bound["meeting.at"], currentLang()) : "", format: bound["meeting.format"] };
    const call = this.call || {};
    return { contact, operator: this.me || {}, call, line: { name: call.line, number: call.to }, price, promise, meeting, answers: bound };
  }

  priceOf(product) {
    if (!product || !this.pop || !Array.isArray(this.pop.prices)) return null;
    return this.pop.prices.find((p) => p.product === product) || null;
  }

  refreshTexts() {
    const known = this.known();
    for (const p of this.list.querySelectorAll("[data-text]")) p.textContent = fillPlaceholders(p.dataset.text, known);
  }

  // relabel puts the page's own words in the new language (the script's words are
  // the server's).
  relabel() {
    for (const r of this.list.querySelectorAll(".req")) r.textContent = ` (${t("required")})`;
    for (const [, fe] of this.fields) {
      if (fe.type !== "datetime" && fe.type !== "date" && fe.type !== "time") continue;
      for (const chip of fe.wrap.querySelectorAll(".quick .chip")) chip.textContent = quickLabel(chip.dataset.value);
    }
    this.paint();
  }

  answered(stepId) {
    for (const [key, v] of this.values) if (v && key.startsWith(stepId + ".")) return true;
    return false;
  }

  // paint brings the DOM in line with the state.
  paint() {
    if (!this.script) return;
    this.refreshTexts();
    for (const [id, { li }] of this.steps) {
      const cur = id === this.current;
      li.classList.toggle("current", cur);
      // Done: the operator went through it, or it holds answers (after a reload).
      li.classList.toggle("done", !cur && (this.trail.includes(id) || this.answered(id)));
      li.setAttribute("aria-current", cur ? "step" : "false");
    }
    for (const [key, fe] of this.fields) this.paintField(key, fe);
    for (const [id, { li, step }] of this.steps) {
      if (!step.options || !step.options.length) continue;
      const v = this.values.get(`${id}.option`);
      for (const b of li.querySelectorAll(".options .option")) b.setAttribute("aria-pressed", String(b.dataset.value === v));
    }
    const cur = this.steps.get(this.current);
    const step = cur && cur.step;
    const branches = step && step.options && step.options.length;
    const hasNext = !!(step && (this.nextOf(step) || (branches && step.options.some((o) => o.next))));
    show(this.nextBtn, hasNext);
    this.backBtn.disabled = this.trail.length === 0;
    show(this.closeBtn, this.mode === "wrapup");
    this.box.dataset.mode = this.mode;
  }

  paintField(key, fe) {
    const v = this.values.get(key) || "";
    const vis = this.visible(key);
    fe.wrap.hidden = !vis;
    const st = this.status(key);
    fe.mark.dataset.save = st;
    const label = st === "saved" ? t("saved") : st === "pending" ? t("unsaved") : st === "error" ? t("saveError") : st === "suggested" ? t("presetSuggested") : "";
    fe.mark.title = label;
    if (label) {
      fe.mark.setAttribute("aria-label", label);
      fe.mark.removeAttribute("aria-hidden");
    } else {
      fe.mark.removeAttribute("aria-label");
      fe.mark.setAttribute("aria-hidden", "true");
    }
    fe.wrap.dataset.save = st;
    fe.wrap.classList.toggle("missing", this.missing.has(key));
    fe.err.textContent = this.errors.get(key) || (this.missing.has(key) ? t("neededToClose") : "");
    const c = fe.control;
    const focused = document.activeElement === c;
    if (c.classList.contains("choices")) {
      const preset = fe.field.bind === "source" && this.pop ? this.pop.preset_source : "";
      for (const b of c.querySelectorAll("button")) {
        const on = v ? b.dataset.value === v : (!!preset && b.dataset.value === preset);
        b.setAttribute("aria-pressed", String(on));
        b.classList.toggle("suggested", !v && on);
      }
    } else if (c.type === "checkbox") {
      c.checked = v === "true";
    } else if (c.type === "datetime-local") {
      if (!focused) c.value = v && !isPreset(v) ? localInput(v) : "";
    } else if (!focused || !this.timers.has(key)) {
      if (c.value !== v) c.value = v;
    }
    for (const chip of fe.wrap.querySelectorAll(".quick .chip")) chip.setAttribute("aria-pressed", String(chip.dataset.value === v));
    if (fe.extra && fe.extra.classList.contains("resolved")) {
      fe.extra.textContent = v && !isPreset(v) && fe.type === "datetime" ? `${t("dueResolved")}: ${formatWhen(v, currentLang())}` : v && isPreset(v) ? `${quickLabel(v)} …` : "";
    }
    if (fe.extra && fe.extra.classList.contains("mismatch")) {
      const preset = this.pop.preset_source;
      const mism = !!v && v !== preset;
      fe.extra.hidden = !mism;
      fe.wrap.dataset.mismatch = String(mism);
      if (mism) {
        const opt = fieldOptions(fe.field, this.pop).find((o) => o.id === preset);
        fe.extra.textContent = `⚠ ${t("sourceMismatch")}: ${opt ? opt.label : preset}`;
      }
    }
    if (fe.extra && fe.extra.classList.contains("price-range")) {
      const pr = this.priceOf(v);
      if (pr) {
        const lang = currentLang();
        fe.extra.replaceChildren(el("span", "range", `${formatAmount(pr.min, lang)} – ${formatAmount(pr.max, lang)} ${pr.currency}`));
        const noted = this.server && this.server.range && this.server.range.product === v;
        fe.extra.append(el("span", "range-note", noted ? t("rangeGiven") : t("rangeOnly")));
        fe.extra.dataset.noted = String(!!noted);
      } else {
        fe.extra.replaceChildren();
        fe.extra.textContent = v ? "" : t("pickProduct");
      }
    }
  }

  // closeCall sends the wrap-up once every answer is stored.
  async closeCall() {
    if (!this.callId || this.closing) return;
    this.closing = true;
    this.closeBtn.disabled = true;
    try {
      this.commitAll();
      await this.outbox.flush();
      if (this.outbox.list(this.callId).length) {
        this.say(t("unsavedAnswers"), "error");
        return;
      }
      const body = {};
      for (const [k, bind] of Object.entries(WRAPUP_BINDS)) body[k] = this.valueOfBind(bind);
      let r;
      try { r = await api("POST", `/api/calls/${encodeURIComponent(this.callId)}/wrapup`, body); } catch { r = { status: 0 }; }
      if (r.status === 200) {
        this.say("", "");
        this.onClosed(this.callId, r.data);
      } else if (r.status === 422 && r.data && Array.isArray(r.data.missing)) {
        this.showMissing(r.data.missing);
      } else {
        this.say(`${t("wrapupFailed")}: ${(r.data && r.data.error) || (r.status ? "HTTP " + r.status : t("offline"))}`, "error");
      }
    } finally {
      this.closing = false;
      this.closeBtn.disabled = false;
    }
  }

  // showMissing highlights the fields bound to the items the server asked for and
  // takes the operator to the first.
  showMissing(items) {
    this.missing.clear();
    const names = [];
    let first = null;
    for (const item of items) {
      let found = false;
      for (const [key, fe] of this.fields) {
        if (fe.field.bind !== item) continue;
        this.missing.add(key);
        if (!found) names.push(fe.field.label || item);
        found = true;
        if (!first) first = key;
      }
      if (!found) names.push(t("b_" + item) !== "b_" + item ? t("b_" + item) : item);
    }
    this.say(`${t("missingItems")} ${names.join(", ")}`, "error");
    this.paint();
    if (first) {
      const fe = this.fields.get(first);
      this.go(fe.step.id, { focus: false });
      const c = fe.control.classList.contains("choices") ? fe.control.querySelector("button") : fe.control;
      if (c) c.focus({ preventScroll: true });
      fe.wrap.scrollIntoView({ block: "nearest" });
    }
  }

  say(text, kind) {
    this.msgEl.textContent = text;
    this.msgEl.dataset.kind = kind || "";
  }
}
