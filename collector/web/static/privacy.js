// The privacy page (dpo and owner): audit log, register of processing, export and DSAR forms.
import { get, send } from './api.js';
import { $, errorBox, fill, h, table } from './dom.js';
import { num, stamp } from './fmt.js';

async function audit() {
  try {
    const { check, entries } = await get('/api/v1/privacy/audit', {}, new URLSearchParams());
    const status = $('#audit-status');
    status.className = `badge ${check.ok ? 'ok' : 'bad'}`;
    fill(status, check.ok ? 'Chain intact' : 'Chain broken');
    fill($('#audit-summary'), check.ok
      ? `${num(check.entries)} entries; every link checks. Head: #${check.head_seq}, SHA-256 ${check.head_sha256.slice(0, 16)}…`
      : `First broken link at line ${check.broken.line} (${check.broken.problem}): ${check.broken.explanation}`);
    const latest = entries.slice().reverse().slice(0, 100);
    fill($('#audit-entries'), table([
      { label: '#', num: true, value: (e) => num(e.seq) },
      { label: 'When', value: (e) => stamp(e.at) },
      { label: 'Action', value: (e) => h('code', {}, e.action) },
      { label: 'Detail', value: (e) => h('span', { class: 'detail' }, Object.entries(e.detail).map(([k, v]) => `${k}=${v}`).join(' · ')) },
    ], latest, { empty: 'The audit log is empty.' }));
  } catch (error) {
    fill($('#audit-entries'), errorBox(error));
  }
}

async function register() {
  try {
    const reg = await get('/api/v1/privacy/register', { format: 'json' }, new URLSearchParams());
    const facts = [
      ['Controller', reg.controller], ['Data subjects', reg.data_subjects],
      ['Recipients', reg.recipients], ['Transfers', reg.transfers],
    ];
    const sites = reg.sites.map((site) => h('div', { class: 'register-site' },
      h('h3', {}, `${site.site} (${site.hostnames.join(', ')})`),
      table([
        { label: 'Mode', value: (p) => h('span', { class: `tag ${p.mode}` }, p.mode) },
        { label: 'Purpose', value: (p) => p.purpose },
        { label: 'Legal basis', value: (p) => p.legal_basis },
        { label: 'Data', value: (p) => p.data },
        { label: 'Retention', num: true, value: (p) => (p.retention_days === null ? '–' : `${num(p.retention_days)} days`) },
      ], site.processing),
      h('details', {}, h('summary', {}, h('h4', {}, `CNIL exemption conformance: ${['pass', 'warn', 'fail'].map((st) => `${num(site.cnil_findings.filter((f) => f.status === st).length)} ${st}`).join(', ')}`)),
      table([
        { label: 'Check', value: (f) => h('code', {}, f.code) },
        { label: 'Status', value: (f) => h('span', { class: `status ${f.status}` }, f.status) },
        { label: 'Finding', value: (f) => f.explanation },
      ], site.cnil_findings, { empty: 'No finding.' }))));
    fill($('#register'),
      h('dl', { class: 'facts' }, facts.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])),
      h('h3', {}, 'Security measures'),
      h('ul', {}, reg.security_measures.map((m) => h('li', {}, m))),
      ...sites);
  } catch (error) {
    fill($('#register'), errorBox(error));
  }
}

function result(form, lines, kind = 'notice') {
  fill($('.form-msg', form), h('div', { class: kind }, lines.map((line) => h('p', {}, line))));
}

function subject(f) {
  const out = { site: f.site.value };
  out[f.identifier.value] = f.value.value.trim();
  return out;
}

function setupForms() {
  for (const form of document.querySelectorAll('form[data-privacy]')) {
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      const f = form.elements;
      const action = form.dataset.privacy;
      const button = form.querySelector('button[type="submit"]');
      button.disabled = true;
      try {
        if (action === 'export') {
          const out = await send('POST', '/api/v1/privacy/export', {
            site: f.site.value, first_day: f.first_day.value, last_day: f.last_day.value, format: f.format.value,
          });
          result(form, [`Signed export written: ${num(out.manifest.total_rows)} rows in ${num(out.manifest.files.length)} files.`,
            `Directory on the server: ${out.dir}`, 'Check it with `mesure export verify DIR`.']);
        } else if (action === 'dsar/access') {
          const out = await send('POST', '/api/v1/privacy/dsar/access', { ...subject(f) });
          result(form, [`Found ${num(out.report.events_found)} events in ${num(out.report.visits_found)} visits.`,
            `Signed export: ${out.dir}`, out.report.cookieless_notice]);
        } else {
          const out = await send('POST', '/api/v1/privacy/dsar/erase', subject(f));
          result(form, [`Erased ${num(out.report.events_found)} events in ${num(out.report.visits_found)} visits.`,
            `Searching again finds ${num(out.report.events_after ?? 0)} rows.`, out.report.cookieless_notice]);
          audit();
        }
        if (action !== 'dsar/erase') audit();
      } catch (error) {
        fill($('.form-msg', form), errorBox(error));
      } finally {
        button.disabled = false;
      }
    });
  }
}

function defaultDates() {
  const form = document.querySelector('#export-form');
  const iso = (d) => `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
  const today = new Date();
  const start = new Date(today.getFullYear(), today.getMonth(), 1);
  if (!form.elements.first_day.value) form.elements.first_day.value = iso(start);
  if (!form.elements.last_day.value) form.elements.last_day.value = iso(today);
}

export function privacy() {
  defaultDates();
  audit();
  register();
  setupForms();
}
