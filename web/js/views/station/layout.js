// A station's paged layout: cards flow down columns, then the next column, then the next
// page; a ticket taller than the board is cut between whole lines into "continued" parts.
// Measuring happens off screen in one batch; placing is plain arithmetic on the heights.

import { showLines } from "./card.js";

export const GAP = 10;
const MIN_COLUMN = 290;
// Fixed heights (kds.css) of a continued part's header and of the "continues" mark, so a long
// ticket can be cut into columns from its measured lines alone.
const CONT_FIXED = 64;
const MARK_H = 36;

/** How many columns fit in `width`: they widen with the screen's text size (S/M/L). */
export function columnsFor(width) {
  // A card keeps its words per line when the text grows.
  const scale = (parseFloat(getComputedStyle(document.body).fontSize) || 18) / 18;
  return Math.max(1, Math.floor((width + GAP) / (MIN_COLUMN * scale + GAP)));
}

/**
 * Measure cards (new, changed, or at another column width) in `measure`, off screen: their
 * height, and for one taller than `height` its lines' heights (`lines`) and the rest (`fixed`).
 */
export function measureCards(measure, cards, colWidth, height) {
  const unmeasured = cards.filter((c) => c.height === null || c.width !== colWidth);
  if (!unmeasured.length) return;
  measure.style.setProperty("--col-width", `${colWidth}px`);
  for (const card of unmeasured) measure.appendChild(card.el);
  for (const card of unmeasured) showLines(card);
  for (const card of unmeasured) {
    card.height = card.el.offsetHeight;
    card.width = colWidth;
    // A ticket taller than the board continues in the next column: its lines' heights.
    card.lines = card.height > height ? [...card.el.querySelectorAll(".items > li")].map((li) => li.offsetHeight) : null;
    card.fixed = card.lines ? card.height - card.lines.reduce((a, b) => a + b, 0) : 0;
  }
}

/**
 * Cut a ticket taller than a column into parts of whole lines, each at most `height`:
 * [{from, to, height}]. The first part keeps the header and buttons.
 */
export function splitCard(card, height) {
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

/**
 * Pages → columns → entries {id, part} for measured cards, oldest first. `part` is null for a
 * whole card, else {from, to, height, index, more} of a long one (which starts a column).
 */
export function paginate(cards, cols, height) {
  const pages = [];
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
  for (const card of cards) {
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
  return pages;
}

/** The ids of the cards whose header is on `columns` (one page), in slot order. */
export function headerIds(columns) {
  return (columns || []).flat().filter((entry) => !entry.part || entry.part.index === 0).map((entry) => entry.id);
}
