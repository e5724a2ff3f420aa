// Number formatting for display only: values stay integers (grams, points) or decimal strings
// (per-capita figures) until the moment they are written into the page.

const whole = new Intl.NumberFormat("zh-CN", { maximumFractionDigits: 0 });
const one = new Intl.NumberFormat("zh-CN", { maximumFractionDigits: 1 });
const significant = new Intl.NumberFormat("zh-CN", { maximumSignificantDigits: 3 });

/** Grams as g, kg or t, Chinese unit first: "12.3 千克 kg". */
export function mass(grams) {
  const g = Number(grams);
  if (Math.abs(g) >= 1e6) return `${one.format(g / 1e6)} 吨 t`;
  if (Math.abs(g) >= 1e3) return `${one.format(g / 1e3)} 千克 kg`;
  return `${whole.format(g)} 克 g`;
}

/** A count of things (activities, accounts, points). */
export function count(n) {
  return whole.format(Number(n));
}

/** A per-capita decimal string in grams per resident, to three significant digits. */
export function perCapita(decimal) {
  if (decimal === undefined || decimal === null) return "—";
  return `${significant.format(Number(decimal))} 克/人`;
}

/** The label of a day (`2026-12-07`) or month (`2026-12`) key, short. */
export function period(key) {
  const parts = String(key).split("-");
  if (parts.length === 3) return `${Number(parts[1])}/${Number(parts[2])}`;
  if (parts.length === 2) return `${parts[0]}/${Number(parts[1])}`;
  return String(key);
}
