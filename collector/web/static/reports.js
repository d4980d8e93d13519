// Report pages other than the overview: real-time, goals, funnels, retention, experiments,
// consent, attribution and RFM.
import { get, pageParam, send, setPageParams, state } from './api.js';
import { barChart, stackedColumns } from './chart.js';
import { $, $$, errorBox, fill, h, table } from './dom.js';
import { bucketLabel, day, dec, duration, num, pct, signedPct, stamp } from './fmt.js';
import { deltaBadge } from './overview.js';

const isOwner = () => document.body.dataset.role === 'owner';

function card(label, value, extra) {
  return h('div', { class: 'metric static' },
    h('span', { class: 'metric-label' }, label),
    h('span', { class: 'metric-value' }, value),
    extra || null);
}

async function guarded(target, work) {
  try {
    await work();
  } catch (error) {
    fill(target, errorBox(error));
  }
}

function formMessage(form, text, kind = 'notice') {
  fill($('.form-msg', form), text ? h('span', { class: kind }, text) : null);
}

// ---- real-time ------------------------------------------------------------------------
export function realtime() {
  const base = new URLSearchParams();
  const site = new URLSearchParams(location.search).get('site');
  if (site && site !== 'all') base.set('site', site);
  const refresh = () => guarded($('#rt-cards'), async () => {
    const report = await get('/api/v1/realtime', {}, base);
    fill($('#rt-cards'),
      card('Visitors now', num(report.visitors)),
      card('Pageviews', num(report.pageviews)));
    fill($('#rt-pages'), table([
      { label: 'Page', value: (r) => r.path },
      { label: 'Visitors', num: true, value: (r) => num(r.visitors) },
      { label: 'Pageviews', num: true, value: (r) => num(r.pageviews) },
    ], report.pages, { empty: 'Nobody in the last 30 minutes.' }));
    fill($('#rt-status'), `Last 30 minutes, updated ${stamp(report.until)}; refreshing every 5 seconds.`);
  });
  refresh();
  setInterval(() => { if (!document.hidden) refresh(); }, 5000);
}

// ---- goals ------------------------------------------------------------------------------
async function goalNames() {
  const report = await get('/api/v1/goals');
  const list = $('#goal-names');
  if (list) fill(list, report.goals.map((g) => h('option', { value: g.name })));
  return report;
}

export function goals() {
  const slot = $('#goals-table');
  const load = () => guarded(slot, async () => {
    const report = await get('/api/v1/goals');
    const compare = Boolean(report.previous_period);
    const columns = [
      { label: 'Goal', value: (g) => h('strong', {}, g.name) },
      { label: 'Matches', value: (g) => h('code', {}, `${g.kind}:${g.match}`) },
      { label: 'Sites', value: (g) => g.sites.join(', ') },
      { label: 'Visitors', num: true, value: (g) => num(g.visitors) },
      { label: 'Conversions', num: true, value: (g) => num(g.conversions) },
      {
        label: 'Rate', num: true, value: (g) => [pct(g.conversion_rate),
          compare ? [' ', deltaBadge({ format: pct }, g.conversion_rate, g.previous_conversion_rate)] : null],
      },
    ];
    if (isOwner()) {
      columns.push({
        label: 'Actions', value: (g) => g.sites.map((site) => h('button', {
          type: 'button', class: 'secondary small danger-text', 'aria-label': `Delete goal ${g.name} of ${site}`,
          onclick: async () => {
            if (!window.confirm(`Delete the goal “${g.name}” of ${site}?`)) return;
            await guarded(slot, async () => {
              await send('DELETE', `/api/v1/goals?${new URLSearchParams({ site, name: g.name })}`);
              await load();
            });
          },
        }, g.sites.length > 1 ? `Delete (${site})` : 'Delete')),
      });
    }
    fill(slot, table(columns, report.goals, {
      empty: isOwner() ? 'No goal yet: add one below (a thank-you page or a signup event).'
        : 'No goal yet: an owner can define goals here.',
    }));
  });
  load();
  const form = $('#goal-form');
  if (form) {
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      const f = form.elements;
      try {
        await send('POST', '/api/v1/goals', {
          site: f.site.value, name: f.name.value.trim(), kind: f.kind.value, match: f.match.value.trim(),
        });
        formMessage(form, `Goal “${f.name.value.trim()}” saved.`);
        form.reset();
        await load();
      } catch (error) {
        formMessage(form, error.message, 'alert');
      }
    });
  }
}

// ---- funnels ----------------------------------------------------------------------------
function stepName(spec) {
  const [kind, ...rest] = spec.split(':');
  return kind === 'page' ? `Visited ${rest.join(':')}` : `Event ${rest.join(':')}`;
}

