// Builds the DOM from data without ever parsing HTML: text goes through text nodes only, so nothing a
// server or a user wrote can become markup (the page's CSP forbids inline script and style as well).

export const SVG_NS = "http://www.w3.org/2000/svg";

function build(node, attrs, children) {
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") || name === "style") {
      throw new Error(`attribute ${name} is not allowed; use classes and listeners`);
    }
    node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** An HTML element: `el("p", {class: "x"}, "text", otherNode)`. */
export function el(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

/** An SVG element, with the same rules as `el`. */
export function svg(tag, attrs, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

/** Replaces every child of `node`. */
export function replace(node, ...children) {
  node.replaceChildren();
  return build(node, {}, children);
}

/** A label in Chinese followed by its English, as the server renders them. */
export function bilingual(zh, en) {
  return [zh, " ", el("span", { class: "en", lang: "en" }, en)];
}

/** Reads a response, throwing an Error that carries the problem's detail when the answer is not 2xx. */
async function checked(response) {
  if (response.ok) return response;
  let detail = response.statusText;
  try {
    const problem = await response.json();
    detail = problem.detail || problem.title || detail;
  } catch (_) {
    // not problem+json: keep the status text
  }
  const error = new Error(`${response.status} ${detail}`);
  error.status = response.status;
  throw error;
}

/** GETs JSON from this origin. */
export async function getJson(url, headers = {}) {
  const response = await fetch(url, { headers: { Accept: "application/json", ...headers } });
  return (await checked(response)).json();
}

/** GETs `url` with `Accept: type` and returns the body as a Blob. */
export async function getBlob(url, type) {
  const response = await fetch(url, { headers: { Accept: type } });
  return (await checked(response)).blob();
}

/** Saves `blob` as a download named `filename`. */
export function save(blob, filename) {
  const href = URL.createObjectURL(blob);
  const link = el("a", { href, download: filename, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(href), 10_000);
}

/** Calls `f` at most once per `ms` after the last call (for resize handlers). */
export function debounce(f, ms) {
  let timer;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => f(...args), ms);
  };
}
