// A station's ticket card: header (number, place, timer, state), item lines, actions; the
// "#12 · continued" part of a ticket too long for one column. DOM from text nodes only.

import { h } from "../../dom.js";
import { t, tStatus } from "../../i18n.js";
import { FINAL, isOpen, itemEndpoint, itemsAt } from "../../orders.js";
import { holdsOf, markHeld } from "../../pacing.js";
import { customerLine, itemLine, metaLine, placeBadge, recalledMark, withCourses } from "../common.js";
import { headerAllergenBand, movedAway, rushBanner } from "../workflow.js";

/**
 * What a card needs besides its order: `endpoint`, `timers` (the server's thresholds) and
 * `on` = {tapCard(orderId), tapItem(orderId, itemId), refuse(orderId), bump(orderId)}.
 * @typedef {{endpoint: string, timers: object, on: object}} CardContext
 */

/** A new card entry for `order`: {order, el, timer, height, width} (height null: not measured). */
export function renderCard(order, ctx) {
  const { endpoint, timers, on } = ctx;
  const items = itemsAt(order, endpoint);
  const status = order.endpointStatuses ? order.endpointStatuses[endpoint] : null;
  const timer = h("span.timer");
  const who = metaLine(order);
  const voided = !isOpen(order, endpoint);
  const el = h(
    `article.card.st-${status || "unknown"}${voided ? ".voided" : ""}${timers.lateFlash ? ".late-flash" : ""}`,
    { dataset: { id: order.id, number: String(order.number), status: status || "" } },
    h(
      "header.card-head",
      { onclick: () => on.tapCard(order.id), title: t("accept") },
      h("div.head-top", null, h("span.slot"), h("span.num", { text: `#${order.number}` }), placeBadge(order),
        recalledMark(order, endpoint), timer),
      h("div.pending-tag", { text: t("queued"), hidden: true }),
      rushBanner(order),
      headerAllergenBand(order, endpoint, on.failed),
      customerLine(order),
      voided ? h("div.void-banner", { text: movedAway(order, endpoint) || t("void") }) : null,
      who ? h("div.who", { text: who }) : null,
      h(
        "div.state",
        null,
        h("span.late-tag", { text: t("late") }), // lateness in words, not by colour alone
        tStatus(status === "sent" || status === "delivered" ? "created" : status || "unknown"),
      ),
    ),
    h("ol.items", null, itemLines(order, ctx, items)),
    h("div.cont-mark", { text: `${t("continues")} →`, hidden: true }),
    h(
      "footer.card-actions",
      null,
      voided ? null : h("button.refuse", { type: "button", text: t("refuse"), onclick: () => on.refuse(order.id) }),
      h("button.bump", { type: "button", text: t("bump"), onclick: () => on.bump(order.id) }),
    ),
  );
  return { order, el, timer, height: null, width: null };
}

/** The card's lines (items and course separators); a tap on an open item bumps it. */
function itemLines(order, ctx, items = itemsAt(order, ctx.endpoint)) {
  return withCourses(items, (item) => {
    const ep = itemEndpoint(item, ctx.endpoint);
    const holds = holdsOf(order, item.id, ctx.endpoint); // held: greyed, said in words, not tappable
    return markHeld(itemLine(item, ep.status, {
      onclick: FINAL.has(ep.status) || holds.length ? undefined : () => ctx.on.tapItem(order.id, item.id),
    }), holds);
  });
}

/** Lines [from, to) of a long ticket, in the next column: "#12 · continued". */
export function renderPart(card, { from, to, more }, ctx) {
  const order = card.order;
  return h(
    `article.card-cont.t-${card.el.dataset.timer || "ok"}`,
    { dataset: { contOf: order.id } },
    h("header.cont-head", { onclick: () => ctx.on.tapCard(order.id) }, `#${order.number} · ${t("continued")}`),
    h("ol.items", null, itemLines(order, ctx).slice(from, to)),
    more ? h("div.cont-mark", { text: `${t("continues")} →` }) : null,
  );
}

/** Show only lines [from, to) of the card itself, marked when more follows. */
export function showLines(card, from = 0, to = Infinity, more = false) {
  card.el.querySelectorAll(".items > li").forEach((li, index) => {
    li.hidden = index < from || index >= to;
  });
  card.el.querySelector(".cont-mark").hidden = !more;
}

/** A card with an action waiting for the link says so. */
export function markPending(card, waiting) {
  card.el.classList.toggle("pending", waiting);
  card.el.querySelector(".pending-tag").hidden = !waiting;
}

/** The card's slot number (what the bump bar's digits select). */
export function setSlot(card, slot) {
  card.el.querySelector(".slot").textContent = String(slot);
  card.el.dataset.slot = String(slot);
}
