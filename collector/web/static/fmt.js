// Numbers, rates, durations and dates in the viewer's locale: the browser's (Intl's default);
// mesure.toml has no locale setting.
const LOCALE = undefined;
const integer = new Intl.NumberFormat(LOCALE, { maximumFractionDigits: 0 });
const decimal = new Intl.NumberFormat(LOCALE, { maximumFractionDigits: 2 });
const percent = new Intl.NumberFormat(LOCALE, { style: 'percent', maximumFractionDigits: 1 });
const signedPercent = new Intl.NumberFormat(LOCALE, {
  style: 'percent', maximumFractionDigits: 1, signDisplay: 'exceptZero',
});
const dayFormat = new Intl.DateTimeFormat(LOCALE, { day: 'numeric', month: 'short' });
const fullDay = new Intl.DateTimeFormat(LOCALE, { day: 'numeric', month: 'short', year: 'numeric' });
const monthFormat = new Intl.DateTimeFormat(LOCALE, { month: 'short', year: 'numeric' });
const timeFormat = new Intl.DateTimeFormat(LOCALE, { hour: 'numeric', minute: '2-digit' });
const stampFormat = new Intl.DateTimeFormat(LOCALE, { dateStyle: 'medium', timeStyle: 'medium' });

export const num = (n) => (n === null || n === undefined ? '–' : integer.format(n));
export const dec = (n) => (n === null || n === undefined ? '–' : decimal.format(n));
export const pct = (f) => (f === null || f === undefined ? '–' : percent.format(f));
export const signedPct = (f) => (f === null || f === undefined ? '–' : signedPercent.format(f));

export function duration(ms) {
  if (ms === null || ms === undefined) return '–';
  const total = Math.round(ms / 1000);
  const hours = Math.floor(total / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const seconds = total % 60;
  const two = (x) => String(x).padStart(2, '0');
  return hours ? `${hours}h ${two(minutes)}m` : `${minutes}m ${two(seconds)}s`;
}

/** A local date or time label of the API ("2026-03-10", "2026-03-10T13:00"), kept in the
 * site's own time zone: the components are read as they are, never shifted. */
export function parseLocal(label) {
  const [date, time] = String(label).split('T');
  const [y, m, d] = date.split('-').map(Number);
  const [hh, mm] = (time || '0:0').split(':').map(Number);
  return new Date(y, (m || 1) - 1, d || 1, hh || 0, mm || 0);
}

export function bucketLabel(label, interval) {
  const when = parseLocal(label);
  if (interval === 'hour') return timeFormat.format(when);
  if (interval === 'month') return monthFormat.format(when);
  return dayFormat.format(when);
}

export const day = (label) => fullDay.format(parseLocal(label));
export const stamp = (iso) => stampFormat.format(new Date(iso));

/** Relative change of cur over prev, or null when there is nothing to compare with. */
export function change(cur, prev) {
  if (prev === null || prev === undefined || cur === null || cur === undefined) return null;
  if (prev === 0) return cur === 0 ? 0 : null;
  return (cur - prev) / prev;
}