async function showFunnel(funnel) {
  const box = $('#funnel-result');
  box.hidden = false;
  fill($('#funnel-title'), `${funnel.name} (${funnel.site})`);
  fill($('#funnel-within'), funnel.within === 'visit' ? 'within one visit' : `within ${funnel.within.slice(0, -1)} days`);
  const base = state();
  base.set('site', funnel.site);
  await guarded($('#funnel-table'), async () => {
    const report = await get('/api/v1/funnel', { step: funnel.steps, within: funnel.within }, base);
    barChart($('#funnel-chart'), report.steps.map((st) => ({
      label: `${st.step}. ${stepName(funnel.steps[st.step - 1])}`, value: st.visitors, note: pct(st.conversion),
    })), { format: num, title: `Visitors at each step of ${funnel.name}` });
    fill($('#funnel-table'), table([
      { label: 'Step', value: (st) => `${st.step}. ${stepName(funnel.steps[st.step - 1])}` },
      { label: 'Visitors', num: true, value: (st) => num(st.visitors) },
      { label: 'Dropped', num: true, value: (st) => num(st.dropped) },
      { label: 'Conversion', num: true, value: (st) => pct(st.conversion) },
      { label: 'From previous', num: true, value: (st) => pct(st.step_conversion) },
      { label: 'Median time', num: true, value: (st) => (st.median_ms_from_previous === null ? '–' : duration(st.median_ms_from_previous)) },
      report.previous ? {
        label: 'Previous period', num: true,
        value: (st) => { const before = report.previous[st.step - 1]; return [num(before.visitors), ' ', deltaBadge({ format: num }, st.visitors, before.visitors)]; },
      } : null,
    ].filter(Boolean), report.steps));
  });
}

export function funnels() {
  const slot = $('#funnel-list');
  const load = () => guarded(slot, async () => {
    const base = new URLSearchParams();
    const site = new URLSearchParams(location.search).get('site');
    if (site && site !== 'all') base.set('site', site);
    const { funnels: saved } = await get('/api/v1/funnels', {}, base);
    const key = (f) => `${f.site}/${f.name}`;
    const columns = [
      { label: 'Funnel', value: (f) => h('strong', {}, f.name) },
      { label: 'Site', value: (f) => f.site },
      { label: 'Steps', value: (f) => h('span', { class: 'steps' }, f.steps.map(stepName).join(' → ')) },
      {
        label: 'Actions',
        value: (f) => [
          h('button', {
            type: 'button', class: 'secondary small', 'aria-label': `Show funnel ${f.name}`,
            onclick: () => { setPageParams({ funnel: key(f) }); showFunnel(f); },
          }, 'Show'),
          isOwner() ? h('button', {
            type: 'button', class: 'secondary small danger-text', 'aria-label': `Delete funnel ${f.name}`,
            onclick: async () => {
              if (!window.confirm(`Delete the funnel “${f.name}”?`)) return;
              await guarded(slot, async () => {
                await send('DELETE', `/api/v1/funnels?${new URLSearchParams({ site: f.site, name: f.name })}`);
                await load();
              });
            },
          }, 'Delete') : null,
        ],
      },
    ];
    fill(slot, table(columns, saved, {
      empty: isOwner() ? 'No funnel yet: add one below, e.g. pricing → signup page → signup event.'
        : 'No funnel yet: an owner can define funnels here.',
    }));
    const wanted = pageParam('funnel');
    const chosen = saved.find((f) => key(f) === wanted) || saved[0];
    if (chosen) await showFunnel(chosen);
  });
  load();
  const form = $('#funnel-form');
  if (form) {
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      const f = form.elements;
      const steps = f.steps.value.split('\n').map((line) => line.trim()).filter(Boolean);
      try {
        const saved = await send('POST', '/api/v1/funnels', {
          site: f.site.value, name: f.name.value.trim(), steps, within: f.within.value,
        });
        formMessage(form, `Funnel “${saved.name}” saved.`);
        form.reset();
        setPageParams({ funnel: `${saved.site}/${saved.name}` });
        await load();
      } catch (error) {
        formMessage(form, error.message, 'alert');
      }
    });
  }
}

