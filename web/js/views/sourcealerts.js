// A banner for POS problems staff must see (refused write-backs, orders kds cannot read):
// the feed's `sourceAlerts`, built from text nodes only (POS text is never HTML).

import { h, replaceChildren } from "../dom.js";

/** Returns {el, render}; render() shows the current alerts of `feed` (hidden when none). */
export function sourceAlertBanner(feed) {
  const el = h("div.source-alerts", { hidden: true, role: "alert" });
  const render = () => {
    const alerts = feed.sourceAlerts || [];
    el.hidden = alerts.length === 0;
    replaceChildren(el, alerts.map((a) => h("div.source-alert", { dataset: { source: a.source, kind: a.kind } },
      h("strong", { text: `${a.source}: ` }), a.message)));
  };
  return { el, render };
}
