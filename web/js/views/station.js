// Station view /screen/{endpoint}: the open tickets of one endpoint, oldest first,
// flowing in columns and paged; touch and bump-bar actions; all-day counts; recall.

import { h, replaceChildren } from "../dom.js";
import { soundControls } from "../chrome.js";
import { t, tStatus } from "../i18n.js";
import { bindKeys, keyMap } from "../keyboard.js";
import { FINAL, allDay, byAge, fingerprint, isOpen, itemEndpoint, itemsAt, recallable, voidedAt } from "../orders.js";
import {
  customerLine, everySecond, itemLine, metaLine, placeBadge, printerAlert, recalledMark, tickTimer, withCourses,
} from "./common.js";

const MIN_COLUMN = 290;
const VOID_SHOW_MS = 60_000;
const GAP = 10;
const DIGIT_MS = 1200; // a second digit this soon makes a two-digit slot (10-99)
const UNDO_MS = 10_000; // how long a bump offers Undo
const HINT_MS = 3000;
// Fixed heights (kds.css) of a continued part's header and of the "continues" mark, so a long
// ticket can be cut into columns from its measured lines alone.
const CONT_FIXED = 64;
const MARK_H = 36;

export function createStationView(ctx) {
  const { chrome, feed, actions, sound, ui, endpoints, endpoint } = ctx;
  const config = endpoints.find((e) => e.name === endpoint) || {};
  const timers = config.timers || { warnAfter: 300, lateAfter: 600 };
  const keys = keyMap(config.keys);

  const cards = new Map(); // order id → {order, el, timer, fp, height, width}
  let pages = [[]]; // pages → columns → order ids
  let page = 0;
  let selectedId = null;
  let digit = null; // the first digit typed of a slot number, and when
  let digitAt = 0;
  let lastBump = null; // {order, itemIds, timer}: what Undo brings back
  let scheduled = false;
  const dismissed = new Set(); // voided tickets a cook has cleared

  const board = h("section.cards", { "aria-live": "polite" });
  const measure = h("div.measure", { "aria-hidden": "true" });
  const allDayList = h("ol.allday-list");
  const allDayPanel = h("aside.allday", null, h("h2", { text: t("allDay") }), allDayList);
  const pager = h("div.pager");
  const empty = h("div.empty", { text: t("nothingOpen") });
  const openCount = h("span.count");
  const hintEl = h("div.select-hint", { role: "status", hidden: true });
  const undoText = h("span.undo-text");
  const undoBar = h(
    "div.undo-bar",
    { role: "status", hidden: true },
    undoText,
    h("button.undo", { type: "button", text: `${t("undo")} (U)`, onclick: () => undo() }),
  );
  // This station's printer, and printers nobody watches a screen of (printer-only endpoints).
  const unwatched = new Set(endpoints.filter((e) => e.display === false).map((e) => e.name));
  const printer = printerAlert(feed, { shows: (name) => name === endpoint || unwatched.has(name), retry: true, sound });
  const recallButton = h("button.recall-open", { type: "button", text: t("recall"), onclick: () => openRecall() });

  chrome.setToolbar(
    `${t("station")}: ${endpoint}`,
    openCount,
    recallButton,
    ...soundControls(sound),
  );
  replaceChildren(chrome.view, h("div.station", null, h("div.board-wrap", null, board, empty, pager), allDayPanel), measure, hintEl, undoBar);

  // ------------------------------------------------------------------ cards

  function renderCard(order) {
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
        { onclick: () => tapCard(order.id), title: t("accept") },
        h("div.head-top", null, h("span.slot"), h("span.num", { text: `#${order.number}` }), placeBadge(order),
          recalledMark(order, endpoint), timer),
        h("div.pending-tag", { text: t("queued"), hidden: true }),
        customerLine(order),
        voided ? h("div.void-banner", { text: t("void") }) : null,
        who ? h("div.who", { text: who }) : null,
        h(
          "div.state",
          null,
          h("span.late-tag", { text: t("late") }), // lateness in words, not by colour alone
          tStatus(status === "sent" || status === "delivered" ? "created" : status || "unknown"),
        ),
      ),
      h("ol.items", null, itemLines(order, items)),
      h("div.cont-mark", { text: `${t("continues")} →`, hidden: true }),
      h(
        "footer.card-actions",
        null,
        voided ? null : h("button.refuse", { type: "button", text: t("refuse"), onclick: () => openRefuse(order.id) }),
        h("button.bump", { type: "button", text: t("bump"), onclick: () => bump(order.id) }),
      ),
    );
    return { el, timer };
  }

  /** The card's lines (items and course separators); a tap on an open item bumps it. */
  function itemLines(order, items = itemsAt(order, endpoint)) {
    return withCourses(items, (item) => {
      const ep = itemEndpoint(item, endpoint);
      return itemLine(item, ep.status, {
        onclick: FINAL.has(ep.status) ? undefined : () => tapItem(order.id, item.id),
      });
    });
  }

  /** Lines [from, to) of a long ticket, in the next column: "#12 · continued". */
  function renderPart(card, from, to, more) {
    const order = card.order;
    return h(
      `article.card-cont.t-${card.el.dataset.timer || "ok"}`,
      { dataset: { contOf: order.id } },
      h("header.cont-head", { onclick: () => tapCard(order.id) }, `#${order.number} · ${t("continued")}`),
      h("ol.items", null, itemLines(order).slice(from, to)),
      more ? h("div.cont-mark", { text: `${t("continues")} →` }) : null,
    );
  }

  /** Show only lines [from, to) of the card itself, marked when more follows. */
  function showLines(card, from, to, more) {
    card.el.querySelectorAll(".items > li").forEach((li, index) => {
      li.hidden = index < from || index >= to;
    });
    card.el.querySelector(".cont-mark").hidden = !more;
  }

  /**
   * Cut a ticket taller than a column into parts of whole lines, each at most `height`:
   * [{from, to, height}]. The first part keeps the header and buttons.
   */
  function splitCard(card, height) {
    const parts = [];
    let from = 0;
    let used = 0;
    let fixed = card.fixed;
    card.lines.forEach((line, index) => {
      if (index > from && fixed + used + line + MARK_H > height) {
        parts.push({ from, to: index, height: fixed + used + MARK_H });
        from = index;
        used = 0;
        fixed = CONT_FIXED;
      }
      used += line;
    });
    parts.push({ from, to: card.lines.length, height: fixed + used });
    return parts;
  }

  function upsertCard(order) {
    const fp = fingerprint(order);
    const known = cards.get(order.id);
    if (known && known.fp === fp) {
      known.order = order;
      return known;
    }
    const { el, timer } = renderCard(order);
    if (known && known.el.parentNode) known.el.replaceWith(el);
    const card = { order, el, timer, fp, height: null, width: null };
    cards.set(order.id, card);
    tick(card);
    return card;
  }

  /** A card with an action waiting for the link says so. */
  function markPending(card) {
    const waiting = actions.isPending(card.order.id);
    card.el.classList.toggle("pending", waiting);
    card.el.querySelector(".pending-tag").hidden = !waiting;
  }

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
    if (isOpen(order, endpoint)) return true;
    if (dismissed.has(order.id)) return false;
    const at = voidedAt(order, endpoint);
    return at > 0 && Date.now() - at < VOID_SHOW_MS;
  }

  function columnsFor(width) {
    // Columns widen with the screen's text size (S/M/L), so a card keeps its words per line.
    const scale = (parseFloat(getComputedStyle(document.body).fontSize) || 18) / 18;
    return Math.max(1, Math.floor((width + GAP) / (MIN_COLUMN * scale + GAP)));
  }

  function layout() {
    const open = [...feed.orders.values()].filter(shown).sort(byAge);
    const wanted = new Set(open.map((o) => o.id));
    for (const [id, card] of cards) {
      if (!wanted.has(id)) {
        card.el.remove();
        cards.delete(id);
      }
    }
    const list = open.map(upsertCard);
    if (selectedId && !wanted.has(selectedId)) selectedId = null; // a finished card takes its selection along
    // The placeholder must be gone before the board is measured, or it takes a row of room.
    empty.hidden = list.length > 0;

    const width = board.clientWidth || window.innerWidth;
    const height = board.clientHeight || window.innerHeight - 120;
    const cols = columnsFor(width);
    const colWidth = Math.floor((width - GAP * (cols - 1)) / cols);
    board.style.setProperty("--cols", String(cols));

    // Measure new or changed cards in one batch, off screen, at the column width.
    const unmeasured = list.filter((c) => c.height === null || c.width !== colWidth);
    if (unmeasured.length) {
      measure.style.setProperty("--col-width", `${colWidth}px`);
      for (const card of unmeasured) measure.appendChild(card.el);
      for (const card of unmeasured) showLines(card, 0, Infinity, false);
      for (const card of unmeasured) {
        card.height = card.el.offsetHeight;
        card.width = colWidth;
        // A ticket taller than the board continues in the next column: its lines' heights.
        card.lines = card.height > height ? [...card.el.querySelectorAll(".items > li")].map((li) => li.offsetHeight) : null;
        card.fixed = card.lines ? card.height - card.lines.reduce((a, b) => a + b, 0) : 0;
      }
    }

    // Fill columns top to bottom, then the next column, then the next page. Entries are
    // {id, part}: part is null for a whole card, else {from, to, index} of a long one.
    pages = [];
    let columns = [];
    let column = [];
    let used = 0;
    const nextColumn = () => {
      columns.push(column);
      column = [];
      used = 0;
      if (columns.length === cols) {
        pages.push(columns);
        columns = [];
      }
    };
    const place = (id, part, size) => {
      if (column.length && used + GAP + size > height) nextColumn();
      used += size + (column.length ? GAP : 0);
      column.push({ id, part });
    };
    for (const card of list) {
      if (!card.lines || card.height <= height) {
        place(card.order.id, null, card.height);
        continue;
      }
      const parts = splitCard(card, height);
      if (column.length) nextColumn(); // a long ticket starts at the top of a column
      parts.forEach((part, index) => {
        place(card.order.id, { ...part, index, more: index < parts.length - 1 }, part.height);
        if (index < parts.length - 1) nextColumn();
      });
    }
    if (column.length) columns.push(column);
    if (columns.length || !pages.length) pages.push(columns);
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
          colEl.appendChild(renderPart(card, part.from, part.to, part.more));
          continue;
        }
        if (part) showLines(card, part.from, part.to, part.more);
        else showLines(card, 0, Infinity, false);
        slot += 1;
        card.el.querySelector(".slot").textContent = String(slot);
        card.el.dataset.slot = String(slot);
        card.el.classList.toggle("selected", id === selectedId);
        markPending(card);
        tick(card);
        colEl.appendChild(card.el);
      }
      colEls.push(colEl);
    }
    measure.textContent = "";
    for (const card of list) {
      if (!card.el.isConnected) continue;
      if (!current.some((col) => col.some((entry) => entry.id === card.order.id))) card.el.remove();
    }
    replaceChildren(board, colEls);

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

  /** The cards whose header is on this page, in slot order. */
  function visibleIds() {
    return (pages[page] || []).flat().filter((entry) => !entry.part || entry.part.index === 0).map((entry) => entry.id);
  }

  /** The card the cook selected; never a default one (keys act only on a chosen ticket). */
  function selected() {
    return selectedId && cards.has(selectedId) ? cards.get(selectedId).order : null;
  }

  /** A digit key: slots 1-9 at once; a second digit within DIGIT_MS makes 10-99. */
  function typeDigit(d, event) {
    const now = event ? event.timeStamp : performance.now();
    const ids = visibleIds();
    if (digit !== null && now - digitAt < DIGIT_MS && digit * 10 + d <= ids.length) {
      select(ids[digit * 10 + d - 1]);
      digit = null;
      return;
    }
    digit = d;
    digitAt = now;
    if (d >= 1 && ids[d - 1]) select(ids[d - 1]);
  }

  function flash(el, ms) {
    el.hidden = false;
    clearTimeout(el._timer);
    el._timer = setTimeout(() => {
      el.hidden = true;
    }, ms);
  }

  function hint() {
    hintEl.textContent = t("selectFirst");
    flash(hintEl, HINT_MS);
  }

  function select(id) {
    selectedId = id;
    for (const card of cards.values()) card.el.classList.toggle("selected", card.order.id === id);
  }

  // ------------------------------------------------------------------ actions

  function tapCard(id) {
    const card = cards.get(id);
    if (!card) return;
    select(id);
    const status = card.order.endpointStatuses ? card.order.endpointStatuses[endpoint] : null;
    if (status !== "accepted" && isOpen(card.order, endpoint)) actions.accept(card.order, endpoint).catch(() => {});
  }

  function tapItem(orderId, itemId) {
    const card = cards.get(orderId);
    if (card) bumpItem(card.order, itemId);
  }

  function bumpItem(order, itemId) {
    actions.bumpItem(order, endpoint, itemId).then(() => offerUndo(order, [itemId]), () => {});
  }

  /** After a bump: Undo (toast button or key) recalls exactly what it finished. */
  function offerUndo(order, itemIds) {
    lastBump = { order, itemIds };
    undoText.textContent = `${t("bumped")} #${order.number}`;
    flash(undoBar, UNDO_MS);
    clearTimeout(undoBar._forget);
    undoBar._forget = setTimeout(() => {
      lastBump = null;
    }, UNDO_MS);
  }

  function undo() {
    if (!lastBump) return;
    const { order, itemIds } = lastBump;
    lastBump = null;
    undoBar.hidden = true;
    actions.recall(order, endpoint, itemIds).catch(() => {});
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
    actions.bump(order, endpoint).then(() => offerUndo(order, open), () => {});
  }

  function openRefuse(id) {
    const card = cards.get(id);
    if (!card) return;
    const order = card.order;
    const input = h("input.reason-input", { type: "text", maxlength: "200", placeholder: t("reason") });
    const confirm = (reason) => {
      chrome.closeModal();
      actions.refuse(order, endpoint, reason || input.value.trim() || null).catch(() => {});
    };
    const reasons = t("reasons");
    chrome.openModal(
      h(
        "div.refuse-panel",
        null,
        h("h2", { text: `${t("refuseTitle")} #${order.number}` }),
        h(
          "div.reasons",
          null,
          reasons.map((reason, index) =>
            h("button.reason", { type: "button", onclick: () => confirm(reason) }, h("span.slot", { text: String(index + 1) }), reason),
          ),
        ),
        input,
        h(
          "div.modal-actions",
          null,
          h("button.cancel", { type: "button", text: t("cancel"), onclick: () => chrome.closeModal() }),
          h("button.confirm", { type: "button", text: t("confirm"), onclick: () => confirm(null) }),
        ),
      ),
      (action) => {
        const n = /^select(\d)$/.exec(action);
        if (n && reasons[Number(n[1]) - 1]) confirm(reasons[Number(n[1]) - 1]);
        else if (action === "bump") confirm(null);
        else if (action === "cancel" || action === "refuse") chrome.closeModal();
      },
    );
  }

  function openRecall() {
    const list = recallable(feed.orders.values(), endpoint, ui.recallWindowSeconds);
    const recall = (order) => {
      chrome.closeModal();
      actions.recall(order, endpoint).catch(() => {});
    };
    chrome.openModal(
      h(
        "div.recall-panel",
        null,
        h("h2", { text: t("recallTitle") }),
        list.length
          ? h(
              "ol.recall-list",
              null,
              list.map((order, index) =>
                h(
                  "li",
                  null,
                  h(
                    "button.recall-item",
                    { type: "button", dataset: { id: order.id, number: String(order.number) }, onclick: () => recall(order) },
                    h("span.slot", { text: String(index === 9 ? 0 : index + 1) }),
                    h("span.num", { text: `#${order.number}` }),
                    placeBadge(order),
                    h("span.summary", { text: itemsAt(order, endpoint).map((i) => (i.plu && i.plu.name) || "?").join(", ") }),
                  ),
                ),
              ),
            )
          : h("p.empty", { text: t("nothingToRecall") }),
        h("div.modal-actions", null, h("button.cancel", { type: "button", text: t("cancel"), onclick: () => chrome.closeModal() })),
      ),
      (action, event) => {
        const n = /^select(\d)$/.exec(action);
        if (n && list[Number(n[1]) - 1]) recall(list[Number(n[1]) - 1]);
        else if (event && event.key === "0" && list[9]) recall(list[9]);
        else if (action === "bump" && list[0]) recall(list[0]);
        else if (action === "cancel" || action === "recall") chrome.closeModal();
      },
    );
  }

  bindKeys(keys, (action, event) => {
    if (chrome.modal) {
      if (chrome.modal.keys) chrome.modal.keys(action, event);
      return;
    }
    const n = /^select(\d)$/.exec(action);
    if (n) {
      typeDigit(Number(n[1]), event);
      return;
    }
    const order = selected();
    if (!order && ["bump", "accept", "bumpItem", "refuse"].includes(action)) {
      hint(); // never a ticket the cook did not choose
      return;
    }
    switch (action) {
      case "bump":
        bump(order.id);
        break;
      case "accept":
        if (isOpen(order, endpoint)) actions.accept(order, endpoint).catch(() => {});
        break;
      case "bumpItem": {
        const item = itemsAt(order, endpoint).find((i) => !FINAL.has(itemEndpoint(i, endpoint).status));
        if (item) bumpItem(order, item.id);
        break;
      }
      case "refuse":
        if (isOpen(order, endpoint)) openRefuse(order.id);
        break;
      case "undo":
        undo();
        break;
      case "recall":
        openRecall();
        break;
      case "nextPage":
        if (page < pages.length - 1) {
          page += 1;
          layout();
        }
        break;
      case "prevPage":
        if (page > 0) {
          page -= 1;
          layout();
        }
        break;
      case "cancel":
        digit = null;
        select(null);
        break;
      default:
        break;
    }
  });

  pager.addEventListener("click", (event) => {
    const rect = pager.getBoundingClientRect();
    page = event.clientX < rect.left + rect.width / 2 ? Math.max(0, page - 1) : Math.min(pages.length - 1, page + 1);
    layout();
  });

  actions.onPending(() => {
    for (const card of cards.values()) {
      if (card.el.classList.contains("pending") === actions.isPending(card.order.id)) continue;
      markPending(card);
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
    for (const card of cards.values()) tick(card, now);
  });

  // ------------------------------------------------------------------ feed

  function acknowledgeAll() {
    for (const order of feed.orders.values()) {
      if (isOpen(order, endpoint)) actions.acknowledge(order, endpoint);
    }
  }

  return {
    update(kind, detail) {
      if (kind === "created" && detail.event === "order.created" && isOpen(detail.order, endpoint)) sound.chime();
      if (kind === "snapshot" && detail.added.some((o) => isOpen(o, endpoint))) sound.chime();
      if (kind === "snapshot") acknowledgeAll();
      else if (detail && detail.order && isOpen(detail.order, endpoint)) actions.acknowledge(detail.order, endpoint);
      schedule();
    },
    layout,
  };
}

/** `/` or an unknown station: links to every screen. */
export function createMenuView({ chrome, endpoints, unknown }) {
  chrome.setConnected(true);
  chrome.setToolbar(unknown ? `${t("unknownEndpoint")}: ${unknown}` : "kds");
  const link = (href, label) => h("li", null, h("a", { href, text: label }));
  replaceChildren(
    chrome.view,
    h(
      "nav.menu",
      null,
      h("h2", { text: t("chooseScreen") }),
      h(
        "ul",
        null,
        endpoints.filter((e) => e.display !== false).map((e) => link(`/screen/${encodeURIComponent(e.name)}`, `${t("station")}: ${e.name}`)),
        link("/expo", t("expo")),
        link("/board", t("board")),
        link("/pickup", t("pickup")),
      ),
    ),
  );
}
