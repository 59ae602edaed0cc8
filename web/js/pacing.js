// Pacing on screen: items held back from a station (a later course not fired yet, a quick dish
// waiting so the order finishes together) and scheduled orders (due later). The server decides
// (`order.holds`, `order.dueAt`); this module only shows it and fires courses.

import { postJson } from "./api.js";
import { formatElapsed, h } from "./dom.js";
import { t, tf } from "./i18n.js";
import { FINAL } from "./orders.js";

/** The hold of `item` at `endpoint`, if it is held there. */
export function holdOf(order, itemId, endpoint) {
  return (order.holds || []).find((hold) => hold.itemId === itemId && hold.endpoint === endpoint) || null;
}

/** The holds of one item (at `endpoint` only, when given). */
export function holdsOf(order, itemId, endpoint = null) {
  return (order.holds || []).filter((hold) => hold.itemId === itemId && (!endpoint || hold.endpoint === endpoint));
}

/**
 * True when the order is due later and nothing of it (at `endpoint`) is released yet: it stays off
 * the stations until its window opens.
 */
export function isScheduled(order, endpoint = null) {
  const open = [];
  for (const item of order.items || []) {
    for (const ep of item.endpoints || []) {
      if ((!endpoint || ep.name === endpoint) && !FINAL.has(ep.status)) open.push([item.id, ep.name]);
    }
  }
  return open.length > 0 && open.every(([id, name]) => {
    const hold = holdOf(order, id, name);
    return hold !== null && hold.reason === "scheduled";
  });
}

/** "18:45": a time of day on this screen's clock. */
export function timeOfDay(iso) {
  const date = new Date(iso);
  return `${String(date.getHours()).padStart(2, "0")}:${String(date.getMinutes()).padStart(2, "0")}`;
}

/** "Scheduled 18:45" for a scheduled order (its due time). */
export function scheduledText(order) {
  return tf("scheduledFor", { time: timeOfDay(order.dueAt) });
}

/** The words on a held item: HELD (a course), "starts in 3:20" (a prep wait), "Scheduled 18:45". */
export function holdText(hold, now = Date.now()) {
  if (hold.reason === "prep" && hold.releaseAt) {
    return tf("startsIn", { time: formatElapsed((Date.parse(hold.releaseAt) - now) / 1000) });
  }
  if (hold.reason === "scheduled" && hold.releaseAt) return tf("scheduledFor", { time: timeOfDay(hold.releaseAt) });
  return t("held");
}

/** The mark on a held item line (kept current by `tickHolds`). */
export function holdMark(hold, now = Date.now()) {
  return h("span.hold", { dataset: { reason: hold.reason, releaseAt: hold.releaseAt || "" }, text: holdText(hold, now) });
}

/** Grey an item line as held and say why (text, not colour only). */
export function markHeld(line, holds, now = Date.now()) {
  if (!holds.length) return line;
  line.classList.add("held");
  line.dataset.held = holds[0].reason;
  const where = line.querySelector(".line") || line;
  where.appendChild(holdMark(holds[0], now));
  return line;
}

/** Update every "starts in" under `root` (once a second). */
export function tickHolds(root, now = Date.now()) {
  for (const el of root.querySelectorAll("span.hold[data-reason='prep']")) {
    const text = holdText({ reason: "prep", releaseAt: el.dataset.releaseAt }, now);
    if (el.textContent !== text) el.textContent = text;
  }
}

/** The courses of `order` held until fired, ascending. */
export function heldCourses(order) {
  const courses = new Set();
  for (const hold of order.holds || []) {
    if (hold.reason === "course" && hold.course !== null && hold.course !== undefined) courses.add(hold.course);
  }
  return [...courses].sort((a, b) => a - b);
}

/** A "Fire course 2" button per held course (expo, cashier board). */
export function fireButtons(order) {
  return heldCourses(order).map((course) => h("button.fire", {
    type: "button",
    dataset: { course: String(course) },
    text: tf("fireCourse", { course }),
    onclick: (event) => {
      const button = event.currentTarget;
      button.disabled = true;
      // The fired course arrives on the feed; a refusal (already fired, gone) needs no message.
      postJson(`/api/v1/orders/${encodeURIComponent(order.id)}/courses/${course}/fire`, {})
        .catch(() => {})
        .finally(() => { button.disabled = false; });
    },
  }));
}
