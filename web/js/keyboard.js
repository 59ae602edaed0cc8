// Bump bar / keyboard: keys map to actions; an endpoint's `keys` config overrides them.

export const DEFAULT_KEYS = {
  "0": "select0", "1": "select1", "2": "select2", "3": "select3", "4": "select4", "5": "select5",
  "6": "select6", "7": "select7", "8": "select8", "9": "select9",
  enter: "bump", " ": "bump", space: "bump",
  a: "accept", r: "recall", x: "refuse", i: "bumpItem",
  arrowright: "nextPage", arrowdown: "nextPage", pagedown: "nextPage",
  arrowleft: "prevPage", arrowup: "prevPage", pageup: "prevPage",
  escape: "cancel", u: "undo", backspace: "undo",
};

// selectN types the digit N: one digit picks slots 1-9, two quick digits slots 10-99.
export const ACTIONS = new Set([
  "select0", "select1", "select2", "select3", "select4", "select5", "select6", "select7", "select8", "select9",
  "bump", "accept", "recall", "refuse", "bumpItem", "nextPage", "prevPage", "cancel", "undo", "none",
]);

/** Normalize a key name: "Enter" → "enter", "A" → "a", "Space" → " ". */
export function normalizeKey(key) {
  const lower = String(key).toLowerCase();
  return lower === "space" || lower === "spacebar" ? " " : lower;
}

/** The key → action map for an endpoint config (`keys`: {key: action}; "none" unbinds). */
export function keyMap(overrides) {
  const map = new Map();
  for (const [key, action] of Object.entries(DEFAULT_KEYS)) map.set(normalizeKey(key), action);
  for (const [key, action] of Object.entries(overrides || {})) {
    if (!ACTIONS.has(action)) {
      console.warn(`kds: unknown key action ${action} for ${key}`);
      continue;
    }
    map.set(normalizeKey(key), action);
  }
  return map;
}

/** Call handler(action, event) for mapped keys, ignoring typing in form fields. */
export function bindKeys(map, handler) {
  addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const target = event.target;
    if (target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA" || target.tagName === "SELECT")) {
      if (event.key === "Escape") handler("cancel", event);
      return;
    }
    const action = map.get(normalizeKey(event.key));
    if (!action || action === "none") return;
    event.preventDefault();
    handler(action, event);
  });
}
