// SVG charts drawn at the width of their container, so text stays legible on a phone. Each chart is an
// image to assistive technology, named by its <title> and described by a <desc> that reads out its data;
// every bar also carries a <title> tooltip. Colours come from classes in base.css (no inline style).

import { svg } from "./dom.js";

let serial = 0;

function frame(width, height, title, description, className) {
  serial += 1;
  const id = `chart-${serial}`;
  return svg(
    "svg",
    {
      class: `chart-svg ${className || ""}`.trim(),
      viewBox: `0 0 ${width} ${height}`,
      width,
      height,
      role: "img",
      "aria-labelledby": `${id}-title ${id}-desc`,
    },
    svg("title", { id: `${id}-title` }, title),
    svg("desc", { id: `${id}-desc` }, description),
  );
}

function describe(rows) {
  return rows.map((r) => `${r.label}: ${r.text}`).join("；");
}

function scale(rows) {
  const max = Math.max(0, ...rows.map((r) => r.value));
  return (value) => (max > 0 ? Math.max(0, value) / max : 0);
}

/**
 * Horizontal bars, one row per item, its label and value above its bar.
 * rows: [{key, label, value (a number, for the bar's length), text (the value as shown), class?, data?}]
 * `data` becomes data-* attributes of the row (exact figures for whoever reads the page's DOM).
 */
export function barChart({ title, rows, width, className }) {
  const rowHeight = 40;
  const height = Math.max(rowHeight, rows.length * rowHeight);
  const chart = frame(width, height, title, describe(rows) || "无数据 No data", className);
  const share = scale(rows);
  rows.forEach((row, i) => {
    const y = i * rowHeight;
    const attrs = { class: "row", "data-key": row.key };
    for (const [name, value] of Object.entries(row.data || {})) attrs[`data-${name}`] = value;
    chart.append(
      svg(
        "g",
        attrs,
        svg("text", { x: 0, y: y + 15, class: "label" }, row.label),
        svg("text", { x: width, y: y + 15, class: "value", "text-anchor": "end" }, row.text),
        svg("rect", { x: 0, y: y + 21, width: width, height: 12, rx: 2, class: "track" }),
        svg(
          "rect",
          {
            x: 0,
            y: y + 21,
            width: Math.max(share(row.value) * width, row.value > 0 ? 2 : 0).toFixed(1),
            height: 12,
            rx: 2,
            class: `bar ${row.class || ""}`.trim(),
          },
          svg("title", {}, `${row.label}: ${row.text}`),
        ),
      ),
    );
  });
  return chart;
}

/**
 * Columns over time, labelled at the first, middle and last period.
 * points: [{key, label, value, text}]
 */
export function columnChart({ title, points, width, className }) {
  const height = 220;
  const top = 24;
  const bottom = 24;
  const plot = height - top - bottom;
  const chart = frame(width, height, title, describe(points) || "无数据 No data", className);
  const share = scale(points);
  const step = points.length > 0 ? width / points.length : width;
  const gap = step > 6 ? 1 : 0;
  const max = points.reduce((best, p) => (p.value > best.value ? p : best), { value: 0, text: "0" });
  chart.append(svg("text", { x: 0, y: 14, class: "axis" }, `最高 max ${max.text}`));
  chart.append(svg("line", { x1: 0, x2: width, y1: top + plot, y2: top + plot, class: "baseline" }));
  points.forEach((p, i) => {
    const h = share(p.value) * plot;
    chart.append(
      svg(
        "rect",
        {
          x: (i * step + gap / 2).toFixed(1),
          y: (top + plot - h).toFixed(1),
          width: Math.max(step - gap, 1).toFixed(1),
          height: h.toFixed(1),
          class: "bar column",
          "data-key": p.key,
        },
        svg("title", {}, `${p.label}: ${p.text}`),
      ),
    );
  });
  const ticks = new Set([0, Math.floor((points.length - 1) / 2), points.length - 1]);
  for (const i of ticks) {
    if (i < 0 || i >= points.length) continue;
    const anchor = i === 0 ? "start" : i === points.length - 1 ? "end" : "middle";
    const x = anchor === "start" ? 0 : anchor === "end" ? width : i * step + step / 2;
    chart.append(svg("text", { x, y: height - 6, class: "axis", "text-anchor": anchor }, points[i].label));
  }
  return chart;
}