// ---- retention --------------------------------------------------------------------------
export function retention() {
  const load = (cohorts) => guarded($('#cohorts'), async () => {
    $$('[data-cohorts]').forEach((b) => b.setAttribute('aria-pressed', String(b.dataset.cohorts === cohorts)));
    const report = await get('/api/v1/retention', { cohorts });
    const note = report.coverage_note.charAt(0).toUpperCase() + report.coverage_note.slice(1);
    fill($('#coverage'), `Coverage: ${pct(report.coverage)} of visitors can be followed (${num(report.followed_visitors)} of ${num(report.identified_visitors)}). ${note}.`);
    const width = Math.max(0, ...report.cohorts.map((c) => c.rates.length));
    const unit = cohorts === 'week' ? 'Week' : 'Month';
    const columns = [
      { label: 'Cohort', value: (c) => (cohorts === 'week' ? day(c.start) : bucketLabel(c.start, 'month')) },
      { label: 'New visitors', num: true, value: (c) => num(c.visitors) },
    ];
    for (let k = 0; k < width; k += 1) {
      columns.push({
        label: `${unit} ${k + 1}`,
        num: true,
        value: (c) => (k < c.rates.length
          ? h('span', { class: `heat h${Math.min(5, Math.ceil(c.rates[k] * 10))}`, title: `${num(c.retained[k])} visitors` }, pct(c.rates[k]))
          : ''),
      });
    }
    fill($('#cohorts'), table(columns, report.cohorts, { empty: 'No cohort in this period.' }));
  });
  for (const button of $$('[data-cohorts]')) {
    button.addEventListener('click', () => { setPageParams({ cohorts: button.dataset.cohorts }); load(button.dataset.cohorts); });
  }
  load(pageParam('cohorts', 'week') === 'month' ? 'month' : 'week');
}

// ---- experiments ------------------------------------------------------------------------
export function experiments() {
  const form = $('#experiment-form');
  const f = form.elements;
  f.property.value = pageParam('property');
  f.goal.value = pageParam('goal');
  f.control.value = pageParam('control');
  goalNames().catch(() => {});
  const run = () => guarded($('#experiment-table'), async () => {
    $('#experiment-result').hidden = false;
    const report = await get('/api/v1/experiment', {
      property: f.property.value.trim(), goal: f.goal.value.trim(), control: f.control.value.trim(),
    });
    fill($('#experiment-title'), `${report.property} → ${report.goal}`);
    fill($('#experiment-table'), table([
      { label: 'Variant', value: (v) => [v.variant, v.is_control ? h('span', { class: 'tag' }, 'control') : null] },
      { label: 'Visitors', num: true, value: (v) => num(v.exposed) },
      { label: 'Conversions', num: true, value: (v) => num(v.converted) },
      { label: 'Rate', num: true, value: (v) => pct(v.rate) },
      { label: 'Lift', num: true, value: (v) => (v.lift === null ? '–' : signedPct(v.lift)) },
      { label: '95 % CI (difference)', num: true, value: (v) => (v.ci_low === null ? '–' : `${signedPct(v.ci_low)} … ${signedPct(v.ci_high)}`) },
      { label: 'p-value', num: true, value: (v) => (v.p_value === null ? '–' : dec(v.p_value)) },
      { label: 'Verdict', value: (v) => v.verdict || (v.no_verdict_reason ? h('span', { class: 'muted' }, v.no_verdict_reason) : '–') },
    ], report.variants, { empty: 'No visitor carried this property in this period.' }));
    fill($('#experiment-note'), report.note);
  });
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    setPageParams({ property: f.property.value.trim(), goal: f.goal.value.trim(), control: f.control.value.trim() });
    run();
  });
  if (f.property.value && f.goal.value) run();
}

// ---- consent ----------------------------------------------------------------------------
const MODES = [{ key: 'granted', cls: 'granted' }, { key: 'exempt', cls: 'exempt' }, { key: 'denied', cls: 'denied' }];

