// Entry point of every dashboard page: wires the report controls, then runs the page's module.
import { settle } from './api.js';
import { $, $$ } from './dom.js';
import { overview } from './overview.js';
import { privacy } from './privacy.js';
import {
  attribution, consent, experiments, funnels, goals, realtime, retention, rfm,
} from './reports.js';

const PAGES = {
  overview, realtime, goals, funnels, retention, experiments, consent, attribution, rfm, privacy,
};

function controls() {
  const form = $('form.controls');
  if (!form) return;
  const period = $('#period', form);
  const custom = $('#custom-range', form);
  const apply = $('.apply', form);
  const sync = () => {
    if (!period || !custom) return;
    const isCustom = period.value === 'custom';
    custom.hidden = !isCustom;
    $$('input', custom).forEach((input) => { input.required = isCustom; input.disabled = !isCustom; });
  };
  sync();
  // Selects and the toggle apply at once; a custom range waits for its dates and "Apply".
  for (const input of $$('[data-autosubmit]', form)) {
    input.addEventListener('change', () => {
      sync();
      if (input === period && period.value === 'custom') { $('input', custom).focus(); return; }
      form.requestSubmit(apply);
    });
  }
  // Empty fields stay out of the URL (shorter, linkable addresses).
  form.addEventListener('formdata', (event) => {
    for (const [key, value] of Array.from(event.formData.entries())) {
      if (value === '' || (key === 'site' && value === 'all') || (key === 'period' && value === '30d')) event.formData.delete(key);
    }
  });
}

controls();
const run = PAGES[document.body.dataset.page];
if (run) run();
settle();
