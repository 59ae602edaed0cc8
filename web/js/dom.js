// Tiny DOM helpers. POS text only ever reaches the page through textContent.

/**
 * Create an element: h("div.card.late", {dataset: {id: "1"}, onclick: fn}, child, "text").
 * Strings become text nodes (never HTML); null/false children are skipped.
 */
export function h(tag, props, ...children) {
  const [name, ...classes] = tag.split(".");
  const el = document.createElement(name || "div");
  if (classes.length) el.className = classes.join(" ");
  if (props) {
    for (const [key, value] of Object.entries(props)) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "dataset") Object.assign(el.dataset, value);
      else if (key === "text") el.textContent = String(value);
      else if (key === "class") el.className += (el.className ? " " : "") + value;
      else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
      else if (key === "hidden" || key === "disabled") el[key] = Boolean(value);
      else el.setAttribute(key, String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
}

/** Replace all children of `el`. */
export function replaceChildren(el, ...children) {
  el.textContent = "";
  append(el, children);
}

/**
 * Keep keyboard focus inside `container` across a re-layout: moving a focused element, or
 * drawing its card anew, drops focus to the page body. Call it before; the function it
 * returns puts focus back on the element, or on the same control of its card drawn anew.
 */
export function keepFocus(container) {
  const active = document.activeElement;
  if (!active || active === document.body || !container.contains(active)) return () => {};
  const again = sameControl(active);
  return () => {
    if (document.activeElement === active) return;
    const target = onPage(active, again);
    if (target && container.contains(target)) target.focus({ preventScroll: true });
  };
}

/** `el` while it is on the page, else the control `again` (from `sameControl`) finds there now. */
export function onPage(el, again) {
  if (el && el.isConnected) return el;
  return again ? document.querySelector(again) : null;
}

/** A selector for `el`'s counterpart in its card drawn anew: the card's id, the control's class. */
export function sameControl(el) {
  const card = el.closest("[data-id]");
  if (!card || !el.classList.length) return null;
  return `[data-id="${CSS.escape(card.dataset.id)}"] ${el.localName}.${CSS.escape(el.classList[0])}`;
}

/** Format seconds as m:ss (or h:mm:ss). */
export function formatElapsed(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const hh = Math.floor(s / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return hh ? `${hh}:${String(mm).padStart(2, "0")}:${ss}` : `${mm}:${ss}`;
}

/** Format a quantity: 2 → "2", 0.5 kg → "0.5 kg". */
export function formatQuantity(quantity) {
  if (!quantity) return "1";
  const amount = Number(quantity.amount);
  const unit = quantity.unit && quantity.unit !== "pcs" ? ` ${quantity.unit}` : "";
  return `${Number.isFinite(amount) ? amount : 1}${unit}`;
}
