// Whispers on the operator page: a supervisor's message pinned on top of the desk
// until the operator presses OK. A whisper not acknowledged survives a reload: it
// comes back from the snapshot ("whispers") or from GET /api/whispers.
import { t, currentLang } from "./i18n.js";
import { el, show, api } from "./common.js";

export class WhisperPins {
  constructor({ box, list, me }) {
    this.box = box;
    this.list = list;
    this.me = me;
    this.pins = new Map(); // id -> whisper, unacknowledged
    this.errors = new Map(); // id -> why the OK failed
    this.loaded = false;
  }

  // fromSnapshot takes the unacknowledged whispers a snapshot carries; without
  // them it asks the API once.
  fromSnapshot(f) {
    if (Array.isArray(f.whispers)) {
      this.pins.clear();
      for (const w of f.whispers) this.put(w);
      this.loaded = true;
      this.render();
      return;
    }
    if (this.loaded) return;
    this.loaded = true;
    const q = `operator=${encodeURIComponent(this.me.login)}&unacked=1`;
    api("GET", `/api/whispers?${q}`).then((r) => {
      if (r.ok && Array.isArray(r.data)) { for (const w of r.data) this.put(w); this.render(); }
    }).catch(() => {});
  }

  put(w) {
    if (!w || !w.id || (w.operator && w.operator !== this.me.login)) return;
    if (w.acked_at) this.pins.delete(w.id);
    else this.pins.set(w.id, w);
  }

  // onFrame handles whisper and whisper.ack frames.
  onFrame(f) {
    if (!f.whisper) return;
    this.put(f.whisper);
    this.render();
  }

  async ack(id) {
    let r;
    try { r = await api("POST", `/api/whispers/${encodeURIComponent(id)}/ack`); } catch { r = { status: 0 }; }
    if (r.ok || r.status === 404) {
      this.pins.delete(id);
      this.errors.delete(id);
    } else {
      this.errors.set(id, (r.data && r.data.error) || t("offline"));
    }
    this.render();
  }

  render() {
    const list = [...this.pins.values()].sort((a, b) => String(a.at).localeCompare(String(b.at)));
    this.list.replaceChildren();
    for (const w of list) {
      const li = el("li", "whisper-pin");
      li.dataset.id = w.id;
      const head = el("div", "whisper-head");
      const when = new Date(w.at);
      const hm = isNaN(when) ? "" : when.toLocaleTimeString(currentLang() === "ru" ? "ru-RU" : "en-GB", { hour: "2-digit", minute: "2-digit" });
      head.append(el("span", "whisper-by", `${t("whisperFrom")} ${w.by_name || w.by || ""}`), el("span", "whisper-at", hm));
      const text = el("p", "whisper-text", w.text);
      const ok = el("button", "whisper-ok primary", t("whisperOk"));
      ok.type = "button";
      ok.addEventListener("click", () => { ok.disabled = true; this.ack(w.id); });
      li.append(head, text, ok);
      if (this.errors.has(w.id)) li.append(el("span", "error", this.errors.get(w.id)));
      this.list.append(li);
    }
    show(this.box, list.length > 0);
  }
}
