// Reports view /reports: per station and hour — tickets, times, late, refusals, recalls,
// printer failures — and per product the average prep time, for a date range.
// The chart is inline SVG built from DOM nodes (no library, no inline script).

import { getJson } from "../api.js";
import { formatElapsed, h, replaceChildren } from "../dom.js";
import { t } from "../i18n.js";

const SVG = "http://www.w3.org/2000/svg";

/** An SVG element with attributes; text only through textContent. */
function s(tag, attrs, text) {
  const el = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs || {})) el.setAttribute(key, String(value));
  if (text !== undefined) el.textContent = String(text);
  return el;
}

/** YYYY-MM-DD of a date in the browser's zone (what a date input holds). */
function day(date) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}

/** The query of a range: from the start of `from` to the end of `to`, in the browser's zone. */
export function rangeQuery(from, to, endpoint) {
  const start = new Date(`${from}T00:00:00`);
  const end = new Date(`${to}T00:00:00`);
  end.setDate(end.getDate() + 1);
  const query = new URLSearchParams({ from: start.toISOString(), to: end.toISOString() });
  if (endpoint) query.set("endpoint", endpoint);
  return query;
}

const seconds = (value) => (value === null || value === undefined ? "–" : formatElapsed(value));

const COLUMNS = [
  ["tickets", (r) => r.tickets],
  ["items", (r) => r.items],
  ["avgTime", (r) => seconds(r.avgSeconds)],
  ["p90Time", (r) => seconds(r.p90Seconds)],
  ["lateTickets", (r) => r.late],
  ["refusals", (r) => r.refusals],
  ["recalls", (r) => r.recalls],
  ["printerFailures", (r) => r.printerFailures],
];

function table(caption, rows, lead) {
  return h(
    "table.report-table",
    null,
    h("caption", { text: caption }),
    h("thead", null, h("tr", null, lead.map(([label]) => h("th", { scope: "col", text: label })),
      COLUMNS.map(([key]) => h("th", { scope: "col", text: t(key) })))),
    h("tbody", null, rows.map((row) => h("tr", null, lead.map(([, cell]) => h("td", { text: cell(row) })),
      COLUMNS.map(([, cell]) => h("td.num-cell", { text: cell(row) }))))),
  );
}

/** Tickets per hour as bars, one colour per station, with the hour under each group. */
export function hourChart(hours) {
  const stations = [...new Set(hours.map((r) => r.endpoint))].sort();
  const slots = [...new Set(hours.map((r) => r.hour))].sort();
  const max = Math.max(1, ...hours.map((r) => r.tickets));
  const bar = 14;
  const group = stations.length * bar + 10;
  const height = 160;
  const width = Math.max(200, slots.length * group + 40);
  // Drawn at its own pixel size (shrunk to fit a narrow screen, never blown up).
  const svg = s("svg", {
    class: "report-chart", viewBox: `0 0 ${width} ${height + 40}`, width, height: height + 40, role: "img", "aria-labelledby": "chart-title",
  });
  svg.appendChild(s("title", { id: "chart-title" }, t("ticketsPerHour")));
  svg.appendChild(s("line", { x1: 30, y1: height, x2: width, y2: height, class: "axis" }));
  svg.appendChild(s("text", { x: 2, y: 12, class: "axis-label" }, max));
  slots.forEach((slot, i) => {
    const x0 = 34 + i * group;
    stations.forEach((name, j) => {
      const row = hours.find((r) => r.hour === slot && r.endpoint === name);
      if (!row) return;
      const tall = Math.round((row.tickets / max) * (height - 10));
      const rect = s("rect", { x: x0 + j * bar, y: height - tall, width: bar - 2, height: tall, class: `bar bar-${j % 6}` });
      rect.appendChild(s("title", null, `${name} ${slot.slice(11, 16)}: ${row.tickets}`));
      svg.appendChild(rect);
    });
    svg.appendChild(s("text", { x: x0, y: height + 16, class: "axis-label" }, slot.slice(11, 16)));
  });
  stations.forEach((name, j) => {
    svg.appendChild(s("rect", { x: 34 + j * 90, y: height + 24, width: 10, height: 10, class: `bar bar-${j % 6}` }));
    svg.appendChild(s("text", { x: 48 + j * 90, y: height + 34, class: "axis-label" }, name));
  });
  return svg;
}

export function createReportsView(ctx) {
  const { chrome, endpoints } = ctx;
  const today = day(new Date());
  const from = h("input", { type: "date", name: "from", value: today, "aria-label": t("from") });
  const to = h("input", { type: "date", name: "to", value: today, "aria-label": t("to") });
  const station = h("select", { name: "endpoint", "aria-label": t("station") },
    h("option", { value: "", text: t("allStations") }),
    endpoints.map((e) => h("option", { value: e.name, text: e.name })));
  const csv = h("a.button.csv", { href: "#", download: "kds-report.csv", text: "CSV" });
  const body = h("section.report-body", { "aria-live": "polite" });
  const form = h("form.report-range", { onsubmit: (event) => { event.preventDefault(); load(); } },
    h("label", null, t("from"), from), h("label", null, t("to"), to), h("label", null, t("station"), station),
    h("button", { type: "submit", text: t("show") }), csv);
  chrome.setToolbar(t("reports"));
  replaceChildren(chrome.view, h("div.reports", null, form, body));

  async function load() {
    const query = rangeQuery(from.value || today, to.value || from.value || today, station.value);
    csv.href = `/api/v1/reports?${query}&format=csv`;
    try {
      const report = await getJson(`/api/v1/reports?${query}`);
      render(report);
      document.body.dataset.synced = "yes";
    } catch (err) {
      replaceChildren(body, h("p.empty", { text: `${t("failed")}: ${err.message}` }));
    }
  }

  function render(report) {
    if (!report.total.tickets) {
      replaceChildren(body, h("p.empty", { text: t("noTickets") }));
      return;
    }
    const products = h(
      "table.report-table.products",
      null,
      h("caption", { text: t("prepTimes") }),
      h("thead", null, h("tr", null, h("th", { scope: "col", text: t("product") }),
        h("th", { scope: "col", text: t("items") }), h("th", { scope: "col", text: t("avgTime") }))),
      h("tbody", null, report.products.map((p) => h("tr", null, h("td", { text: p.product }),
        h("td.num-cell", { text: p.items }), h("td.num-cell", { text: seconds(p.avgPrepSeconds) })))),
    );
    replaceChildren(
      body,
      h("figure.report-figure", null, hourChart(report.hours), h("figcaption", { text: t("ticketsPerHour") })),
      table(t("byStation"), report.stations, [[t("station"), (r) => r.endpoint]]),
      table(t("byHour"), report.hours, [[t("station"), (r) => r.endpoint], [t("hour"), (r) => r.hour.slice(0, 16).replace("T", " ")]]),
      products,
    );
  }

  load();
  return { update() {} };
}
