// HTTP actions: status changes go to the orders API; the feed shows the result.

import { FINAL, itemEndpoint, itemsAt } from "./orders.js";

export class ApiError extends Error {
  constructor(status, body) {
    super((body && (body.detail || body.error)) || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

/** GET a JSON document. */
export async function getJson(path) {
  const response = await fetch(path, { headers: { Accept: "application/json" }, cache: "no-store" });
  const body = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}

/** POST JSON and return the answer's JSON. */
export async function postJson(path, payload) {
  const response = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify(payload),
  });
  const body = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}

const enc = encodeURIComponent;

/** A failure worth trying again (no answer, or the daemon busy), not a refusal. */
export function isTransient(err) {
  return !(err instanceof ApiError) || err.status >= 500 || err.status === 429;
}

const REPLAY_RETRY_MS = 1000;

/**
 * Status changes for one screen. Changes to one order run one after another, so an
 * acknowledgement always lands before the accept or bump that follows it.
 *
 * A cook's action that cannot reach the daemon (link down, daemon restarting) is not lost:
 * it waits in `pending`, is shown as waiting, and is replayed in order once the feed is
 * connected again. The daemon treats a repeated status as a no-op, so an action whose
 * answer was lost is harmless to send again; one the kitchen no longer allows (409) is
 * reported through `onError(err, action)`.
 */
export class Actions {
  constructor(feed, onError) {
    this.feed = feed;
    this.onError = onError;
    this.pending = []; // {order, label, task, resolve, reject}
    this._pendingListeners = new Set();
    this._queues = new Map();
    this._acked = new Set();
    this._unsentAcks = new Map(); // key → [order, endpoint]: acknowledgements to send again
    this._replaying = false;
    feed.onConnection((connected) => {
      if (connected) this.replay();
    });
  }

  /** listener(): the pending actions changed. */
  onPending(listener) {
    this._pendingListeners.add(listener);
  }

  /** True while an action on `orderId` waits for the link. */
  isPending(orderId) {
    return this.pending.some((action) => action.order.id === orderId);
  }

  _pendingChanged() {
    for (const listener of this._pendingListeners) listener();
  }

  _serial(orderId, task) {
    const previous = this._queues.get(orderId) || Promise.resolve();
    const next = previous.catch(() => {}).then(task);
    this._queues.set(orderId, next);
    next.finally(() => {
      if (this._queues.get(orderId) === next) this._queues.delete(orderId);
    }).catch(() => {});
    return next;
  }

  async _post(path, payload) {
    const order = await postJson(path, payload);
    if (order && order.id) this.feed.absorb(order);
    return order;
  }

  _current(order) {
    return this.feed.orders.get(order.id) || order;
  }

  /** The item ids still `sent` at `endpoint` (not yet acknowledged by a screen). */
  _unacked(order, endpoint) {
    return itemsAt(order, endpoint)
      .filter((item) => itemEndpoint(item, endpoint).status === "sent")
      .map((item) => item.id);
  }

  /** sent → delivered for the items of `order` at `endpoint`: one request when it can. */
  async _deliver(order, endpoint) {
    const sent = this._unacked(order, endpoint);
    if (!sent.length) return order;
    const open = itemsAt(order, endpoint).filter((item) => !FINAL.has(itemEndpoint(item, endpoint).status));
    const base = `/api/v1/orders/${enc(order.id)}/endpoints/${enc(endpoint)}`;
    if (sent.length === open.length) return this._post(`${base}/status`, { status: "delivered" });
    let latest = order;
    for (const itemId of sent) latest = await this._post(`${base}/items/${itemId}/status`, { status: "delivered" });
    return latest;
  }

  /** A screen that shows a ticket acknowledges it (once per order and screen). */
  acknowledge(order, endpoint) {
    if (!this._unacked(order, endpoint).length) return Promise.resolve();
    const key = `${order.id}@${endpoint}`;
    if (this._acked.has(key)) return Promise.resolve();
    this._acked.add(key);
    return this._serial(order.id, () => this._deliver(this._current(order), endpoint)).catch((err) => {
      this._acked.delete(key);
      if (isTransient(err)) this._unsentAcks.set(key, [order, endpoint]); // sent again on reconnect
      else this.onError(err);
    });
  }