export function consent() {
  guarded($('#consent-cards'), async () => {
    const report = await get('/api/v1/consent');
    const t = report.totals;
    fill($('#consent-cards'),
      card('Consent rate', pct(t.consent_rate)),
      card('Granted hits', num(t.granted.hits)),
      card('Exempt hits', num(t.exempt.hits)),
      card('Denied hits', num(t.denied.hits)),
      card('Opt-outs', num(t.optouts)));
    stackedColumns($('#consent-chart'), report.days.map((d) => ({
      short: bucketLabel(d.day, 'day'), long: day(d.day),
      values: { granted: d.granted.hits, exempt: d.exempt.hits, denied: d.denied.hits },
    })), MODES, { format: num, title: 'Hits by consent mode per day' });
    const reasons = [];
    for (const [mode, codes] of Object.entries(report.reasons)) {
      for (const [code, count] of Object.entries(codes)) reasons.push({ mode, code, count });
    }
    reasons.sort((a, b) => b.count - a.count);
    fill($('#consent-reasons'), table([
      { label: 'Mode', value: (r) => h('span', { class: `tag ${r.mode}` }, r.mode) },
      { label: 'Reason', value: (r) => h('code', {}, r.code) },
      { label: 'Hits', num: true, value: (r) => num(r.count) },
    ], reasons));
    fill($('#consent-dropped'), table([
      { label: 'Reason', value: (r) => h('code', {}, r[0]) },
      { label: 'Hits', num: true, value: (r) => num(r[1]) },
    ], Object.entries(report.dropped), { empty: 'Every hit of this period was stored.' }));
    fill($('#consent-days'), table([
      { label: 'Day', value: (d) => day(d.day) },
      { label: 'Granted', num: true, value: (d) => num(d.granted.hits) },
      { label: 'Exempt', num: true, value: (d) => num(d.exempt.hits) },
      { label: 'Denied', num: true, value: (d) => num(d.denied.hits) },
      { label: 'Opt-outs', num: true, value: (d) => num(d.optouts) },
      { label: 'Consent rate', num: true, value: (d) => pct(d.consent_rate) },
    ], report.days.filter((d) => d.granted.hits + d.exempt.hits + d.denied.hits + d.optouts > 0).reverse()));
    fill($('#consent-note'), report.note);
  });
}

// ---- attribution ------------------------------------------------------------------------
export function attribution() {
  const form = $('#attribution-form');
  form.elements.goal.value = pageParam('goal');
  goalNames().then((report) => {
    if (!form.elements.goal.value && report.goals.length) {
      form.elements.goal.value = report.goals[0].name;
      run();
    }
  }).catch(() => {});
  const run = () => guarded($('#attribution-cards'), async () => {
    const report = await get('/api/v1/attribution', { goal: form.elements.goal.value.trim() });
    fill($('#attribution-cards'),
      card('Conversions', num(report.conversions)),
      card('Attributable', pct(report.attributable_share), h('span', { class: 'muted' }, num(report.attributable))),
      card('Unattributable', num(report.unattributable)),
      ...Object.entries(report.by_mode).map(([mode, n]) => card(`${mode} conversions`, num(n))));
    $('#attribution-result').hidden = false;
    fill($('#attribution-sources'), table([
      { label: 'Source', value: (r) => r.source },
      { label: 'Conversions', num: true, value: (r) => num(r.conversions) },
    ], report.sources, { empty: 'No attributable conversion in this period.' }));
    fill($('#attribution-note'), report.note);
  });
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    setPageParams({ goal: form.elements.goal.value.trim() });
    run();
  });
  if (form.elements.goal.value) run();
}

// ---- RFM --------------------------------------------------------------------------------
export function rfm() {
  guarded($('#rfm-cards'), async () => {
    const report = await get('/api/v1/rfm', { currency: pageParam('currency') });
    const money = (amount) => (report.currency
      ? new Intl.NumberFormat(undefined, { style: 'currency', currency: report.currency }).format(Number(amount))
      : dec(Number(amount)));
    fill($('#rfm-cards'),
      card('Customers', num(report.customers)),
      card('Customer retention', report.customer_retention_rate === null ? '–' : pct(report.customer_retention_rate)),
      card('At start', num(report.customers_at_start)),
      card('At end', num(report.customers_at_end)),
      card('New', num(report.new_customers)));
    barChart($('#rfm-chart'), report.segments.map((seg) => ({ label: seg.segment, value: seg.customers, note: money(seg.revenue) })),
      { format: num, title: 'Customers per segment' });
    fill($('#rfm-segments'), table([
      { label: 'Segment', value: (seg) => seg.segment },
      { label: 'Customers', num: true, value: (seg) => num(seg.customers) },
      { label: 'Revenue', num: true, value: (seg) => money(seg.revenue) },
    ], report.segments, { empty: 'No customer with revenue events (granted, with a user id) in this period.' }));
    fill($('#rfm-scores'), table([
      { label: 'Segment', value: (c) => c.segment },
      { label: 'R·F·M', value: (c) => `${c.r}·${c.f}·${c.m}` },
      { label: 'Last order', num: true, value: (c) => `${num(c.recency_days)} d` },
      { label: 'Orders', num: true, value: (c) => num(c.frequency) },
      { label: 'Revenue', num: true, value: (c) => money(c.monetary) },
    ], report.scores.slice(0, 20), { empty: 'No customer yet.' }));
    fill($('#rfm-note'), report.note + (report.excluded_other_currency ? ` · ${num(report.excluded_other_currency)} events in another currency left out` : ''));
  });
}
