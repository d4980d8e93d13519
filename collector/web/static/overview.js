// The overview page: totals, the time series and the breakdown cards.
import { apiUrl, get, pageParam, state, withFilter } from './api.js';
import { lineChart } from './chart.js';
import { $, $$, errorBox, fill, h, table } from './dom.js';
import { bucketLabel, change, day, dec, duration, num, pct, signedPct } from './fmt.js';

export const METRICS = [
  { key: 'visitors', label: 'Visitors', format: num },
  { key: 'visits', label: 'Visits', format: num },
  { key: 'pageviews', label: 'Pageviews', format: num },
  { key: 'views_per_visit', label: 'Views per visit', format: dec },
  { key: 'bounce_rate', label: 'Bounce rate', format: pct, lowerIsBetter: true },
  { key: 'visit_duration_ms', label: 'Visit duration', format: duration },
  { key: 'events', label: 'Events', format: num },
];
const PAGE_SIZE = 10;

export function intervalFor(params) {
  const period = params.get('period') || '30d';
  if (period === 'today') return 'hour';
  if (period === 'year') return 'month';
  if (period === 'custom') {
    const span = (new Date(params.get('to')) - new Date(params.get('from'))) / 86400000;
    return span > 92 ? 'week' : 'day';
  }
  return 'day';
}

export function deltaBadge(metric, cur, prev) {
  const rel = change(cur, prev);
  if (rel === null) return h('span', { class: 'delta' }, 'new');
  const better = metric.lowerIsBetter ? rel < 0 : rel > 0;
  const cls = rel === 0 ? 'flat' : better ? 'up' : 'down';
  return h('span', { class: `delta ${cls}`, title: `previous period: ${metric.format(prev)}` },
    rel === 0 ? '±0 %' : signedPct(rel));
}

let chosen = 'visitors';
let series = null;

function drawChart() {
  if (!series) return;
  const metric = METRICS.find((m) => m.key === chosen);
  fill($('#chart-title'), metric.label);
  // The server's clock in the site's time zone, as the API's bucket labels are written.
  const now = document.body.dataset.now || '9999';
  const points = series.points.map((p) => ({
    future: p.bucket > now,
    value: p.metrics[chosen],
    short: bucketLabel(p.bucket, series.interval),
    long: series.interval === 'hour' ? `${day(p.bucket)} ${bucketLabel(p.bucket, 'hour')}` : day(p.bucket),
  }));
  const previous = series.previous ? series.previous.map((p) => ({ value: p.metrics[chosen] })) : null;
  lineChart($('#chart'), points, { previous, format: metric.format, title: `${metric.label} over time` });
  fill($('#chart-note'), previous ? 'dashed: previous period' : '');
}

function renderCards(report) {
  const cards = METRICS.map((metric) => {
    const value = report.metrics[metric.key];
    const prev = report.previous ? report.previous[metric.key] : undefined;
    return h('button', {
      type: 'button',
      class: 'metric',
      'data-metric': metric.key,
      'aria-pressed': metric.key === chosen ? 'true' : 'false',
      onclick: () => {
        chosen = metric.key;
        $$('.metric').forEach((b) => b.setAttribute('aria-pressed', String(b.dataset.metric === chosen)));
        drawChart();
      },
    },
    h('span', { class: 'metric-label' }, metric.label),
    h('span', { class: 'metric-value', 'data-value': value }, metric.format(value)),
    report.previous ? deltaBadge(metric, value, prev) : null);
  });
  fill($('#cards'), cards);
  const m = report.metrics;
  $('#empty').hidden = m.visitors + m.pageviews + m.events + m.unidentified_pageviews > 0;
}

function valueCell(dim, value) {
  if (value === null) return h('span', { class: 'muted' }, '(none)');
  return h('a', { href: withFilter(`${dim}:is:${value}`), class: 'row-link', title: `Filter by ${value}` }, value);
}