  /**
   * Run a cook's action (`label`: what it was, for a refusal message); while the link is
   * down, or others still wait, it joins the queue. Settles when it finally ran or was refused.
   */
  _run(order, task, label) {
    return new Promise((resolve, reject) => {
      const action = { order, label, task, resolve, reject };
      if (this.pending.length || !this.feed.connected) this._enqueue(action);
      else this._attempt(action);
    });
  }

  _enqueue(action) {
    this.pending.push(action);
    this._pendingChanged();
  }

  _attempt(action) {
    this._serial(action.order.id, action.task).then(action.resolve, (err) => {
      if (isTransient(err)) {
        this._enqueue(action);
        if (this.feed.connected) this._retryLater();
      } else {
        this.onError(err, action);
        action.reject(err);
      }
    });
  }

  _retryLater() {
    clearTimeout(this._retry);
    this._retry = setTimeout(() => this.replay(), REPLAY_RETRY_MS);
  }

  /** Send the waiting actions in the order they were made; stop at the first that cannot get through. */
  async replay() {
    if (this._replaying) return;
    this._replaying = true;
    try {
      for (const [key, [order, endpoint]] of this._unsentAcks) {
        this._unsentAcks.delete(key);
        this.acknowledge(this._current(order), endpoint);
      }
      while (this.pending.length && this.feed.connected) {
        const action = this.pending[0];
        try {
          action.resolve(await this._serial(action.order.id, action.task));
        } catch (err) {
          if (isTransient(err)) {
            this._retryLater();
            return;
          }
          this.onError(err, action);
          action.reject(err);
        }
        this.pending.shift();
        this._pendingChanged();
      }
    } finally {
      this._replaying = false;
    }
  }

  /**
   * Change the order's status at `endpoint`: one request, also for a ticket not yet
   * acknowledged (the server walks sent → delivered → the status, kds.states.path).
   */
  setEndpointStatus(order, endpoint, status, extra = {}, label = status) {
    const path = `/api/v1/orders/${enc(order.id)}/endpoints/${enc(endpoint)}/status`;
    return this._run(order, () => this._post(path, { status, ...extra }), label);
  }

  accept(order, endpoint) {
    return this.setEndpointStatus(order, endpoint, "accepted", {}, "accept");
  }

  bump(order, endpoint) {
    return this.setEndpointStatus(order, endpoint, "processed", {}, "bump");
  }

  refuse(order, endpoint, reason) {
    return this.setEndpointStatus(order, endpoint, "refused", reason ? { reason } : {}, "refuse");
  }

  /** Bump one item at this station (one request, as above). */
  bumpItem(order, endpoint, itemId) {
    const path = `/api/v1/orders/${enc(order.id)}/endpoints/${enc(endpoint)}/items/${itemId}/status`;
    return this._run(order, () => this._post(path, { status: "processed" }), "bump item");
  }

  /**
   * Recall a bumped order: its processed items at `endpoint` go back to accepted
   * (only `itemIds`, when given: the undo of one bump).
   */
  recall(order, endpoint, itemIds = null) {
    return this._run(order, async () => {
      const current = this._current(order);
      const base = `/api/v1/orders/${enc(current.id)}/endpoints/${enc(endpoint)}`;
      const processed = itemsAt(current, endpoint).filter(
        (i) => itemEndpoint(i, endpoint).status === "processed" && (!itemIds || itemIds.includes(i.id)),
      );
      const all = itemsAt(current, endpoint);
      if (processed.length === all.length) return this._post(`${base}/status`, { status: "accepted", recall: true });
      // Refused or cancelled lines stay as they are: recall the bumped ones one by one.
      let latest = current;
      for (const item of processed) {
        latest = await this._post(`${base}/items/${item.id}/status`, { status: "accepted", recall: true });
      }
      return latest;
    }, "recall");
  }

  /** Expo: finish the whole order at every station (one request, as above). */
  bumpOrder(order) {
    return this._run(order, () => this._post(`/api/v1/orders/${enc(order.id)}/status`, { status: "processed" }), "bump");
  }
}
