// SVG charts built through the shared `svg` helper: no library, no inline style (colours come from classes).

// Signed bars (a simulation's change may be a loss), which the shared bar chart does not draw.

import { svg } from "../shared/dom.js";

const fmt = new Intl.NumberFormat("en");

/**
 * Horizontal bars for signed values (gains right of the axis, losses left), one per row:
 * rows = [{label, value}]. The chart carries a title and a description for screen readers.
 */
export function barChart(title, rows, unit) {
  const rowHeight = 26;
  const labelWidth = 150;
  const width = 640;
  const plot = width - labelWidth - 90;
  const height = rows.length * rowHeight + 30;
  const max = Math.max(1, ...rows.map((r) => Math.abs(r.value)));
  const hasNegative = rows.some((r) => r.value < 0);
  const zero = labelWidth + (hasNegative ? plot / 2 : 0);
  const scale = (hasNegative ? plot / 2 : plot) / max;
  const root = svg("svg", {
    viewBox: `0 0 ${width} ${height}`,
    role: "img",
    class: "chart",
    "aria-labelledby": "chart-title chart-desc",
  });
  root.append(svg("title", { id: "chart-title" }, title));
  root.append(
    svg("desc", { id: "chart-desc" }, rows.map((r) => `${r.label}: ${fmt.format(r.value)} ${unit}`).join("; ")),
  );
  rows.forEach((r, i) => {
    const y = 10 + i * rowHeight;
    const w = Math.abs(r.value) * scale;
    const x = r.value < 0 ? zero - w : zero;
    root.append(svg("text", { x: labelWidth - 8, y: y + 15, class: "label", "text-anchor": "end" }, r.label));
    root.append(svg("rect", { x, y, width: Math.max(w, 1), height: rowHeight - 8, class: r.value < 0 ? "bar negative" : "bar" }));
    const tx = r.value < 0 ? x - 4 : x + w + 4;
    root.append(
      svg("text", { x: tx, y: y + 15, class: "value", "text-anchor": r.value < 0 ? "end" : "start" }, `${fmt.format(r.value)} ${unit}`),
    );
  });
  root.append(svg("line", { x1: zero, x2: zero, y1: 4, y2: height - 16, class: "axis" }));
  return root;
}
