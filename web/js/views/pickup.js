// Pickup board /pickup: order numbers "preparing" and "ready" for customers.
// A ready number leaves after the configured time.

import { h, replaceChildren } from "../dom.js";
import { t } from "../i18n.js";
import { byAge, isOpen, isReady, itemEndpoints, readyAt } from "../orders.js";
import { everySecond } from "./common.js";

export function createPickupView(ctx) {
  const { chrome, feed, ui, sound } = ctx;
  const preparing = h("ol.numbers.preparing-list");
  const ready = h("ol.numbers.ready-list");
  let readyBefore = null;
  chrome.setToolbar(t("pickup"));
  replaceChildren(
    chrome.view,
    h(
      "div.pickup",
      null,
      h("section.col-preparing", null, h("h2", { text: t("preparing") }), preparing),
      h("section.col-ready", null, h("h2", { text: t("ready") }), ready),
    ),
  );

  function numberEl(order) {
    return h("li.number", { dataset: { id: order.id, number: String(order.number) }, text: String(order.number) });
  }

  function render() {
    const now = Date.now();
    const orders = [...feed.orders.values()].sort(byAge);
    // A fully cancelled order is not being prepared.
    const cooking = orders.filter((o) => isOpen(o, null) && itemEndpoints(o).some((e) => e.status !== "processSkipped"));
    const done = orders
      .filter((o) => isReady(o) && now - readyAt(o) < ui.pickupReadySeconds * 1000)
      .sort((a, b) => readyAt(b) - readyAt(a));
    replaceChildren(preparing, cooking.map(numberEl));
    replaceChildren(ready, done.map(numberEl));
    const nowReady = new Set(done.map((o) => o.id));
    // Chime for a number that just turned ready, not for those already there at load.
    if (readyBefore && [...nowReady].some((id) => !readyBefore.has(id))) sound.chime();
    readyBefore = nowReady;
  }

  everySecond(render);
  return { update: render };
}
