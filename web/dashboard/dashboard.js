// The public dashboard: reads the statistics API for the window the server put on <main> (each section's
// CSV link is that section's query) and draws the totals and the charts. Everything the page shows is
// built with dom.js; a failed request shows a message, never a console error.

import { barChart, columnChart } from "../shared/charts.js";
import { bilingual, debounce, el, getBlob, getJson, replace, save } from "../shared/dom.js";
import { count, mass, perCapita, period } from "../shared/format.js";

const MACRO_REGIONS = [
  { key: "east", zh: "东部", en: "East" },
  { key: "central", zh: "中部", en: "Central" },
  { key: "west", zh: "西部", en: "West" },
];

const main = document.getElementById("main");
const status = document.getElementById("status");
const loaded = {};

function queryOf(group) {
  return main.querySelector(`a.csv[data-group="${group}"]`).getAttribute("href");
}

function widthOf(figure) {
  return Math.max(240, Math.floor(figure.clientWidth || 320));
}

/** Granted grams and exact figures as data-* attributes, for readers of the DOM (and the tests). */
function figures(item) {
  return {
    "granted-g": item.granted_g,
    "reduction-g": item.reduction_g,
    points: item.points,
    activities: item.activities,
    "active-accounts": item.active_accounts,
  };
}

function caption(figure, zh, en, chart) {
  replace(figure, chart, el("figcaption", {}, ...bilingual(zh, en)));
}

function drawTotals(answer) {
  const t = answer.totals;
  const entries = [
    ["granted_g", "核定减排", "Reductions granted", mass(t.granted_g)],
    ["activities", "低碳行动", "Activities", count(t.activities)],
    ["active_accounts", "参与人数", "Active accounts", count(t.active_accounts)],
    ["points", "发放积分", "Points issued", count(t.points)],
  ];
  replace(
    document.getElementById("totals"),
    entries.map(([field, zh, en, text]) =>
      el(
        "div",
        { class: "total" },
        el("dt", {}, ...bilingual(zh, en)),
        el("dd", { "data-field": field, "data-value": t[field] }, text),
      ),
    ),
  );
}

function drawRegions(answer) {
  const byKey = Object.fromEntries(answer.items.map((item) => [item.key, item]));
  const rows = MACRO_REGIONS.map((region) => {
    const item = byKey[region.key] || { granted_g: 0, reduction_g: 0, points: 0, activities: 0, active_accounts: 0 };
    return { region, item };
  });
  const label = (r) => `${r.zh} ${r.en}`;
  const total = document.getElementById("regions-total");
  caption(
    total,
    "核定减排总量",
    "Total granted",
    barChart({
      title: "东中西部核定减排总量 Total reductions granted by macro-region",
      width: widthOf(total),
      rows: rows.map(({ region, item }) => ({
        key: region.key,
        label: label(region),
        value: Number(item.granted_g),
        text: mass(item.granted_g),
        class: region.key,
        data: figures(item),
      })),
    }),
  );
  const perHead = document.getElementById("regions-per-capita");
  caption(
    perHead,
    "人均核定减排",
    "Per capita",
    barChart({
      title: "东中西部人均核定减排 Reductions granted per resident by macro-region",
      width: widthOf(perHead),
      rows: rows.map(({ region, item }) => ({
        key: region.key,
        label: label(region),
        value: Number(item.per_capita_g || 0),
        text: perCapita(item.per_capita_g || "0"),
        class: region.key,
        data: { "per-capita-g": item.per_capita_g || "0", population: item.population },
      })),
    }),
  );
}

function ranked(answer) {
  return [...answer.items].sort((a, b) => Number(b.granted_g) - Number(a.granted_g));
}

function drawProvinces(answer) {
  const figure = document.getElementById("provinces-chart");
  const items = ranked(answer).filter((item) => Number(item.granted_g) > 0);
  caption(
    figure,
    "按核定减排排序，括号内为人均",
    "Ranked by reductions granted; per capita in brackets",
    barChart({
      title: "各省核定减排排名 Provinces ranked by reductions granted",
      width: widthOf(figure),
      rows: items.map((item, i) => ({
        key: item.key,
        label: `${i + 1}. ${item.name}`,
        value: Number(item.granted_g),
        text: `${mass(item.granted_g)}（人均 ${perCapita(item.per_capita_g)}）`,
        data: figures(item),
      })),
    }),
  );
}

