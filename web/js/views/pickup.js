// Pickup board /pickup: order numbers "preparing" and "ready" for customers.
// Only the purchase types configured for pickup ([ui] pickup_types) appear: a table's food
// goes to the table. Each column is sorted by number and sized so every number fits on the
// screen; when even the smallest readable size cannot hold them all, the column pages.
// A ready number leaves after the configured time.

import { h, replaceChildren } from "../dom.js";
import { t } from "../i18n.js";
import { isOpen, isReady, itemEndpoints, readyAt } from "../orders.js";
import { everySecond } from "./common.js";

const MIN_PX = 28; // still readable across a room
const MAX_PX = 96;
const PAGE_MS = 8000;

export function createPickupView(ctx) {
  const { chrome, feed, ui, sound } = ctx;
  const types = new Set(ui.pickupTypes);
  const preparing = fittedColumn("col-preparing", "preparing-list", t("preparing"));
  const ready = fittedColumn("col-ready", "ready-list", t("ready"));
  let readyBefore = null;
  chrome.setToolbar(t("pickup"));
  replaceChildren(chrome.view, h("div.pickup", null, preparing.el, ready.el));
  addEventListener("resize", () => {
    preparing.relayout();
    ready.relayout();
  });

  function render() {
    const now = Date.now();
    const orders = [...feed.orders.values()].filter((o) => types.has((o.ticket && o.ticket.purchaseType) || "unknown"));
    // A fully cancelled order is not being prepared.
    const cooking = orders.filter((o) => isOpen(o, null) && itemEndpoints(o).some((e) => e.status !== "processSkipped"));
    const done = orders.filter((o) => isReady(o) && now - readyAt(o) < ui.pickupReadySeconds * 1000);
    preparing.show(cooking, now);
    ready.show(done, now);
    const nowReady = new Set(done.map((o) => o.id));
    // Chime for a number that just turned ready, not for those already there at load.
    if (readyBefore && [...nowReady].some((id) => !readyBefore.has(id))) sound.chime();
    readyBefore = nowReady;
  }

  everySecond(render);
  return { update: render };
}

/** One column of numbers, sorted, in the largest font that fits, paged when none does. */
function fittedColumn(sectionClass, listClass, title) {
  const list = h(`ol.numbers.${listClass}`);
  const pageOf = h("span.page-of", { hidden: true });
  const el = h(`section.${sectionClass}`, null, h("h2", null, title, pageOf), list);
  let key = null;
  let pages = [[]];
  let page = 0;
  let turnAt = 0;

  function numberEl(order) {
    return h("li.number", { dataset: { id: order.id, number: String(order.number) }, text: String(order.number) });
  }

  const overflows = () => list.scrollHeight > list.clientHeight + 1 || list.scrollWidth > list.clientWidth + 1;

  /** Largest font size (px) at which every child of the list fits; MIN_PX if none does. */
  function fit() {
    let lo = MIN_PX;
    let hi = MAX_PX;
    while (hi - lo > 1) {
      const mid = Math.floor((lo + hi) / 2);
      list.style.fontSize = `${mid}px`;
      if (overflows()) hi = mid;
      else lo = mid;
    }
    list.style.fontSize = `${lo}px`;
  }

  /** The orders split into pages of as many numbers as fit at the current size. */
  function paginate(orders) {
    if (!overflows()) return [orders];
    const limit = list.clientHeight;
    const perPage = Math.max(1, [...list.children].findIndex((li) => li.offsetTop + li.offsetHeight > limit));
    const out = [];
    for (let i = 0; i < orders.length; i += perPage) out.push(orders.slice(i, i + perPage));
    return out;
  }

  function layout(orders) {
    replaceChildren(list, orders.map(numberEl));
    fit();
    pages = paginate(orders);
    page = Math.min(page, pages.length - 1);
  }

  function show(orders, now) {
    const sorted = [...orders].sort((a, b) => a.number - b.number);
    const nextKey = sorted.map((o) => o.number).join(",");
    if (nextKey !== key) {
      key = nextKey;
      layout(sorted);
    } else if (pages.length > 1 && now >= turnAt) {
      page = (page + 1) % pages.length;
    } else {
      return; // nothing changed: the numbers on screen stay as they are
    }
    if (now >= turnAt) turnAt = now + PAGE_MS;
    replaceChildren(list, pages[page].map(numberEl));
    pageOf.hidden = pages.length < 2;
    pageOf.textContent = pages.length < 2 ? "" : `${page + 1}/${pages.length}`;
  }

  return { el, show, relayout: () => { key = null; } };
}
