// Pieces shared by the views: where-badges, timers, item lines.

import { postJson } from "../api.js";
import { formatElapsed, formatQuantity, h, replaceChildren } from "../dom.js";
import { t, tOf, tStatus, tf } from "../i18n.js";
import { customerName, endpointLabel, isRecalled, placeOf, refusalReasons, userName } from "../orders.js";
import { itemAllergenBand } from "./workflow.js";

/** The table / take-away / delivery badge. */
export function placeBadge(order) {
  const place = placeOf(order);
  if (place.type === "takeAway") return h("span.badge.place.takeaway", { text: t("takeAway") });
  if (place.type === "delivery") return h("span.badge.place.delivery", { text: t("delivery") });
  if (place.table) return h("span.badge.place.table", { text: `${t("table")} ${place.table}` });
  if (place.name) return h("span.badge.place.ticket", { text: place.name });
  if (place.type === "walkIn") return h("span.badge.place.walkin", { text: t("walkIn") });
  return null;
}

/** The take-away / delivery customer's name, when the POS sent one. */
export function customerLine(order) {
  const name = customerName(order);
  return name ? h("div.customer", { text: name }) : null;
}

/** RECALLED, on a ticket a cook brought back after bumping it (at `endpoint`, or anywhere). */
export function recalledMark(order, endpoint = null) {
  return isRecalled(order, endpoint) ? h("span.mark.recalled", { text: t("recalled") }) : null;
}

/** "Refused: out of stock" for the refused items of `order` (at `endpoint`), or null. */
export function refusalLine(order, endpoint = null) {
  const reasons = refusalReasons(order, endpoint);
  return reasons.length ? h("div.refusal", { text: tf("refusedBecause", { reason: reasons.join("; ") }) }) : null;
}

/** The small line under the number: zone, server, device with the POS's own number ("Till 1 #5"). */
export function metaLine(order) {
  const place = placeOf(order);
  return [place.table ? place.zone : null, userName(order), posReference(order)].filter(Boolean).join(" · ");
}

/** Where the order came from and the number its POS gave it, when that is not kds's number. */
function posReference(order) {
  const pos = order.posNumber;
  if (pos === null || pos === undefined || pos === order.number) return order.deviceName || null;
  return `${order.deviceName || t("posRef")} #${pos}`;
}

/** Seconds since the order was created. */
export function ageSeconds(order, now = Date.now()) {
  return (now - (Date.parse(order.createdAt) || now)) / 1000;
}

/** "ok" | "warn" | "late" for an age against the server's thresholds {warnAfter, lateAfter} (seconds). */
export function timerState(age, timers) {
  if (age >= timers.lateAfter) return "late";
  if (age >= timers.warnAfter) return "warn";
  return "ok";
}

/** Update a timer element (and its card's colour class) for `order`. */
export function tickTimer(el, card, order, timers, now = Date.now()) {
  const age = ageSeconds(order, now);
  const text = formatElapsed(age);
  if (el.textContent !== text) el.textContent = text;
  const state = timerState(age, timers);
  if (card.dataset.timer !== state) {
    card.dataset.timer = state;
    card.classList.remove("t-ok", "t-warn", "t-late");
    card.classList.add(`t-${state}`);
  }
}

/** One item line: quantity, name, modifiers, comment. */
export function itemLine(item, status, props = {}) {
  const cls = `li.item.s-${status || "none"}`;
  return h(
    cls,
    { dataset: { itemId: String(item.id), status: status || "" }, ...props },
    h(
      "div.line",
      null,
      h("span.qty", { text: `${formatQuantity(item.quantity)}×` }),
      h("span.name", { text: (item.plu && item.plu.name) || "?" }),
      status === "processSkipped" ? h("span.void", { text: t("void") }) : null,
      status === "refused" ? h("span.refused", { text: tStatus("refused") }) : null,
    ),
    status === "refused" ? refusalLine({ items: [item] }) : null,
    item.modifiers && item.modifiers.length
      ? h("ul.mods", null, item.modifiers.map((m) => h("li.mod", { text: m })))
      : null,
    item.comment ? h("div.comment", { text: item.comment }) : null,
    itemAllergenBand(item),
  );
}

/** Items sorted by course (stable), with a separator where the course changes. */
export function withCourses(items, render) {
  const sorted = items
    .map((item, index) => ({ item, index }))
    .sort((a, b) => (a.item.courseNumber ?? 0) - (b.item.courseNumber ?? 0) || a.index - b.index)
    .map((entry) => entry.item);
  const out = [];
  const courses = new Set(sorted.map((item) => item.courseNumber ?? null));
  let last;
  for (const item of sorted) {
    const course = item.courseNumber ?? null;
    if (courses.size > 1 && course !== last && course !== null) {
      out.push(h("li.course", { text: `${t("course")} ${course}` }));
    }
    last = course;
    out.push(render(item));
  }
  return out;
}

/** A small status chip: "grill: cooking" (`label` words the status). */
export function statusChip(name, status, label = tStatus) {
  return h(`span.chip.s-${status}`, { dataset: { endpoint: name, status } }, h("b", { text: name }), " ", label(status));
}

/** Run `fn` once per second for the page's timers. */
export function everySecond(fn) {
  return setInterval(fn, 1000);
}

/** "Bar printer: out of paper", in the screen's language. */
export function printerText(printer) {
  const state = tOf("printerStates", printer.state, printer.detail || printer.state);
  return tf("printerLine", { name: endpointLabel(printer.endpoint), state });
}

/**
 * The banner under the toolbar for printers in trouble, those `shows(endpoint)` picks. With
 * `retry` (kitchen screens) each printer gets a button that prints its waiting tickets now
 * instead of after the backoff; with `sound`, a printer that turns faulty sounds the alarm.
 * Returns {el, render}.
 */
export function printerAlert(feed, { shows = () => true, retry = false, sound = null } = {}) {
  const el = document.getElementById("printer-banner");
  let drawn = null; // what is on screen: re-drawn only on a change, so a focused button stays
  let faulty = null; // "endpoint:state" keys at the last render (null before the first)
  const render = () => {
    const bad = [...feed.printers.values()].filter((p) => p.ok === false && shows(p.endpoint));
    const key = JSON.stringify(bad.map((p) => [p.endpoint, p.state, p.detail]));
    if (key !== drawn) {
      drawn = key;
      el.hidden = bad.length === 0;
      replaceChildren(el, bad.map((p) => h(
        "div.printer-state",
        { dataset: { endpoint: p.endpoint, state: p.state }, title: p.detail || "" },
        h("span.printer-text", { text: printerText(p) }),
        retry ? retryButton(p.endpoint) : null,
      )));
    }
    const now = new Set(bad.map((p) => `${p.endpoint}:${p.state}`));
    // Not for faults already there when the screen loads: nobody could have tapped for sound yet.
    if (sound && faulty && [...now].some((k) => !faulty.has(k))) sound.alarm();
    faulty = now;
  };
  return { el, render };
}

function retryButton(endpoint) {
  const retry = (event) => {
    const button = event.currentTarget;
    button.disabled = true;
    postJson(`/api/v1/printers/${encodeURIComponent(endpoint)}/retry`, {})
      .catch(() => {}) // the printer's state on the feed says whether it worked
      .finally(() => { button.disabled = false; });
  };
  return h("button.printer-retry", { type: "button", text: t("retryPrinter"), dataset: { endpoint }, onclick: retry });
}
