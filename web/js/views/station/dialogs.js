// A station's modal panels: refuse a ticket with a reason, recall a ticket bumped here.
// Both answer the bump bar while open (digits pick, Enter confirms, Esc closes).

import { h } from "../../dom.js";
import { t } from "../../i18n.js";
import { itemsAt, recallable } from "../../orders.js";
import { placeBadge } from "../common.js";

/** Refuse `order` at the station: one of the stock reasons, or a typed one. */
export function openRefuse({ chrome, actions, endpoint }, order) {
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

/** The last orders bumped here within `[ui] recall_window`; picking one brings it back. */
export function openRecall({ chrome, actions, feed, ui, endpoint }) {
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
