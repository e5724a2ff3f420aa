// Building the page: every element is made with createElement and every text set as a text node, so
// nothing the service returns is ever parsed as HTML.

/** An element with attributes (`on*` functions become listeners) and children (strings become text). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "value") el.value = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Replaces an element's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

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
