// The operator's open promises, always on screen: sorted by deadline, each with a
// live countdown (red once overdue) and a "kept" button that asks for the result.
// The list starts from the snapshot and follows promise.updated / promise.overdue.
// A promise with a phone has "call back": the desk rings the operator's phone and,
// when he answers, dials the customer (media mode); the row says so, or why not.
import { t, currentLang } from "./i18n.js";
import { el, show, api, hhmmss, formatNumber, formatWhen } from "./common.js";

export class PromisePanel {
  constructor({ list, count, empty, me }) {
    Object.assign(this, { list, count, empty, me });
    this.items = new Map(); // id -> promise
    this.rows = new Map();  // id -> {li, cd}
    this.editing = null;    // id whose "kept" form is open
    this.dialing = new Map(); // id -> {state: "pending"|"calling"|"error"|"ended", text, at} of a callback asked for
    setInterval(() => this.tick(), 1000);
  }

  setAll(promises) {
    this.items.clear();
    for (const p of promises || []) if (p && p.id && p.state !== "kept") this.items.set(p.id, p);
    this.render();
  }

  upsert(p) {
    if (!p || !p.id) return;
    if (p.state === "kept") { this.items.delete(p.id); this.dialing.delete(p.id); }
    else this.items.set(p.id, { ...this.items.get(p.id), ...p });
    this.render();
  }

  sorted() {
    return [...this.items.values()].sort((a, b) => (Date.parse(a.due) || 0) - (Date.parse(b.due) || 0));
  }

  render() {
    const list = this.sorted();
    this.count.textContent = list.length ? String(list.length) : "";
    show(this.empty, list.length === 0);
    // Keep the row being edited so its input does not lose what is typed.
    const keep = this.editing && this.rows.get(this.editing);
    this.rows.clear();
    const lis = [];
    for (const p of list) {
      if (keep && p.id === this.editing) {
        this.rows.set(p.id, keep);
        lis.push(keep.li);
        continue;
      }
      const li = el("li", "promise");
      li.dataset.id = p.id;
      const what = el("span", "p-what", p.what || (p.kind === "callback" ? t("callBack") : t("promise")));
      const who = el("span", "p-who", formatNumber(p.phone || ""));
      const due = el("span", "p-due", formatWhen(p.due, currentLang()));
      const cd = el("span", "countdown");
      const kept = el("button", "kept", t("kept"));
      kept.type = "button";
      kept.addEventListener("click", () => this.openKept(p.id));
      li.append(what, who, due, cd);
      let msg = null;
      if (p.phone) {
        const d = this.dialing.get(p.id);
        const call = el("button", "callback", `☎ ${t("callBackNow")}`);
        call.type = "button";
        call.title = `${t("callBackNow")} ${formatNumber(p.phone)}`;
        call.disabled = !!d && d.state !== "error";
        call.addEventListener("click", () => this.callBack(p.id));
        msg = el("span", "callback-msg");
        msg.setAttribute("role", "status");
        li.append(call);
      }
      li.append(kept);
      if (msg) li.append(msg);
      this.rows.set(p.id, { li, cd, msg });
      lis.push(li);
    }
    this.list.replaceChildren(...lis);
    this.tick();
  }

  tick() {
    const now = Date.now();
    // "calling your phone" is shown for a while; the promise is kept when the
    // customer answers, and leaves the list then.
    for (const [id, d] of this.dialing) {
      if (d.state !== "pending" && now - d.at > 90000) this.dialing.delete(id);
    }
    for (const [id, { li, cd, msg }] of this.rows) {
      if (msg) {
        const d = this.dialing.get(id);
        const busy = !!d && (d.state === "pending" || d.state === "calling");
        const text = !d ? "" : d.state === "pending" ? "…" : d.state === "calling" ? t("callBackCalling") : d.text;
        if (msg.textContent !== text) msg.textContent = text;
        msg.dataset.state = d ? d.state : "";
        const b = li.querySelector("button.callback");
        if (b) b.disabled = busy;
      }
      const p = this.items.get(id);
      const due = Date.parse(p && p.due);
      if (!due) { cd.textContent = ""; continue; }
      const over = now > due;
      li.classList.toggle("overdue", over);
      cd.textContent = over ? `${t("overdue")} ${hhmmss(now - due)}` : hhmmss(due - now);
    }
  }

  // dialEnded says how a callback of promise id ended without keeping it (the
  // customer busy, his phone not answered), and lets the operator try again.
  dialEnded(id, text) {
    if (!id) return;
    this.dialing.set(id, { state: "ended", text, at: Date.now() });
    this.tick();
  }

  // callBack asks the desk to ring this operator's phone and then the customer.
  async callBack(id) {
    const d = this.dialing.get(id);
    if (d && (d.state === "pending" || d.state === "calling")) return;
    this.dialing.set(id, { state: "pending", at: Date.now() });
    this.tick();
    let r;
    try { r = await api("POST", `/api/promises/${encodeURIComponent(id)}/callback`, {}); } catch { r = { status: 0 }; }
    if (r.ok) this.dialing.set(id, { state: "calling", at: Date.now() });
    else this.dialing.set(id, { state: "error", text: (r.data && r.data.error) || (r.status ? t("callBackFailed") : t("offline")), at: Date.now() });
    this.tick();
  }

  openKept(id) {
    const row = this.rows.get(id);
    if (!row || row.li.querySelector(".kept-form")) return;
    this.editing = id;
    const form = el("form", "kept-form");
    const input = el("input", "kept-result");
    input.placeholder = t("keptResult");
    input.setAttribute("aria-label", t("keptResult"));
    const ok = el("button", "", t("save"));
    ok.type = "submit";
    const cancel = el("button", "link", t("cancel"));
    cancel.type = "button";
    const err = el("span", "error");
    form.append(input, ok, cancel, err);
    cancel.addEventListener("click", () => { this.editing = null; this.render(); });
    form.addEventListener("keydown", (e) => { if (e.key === "Escape") cancel.click(); });
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      ok.disabled = true;
      let r;
      try { r = await api("POST", `/api/promises/${encodeURIComponent(id)}/kept`, { result: input.value.trim() }); } catch { r = { status: 0 }; }
      ok.disabled = false;
      if (r.ok) {
        this.editing = null;
        this.items.delete(id);
        this.render();
      } else {
        err.textContent = (r.data && r.data.error) || t("offline");
      }
    });
    row.li.append(form);
    input.focus();
  }
}
