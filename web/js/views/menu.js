// Menu view `/` (and an unknown station): links to every screen.

import { h, replaceChildren } from "../dom.js";
import { t } from "../i18n.js";

/** `/` or an unknown station: links to every screen. */
export function createMenuView({ chrome, endpoints, unknown }) {
  chrome.setConnected(true);
  chrome.setToolbar(unknown ? `${t("unknownEndpoint")}: ${unknown}` : "kds");
  const link = (href, label) => h("li", null, h("a", { href, text: label }));
  replaceChildren(
    chrome.view,
    h(
      "nav.menu",
      null,
      h("h2", { text: t("chooseScreen") }),
      h(
        "ul",
        null,
        endpoints.filter((e) => e.display !== false).map((e) => link(`/screen/${encodeURIComponent(e.name)}`, `${t("station")}: ${e.name}`)),
        link("/expo", t("expo")),
        link("/board", t("board")),
        link("/pickup", t("pickup")),
      ),
    ),
  );
}
