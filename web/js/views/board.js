// Cashier board /board: every open order with its status at each endpoint, live.
// Finished orders stay (marked ready) for the pickup time, then leave.

import { formatElapsed, h, replaceChildren } from "../dom.js";
import { t, tOf } from "../i18n.js";
import { orderList } from "../keyed.js";
import { byAge, finishedAt, isOpen, isReady, kitchenState } from "../orders.js";
import { ageSeconds, customerLine, everySecond, metaLine, placeBadge, printerAlert, refusalLine, statusChip } from "./common.js";
import { sourceAlertBanner } from "./sourcealerts.js";
import { rushBanner, rushButton } from "./workflow.js";
import { fireButtons, isScheduled, scheduledText } from "../pacing.js";

/** A status in a cashier's words: "In kitchen", "Cooking", "Ready" (a failed print is still in the kitchen). */
const kitchenWord = (status) => tOf("kitchen", kitchenState(status));

export function createBoardView(ctx) {
  const { chrome, feed, ui } = ctx;
  const rows = orderList(renderRow);
  const body = h("div.board-rows");
  const empty = h("div.empty", { text: t("nothingOpen") });
  const openCount = h("span.count");
  const alerts = sourceAlertBanner(feed);
  const printer = printerAlert(feed);
  chrome.setToolbar(t("board"), openCount);
  replaceChildren(
    chrome.view,
    h(
      "div.board",
      null,
      alerts.el,
      h(
        "div.board-head",
        null,
        h("span", { text: t("order") }),
        h("span", { text: t("where") }),
        h("span", { text: t("age") }),
        h("span", { text: t("status") }),
      ),
      body,
      empty,
    ),
  );

  /** Open orders, and finished ones (ready, refused, cancelled) for the pickup time, so the
   * cashier sees how each ended. */
  function shown(order, now) {
    if (isOpen(order, null)) return true;
    return now - finishedAt(order) < ui.pickupReadySeconds * 1000;
  }

  function renderRow(order) {
    const age = h("span.age");
    const ready = isReady(order);
    const status = order.status || "unknown";
    const scheduled = isScheduled(order);
    const who = metaLine(order);
    const el = h(
      `div.row.s-${status}${ready ? ".ready" : ""}${scheduled ? ".scheduled" : ""}`,
      { dataset: { id: order.id, number: String(order.number), status, ...(scheduled ? { dueAt: order.dueAt } : {}) } },
      h("span.num", { text: `#${order.number}` }),
      h("span.where", null, placeBadge(order), customerLine(order), who ? h("span.who", { text: who }) : null),
      age,
      h(
        "span.chips",
        null,
        Object.entries(order.endpointStatuses || {}).map(([name, s]) => statusChip(name, s, kitchenWord)),
        scheduled
          ? h("span.overall.s-scheduled", { text: scheduledText(order) })
          : h(`span.overall.s-${status}`, { text: ready ? t("ready") : kitchenWord(status) }),
        refusalLine(order),
        rushBanner(order),
        ready ? null : rushButton(order, ctx.chrome.failed),
        fireButtons(order),
      ),
    );
    return { el, age, order };
  }

  function render() {
    const now = Date.now();
    const list = [...feed.orders.values()].filter((o) => shown(o, now)).sort(byAge);
    for (const row of rows.sync(list, body)) row.age.textContent = formatElapsed(ageSeconds(row.order, now));
    empty.hidden = list.length > 0;
    printer.render();
    alerts.render();
    openCount.textContent = String(list.filter((o) => isOpen(o, null)).length);
    document.body.dataset.open = String(list.length);
  }

  everySecond(render);
  return { update: render };
}
