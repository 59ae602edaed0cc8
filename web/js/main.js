// Entry point: reads the settings, picks the view from the URL, wires feed, actions and chrome.

import { Actions, getJson } from "./api.js";
import { Chrome } from "./chrome.js";
import { Feed } from "./feed.js";
import { setLanguage, t, tf } from "./i18n.js";
import { endpointLabel } from "./orders.js";
import { Sound } from "./sound.js";
import { createBoardView } from "./views/board.js";
import { createExpoView } from "./views/expo.js";
import { createPickupView } from "./views/pickup.js";
import { createMenuView } from "./views/menu.js";
import { createStationView } from "./views/station/view.js";
import { createReportsView } from "./views/reports.js";

/** /screen/grill → {view: "station", endpoint: "grill"}; /expo → {view: "expo"}. */
export function route(pathname) {
  const station = /^\/screen\/([^/]+)\/?$/.exec(pathname);
  if (station) return { view: "station", endpoint: decodeURIComponent(station[1]) };
  const name = pathname.replace(/^\/+|\/+$/g, "");
  if (["expo", "board", "pickup", "reports"].includes(name)) return { view: name, endpoint: null };
  return { view: "menu", endpoint: null };
}

/** The page title names the screen and the station: "Grill — kds station". */
export function pageTitle(where, known) {
  if (where.view === "station" && known) return tf("titleStation", { name: endpointLabel(where.endpoint) });
  const name = where.view === "station" ? t("unknownEndpoint") : where.view === "menu" ? t("screens") : t(where.view);
  return tf("titleView", { name });
}

/** Settings are retried until the daemon answers: a kiosk may boot before it. */
async function loadSettings(chrome) {
  for (let delay = 500; ; delay = Math.min(delay * 2, 5000)) {
    try {
      const [ui, endpoints] = await Promise.all([getJson("/api/v1/ui"), getJson("/api/v1/endpoints")]);
      chrome.setConnected(true);
      // Every setting comes from the server (kds.api.screens): no defaults of our own here.
      return { ui, endpoints: endpoints.items };
    } catch (err) {
      // A screen without the right token must say so, not look like a network fault.
      chrome.setConnected(false, err.status === 401 || err.status === 403 ? err.message : null);
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}

async function main() {
  setLanguage(null);
  const chrome = new Chrome(document);
  const { ui, endpoints } = await loadSettings(chrome);
  const lang = setLanguage(ui.lang);
  const where = route(location.pathname);
  document.body.dataset.view = where.view;
  document.body.dataset.lang = lang;
  document.title = pageTitle(where, endpoints.some((e) => e.name === where.endpoint));

  if (where.view === "menu" || (where.view === "station" && !endpoints.some((e) => e.name === where.endpoint))) {
    createMenuView({ chrome, endpoints, unknown: where.view === "station" ? where.endpoint : null });
    document.body.dataset.synced = "yes";
    return;
  }

  if (where.view === "reports") {
    createReportsView({ chrome, endpoints });
    return;
  }

  const feed = new Feed(where.endpoint);
  // A refused action names its ticket: it may have waited for the link and be long forgotten.
  const actions = new Actions(feed, (err, action) =>
    action ? chrome.toast(`${t("notDone")}: #${action.order.number} ${action.label} — ${err.message}`) : chrome.failed(err),
  );
  const sound = new Sound(ui.soundDefault);
  const context = { chrome, feed, actions, sound, ui, endpoints, endpoint: where.endpoint };
  const create = { station: createStationView, expo: createExpoView, board: createBoardView, pickup: createPickupView };
  const view = create[where.view](context);
  feed.onConnection((connected) => chrome.setConnected(connected));
  feed.onChange((kind, detail) => {
    view.update(kind, detail);
    // The first snapshot is drawn: the screen shows the daemon's state (tests wait for this).
    if (kind === "snapshot") document.body.dataset.synced = "yes";
  });
  feed.start();
  // For tests and diagnostics: the feed's position and the view, never used by the page itself.
  window.kds = { feed, view, sound };
}

main().catch((err) => {
  console.error("kds: failed to start", err);
  document.body.dataset.error = String(err);
});
