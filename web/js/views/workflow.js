// Kitchen workflow pieces shared by the views: the allergen band and its acknowledgement,
// the RUSH banner and button, moving a ticket to another station (issue 16).
// Allergen names come from config or the POS: always text nodes, never HTML.

import { postJson } from "../api.js";
import { h } from "../dom.js";
import { t } from "../i18n.js";

/** Every allergen of the order's items (at `endpoint`, or all), in first-seen order. */
export function allergensOf(order, endpoint = null) {
  const names = [];
  for (const item of order.items || []) {
    if (endpoint && !(item.endpoints || []).some((e) => e.name === endpoint)) continue;
    for (const name of item.allergens || []) if (!names.includes(name)) names.push(name);
  }
  return names;
}

/** The red band on an item: "ALLERGY: NUTS" in words, not by colour alone. */
export function itemAllergenBand(item) {
  if (!item.allergens || !item.allergens.length) return null;
  return h("div.allergen-band.item-allergens", { text: `${t("allergy")}: ${item.allergens.join(", ").toUpperCase()}` });
}

/**
 * The band in a ticket's header; at a station it carries the cook's acknowledgement button
 * until the allergen is acknowledged there (the ticket cannot be accepted before).
 */
export function headerAllergenBand(order, endpoint, onError) {
  const names = allergensOf(order, endpoint);
  if (!names.length) return null;
  const acked = endpoint ? Boolean((order.allergenAcks || {})[endpoint]) : false;
  const text = `${t("allergy")}: ${names.join(", ").toUpperCase()}`;
  const ack = endpoint && !acked
    ? h("button.ack-allergens", {
        type: "button",
        text: t("ackAllergens"),
        onclick: (event) => {
          event.stopPropagation(); // not a tap on the card (that would accept it)
          postJson(`/api/v1/orders/${encodeURIComponent(order.id)}/endpoints/${encodeURIComponent(endpoint)}/allergens/ack`, {})
            .catch((err) => onError(err));
        },
      })
    : null;
  return h(
    `div.allergen-band.header-allergens${acked ? ".acked" : ""}`,
    { role: "alert" },
    h("span.allergen-text", { text }),
    acked ? h("span.allergen-acked", { text: `✓ ${t("allergyAcked")}` }) : null,
    ack,
  );
}

/** "MOVED TO grill2" when the ticket left `endpoint` by a move (not a cancel), else null. */
export function movedAway(order, endpoint) {
  const moves = (order.events || []).filter((e) => e.type === "moved" && e.endpoint === endpoint);
  return moves.length ? `${t("movedTo")} ${moves[moves.length - 1].to}` : null;
}

/** The RUSH banner of a rushed order. */
export function rushBanner(order) {
  return order.rush ? h("div.rush-banner", { text: t("rush") }) : null;
}

/** A button that rushes the order (expo, cashier board); gone once it is rushed. */
export function rushButton(order, onError) {
  if (order.rush) return null;
  return h("button.rush", {
    type: "button",
    text: t("rushOrder"),
    onclick: (event) => {
      event.stopPropagation();
      postJson(`/api/v1/orders/${encodeURIComponent(order.id)}/rush`, {}).catch((err) => onError(err));
    },
  });
}

/** A button that moves the order's open items at one station to another (a dialog asks where). */
export function moveButton(order, from, endpoints, chrome, onError) {
  const others = endpoints.filter((e) => e.name !== from && e.isActive !== false).map((e) => e.name);
  if (!others.length) return null;
  return h("button.move", {
    type: "button",
    text: `${t("move")} ${from}`,
    dataset: { from },
    onclick: (event) => {
      event.stopPropagation();
      const choose = (to) => {
        chrome.closeModal();
        postJson(`/api/v1/orders/${encodeURIComponent(order.id)}/endpoints/${encodeURIComponent(from)}/move`, { to })
          .catch((err) => onError(err));
      };
      chrome.openModal(
        h(
          "div.move-dialog",
          null,
          h("h2", { text: `${t("moveTitle")}: #${order.number} ${from}` }),
          h("div.move-targets", null, others.map((name) => h("button.move-to", { type: "button", text: `${t("moveTo")} ${name}`, dataset: { to: name }, onclick: () => choose(name) }))),
          h("button.cancel", { type: "button", text: t("cancel"), onclick: () => chrome.closeModal() }),
        ),
      );
    },
  });
}
