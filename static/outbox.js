// The outbox of answer operations. Every change the operator makes is an op with
// an id made here; the op sits in localStorage (one list per call) until the server
// acknowledges it with 200, so a reload, a dropped connection, a desk restart or a
// Redis blip loses nothing: the server applies an op id once, so resending is safe.
// Ops of a call are sent one at a time, in order, so a later value is never
// overwritten by an earlier one that was retried.
import { api, store } from "./common.js";

const PREFIX = "desk.outbox.";

// retryable says whether a failed send should be tried again: the network, the
// server's own trouble, a timeout or a throttle, and a lost session (the operator
// logs in again and the answers go then). Other 4xx answers will never be accepted.
export function retryable(status) {
  return status === 0 || status === 401 || status === 408 || status === 429 || status >= 500;
}

export class Outbox {
  // onAck(callId, op, record) after a 200; onReject(callId, op, status, body) when
  // the server refused it for good; onChange() whenever the lists change.
  constructor({ onAck, onReject, onChange, send } = {}) {
    this.onAck = onAck || (() => {});
    this.onReject = onReject || (() => {});
    this.onChange = onChange || (() => {});
    this.send = send || ((callId, op) => api("PUT", `/api/calls/${encodeURIComponent(callId)}/answers`, op));
    this.mem = new Map();   // callId -> ops, when storage is unavailable
    this.running = false;
    this.again = false;
    this.attempt = 0;
    this.timer = null;
    this.inflight = null;   // op id being sent
  }

  list(callId) {
    const saved = store.get(PREFIX + callId);
    if (Array.isArray(saved)) return saved;
    return this.mem.get(callId) || [];
  }

  save(callId, ops) {
    if (ops.length === 0) {
      store.del(PREFIX + callId);
      this.mem.delete(callId);
    } else if (!store.set(PREFIX + callId, ops)) {
      this.mem.set(callId, ops);
    }
    this.onChange();
  }

  calls() {
    const ids = new Set(this.mem.keys());
    for (const k of store.keys(PREFIX)) ids.add(k.slice(PREFIX.length));
    return [...ids].filter((id) => this.list(id).length > 0);
  }

  // push queues an op for callId and starts sending.
  push(callId, op) {
    this.save(callId, [...this.list(callId), op]);
    this.flush();
  }

  pending() { return this.calls().reduce((n, id) => n + this.list(id).length, 0); }

  // drop forgets the ops of a call (after its wrap-up closed).
  drop(callId) { this.save(callId, []); }

  // flush sends what is queued, now; failures retry with backoff.
  async flush() {
    if (this.running) { this.again = true; return; }
    clearTimeout(this.timer);
    this.timer = null;
    this.running = true;
    let failed = false;
    try {
      do {
        this.again = false;
        for (const callId of this.calls()) {
          if (!(await this.drain(callId))) { failed = true; break; }
        }
      } while (this.again && !failed);
    } finally {
      this.running = false;
    }
    if (failed) this.schedule();
    else this.attempt = 0;
  }

  // drain sends a call's ops in order; false when one must be retried later.
  async drain(callId) {
    for (;;) {
      const op = this.list(callId)[0];
      if (!op) return true;
      this.inflight = op.op;
      let r;
      try { r = await this.send(callId, op); } catch { r = { status: 0, data: null }; }
      this.inflight = null;
      if (r.status === 200) {
        this.remove(callId, op.op);
        this.attempt = 0;
        this.onAck(callId, op, r.data);
      } else if (retryable(r.status)) {
        return false;
      } else {
        this.remove(callId, op.op);
        this.onReject(callId, op, r.status, r.data);
      }
    }
  }

  remove(callId, opId) {
    this.save(callId, this.list(callId).filter((o) => o.op !== opId));
  }

  schedule() {
    this.attempt++;
    const base = Math.min(30000, 1000 * 2 ** Math.min(this.attempt - 1, 5));
    const delay = base / 2 + Math.random() * base / 2;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.flush(), delay);
  }
}
