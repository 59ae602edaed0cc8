// Pure helpers over PORTOS Order JSON: what a view needs to know about an order.

export const FINAL = new Set(["refused", "processed", "processSkipped"]);

/** The item endpoint of `item` named `endpoint`, if routed there. */
export function itemEndpoint(item, endpoint) {
  return (item.endpoints || []).find((e) => e.name === endpoint) || null;
}

/** Items of `order` routed to `endpoint` (every item when endpoint is null). */
export function itemsAt(order, endpoint) {
  if (!endpoint) return order.items || [];
  return (order.items || []).filter((item) => itemEndpoint(item, endpoint));
}

/** Every item endpoint of the order (at `endpoint` only, when given). */
export function itemEndpoints(order, endpoint) {
  const out = [];
  for (const item of order.items || []) {
    for (const ep of item.endpoints || []) {
      if (!endpoint || ep.name === endpoint) out.push(ep);
    }
  }
  return out;
}

/** True when some item endpoint (at `endpoint`) still needs work. */
export function isOpen(order, endpoint) {
  return itemEndpoints(order, endpoint).some((ep) => !FINAL.has(ep.status));
}

/** True when every item at every endpoint is final and at least one was made. */
export function isReady(order) {
  const eps = itemEndpoints(order);
  return eps.length > 0 && eps.every((ep) => FINAL.has(ep.status)) && eps.some((ep) => ep.status === "processed");
}

/** Milliseconds of the last change to `status` among `eps` (0 when none). */
export function lastChangeTo(eps, status) {
  let last = 0;
  for (const ep of eps) {
    for (const change of ep.statusChanges || []) {
      if (change.status === status) last = Math.max(last, Date.parse(change.date) || 0);
    }
  }
  return last;
}

/** When the order became ready (its last processed change), in ms. */
export function readyAt(order) {
  return lastChangeTo(itemEndpoints(order), "processed");
}

/** When the order's last item endpoint reached a final status, in ms (0 while open). */
export function finishedAt(order) {
  const eps = itemEndpoints(order);
  if (!eps.length || eps.some((ep) => !FINAL.has(ep.status))) return 0;
  let last = 0;
  for (const ep of eps) {
    for (const change of ep.statusChanges || []) {
      if (FINAL.has(change.status)) last = Math.max(last, Date.parse(change.date) || 0);
    }
  }
  return last;
}

/** The order's status at `endpoint`: the server's summary, else derived. */
export function statusAt(order, endpoint) {
  const known = order.endpointStatuses && order.endpointStatuses[endpoint];
  if (known) return known;
  const eps = itemEndpoints(order, endpoint);
  const open = eps.filter((ep) => !FINAL.has(ep.status));
  return open.length ? open[0].status : eps.length ? eps[eps.length - 1].status : "unknown";
}

/** Orders bumped at `endpoint` within `windowSeconds`, most recent first, at most `limit`. */
export function recallable(orders, endpoint, windowSeconds, now = Date.now(), limit = 10) {
  const out = [];
  for (const order of orders) {
    const eps = itemEndpoints(order, endpoint);
    if (!eps.length || eps.some((ep) => !FINAL.has(ep.status))) continue;
    const at = lastChangeTo(eps.filter((ep) => ep.status === "processed"), "processed");
    if (at && now - at <= windowSeconds * 1000) out.push({ order, at });
  }
  out.sort((a, b) => b.at - a.at);
  return out.slice(0, limit).map((entry) => entry.order);
}

/** All-day counts: outstanding quantity per product at `endpoint` over open orders. */
export function allDay(orders, endpoint) {
  const counts = new Map();
  for (const order of orders) {
    for (const item of order.items || []) {
      const ep = itemEndpoint(item, endpoint);
      if (!ep || FINAL.has(ep.status)) continue;
      const name = (item.plu && item.plu.name) || "?";
      const amount = Number(item.quantity ? item.quantity.amount : 1) || 0;
      counts.set(name, (counts.get(name) || 0) + amount);
    }
  }
  return [...counts.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
}

/** Rushed orders first; then oldest first by creation time, then by number: newest cards go last. */
export function byAge(a, b) {
  return (b.rush ? 1 : 0) - (a.rush ? 1 : 0) || (Date.parse(a.createdAt) || 0) - (Date.parse(b.createdAt) || 0) || (a.number || 0) - (b.number || 0);
}

/** "Table 4", "Take away", ... : the badge for where the order goes. */
export function placeOf(order) {
  const ticket = order.ticket || {};
  const location = ticket.location || {};
  return {
    type: ticket.purchaseType || "unknown",
    table: location.tableName || null,
    zone: location.zoneName || null,
    name: ticket.name || null,
  };
}

/** The user (server) name, whether the POS sent a string or an object. */
export function userName(order) {
  const user = order.user;
  if (!user) return null;
  if (typeof user === "string") return user;
  return user.name || user.userName || user.displayName || null;
}

/** A cheap fingerprint of an order's content, to skip re-rendering unchanged cards. */
export function fingerprint(order) {
  return `${order.version}|${order.updatedAt}|${itemEndpoints(order).map((ep) => ep.status).join(",")}`;
}

/**
 * When the order was cancelled at `endpoint` after the station had it (ms), else 0.
 * Such a ticket stays on screen struck through, so nobody keeps cooking it unaware.
 */
export function voidedAt(order, endpoint) {
  const eps = itemEndpoints(order, endpoint);
  if (!eps.length || eps.some((ep) => ep.status !== "processSkipped")) return 0;
  const shown = eps.some((ep) => (ep.statusChanges || []).some((c) => ["sent", "delivered", "accepted"].includes(c.status)));
  return shown ? lastChangeTo(eps, "processSkipped") : 0;
}

/** "grill" → "Grill": an endpoint's name as a heading. */
export function endpointLabel(name) {
  const text = String(name || "");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** The customer's name of a take-away / delivery ticket (a POS sends a string or an object). */
export function customerName(order) {
  const customer = order.ticket && order.ticket.customer;
  if (!customer) return null;
  if (typeof customer === "string") return customer;
  const full = [customer.firstName, customer.lastName].filter(Boolean).join(" ");
  return customer.name || customer.displayName || full || null;
}

/** The reasons given for refusing items of `order` (at `endpoint`), distinct, in order. */
export function refusalReasons(order, endpoint = null) {
  const reasons = [];
  for (const ep of itemEndpoints(order, endpoint)) {
    if (ep.status !== "refused") continue;
    const change = [...(ep.statusChanges || [])].reverse().find((c) => c.status === "refused");
    if (change && change.reason && !reasons.includes(change.reason)) reasons.push(change.reason);
  }
  return reasons;
}

/** True when an item (at `endpoint`) is back in the works after it was bumped: recalled. */
export function isRecalled(order, endpoint = null) {
  return itemEndpoints(order, endpoint).some((ep) => {
    if (FINAL.has(ep.status)) return false;
    const changes = ep.statusChanges || [];
    return changes.some((c) => c.status === "processed");
  });
}

/** What a cashier needs to know of a status: waiting | cooking | ready | refused | cancelled. */
export function kitchenState(status) {
  if (status === "accepted") return "cooking";
  if (status === "processed") return "ready";
  if (status === "refused") return "refused";
  if (status === "processSkipped") return "cancelled";
  return "waiting"; // new, sent, seen, and a failed print: the kitchen still has to make it
}
