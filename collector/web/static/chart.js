// Charts drawn as inline SVG elements (presentation attributes only: no inline style).
import { fill, h, s } from './dom.js';

/** A round axis: a step of 1, 2 or 5 × 10^k and at most five ticks above zero. */
function axis(value, integers = true) {
  if (value <= 0) return { top: 4, ticks: 4 };
  const power = 10 ** Math.floor(Math.log10(value / 5));
  const found = [1, 2, 5, 10].map((m) => m * power).find((c) => c * 5 >= value);
  // Counts get whole-number ticks (no "0, 1, 1, 2" from rounding halves).
  const step = integers ? Math.max(1, found) : found;
  const ticks = Math.max(1, Math.ceil(value / step));
  return { top: step * ticks, ticks };
}

function widthOf(container) {
  return Math.max(280, Math.round(container.clientWidth || 600));
}

/** A line chart of `points` ({short, long, value, future}) with an optional dashed `previous`
 * series. Buckets still in the future keep their place on the axis but get no line. */
export function lineChart(container, points, { previous, format, title }) {
  const width = widthOf(container);
  const height = width < 500 ? 200 : 240;
  const pad = { top: 12, right: 12, bottom: 28, left: 44 };
  const innerW = width - pad.left - pad.right;
  const innerH = height - pad.top - pad.bottom;
  const values = points.map((p) => p.value).concat((previous || []).map((p) => p.value));
  const { top, ticks } = axis(Math.max(0, ...values), values.every(Number.isInteger));
  const past = points.filter((p) => !p.future);
  const x = (i) => pad.left + (points.length <= 1 ? innerW / 2 : (i * innerW) / (points.length - 1));
  const y = (v) => pad.top + innerH - (v / top) * innerH;
  const grid = [];
  for (let k = 0; k <= ticks; k += 1) {
    const v = (top * k) / ticks;
    grid.push(s('line', { x1: pad.left, x2: width - pad.right, y1: y(v), y2: y(v), class: 'grid' }));
    grid.push(s('text', { x: pad.left - 6, y: y(v) + 4, class: 'axis', 'text-anchor': 'end' }, format(v)));
  }
  const every = Math.max(1, Math.ceil(points.length / Math.max(2, Math.floor(innerW / 70))));
  const labels = points.map((p, i) => (i % every === 0
    ? s('text', { x: x(i), y: height - 8, class: 'axis', 'text-anchor': 'middle' }, p.short)
    : null));
  const path = (series) => series.map((p, i) => `${i ? 'L' : 'M'}${x(i).toFixed(1)},${y(p.value).toFixed(1)}`).join(' ');
  const area = past.length
    ? `${path(past)} L${x(past.length - 1).toFixed(1)},${y(0)} L${x(0).toFixed(1)},${y(0)} Z` : '';
  const dots = past.map((p, i) => s('circle', { cx: x(i), cy: y(p.value), r: points.length > 60 ? 1.5 : 3, class: 'dot' },
    s('title', {}, `${p.long}: ${format(p.value)}${previous && previous[i] ? ` (previous: ${format(previous[i].value)})` : ''}`)));
  const svg = s('svg', {
    viewBox: `0 0 ${width} ${height}`, width, height, role: 'img', 'aria-label': title, class: 'line-chart',
  },
  s('title', {}, title),
  ...grid,
  previous && previous.length ? s('path', { d: path(previous.slice(0, points.length)), class: 'line previous' }) : null,
  s('path', { d: area, class: 'area' }),
  s('path', { d: path(past), class: 'line' }),
  ...dots,
  ...labels);
  fill(container, svg);
}

/** Horizontal bars: rows of {label, value, note}. */
export function barChart(container, rows, { format, title }) {
  const width = widthOf(container);
  const rowH = 30;
  const labelW = Math.min(180, Math.round(width * 0.35));
  const valueW = 70;
  const barW = width - labelW - valueW - 8;
  const top = Math.max(1, ...rows.map((r) => r.value));
  const height = rows.length * rowH + 4;
  const items = rows.map((r, i) => {
    const y = i * rowH + 2;
    const w = Math.max(r.value > 0 ? 2 : 0, (r.value / top) * barW);
    return s('g', {},
      s('text', { x: 0, y: y + 19, class: 'bar-label' }, r.label.length > 26 ? `${r.label.slice(0, 25)}…` : r.label),
      s('rect', { x: labelW, y: y + 5, width: barW, height: rowH - 10, rx: 3, class: 'bar-bg' }),
      s('rect', { x: labelW, y: y + 5, width: w, height: rowH - 10, rx: 3, class: `bar ${r.cls || ''}` },
        s('title', {}, `${r.label}: ${format(r.value)}${r.note ? ` · ${r.note}` : ''}`)),
      s('text', { x: width - 2, y: y + 19, class: 'bar-value', 'text-anchor': 'end' }, format(r.value)));
  });
  fill(container, s('svg', {
    viewBox: `0 0 ${width} ${height}`, width, height, role: 'img', 'aria-label': title, class: 'bar-chart',
  }, s('title', {}, title), ...items));
}

/** Stacked columns per day: series = [{key, cls}], days = [{label, short, values:{key:n}}]. */
export function stackedColumns(container, days, series, { format, title }) {
  const width = widthOf(container);
  const height = 220;
  const pad = { top: 10, right: 8, bottom: 28, left: 44 };
  const innerW = width - pad.left - pad.right;
  const innerH = height - pad.top - pad.bottom;
  const totals = days.map((d) => series.reduce((sum, k) => sum + (d.values[k.key] || 0), 0));
  const { top, ticks } = axis(Math.max(0, ...totals), totals.every(Number.isInteger));
  const slot = innerW / Math.max(1, days.length);
  const barW = Math.max(2, Math.min(28, slot * 0.7));
  const y = (v) => pad.top + innerH - (v / top) * innerH;
  const parts = [];
  for (let k = 0; k <= ticks; k += 1) {
    const v = (top * k) / ticks;
    parts.push(s('line', { x1: pad.left, x2: width - pad.right, y1: y(v), y2: y(v), class: 'grid' }));
    parts.push(s('text', { x: pad.left - 6, y: y(v) + 4, class: 'axis', 'text-anchor': 'end' }, format(v)));
  }
  const every = Math.max(1, Math.ceil(days.length / Math.max(2, Math.floor(innerW / 70))));
  days.forEach((d, i) => {
    const cx = pad.left + slot * i + slot / 2;
    let base = 0;
    for (const k of series) {
      const v = d.values[k.key] || 0;
      if (v > 0) {
        parts.push(s('rect', { x: cx - barW / 2, y: y(base + v), width: barW, height: y(base) - y(base + v), class: `stack ${k.cls}` },
          s('title', {}, `${d.long} · ${k.key}: ${format(v)}`)));
      }
      base += v;
    }
    if (i % every === 0) parts.push(s('text', { x: cx, y: height - 8, class: 'axis', 'text-anchor': 'middle' }, d.short));
  });
  fill(container, s('svg', {
    viewBox: `0 0 ${width} ${height}`, width, height, role: 'img', 'aria-label': title, class: 'stack-chart',
  }, s('title', {}, title), ...parts));
}

export function legend(items) {
  return h('span', { class: 'legend' }, items.map((i) => [h('span', { class: `sw ${i.cls}` }), i.label]));
}
