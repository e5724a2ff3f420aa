// The console's building blocks over the shared DOM helpers (`../shared/dom.js`, which never parse
// HTML): labelled fields, tables with captions, problems shown where they happened.

import { el, replace } from "../shared/dom.js";

/**
 * An element as `el` of the shared module makes it, except that `value` is set as the control's current
 * value (a textarea has no value attribute).
 */
export function h(tag, attrs = {}, ...children) {
  const { value, ...rest } = attrs;
  const node = el(tag, rest, ...children);
  if (value !== undefined && value !== null) node.value = value;
  return node;
}

export const fill = replace;

let ids = 0;
/** A labelled control: the label is tied to the control by id. */
export function field(label, control, hint) {
  control.id ||= `f${++ids}`;
  const parts = [h("label", { for: control.id }, label), control];
  if (hint) {
    const hintId = `${control.id}-hint`;
    control.setAttribute("aria-describedby", hintId);
    parts.push(h("small", { id: hintId, class: "hint" }, hint));
  }
  return h("div", { class: "field" }, parts);
}

export function select(name, options, selected, extra = {}) {
  return h(
    "select",
    { name, ...extra },
    options.map(([value, text]) => h("option", { value, selected: value === selected }, text)),
  );
}

/** A table with a caption, column headers and rows of cells (strings or nodes). */
export function table(caption, headers, rows) {
  return h(
    "table",
    {},
    h("caption", {}, caption),
    h("thead", {}, h("tr", {}, headers.map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, rows.length ? rows.map((r) => h("tr", {}, r.map((c) => h("td", {}, c)))) : h("tr", {}, h("td", { colspan: headers.length }, "Nothing here."))),
  );
}

/** A problem shown where it happened; one outside the administrator's scope says so plainly. */
export function problem(error) {
  const scope = error?.code === "out_of_scope";
  const title = scope ? "Outside your scope" : error?.status === 403 ? "Not allowed" : "Refused";
  return h(
    "div",
    { class: scope ? "problem out-of-scope" : "problem", role: "alert" },
    h("strong", {}, `${title}: `),
    error?.message ?? String(error),
    error?.code ? h("code", {}, ` ${error.code}`) : null,
    error?.errors?.length ? h("ul", {}, error.errors.map((e) => h("li", {}, `${e.field}: ${e.message}`))) : null,
  );
}

export function notice(text) {
  return h("p", { class: "notice", role: "status" }, text);
}

/** Runs an action from a button: disabled while it runs, its outcome shown in `out`. */
export async function act(button, out, action) {
  button.disabled = true;
  fill(out);
  try {
    const shown = await action();
    if (shown !== undefined) fill(out, shown);
  } catch (e) {
    fill(out, problem(e));
  } finally {
    button.disabled = false;
  }
}

export function when(t) {
  return t ? new Date(t).toISOString().replace(".000Z", "Z") : "—";
}

export function json(value) {
  return h("pre", { class: "json" }, JSON.stringify(value, null, 2));
}
