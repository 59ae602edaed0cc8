// A station's bump bar: digits select a card by its slot (two quick digits: slots 10-99), the
// other keys act on the selected card only; an open panel gets the keys instead.

import { bindKeys } from "../../keyboard.js";

const DIGIT_MS = 1200; // a second digit this soon makes a two-digit slot (10-99)
// Actions that need a card the cook chose: never a default one.
const ON_SELECTED = new Set(["bump", "accept", "bumpItem", "refuse"]);

/**
 * Bind `keys` (keyboard.keyMap) to the station's commands: `station` has visibleIds(),
 * select(id), selected(), hint(), bump(id), accept(order), bumpItem(order), refuse(order),
 * undo(), recall() and turn(delta).
 */
export function bindStationKeys(keys, chrome, station) {
  let digit = null; // the first digit typed of a slot number, and when
  let digitAt = 0;

  /** A digit key: slots 1-9 at once; a second digit within DIGIT_MS makes 10-99. */
  function typeDigit(d, event) {
    const now = event ? event.timeStamp : performance.now();
    const ids = station.visibleIds();
    if (digit !== null && now - digitAt < DIGIT_MS && digit * 10 + d <= ids.length) {
      station.select(ids[digit * 10 + d - 1]);
      digit = null;
      return;
    }
    digit = d;
    digitAt = now;
    if (d >= 1 && ids[d - 1]) station.select(ids[d - 1]);
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
    const order = station.selected();
    if (!order && ON_SELECTED.has(action)) {
      station.hint(); // never a ticket the cook did not choose
      return;
    }
    switch (action) {
      case "bump":
        station.bump(order.id);
        break;
      case "accept":
        station.accept(order);
        break;
      case "bumpItem":
        station.bumpItem(order);
        break;
      case "refuse":
        station.refuse(order);
        break;
      case "undo":
        station.undo();
        break;
      case "recall":
        station.recall();
        break;
      case "nextPage":
        station.turn(1);
        break;
      case "prevPage":
        station.turn(-1);
        break;
      case "cancel":
        digit = null;
        station.select(null);
        break;
      default:
        break;
    }
  });
}
