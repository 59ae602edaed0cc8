// Keyed lists: the one reconcile loop of the views (station cards, expo cards, board rows).
//
// Each item has a key (an order's id) and a version (its fingerprint). `sync(items)` keeps one
// entry per key: a new key is rendered, a changed version is rendered again and swapped in
// place, an unchanged one only takes the newer item, a key that left is removed from the page.
// With a `parent`, the entries' elements are kept there in the items' order, moving only what
// is out of place (no flicker, a focused button stays). Entries are built by the view's
// `render`, which creates DOM with text nodes only (`dom.js`): POS text is never HTML.

import { fingerprint } from "./orders.js";

export class KeyedList {
  /**
   * key(item) → string; version(item) → string (re-render when it changes);
   * render(item) → entry {el, …}; refresh(entry, item): an unchanged entry takes the newer item.
   */
  constructor({ key, version, render, refresh = () => {} }) {
    this.key = key;
    this.version = version;
    this.render = render;
    this.refresh = refresh;
    this._entries = new Map(); // key → entry
    this._versions = new Map(); // key → version the entry was rendered at
  }

  /** The entries for `items`, in their order; with `parent`, its children in that order too. */
  sync(items, parent = null) {
    const wanted = new Set(items.map(this.key));
    for (const [key, entry] of this._entries) {
      if (wanted.has(key)) continue;
      entry.el.remove();
      this._entries.delete(key);
      this._versions.delete(key);
    }
    const out = [];
    let previous = null;
    for (const item of items) {
      const entry = this._upsert(item);
      out.push(entry);
      if (!parent) continue;
      const want = previous ? previous.nextSibling : parent.firstChild;
      if (want !== entry.el) parent.insertBefore(entry.el, want);
      previous = entry.el;
    }
    return out;
  }

  _upsert(item) {
    const key = this.key(item);
    const version = this.version(item);
    const known = this._entries.get(key);
    if (known && this._versions.get(key) === version) {
      this.refresh(known, item);
      return known;
    }
    const entry = this.render(item);
    if (known && known.el.parentNode) known.el.replaceWith(entry.el);
    this._entries.set(key, entry);
    this._versions.set(key, version);
    return entry;
  }

  /** The entry of `key`, if listed. */
  get(key) {
    return this._entries.get(key);
  }

  has(key) {
    return this._entries.has(key);
  }

  /** Every entry, in the order they were first listed. */
  values() {
    return this._entries.values();
  }
}

/**
 * A keyed list of orders, the views' case: keyed by id, re-rendered when the order's
 * fingerprint changes; every entry holds the newest order in `.order`.
 */
export function orderList(render) {
  return new KeyedList({
    key: (order) => order.id,
    version: fingerprint,
    render,
    refresh: (entry, order) => {
      entry.order = order;
    },
  });
}
