// The live feed client: websocket /api/v1/ws with snapshot + events, resume by seq,
// reconnect with backoff. It keeps the orders map; views subscribe to changes.

const MIN_BACKOFF = 250;
const MAX_BACKOFF = 5000;
const OPEN_TIMEOUT = 2000;
// Once the server is seen to send application pings, silence this long means the link is dead
// (a pulled cable closes nothing; only traffic can tell).
const SILENCE_TIMEOUT = 2000;

/** Which of two states of one order is newer: by version, then by updatedAt. */
export function compareOrders(a, b) {
  const version = (a.version || 0) - (b.version || 0);
  if (version) return version;
  return (Date.parse(a.updatedAt) || 0) - (Date.parse(b.updatedAt) || 0);
}

export class Feed {
  /** endpoint: station name or null for every order. */
  constructor(endpoint) {
    this.endpoint = endpoint;
    this.orders = new Map();
    this.printers = new Map();
    this.sourceAlerts = []; // POS problems for staff (see views/sourcealerts.js)
    this.seq = null;
    this.connected = false;
    this.listeners = new Set();
    this.connectionListeners = new Set();
    this._ws = null;
    this._backoff = MIN_BACKOFF;
    this._retry = null;
    this._openTimer = null;
    this._silenceTimer = null;
    this._serverPings = false;
    this._stopped = false;
  }

  /** listener(kind, detail): kind is "snapshot" | "created" | "updated" | "removed" | "printer" | "sourceAlerts". */
  onChange(listener) {
    this.listeners.add(listener);
  }

  /** listener(connected: boolean). */
  onConnection(listener) {
    this.connectionListeners.add(listener);
  }

  url() {
    const params = new URLSearchParams();
    if (this.endpoint) params.set("endpoint", this.endpoint);
    if (this.seq !== null) params.set("since", String(this.seq));
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    return `${scheme}//${location.host}/api/v1/ws?${params}`;
  }

  start() {
    this._stopped = false;
    this._connect();
    addEventListener("offline", () => this._ws && this._ws.close());
    addEventListener("online", () => this._reconnectNow());
  }

  stop() {
    this._stopped = true;
    clearTimeout(this._retry);
    if (this._ws) this._ws.close(1000);
  }

  _connect() {
    this._pending = null; // a half-received snapshot of an old connection is worthless
    clearTimeout(this._retry);
    let ws;
    try {
      ws = new WebSocket(this.url());
    } catch (err) {
      this._scheduleReconnect();
      return;
    }
    this._ws = ws;
    this._serverPings = false;
    // A daemon that does not answer soon counts as gone, not only one that refuses.
    this._openTimer = setTimeout(() => {
      this._drop(ws);
      ws.close();
    }, OPEN_TIMEOUT);
    ws.onopen = () => {
      clearTimeout(this._openTimer);
      this._backoff = MIN_BACKOFF;
      this._setConnected(true);
    };
    ws.onmessage = (msg) => {
      if (ws !== this._ws) return;
      this._armSilence(ws);
      let data;
      try {
        data = JSON.parse(msg.data);
      } catch (err) {
        console.warn("kds: bad message", err);
        return;
      }
      this._handle(data);
    };
    ws.onclose = () => this._drop(ws);
    ws.onerror = () => {
      // onclose follows and handles it.
    };
  }

  _armSilence(ws) {
    if (!this._serverPings) return;
    clearTimeout(this._silenceTimer);
    this._silenceTimer = setTimeout(() => {
      // Do not wait for a close handshake on a dead link: give up on it now.
      this._drop(ws);
      ws.close(4000, "no traffic");
    }, SILENCE_TIMEOUT);
  }

  /** The socket is gone (closed, or silent too long): say so and try again. */
  _drop(ws) {
    clearTimeout(this._openTimer);
    clearTimeout(this._silenceTimer);
    if (ws !== this._ws) return;
    this._ws = null;
    this._setConnected(false);
    if (!this._stopped) this._scheduleReconnect();
  }

  _reconnectNow() {
    if (this._ws) return;
    this._backoff = MIN_BACKOFF;
    this._connect();
  }

  _scheduleReconnect() {
    const delay = this._backoff * (0.75 + Math.random() * 0.5);
    this._backoff = Math.min(this._backoff * 2, MAX_BACKOFF);
    this._retry = setTimeout(() => this._connect(), delay);
  }

  _setConnected(value) {
    if (this.connected === value && value) return;
    this.connected = value;
    for (const listener of this.connectionListeners) listener(value);
  }

  _emit(kind, detail) {
    for (const listener of this.listeners) {
      try {
        listener(kind, detail);
      } catch (err) {
        console.error("kds: view failed", err);
      }
    }
  }

  /** Replace the state with a complete snapshot. */
  _applySnapshot(snapshot) {
    const first = this.seq === null;
    const before = new Set(this.orders.keys());
    this.orders.clear();
    for (const order of snapshot.orders) this.orders.set(order.id, order);
    // Orders that arrived while we were away: views chime for them like for live ones.
    const added = first ? [] : [...this.orders.values()].filter((o) => !before.has(o.id));
    this.printers.clear();
    for (const printer of snapshot.printers) this.printers.set(printer.endpoint, printer);
    this.sourceAlerts = snapshot.sourceAlerts || [];
    this.seq = snapshot.seq;
    this._emit("snapshot", { added });
  }

  /** Apply one message; events at or below the last seq are duplicates and ignored. */
  _handle(msg) {
    if (msg.type === "ping") {
      this._serverPings = true;
      if (this._ws) this._armSilence(this._ws);
      return;
    }
    if (msg.type === "snapshot" || msg.type === "snapshot.more") {
      // A snapshot comes in pages ("snapshot", then "snapshot.more" until more is false);
      // it replaces the state only once every page is in.
      if (msg.type === "snapshot") {
        this._pending = { seq: msg.seq, printers: msg.printers || [], sourceAlerts: msg.sourceAlerts || [], orders: [] };
      }
      if (!this._pending || this._pending.seq !== msg.seq) return;
      for (const order of msg.orders || []) this._pending.orders.push(order);
      if (msg.more) return;
      this._applySnapshot(this._pending);
      this._pending = null;
      return;
    }
    if (typeof msg.seq === "number") {
      if (this.seq !== null && msg.seq <= this.seq) return;
      this.seq = msg.seq;
    }
    switch (msg.type) {
      case "order.created":
      case "order.updated": {
        const order = msg.order;
        const known = this.orders.get(order.id);
        // Never go back to an older state of an order (an HTTP answer may have overtaken it).
        if (known && compareOrders(order, known) < 0) return;
        const isNew = !known;
        this.orders.set(order.id, order);
        this._emit(isNew ? "created" : "updated", { order, changes: msg.changes || [], event: msg.type });
        break;
      }
      case "order.removed":
        if (this.orders.delete(msg.orderId)) this._emit("removed", { orderId: msg.orderId });
        break;
      case "printer.status":
        if (msg.printer) {
          this.printers.set(msg.printer.endpoint, msg.printer);
          this._emit("printer", { printer: msg.printer });
        }
        break;
      case "source.alerts":
        this.sourceAlerts = msg.alerts || [];
        this._emit("sourceAlerts", { alerts: this.sourceAlerts });
        break;
      default:
        break;
    }
  }

  /** Put an order returned by an HTTP action into the map at once (the event follows). */
  absorb(order) {
    const known = this.orders.get(order.id);
    if (known && compareOrders(order, known) <= 0) return;
    const isNew = !known;
    this.orders.set(order.id, order);
    this._emit(isNew ? "created" : "updated", { order, changes: [], event: "http" });
  }
}
