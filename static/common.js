// Shared by the operator and supervisor pages: the API calls, the login form,
// the resumable event feed and small DOM helpers. External text only ever goes
// into the page through textContent.
import { t } from "./i18n.js";

export async function api(method, path, body) {
  const opts = { method, headers: {}, credentials: "same-origin" };
  if (method !== "GET") {
    // The server's CSRF check wants JSON on every state-changing request.
    opts.headers["Content-Type"] = "application/json";
    if (body !== undefined) opts.body = JSON.stringify(body);
  }
  const res = await fetch(path, opts);
  let data = null;
  const text = await res.text();
  if (text) {
    try { data = JSON.parse(text); } catch { data = null; }
  }
  return { status: res.status, ok: res.ok, data };
}

export function $(id) { return document.getElementById(id); }

export function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}

export function show(node, on) { node.hidden = !on; }

// formatNumber renders an E.164 number for reading: +7 916 000-00-01.
export function formatNumber(n) {
  if (typeof n !== "string") return "";
  const m = /^\+7(\d{3})(\d{3})(\d{2})(\d{2})$/.exec(n);
  if (m) return `+7 ${m[1]} ${m[2]}-${m[3]}-${m[4]}`;
  if (/^\+\d{8,15}$/.test(n)) {
    const d = n.slice(1);
    return "+" + d.replace(/(\d{1,3})(\d{3})(\d{3})(\d*)/, (_, a, b, c, rest) => [a, b, c, rest].filter(Boolean).join(" "));
  }
  return n;
}

export function mmss(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  const m = Math.floor(s / 60);
  const h = Math.floor(m / 60);
  const pad = (x) => String(x).padStart(2, "0");
  return h > 0 ? `${h}:${pad(m % 60)}:${pad(s % 60)}` : `${pad(m)}:${pad(s % 60)}`;
}

// loginFlow shows the form until a session exists, then calls onUser(user).
export async function loginFlow(onUser) {
  const form = $("login-form");
  const err = $("login-error");
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    err.textContent = "";
    const body = { login: form.elements.login.value.trim(), password: form.elements.password.value };
    let r;
    try { r = await api("POST", "/api/session", body); } catch { r = { status: 0 }; }
    if (r.ok) {
      form.reset();
      show($("login"), false);
      onUser(r.data);
    } else {
      err.textContent = r.status === 401 ? t("wrongLogin") : t("loginFailed");
    }
  });
  let r;
  try { r = await api("GET", "/api/session"); } catch { r = { status: 0 }; }
  if (r.ok) {
    onUser(r.data);
  } else {
    show($("login"), true);
    form.elements.login.focus();
  }
}

export async function logout() {
  try { await api("DELETE", "/api/session"); } catch { /* the reload shows the form anyway */ }
  location.reload();
}

// Feed is the websocket to /ws. It remembers the last seq and the epoch, and after
// a drop reconnects with them (exponential backoff with jitter), so the server can
// replay what was missed or send a fresh snapshot.
export class Feed {
  constructor({ onFrame, onState, onLoggedOut }) {
    this.onFrame = onFrame;
    this.onState = onState;
    this.onLoggedOut = onLoggedOut;
    this.seq = null;
    this.epoch = null;
    this.attempt = 0;
    this.stopped = false;
    this.ws = null;
  }

  start() { this.connect(); }

  stop() {
    this.stopped = true;
    if (this.ws) this.ws.close();
  }

  send(obj) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify(obj));
      return true;
    }
    return false;
  }

  connect() {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    let url = `${proto}//${location.host}/ws`;
    if (this.epoch !== null && this.seq !== null) {
      url += `?since=${encodeURIComponent(this.seq)}&epoch=${encodeURIComponent(this.epoch)}`;
    }
    this.onState(this.attempt === 0 ? "connecting" : "reconnecting");
    const ws = new WebSocket(url);
    this.ws = ws;
    ws.onopen = () => {
      this.attempt = 0;
      this.onState("connected");
    };
    ws.onmessage = (ev) => {
      let f;
      try { f = JSON.parse(ev.data); } catch { return; }
      if (!f || typeof f !== "object") return;
      if (f.type === "snapshot") {
        this.epoch = f.epoch;
      }
      if (typeof f.seq === "number") this.seq = f.seq;
      this.onFrame(f);
    };
    ws.onclose = () => {
      if (this.ws !== ws || this.stopped) return;
      this.onState("reconnecting");
      this.retry();
    };
  }

  async retry() {
    this.attempt++;
    // A drop may mean the session ended: then show the login again.
    if (this.attempt > 1) {
      try {
        const r = await api("GET", "/api/session");
        if (r.status === 401) {
          this.stopped = true;
          this.onLoggedOut();
          return;
        }
      } catch { /* network down: keep trying */ }
    }
    const base = Math.min(30000, 500 * 2 ** Math.min(this.attempt - 1, 6));
    const delay = base / 2 + Math.random() * base / 2;
    setTimeout(() => { if (!this.stopped) this.connect(); }, delay);
  }
}

// uuid returns a random RFC 4122 version 4 id for an answer operation. Outside a
// secure context (plain http on a LAN address) crypto.randomUUID is missing, but
// getRandomValues is there.
export function uuid() {
  if (globalThis.crypto && typeof crypto.randomUUID === "function") return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

// hhmmss renders a duration as 01:02:03 (hours always shown: countdowns).
export function hhmmss(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  const pad = (x) => String(x).padStart(2, "0");
  return `${pad(Math.floor(s / 3600))}:${pad(Math.floor(s / 60) % 60)}:${pad(s % 60)}`;
}

// formatAmount writes 150000 as "150 000" (with the language's group separator).
export function formatAmount(n, lang) {
  if (typeof n !== "number" || !isFinite(n)) return "";
  return new Intl.NumberFormat(lang === "ru" ? "ru-RU" : "en-US", { maximumFractionDigits: 2 }).format(n);
}

// formatWhen renders an RFC 3339 time in the browser's zone: "12.05 14:30".
export function formatWhen(iso, lang) {
  const d = new Date(iso);
  if (isNaN(d)) return "";
  return d.toLocaleString(lang === "ru" ? "ru-RU" : "en-GB", { day: "2-digit", month: "2-digit", hour: "2-digit", minute: "2-digit" });
}

// localInput turns an RFC 3339 time into a datetime-local value in the browser's zone.
export function localInput(iso) {
  const d = new Date(iso);
  if (isNaN(d)) return "";
  const pad = (x) => String(x).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

// store wraps localStorage: a full or forbidden storage must not break the page,
// it only loses the reload-safety.
export const store = {
  get(key) {
    try { const v = localStorage.getItem(key); return v === null ? null : JSON.parse(v); } catch { return null; }
  },
  set(key, v) {
    try { localStorage.setItem(key, JSON.stringify(v)); return true; } catch { return false; }
  },
  del(key) {
    try { localStorage.removeItem(key); } catch { /* nothing to do */ }
  },
  keys(prefix) {
    const out = [];
    try {
      for (let i = 0; i < localStorage.length; i++) {
        const k = localStorage.key(i);
        if (k && k.startsWith(prefix)) out.push(k);
      }
    } catch { /* no storage */ }
    return out;
  },
};
