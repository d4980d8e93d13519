// The JSON API, called with the page's report state (site, period, filters, comparison).
const STATE_PARAMS = ['site', 'period', 'from', 'to', 'compare', 'filter'];

export function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : '';
}

/** The report state of the current URL, as query parameters for the API. */
export function state() {
  const here = new URLSearchParams(window.location.search);
  const out = new URLSearchParams();
  for (const name of STATE_PARAMS) {
    for (const value of here.getAll(name)) {
      if (name === 'site' && value === 'all') continue;
      if ((name === 'from' || name === 'to') && here.get('period') !== 'custom') continue;
      if (value !== '') out.append(name, value);
    }
  }
  return out;
}

export function apiUrl(path, extra = {}, base = state()) {
  const params = new URLSearchParams(base);
  for (const [key, value] of Object.entries(extra)) {
    if (Array.isArray(value)) value.forEach((v) => params.append(key, v));
    else if (value !== undefined && value !== null && value !== '') params.set(key, value);
  }
  const query = params.toString();
  return query ? `${path}?${query}` : path;
}

// Requests in flight: <html data-busy> says whether the page is still loading its data (what
// assistive tools and the browser tests wait for).
let inFlight = 0;
document.documentElement.dataset.busy = 'true';

async function tracked(work) {
  inFlight += 1;
  document.documentElement.dataset.busy = 'true';
  try {
    return await work();
  } finally {
    inFlight -= 1;
    // A follow-up request often starts right after this one: settle on the next task.
    setTimeout(() => { if (inFlight === 0) document.documentElement.dataset.busy = 'false'; }, 30);
  }
}

/** Mark the page as loaded when it makes no request at all. */
export function settle() {
  if (inFlight === 0) setTimeout(() => { if (inFlight === 0) document.documentElement.dataset.busy = 'false'; }, 30);
}

async function read(response) {
  if (response.status === 401) {
    window.location.assign(`/login?next=${encodeURIComponent(location.pathname + location.search)}`);
    throw new Error('Your session has ended; log in again.');
  }
  if (response.status === 204) return null;
  const type = response.headers.get('content-type') || '';
  const body = type.includes('json') ? await response.json() : await response.text();
  if (!response.ok) {
    const message = body && body.error ? `${body.error}${body.field ? ` (${body.field})` : ''}` : `HTTP ${response.status}`;
    throw new Error(message);
  }
  return body;
}

export async function get(path, extra = {}, base) {
  return tracked(async () => read(await fetch(apiUrl(path, extra, base), { credentials: 'same-origin' })));
}

export async function send(method, path, body) {
  return tracked(async () => read(await fetch(path, {
    method,
    credentials: 'same-origin',
    headers: { 'content-type': 'application/json', 'x-csrf-token': csrfToken() },
    body: body === undefined ? undefined : JSON.stringify(body),
  })));
}

/** The current page's URL with one more filter (a link: pages stay linkable). */
export function withFilter(filter) {
  const params = new URLSearchParams(window.location.search);
  if (!params.getAll('filter').includes(filter)) params.append('filter', filter);
  return `${location.pathname}?${params}`;
}

export function pageParam(name, fallback = '') {
  return new URLSearchParams(window.location.search).get(name) || fallback;
}

/** Set (or drop) page-specific parameters in the address bar without reloading. */
export function setPageParams(values) {
  const params = new URLSearchParams(window.location.search);
  for (const [key, value] of Object.entries(values)) {
    if (value) params.set(key, value); else params.delete(key);
  }
  history.replaceState(null, '', `${location.pathname}?${params}`);
}