function drawTypes(answer) {
  const figure = document.getElementById("types-chart");
  caption(
    figure,
    "按活动类型",
    "By activity type",
    barChart({
      title: "各类低碳行动的核定减排 Reductions granted by activity type",
      width: widthOf(figure),
      rows: ranked(answer)
        .filter((item) => Number(item.granted_g) > 0)
        .map((item) => ({
        key: item.key,
        label: item.name && item.name !== item.key ? `${item.name} ${item.key}` : item.key,
        value: Number(item.granted_g),
        text: `${mass(item.granted_g)} · ${count(item.activities)} 次`,
        data: figures(item),
      })),
    }),
  );
}

/** Every day (`YYYY-MM-DD`) or month (`YYYY-MM`) of the window, in Asia/Shanghai time. */
function periods(from, to, daily) {
  const shift = 8 * 3600 * 1000;
  const cursor = new Date(Date.parse(from) + shift);
  const end = Date.parse(to) + shift;
  const keys = [];
  while (cursor.getTime() < end && keys.length < 1200) {
    const month = `${cursor.getUTCFullYear()}-${String(cursor.getUTCMonth() + 1).padStart(2, "0")}`;
    if (daily) {
      keys.push(`${month}-${String(cursor.getUTCDate()).padStart(2, "0")}`);
      cursor.setUTCDate(cursor.getUTCDate() + 1);
    } else {
      keys.push(month);
      cursor.setUTCDate(1);
      cursor.setUTCMonth(cursor.getUTCMonth() + 1);
    }
  }
  return keys;
}

function drawSeries(answer) {
  const figure = document.getElementById("series-chart");
  const daily = main.dataset.series === "day";
  // The API lists only periods with activities; the chart shows the quiet ones as zero.
  const byKey = Object.fromEntries(answer.items.map((item) => [item.key, item]));
  const points = periods(main.dataset.from, main.dataset.to, daily).map((key) => {
    const grams = byKey[key] ? byKey[key].granted_g : 0;
    return { key, label: period(key), value: Number(grams), text: mass(grams) };
  });
  caption(
    figure,
    daily ? "每日核定减排" : "每月核定减排",
    daily ? "Reductions granted per day" : "Reductions granted per month",
    columnChart({
      title: daily ? "每日核定减排 Reductions granted per day" : "每月核定减排 Reductions granted per month",
      width: widthOf(figure),
      points,
    }),
  );
}

const SECTIONS = [
  ["macro_region", (answer) => (drawTotals(answer), drawRegions(answer))],
  ["province", drawProvinces],
  ["activity_type", drawTypes],
  [main.dataset.series, drawSeries],
];

function drawAll() {
  for (const [group, draw] of SECTIONS) if (loaded[group]) draw(loaded[group]);
}

async function load() {
  main.dataset.state = "loading";
  replace(status, ...bilingual("正在加载数据……", "Loading…"));
  try {
    const answers = await Promise.all(SECTIONS.map(([group]) => getJson(queryOf(group))));
    SECTIONS.forEach(([group], i) => (loaded[group] = answers[i]));
    drawAll();
    const asOf = new Date(answers[0].as_of).toLocaleString("zh-CN", { hour12: false, timeZone: "Asia/Shanghai" });
    replace(status, ...bilingual(`数据截至北京时间 ${asOf}`, `As of ${asOf}, Beijing time`));
    main.dataset.state = "ready";
  } catch (error) {
    replace(status, ...bilingual(`数据暂不可用（${error.message}）`, "Statistics are unavailable right now."));
    status.classList.add("error");
    main.dataset.state = "failed";
  }
}

/** A CSV link downloads the same query as text/csv (a link alone cannot ask for it). */
function downloadCsv(event) {
  const link = event.target.closest("a.csv");
  if (!link) return;
  event.preventDefault();
  getBlob(link.getAttribute("href"), "text/csv")
    .then((blob) => save(blob, link.dataset.filename))
    .catch((error) => replace(status, ...bilingual(`下载失败（${error.message}）`, "Download failed.")));
}

main.addEventListener("click", downloadCsv);
window.addEventListener("resize", debounce(drawAll, 150));
load();
