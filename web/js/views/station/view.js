// Station view /screen/{endpoint}: the open tickets of one endpoint, oldest first, flowing in
// columns and paged; touch and bump-bar actions; all-day counts; recall. This module holds the
// view's state and wiring; cards, layout, panels, keys and notices have their own modules.

import { h, keepFocus, replaceChildren } from "../../dom.js";
import { soundControls } from "../../chrome.js";
import { t } from "../../i18n.js";
import { orderList } from "../../keyed.js";
import { keyMap } from "../../keyboard.js";
import { isScheduled, tickHolds } from "../../pacing.js";
import { FINAL, allDay, byAge, isOpen, itemEndpoint, itemsAt, voidedAt } from "../../orders.js";
import { everySecond, printerAlert, tickTimer } from "../common.js";
import { markPending, renderCard, renderPart, setSlot, showLines } from "./card.js";
import { openRecall, openRefuse } from "./dialogs.js";
import { bindStationKeys } from "./keys.js";
import { GAP, columnsFor, headerIds, measureCards, paginate } from "./layout.js";
import { selectHint, undoBar } from "./notices.js";

const VOID_SHOW_MS = 60_000;

export function createStationView(ctx) {
  const { chrome, feed, actions, sound, endpoints, endpoint } = ctx;
  const config = endpoints.find((e) => e.name === endpoint);
  const timers = config.timers; // the server's thresholds (kds.config holds the defaults)
  const cardContext = {
    endpoint,
    timers,
    on: {
      tapCard,
      tapItem,
      refuse: (id) => cards.has(id) && refuse(cards.get(id).order),
      bump,
      failed: chrome.failed,
    },
  };
  const cards = orderList((order) => {
    const card = renderCard(order, cardContext);
    tick(card);
    return card;
  });
  let pages = [[]]; // pages → columns → {id, part}
  let page = 0;
  let selectedId = null;
  let scheduled = false;
  const dismissed = new Set(); // voided tickets a cook has cleared
  const scheduledHere = new Set(); // orders due later, not here yet: they chime when they arrive

  const board = h("section.cards", { "aria-live": "polite" });
  const measure = h("div.measure", { "aria-hidden": "true" });
  const allDayList = h("ol.allday-list");
  const allDayPanel = h("aside.allday", null, h("h2", { text: t("allDay") }), allDayList);
  const pager = h("div.pager");
  const empty = h("div.empty", { text: t("nothingOpen") });
  const openCount = h("span.count");
  const hint = selectHint();
  const undo = undoBar(actions, endpoint);
  // This station's printer, and printers nobody watches a screen of (printer-only endpoints).
  const unwatched = new Set(endpoints.filter((e) => e.display === false).map((e) => e.name));
  const printer = printerAlert(feed, { shows: (name) => name === endpoint || unwatched.has(name), retry: true, sound });
  const recallButton = h("button.recall-open", { type: "button", text: t("recall"), onclick: () => recall() });

  chrome.setToolbar(`${t("station")}: ${endpoint}`, openCount, recallButton, ...soundControls(sound));
  replaceChildren(
    chrome.view,
    h("div.station", null, h("div.board-wrap", null, board, empty, pager), allDayPanel),
    measure,
    hint.el,
    undo.el,
  );

  /** Update a card's timer; a ticket that turns late while on screen sounds the alarm (if configured). */
  function tick(card, now = Date.now()) {
    const before = card.el.dataset.timer;
    tickTimer(card.timer, card.el, card.order, timers, now);
    if (timers.lateSound && before && before !== "late" && card.el.dataset.timer === "late" && isOpen(card.order, endpoint)) {
      sound.lateAlarm();
    }
  }

  // ------------------------------------------------------------------ layout

  function schedule() {
    if (scheduled) return;
    scheduled = true;
    // A microtask, not a frame: layout must not wait for a visible tab or a real clock.
    queueMicrotask(() => {
      scheduled = false;
      layout();
    });
  }

  /** Open here, or cancelled here within the last minute and not dismissed yet. */
  function shown(order) {
    if (isOpen(order, endpoint)) return !isScheduled(order, endpoint); // due later: not here yet
    if (dismissed.has(order.id)) return false;
    const at = voidedAt(order, endpoint);
    return at > 0 && Date.now() - at < VOID_SHOW_MS;
  }

  function layout() {
    const refocus = keepFocus(board); // the cards are put in new columns: focus would be lost
    const list = cards.sync([...feed.orders.values()].filter(shown).sort(byAge));
    if (selectedId && !cards.has(selectedId)) selectedId = null; // a finished card takes its selection along
    // The placeholder must be gone before the board is measured, or it takes a row of room.
    empty.hidden = list.length > 0;

    const width = board.clientWidth || window.innerWidth;
    const height = board.clientHeight || window.innerHeight - 120;
    const cols = columnsFor(width);
    const colWidth = Math.floor((width - GAP * (cols - 1)) / cols);
    board.style.setProperty("--cols", String(cols));
    measureCards(measure, list, colWidth, height);
    pages = paginate(list, cols, height);
    page = Math.min(page, pages.length - 1);

    // Only the current page is in the document: 300 open orders stay cheap.
    const current = pages[page];
    const colEls = [];
    let slot = 0;
    for (let c = 0; c < cols; c += 1) {
      const colEl = h("div.col");
      for (const { id, part } of current[c] || []) {
        const card = cards.get(id);
        if (part && part.index > 0) {
          colEl.appendChild(renderPart(card, part, cardContext));
          continue;
        }
        if (part) showLines(card, part.from, part.to, part.more);
        else showLines(card);
        slot += 1;
        setSlot(card, slot);
        card.el.classList.toggle("selected", id === selectedId);
        markPending(card, actions.isPending(id));
        tick(card);
        colEl.appendChild(card.el);
      }
      colEls.push(colEl);
    }
    measure.textContent = "";
    const onPage = new Set(current.flat().map((entry) => entry.id));
    for (const card of list) {
      if (card.el.isConnected && !onPage.has(card.order.id)) card.el.remove();
    }
    replaceChildren(board, colEls);
    refocus();

    pager.textContent = pages.length > 1 ? `${t("page")} ${page + 1} ${t("of")} ${pages.length}  ◀ ▶` : "";
    pager.hidden = pages.length <= 1;
    openCount.textContent = String(list.length);
    document.body.dataset.open = String(list.length);
    document.body.dataset.page = String(page + 1);
    document.body.dataset.pages = String(pages.length);
    renderAllDay();
    printer.render();
  }

  function renderAllDay() {
    replaceChildren(
      allDayList,
      allDay(feed.orders.values(), endpoint).map(([name, count]) =>
        h("li", { dataset: { product: name } }, h("span.ad-count", { text: String(count) }), h("span.ad-name", { text: name })),
      ),
    );
  }

  /** Another page (`delta` pages on), within the pages there are. */
  function turn(delta) {
    const next = Math.max(0, Math.min(pages.length - 1, page + delta));
    if (next === page) return;
    page = next;
    layout();
  }

  function select(id) {
    selectedId = id;
    for (const card of cards.values()) card.el.classList.toggle("selected", card.order.id === id);
  }

  /** The card the cook selected; never a default one (keys act only on a chosen ticket). */
  function selected() {
    return selectedId && cards.has(selectedId) ? cards.get(selectedId).order : null;
  }

  // ------------------------------------------------------------------ actions

  function tapCard(id) {
    const card = cards.get(id);
    if (!card) return;
    select(id);
    const status = card.order.endpointStatuses ? card.order.endpointStatuses[endpoint] : null;
    if (status !== "accepted") accept(card.order);
  }

  function tapItem(orderId, itemId) {
    const card = cards.get(orderId);
    if (card) bumpItem(card.order, itemId);
  }

  function accept(order) {
    if (isOpen(order, endpoint)) actions.accept(order, endpoint).catch(() => {});
  }

  /** Bump one item: `itemId`, or the first open one. */
  function bumpItem(order, itemId = null) {
    const id = itemId ?? itemsAt(order, endpoint).find((i) => !FINAL.has(itemEndpoint(i, endpoint).status))?.id;
    if (id === undefined) return;
    actions.bumpItem(order, endpoint, id).then(() => undo.offer(order, [id]), () => {});
  }

  function bump(id) {
    const card = cards.get(id);
    if (!card) return;
    if (!isOpen(card.order, endpoint)) {
      // A voided ticket: bumping just clears it from this screen.
      dismissed.add(id);
      schedule();
      return;
    }
    if (selectedId === id) selectedId = null;
    const order = card.order;
    const open = itemsAt(order, endpoint).filter((i) => !FINAL.has(itemEndpoint(i, endpoint).status)).map((i) => i.id);
    actions.bump(order, endpoint).then(() => undo.offer(order, open), () => {});
  }

  function refuse(order) {
    if (isOpen(order, endpoint)) openRefuse(ctx, order);
  }

  function recall() {
    openRecall(ctx);
  }

  bindStationKeys(keyMap(config.keys), chrome, {
    visibleIds: () => headerIds(pages[page]),
    select,
    selected,
    hint: hint.show,
    bump,
    accept,
    bumpItem,
    refuse,
    undo: undo.undo,
    recall,
    turn,
  });

  pager.addEventListener("click", (event) => {
    const rect = pager.getBoundingClientRect();
    turn(event.clientX < rect.left + rect.width / 2 ? -1 : 1);
  });

  actions.onPending(() => {
    for (const card of cards.values()) {
      const waiting = actions.isPending(card.order.id);
      if (card.el.classList.contains("pending") === waiting) continue;
      markPending(card, waiting);
      card.height = null; // the tag changes its height: measure again
    }
    schedule();
  });

  addEventListener("resize", () => {
    for (const card of cards.values()) card.height = null;
    schedule();
  });

  everySecond(() => {
    const now = Date.now();
    // Voided tickets leave after their minute.
    for (const card of cards.values()) {
      if (!isOpen(card.order, endpoint) && !shown(card.order)) {
        schedule();
        break;
      }
    }
    // Every card, not only this page's: one on page 2 that turns late sounds too.
    for (const card of cards.values()) {
      tick(card, now);
      tickHolds(card.el, now);
    }
  });

  // ------------------------------------------------------------------ feed

  /** True once for a scheduled order when its window opens and it reaches this station. */
  function arrivedNow(order) {
    if (isOpen(order, endpoint) && isScheduled(order, endpoint)) {
      scheduledHere.add(order.id);
      return false;
    }
    return scheduledHere.delete(order.id) && shown(order);
  }

  function acknowledgeAll() {
    for (const order of feed.orders.values()) {
      if (isOpen(order, endpoint)) actions.acknowledge(order, endpoint);
    }
  }

  return {
    update(kind, detail) {
      if (kind === "created" && detail.event === "order.created" && shown(detail.order)) sound.chime();
      if (kind === "snapshot") {
        const arrived = [...feed.orders.values()].filter(arrivedNow); // also notes those due later
        if (arrived.length || detail.added.some((o) => shown(o))) sound.chime();
      }
      if (detail && detail.order && arrivedNow(detail.order)) sound.chime();
      if (kind === "snapshot") acknowledgeAll();
      else if (detail && detail.order && isOpen(detail.order, endpoint)) actions.acknowledge(detail.order, endpoint);
      schedule();
    },
    layout,
  };
}
