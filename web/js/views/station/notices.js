// A station's short-lived notices: "Select a ticket first", and Undo after every bump.

import { h } from "../../dom.js";
import { t } from "../../i18n.js";

const UNDO_MS = 10_000; // how long a bump offers Undo
const HINT_MS = 3000;

/** Show `el` for `ms`, restarting the time when shown again. */
function flash(el, ms) {
  el.hidden = false;
  clearTimeout(el._timer);
  el._timer = setTimeout(() => {
    el.hidden = true;
  }, ms);
}

/** The "select a ticket first" hint: {el, show()}. */
export function selectHint() {
  const el = h("div.select-hint", { role: "status", hidden: true });
  const show = () => {
    el.textContent = t("selectFirst");
    flash(el, HINT_MS);
  };
  return { el, show };
}

/**
 * After a bump, Undo (its button or the key) recalls exactly the items that bump finished:
 * {el, offer(order, itemIds), undo()}.
 */
export function undoBar(actions, endpoint) {
  let last = null; // {order, itemIds}: what Undo brings back
  const text = h("span.undo-text");
  const undo = () => {
    if (!last) return;
    const { order, itemIds } = last;
    last = null;
    el.hidden = true;
    actions.recall(order, endpoint, itemIds).catch(() => {});
  };
  const el = h(
    "div.undo-bar",
    { role: "status", hidden: true },
    text,
    h("button.undo", { type: "button", text: `${t("undo")} (U)`, onclick: () => undo() }),
  );
  let forget = null;
  const offer = (order, itemIds) => {
    last = { order, itemIds };
    text.textContent = `${t("bumped")} #${order.number}`;
    flash(el, UNDO_MS);
    clearTimeout(forget);
    forget = setTimeout(() => {
      last = null;
    }, UNDO_MS);
  };
  return { el, offer, undo };
}
