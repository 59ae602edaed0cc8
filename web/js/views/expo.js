// Expo view /expo: every open order across all endpoints; each item shows which
// stations have finished it; the pass bumps the whole order.

import { h, keepFocus, replaceChildren } from "../dom.js";
import { soundControls } from "../chrome.js";
import { t } from "../i18n.js";
import { orderList } from "../keyed.js";
import { bindKeys, keyMap } from "../keyboard.js";
import { FINAL, byAge, isOpen, itemEndpoints } from "../orders.js";
import {
  customerLine, everySecond, itemLine, metaLine, placeBadge, printerAlert, recalledMark, statusChip, tickTimer, withCourses,
} from "./common.js";
import { sourceAlertBanner } from "./sourcealerts.js";
import { headerAllergenBand, moveButton, rushBanner, rushButton } from "./workflow.js";
import { fireButtons, holdsOf, isScheduled, markHeld, tickHolds } from "../pacing.js";

export function createExpoView(ctx) {
  const { chrome, feed, actions, sound } = ctx;
  const timers = ctx.ui.expoTimers; // the most patient station's thresholds, from the server
  const { failed } = chrome;
  const cards = orderList(renderCard);
  const grid = h("section.expo-grid");
  const empty = h("div.empty", { text: t("nothingOpen") });
  const pager = h("div.pager", { hidden: true });
  let pages = [[]]; // pages → card elements
  let page = 0;
  const openCount = h("span.count");
  const alerts = sourceAlertBanner(feed);
  const printer = printerAlert(feed, { retry: true, sound });
  chrome.setToolbar(t("expo"), openCount, ...soundControls(sound));
  replaceChildren(chrome.view, h("div.expo", null, alerts.el, grid, empty), pager);

  function renderCard(order) {
    const eps = itemEndpoints(order);
    const done = eps.filter((ep) => FINAL.has(ep.status)).length;
    const ready = done === eps.length;
    const timer = h("span.timer");
    const who = metaLine(order);
    const el = h(
      `article.card.expo-card${ready ? ".all-ready" : ""}`,
      { dataset: { id: order.id, number: String(order.number), status: order.status || "" } },
      h(
        "header.card-head",
        null,
        h("div.head-top", null, h("span.num", { text: `#${order.number}` }), placeBadge(order), recalledMark(order),
          h("span.late-tag", { text: t("late") }), timer),
        rushBanner(order),
        headerAllergenBand(order, null),
        customerLine(order),
        who ? h("div.who", { text: who }) : null,
      ),
      h(
        "ol.items",
        null,
        withCourses(order.items || [], (item) => {
          const line = markHeld(itemLine(item, expoItemStatus(item)), holdsOf(order, item.id));
          line.appendChild(h("div.chips", null, (item.endpoints || []).map((e) => statusChip(e.name, e.status))));
          return line;
        }),
      ),
      h(
        "footer.card-actions",
        null,
        h("span.progress", { text: `${done}/${eps.length} ${t("done")}` }),
        rushButton(order, failed),
        order.endpointStatuses
          ? Object.keys(order.endpointStatuses)
              .filter((name) => isOpen(order, name))
              .map((name) => moveButton(order, name, ctx.endpoints, chrome, failed))
          : null,
        fireButtons(order),
        h("button.bump", { type: "button", text: t("bumpOrder"), onclick: () => actions.bumpOrder(order).catch(() => {}) }),
      ),
    );
    tickTimer(timer, el, order, timers);
    return { el, timer, order };
  }

  function render() {
    // A scheduled order stays off the pass until its window opens (the board shows it).
    const open = [...feed.orders.values()].filter((o) => isOpen(o, null) && !isScheduled(o)).sort(byAge);
    const refocus = keepFocus(grid); // a card drawn anew would take the focus along
    cards.sync(open, grid); // the grid in age order, moving only what is out of place
    refocus();
    empty.hidden = open.length > 0;
    paginate();
    printer.render();
    alerts.render();
    openCount.textContent = String(open.length);
    document.body.dataset.open = String(open.length);
  }

  /**
   * Pages of whole grid rows, like a station's pages: rows are cut at a page's bottom, never
   * a card. Hiding whole rows before a page keeps every later row as it was.
   */
  function paginate() {
    const els = [...grid.children];
    for (const el of els) el.hidden = false;
    const room = grid.parentElement.clientHeight - grid.offsetTop - 10; // less the bottom padding
    const rows = [];
    for (const el of els) {
      const last = rows[rows.length - 1];
      if (last && last.top === el.offsetTop) {
        last.els.push(el);
        last.bottom = Math.max(last.bottom, el.offsetTop + el.offsetHeight);
      } else {
        rows.push({ top: el.offsetTop, bottom: el.offsetTop + el.offsetHeight, els: [el] });
      }
    }
    pages = [[]];
    let start = rows.length ? rows[0].top : 0;
    for (const row of rows) {
      if (pages[pages.length - 1].length && row.bottom - start > room) {
        pages.push([]);
        start = row.top;
      }
      pages[pages.length - 1].push(...row.els);
    }
    page = Math.min(page, pages.length - 1);
    pages.forEach((cardsOnPage, index) => {
      for (const el of cardsOnPage) el.hidden = index !== page;
    });
    pager.textContent = `${t("page")} ${page + 1} ${t("of")} ${pages.length}  ◀ ▶`;
    pager.hidden = pages.length <= 1;
    document.body.dataset.page = String(page + 1);
    document.body.dataset.pages = String(pages.length);
  }

  function turn(to) {
    const next = Math.max(0, Math.min(pages.length - 1, to));
    if (next === page) return;
    page = next;
    paginate();
  }

  bindKeys(keyMap(null), (action) => {
    if (action === "nextPage") turn(page + 1);
    else if (action === "prevPage") turn(page - 1);
  });
  pager.addEventListener("click", (event) => {
    const rect = pager.getBoundingClientRect();
    turn(event.clientX < rect.left + rect.width / 2 ? page - 1 : page + 1);
  });
  addEventListener("resize", paginate);

  everySecond(() => {
    const now = Date.now();
    for (const card of cards.values()) {
      tickTimer(card.timer, card.el, card.order, timers, now);
      tickHolds(card.el, now);
    }
  });

  return {
    update(kind, detail) {
      if ((kind === "created" && detail.event === "order.created") || (kind === "snapshot" && detail.added.length)) sound.chime();
      render();
    },
  };
}

/** One word for an item over all its stations: refused (with its reason), cancelled, done or open. */
function expoItemStatus(item) {
  const eps = item.endpoints || [];
  if (eps.some((e) => e.status === "refused")) return "refused";
  if (eps.length && eps.every((e) => e.status === "processSkipped")) return "processSkipped";
  return eps.every((e) => FINAL.has(e.status)) ? "processed" : "open";
}

