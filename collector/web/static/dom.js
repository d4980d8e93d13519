// Tiny DOM helpers: every text goes in through textContent, never through innerHTML.
const SVG = 'http://www.w3.org/2000/svg';

function build(el, attrs, children) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'text') el.textContent = value;
    else if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else if (key === 'class' && el instanceof SVGElement) el.setAttribute('class', value);
    else if (key === 'class') el.className = value;
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function h(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

export function s(tag, attrs, ...children) {
  return build(document.createElementNS(SVG, tag), attrs, children);
}

export function $(selector, root = document) {
  return root.querySelector(selector);
}

export function $$(selector, root = document) {
  return Array.from(root.querySelectorAll(selector));
}

export function fill(el, ...children) {
  if (!el) return;
  el.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined));
}

/** A table: columns are {label, num, value(row) -> Node|string}. */
export function table(columns, rows, { caption, empty = 'No data for this period.' } = {}) {
  if (!rows.length) return h('p', { class: 'muted empty-row' }, empty);
  return h('div', { class: 'table-scroll' },
    h('table', {},
      caption ? h('caption', { class: 'sr-only' }, caption) : null,
      h('thead', {}, h('tr', {}, columns.map((c) =>
        h('th', { scope: 'col', class: c.num ? 'num' : null }, c.label)))),
      h('tbody', {}, rows.map((row) => h('tr', {}, columns.map((c) =>
        h('td', { class: c.num ? 'num' : null }, c.value(row))))))));
}

export function errorBox(error) {
  return h('p', { class: 'alert', role: 'alert' }, String(error.message || error));
}
