// Small DOM helpers. Text always goes in as textContent, never as HTML: run outputs,
// messages and pipeline names come from models and users.

/** The element with `data-testid="<id>"` (the page's stable handles). */
export function $(id, root = document) {
  const found = root.querySelector(`[data-testid="${id}"]`);
  if (!found) throw new Error(`dashboard: no element ${id}`);
  return found;
}

/** A new element: `el("li", {class: "x", dataset: {runId: "1"}}, "text", child)`. */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === "dataset") Object.assign(node.dataset, value);
    else if (name === "class") node.className = value;
    else node.setAttribute(name, value);
  }
  for (const child of children) {
    node.append(child instanceof Node ? child : document.createTextNode(String(child ?? "")));
  }
  return node;
}

/** Show `text` in `node` (an error or a notice), or hide it when `text` is empty. */
export function say(node, text) {
  node.textContent = text || "";
  node.hidden = !text;
}

/** A time as the viewer's local clock shows it ("" for nothing). */
export function clock(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? String(iso) : date.toLocaleTimeString();
}

/** A run's output for display: text as it is, anything else as indented JSON. */
export function shown(value) {
  return typeof value === "string" ? value : JSON.stringify(value, null, 2);
}

/** Call `fn` once, `delay` ms after the last of a burst of calls. */
export function debounce(fn, delay) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), delay);
  };
}
