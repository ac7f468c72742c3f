// A live subscription over Server-Sent Events, read with fetch() so that it can
// send `Authorization: Bearer` (EventSource cannot), kept as a client-side table
// keyed by the view's key columns. Reconnects by itself with its last cursor.

const BACKOFF_MS = [500, 1000, 2000, 4000, 8000];

export class LiveTable {
  // view: "va_site_hourly"; keys: its key columns; params: {where, columns, ...}
  constructor(view, keys, params, { token, onChange, onStatus, onAuth }) {
    this.view = view;
    this.keys = keys;
    this.params = params;
    this.token = token; // () => current bearer token or null
    this.onChange = onChange;
    this.onStatus = onStatus;
    this.onAuth = onAuth;
    this.rows = new Map();
    this.cursor = null; // null until a whole snapshot arrived: then resume from it
    this.inSnapshot = false;
    this.snapshots = 0; // tables started afresh: a resume that kept its cursor starts none
    this.failures = 0;
    this.closed = false;
    this.abort = null;
    this.status = "connecting";
    this.run();
  }

  close() {
    this.closed = true;
    if (this.abort) this.abort.abort();
  }

  url() {
    const query = new URLSearchParams();
    for (const [name, value] of Object.entries(this.params)) {
      if (value === undefined || value === null) continue;
      query.set(name, typeof value === "string" ? value : JSON.stringify(value));
    }
    if (this.cursor !== null) query.set("cursor", String(this.cursor));
    return `/api/live/${encodeURIComponent(this.view)}?${query}`;
  }

  setStatus(status) {
    if (this.status === status) return;
    this.status = status;
    this.onStatus?.(this);
  }

  async run() {
    while (!this.closed) {
      try {
        await this.readOnce();
      } catch (error) {
        if (this.closed) return;
        if (error.auth) {
          this.setStatus("login");
          this.onAuth?.();
          return; // restarted by the page after a login
        }
      }
      if (this.closed) return;
      this.setStatus("reconnecting");
      const wait = BACKOFF_MS[Math.min(this.failures, BACKOFF_MS.length - 1)];
      this.failures += 1;
      await new Promise((resolve) => setTimeout(resolve, wait * (0.75 + Math.random() / 2)));
    }
  }

  async readOnce() {
    this.abort = new AbortController();
    const headers = { Accept: "text/event-stream" };
    const token = this.token?.();
    if (token) headers.Authorization = `Bearer ${token}`;
    const response = await fetch(this.url(), { headers, signal: this.abort.signal, cache: "no-store" });
    if (response.status === 401) throw Object.assign(new Error("login needed"), { auth: true });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) throw new Error("stream ended");
      buffer += value.replace(/\r\n?/g, "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        this.dispatch(parseEvent(buffer.slice(0, end)));
        buffer = buffer.slice(end + 2);
      }
    }
  }

  dispatch({ event, id, data }) {
    if (!data) return;
    const message = JSON.parse(data);
    const kind = message.type || event;
    const rows = message.rows || [];
    switch (kind) {
      case "snapshot":
        if (!this.inSnapshot) {
          this.rows.clear(); // a new table begins at the first snapshot
          this.snapshots += 1;
        }
        this.inSnapshot = true;
        this.cursor = null; // not resumable until snapshot_end
        this.upsert(rows);
        break;
      case "snapshot_end":
        this.inSnapshot = false;
        this.acknowledge(id);
        this.changed();
        break;
      case "update":
      case "upsert":
        this.inSnapshot = false;
        this.upsert(rows);
        this.acknowledge(id);
        this.changed();
        break;
      case "remove":
        this.inSnapshot = false;
        // Removes carry the key columns of each row that left (as rows, or as `keys`).
        for (const row of message.keys || rows) this.rows.delete(this.keyOf(row));
        this.acknowledge(id);
        this.changed();
        break;
      case "resync":
        this.inSnapshot = false;
        this.cursor = null; // a fresh snapshot follows on this stream
        break;
      case "heartbeat":
        this.acknowledge(id);
        this.live();
        break;
      case "error":
        // Retired (too slow, server stopping): resume from the cursor it gives, if any.
        if (message.cursor !== undefined && message.cursor !== null && !this.inSnapshot) {
          this.cursor = message.cursor;
        }
        throw new Error(message.reason || "subscription ended");
      default:
        break; // a kind this page does not know yet
    }
  }

  acknowledge(id) {
    if (id !== undefined && id !== "") this.cursor = Number(id);
    this.live();
  }

  live() {
    if (this.inSnapshot) return;
    this.failures = 0;
    this.setStatus("live");
  }

  upsert(rows) {
    for (const row of rows) this.rows.set(this.keyOf(row), row);
  }

  keyOf(row) {
    return JSON.stringify(this.keys.map((k) => row[k] ?? null));
  }

  changed() {
    this.onChange?.(this);
  }

  values() {
    return [...this.rows.values()];
  }
}

export function parseEvent(block) {
  const event = { event: "message", id: undefined, data: "" };
  const data = [];
  for (const line of block.split("\n")) {
    if (!line || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") event.event = value;
    else if (field === "id") event.id = value;
    else if (field === "data") data.push(value);
  }
  event.data = data.join("\n");
  return event;
}