async function loadBreakdown(card) {
  const dim = card.dataset.dim;
  if (!dim) return;
  const slot = $('.table-slot', card);
  const page = Number(card.dataset.page || '1');
  slot.setAttribute('aria-busy', 'true');
  try {
    const report = await get('/api/v1/breakdown', { by: dim, limit: PAGE_SIZE, page });
    const compare = Boolean(report.previous_period);
    const columns = [
      { label: dim.startsWith('prop:') ? dim.slice(5) : card.dataset.label || $('[aria-pressed="true"]', card).textContent, value: (r) => valueCell(dim, r.value) },
      { label: 'Visitors', num: true, value: (r) => [num(r.metrics.visitors), compare && r.previous ? [' ', deltaBadge(METRICS[0], r.metrics.visitors, r.previous.visitors)] : null] },
      dim === 'event'
        ? { label: 'Count', num: true, value: (r) => num(r.value === 'pageview' ? r.metrics.pageviews : r.metrics.events) }
        : { label: 'Pageviews', num: true, value: (r) => num(r.metrics.pageviews) },
      { label: 'Bounce', num: true, value: (r) => pct(r.metrics.bounce_rate) },
      { label: 'Duration', num: true, value: (r) => duration(r.metrics.visit_duration_ms) },
    ];
    const csv = apiUrl('/api/v1/breakdown', { by: dim, format: 'csv', limit: 1000 });
    const pager = h('div', { class: 'pager' },
      h('button', {
        type: 'button', class: 'secondary small', disabled: page <= 1, 'aria-label': 'Previous page',
        onclick: () => { card.dataset.page = String(page - 1); loadBreakdown(card); },
      }, '‹ Prev'),
      h('span', { class: 'muted' }, `Page ${num(page)}`),
      h('button', {
        type: 'button', class: 'secondary small', disabled: !report.has_more, 'aria-label': 'Next page',
        onclick: () => { card.dataset.page = String(page + 1); loadBreakdown(card); },
      }, 'Next ›'),
      h('a', { href: csv, class: 'csv', download: `breakdown-${dim}.csv` }, 'CSV'));
    const alone = page === 1 && !report.has_more && report.rows.length === 0;
    fill(slot, table(columns, report.rows, { caption: `Breakdown by ${dim}` }), alone ? null : pager);
  } catch (error) {
    fill(slot, errorBox(error));
  } finally {
    slot.removeAttribute('aria-busy');
  }
}

function setupBreakdowns() {
  for (const card of $$('.breakdown')) {
    for (const button of $$('[data-dim]', card)) {
      if (button === card) continue;
      button.addEventListener('click', () => {
        $$('button[data-dim]', card).forEach((b) => b.setAttribute('aria-pressed', String(b === button)));
        card.dataset.dim = button.dataset.dim;
        card.dataset.page = '1';
        loadBreakdown(card);
      });
    }
    const form = $('[data-prop-form]', card);
    if (form) {
      const initial = pageParam('prop');
      form.addEventListener('submit', (event) => {
        event.preventDefault();
        card.dataset.dim = `prop:${form.elements.prop.value.trim()}`;
        card.dataset.page = '1';
        loadBreakdown(card);
      });
      if (initial) { form.elements.prop.value = initial; card.dataset.dim = `prop:${initial}`; }
    }
    loadBreakdown(card);
  }
}

export async function overview() {
  const params = state();
  const interval = intervalFor(params);
  setupBreakdowns();
  try {
    const [aggregate, timeseries] = await Promise.all([
      get('/api/v1/aggregate'),
      get('/api/v1/timeseries', { interval }),
    ]);
    renderCards(aggregate);
    series = timeseries;
    drawChart();
    let width = $('#chart').clientWidth;
    window.addEventListener('resize', () => {
      if ($('#chart').clientWidth !== width) { width = $('#chart').clientWidth; drawChart(); }
    });
  } catch (error) {
    fill($('#cards'), errorBox(error));
  }
}
