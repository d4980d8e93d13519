"""HTML of the dashboard: a shell (header, navigation, report controls) around each page's
skeleton, which the page's ES module fills from the JSON API.

Every value is escaped with :func:`html.escape`; there is no inline script and no ``style``
attribute, so the Content-Security-Policy needs neither ``'unsafe-inline'`` nor hashes.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from urllib.parse import urlencode

import msgspec

from collector.auth import Principal
from collector.web.dashboard.pages import PAGES, Page
from collector.web.dashboard.skeletons import SKELETONS, Context

PERIODS = (
    ("today", "Today"),
    ("7d", "Last 7 days"),
    ("30d", "Last 30 days"),
    ("month", "This month"),
    ("year", "This year"),
    ("custom", "Custom range"),
)
#: The query parameters the report controls own; kept across pages and links.
STATE_PARAMS = ("site", "period", "from", "to", "compare", "filter")
#: A page's own parameters (chosen goal, funnel, cohorts…): kept when the controls change.
PAGE_PARAMS = ("property", "goal", "control", "cohorts", "funnel", "currency", "prop")
DIMENSION_LABELS = {
    "page": "Page",
    "entry_page": "Entry page",
    "exit_page": "Exit page",
    "hostname": "Hostname",
    "source": "Source",
    "referrer": "Referrer",
    "utm_source": "UTM source",
    "utm_medium": "UTM medium",
    "utm_campaign": "UTM campaign",
    "utm_term": "UTM term",
    "utm_content": "UTM content",
    "device": "Device",
    "browser": "Browser",
    "browser_version": "Browser version",
    "os": "OS",
    "os_version": "OS version",
    "country": "Country",
    "screen": "Screen",
    "event": "Event",
    "mode": "Consent mode",
}
OPERATOR_LABELS = {"is": "is", "is_not": "is not", "contains": "contains"}


class State(msgspec.Struct, frozen=True, kw_only=True):
    """The report controls' values, read from the query string (the API validates them)."""

    site: str = "all"
    period: str = "30d"
    date_from: str = ""
    date_to: str = ""
    compare: bool = False
    filters: tuple[str, ...] = ()
    extra: tuple[tuple[str, str], ...] = ()

    def query(self, *, without_filter: str | None = None) -> str:
        pairs: list[tuple[str, str]] = []
        if self.site != "all":
            pairs.append(("site", self.site))
        if self.period != "30d":
            pairs.append(("period", self.period))
        if self.period == "custom":
            pairs += [("from", self.date_from), ("to", self.date_to)]
        if self.compare:
            pairs.append(("compare", "previous_period"))
        pairs += [("filter", f) for f in self.filters if f != without_filter]
        return urlencode(pairs)


def state_from(params: dict[str, list[str]]) -> State:
    def first(name: str, default: str) -> str:
        values = params.get(name)
        return values[0] if values else default

    return State(
        site=first("site", "all"),
        period=first("period", "30d"),
        date_from=first("from", ""),
        date_to=first("to", ""),
        compare=first("compare", "") == "previous_period",
        filters=tuple(params.get("filter", [])),
        extra=tuple((k, params[k][0]) for k in PAGE_PARAMS if params.get(k)),
    )


def shell(
    page: Page,
    principal: Principal,
    *,
    sites: Sequence[str],
    state: State,
    csrf: str,
    body: str,
    now_local: str,
) -> str:
    """A whole dashboard page: ``body`` is the page's own content; ``now_local`` is the
    server's time in the reported site's zone (``YYYY-MM-DDTHH:MM``, as the API's buckets)."""
    nav = "".join(
        _nav_link(p, current=p.id == page.id, state=state)
        for p in PAGES
        if p.nav and principal.may(p.permission)
    )
    controls = _controls(page, sites, state) if page.controls != "none" else ""
    who = escape(principal.name)
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="csrf-token" content="{escape(csrf)}">
<title>{escape(page.title)} · Mesure</title>
<link rel="stylesheet" href="/static/dashboard.css">
<link rel="icon" href="/static/favicon.svg">
<script type="module" src="/static/app.js"></script>
</head>
<body data-page="{escape(page.id)}" data-role="{escape(principal.role)}" \
data-now="{escape(now_local)}">
<a class="skip" href="#main">Skip to content</a>
<header class="top">
  <div class="top-row">
    <a class="brand" href="/{_q(state)}">Mesure</a>
    <div class="account">
      <span class="who" title="{who}">{who}
        <span class="role">{escape(principal.role)}</span></span>
      <a href="/help">Help</a>
      <a href="/account">Account</a>
      <form method="post" action="/logout" class="inline">
        <input type="hidden" name="csrf_token" value="{escape(csrf)}">
        <button type="submit" class="link">Log out</button>
      </form>
    </div>
  </div>
  <nav class="tabs" aria-label="Reports"><ul>{nav}</ul></nav>
</header>
{controls}
<main id="main" tabindex="-1">
<h1>{escape(page.title)}</h1>
{body}
</main>
<footer class="foot">Mesure · self-hosted, privacy-first analytics · no third-party assets</footer>
</body>
</html>
"""


def page_body(page: Page, ctx: Context) -> str:
    """The content of ``page`` (its skeleton) for the caller in ``ctx``."""
    return SKELETONS[page.id](ctx)


def _q(state: State) -> str:
    query = state.query()
    return f"?{query}" if query else ""


def _nav_link(page: Page, *, current: bool, state: State) -> str:
    # Pages without report controls ignore the state; the others keep it.
    href = page.path + (_q(state) if page.controls != "none" else "")
    aria = ' aria-current="page"' if current else ""
    return f'<li><a href="{escape(href)}"{aria}>{escape(page.title)}</a></li>'


def _controls(page: Page, sites: Sequence[str], state: State) -> str:
    options = []
    if len(sites) > 1:
        selected = " selected" if state.site == "all" else ""
        options.append(f'<option value="all"{selected}>All sites</option>')
    for site in sites:
        selected = " selected" if state.site == site else ""
        options.append(f'<option value="{escape(site)}"{selected}>{escape(site)}</option>')
    parts = [
        '<label class="field"><span>Site</span>'
        f'<select name="site" id="site" data-autosubmit>{"".join(options)}</select></label>'
    ]
    if page.controls in ("full", "site-period"):
        periods = "".join(
            f'<option value="{value}"{" selected" if state.period == value else ""}>'
            f"{label}</option>"
            for value, label in PERIODS
        )
        hidden = "" if state.period == "custom" else " hidden"
        parts.append(
            '<label class="field"><span>Period</span>'
            f'<select name="period" id="period" data-autosubmit>{periods}</select></label>'
            f'<span class="custom-range" id="custom-range"{hidden}>'
            '<label class="field"><span>From</span>'
            f'<input type="date" name="from" value="{escape(state.date_from)}"></label>'
            '<label class="field"><span>To</span>'
            f'<input type="date" name="to" value="{escape(state.date_to)}"></label></span>'
        )
    if page.controls == "full":
        checked = " checked" if state.compare else ""
        parts.append(
            '<label class="toggle"><input type="checkbox" name="compare" '
            f'value="previous_period" id="compare" data-autosubmit{checked}>'
            "<span>Compare with previous period</span></label>"
        )
        parts += [f'<input type="hidden" name="filter" value="{escape(f)}">' for f in state.filters]
    parts += [
        f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">' for k, v in state.extra
    ]
    parts.append('<button type="submit" class="secondary apply">Apply</button>')
    chips = _chips(page, state) if page.controls == "full" else ""
    return (
        f'<form class="controls" method="get" action="{escape(page.path)}" '
        f'aria-label="Report settings">{"".join(parts)}</form>{chips}'
    )


def _chips(page: Page, state: State) -> str:
    if not state.filters:
        return ""
    items = []
    for text in state.filters:
        label = filter_label(text)
        rest = state.query(without_filter=text)
        href = page.path + (f"?{rest}" if rest else "")
        items.append(
            f'<li class="chip"><span>{escape(label)}</span>'
            f'<a href="{escape(href)}" aria-label="Remove filter {escape(label)}" '
            f'title="Remove filter">×</a></li>'
        )
    return (
        '<div class="chips" aria-label="Filters"><span class="chips-label">Filtered by</span>'
        f"<ul>{''.join(items)}</ul></div>"
    )


def filter_label(text: str) -> str:
    """``page:is:/a`` → ``Page is /a``; ``prop:plan:is:pro`` → ``plan is pro``."""
    if text.startswith("prop:"):
        parts = text.split(":", 3)
        if len(parts) == 4:
            return f"{parts[1]} {OPERATOR_LABELS.get(parts[2], parts[2])} {parts[3]}"
        return text
    parts = text.split(":", 2)
    if len(parts) != 3:
        return text
    dimension, op, value = parts
    return f"{DIMENSION_LABELS.get(dimension, dimension)} {OPERATOR_LABELS.get(op, op)} {value}"


def bare_page(title: str, body: str) -> str:
    """A page outside the dashboard shell (login, errors before login)."""
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)} · Mesure</title>
<link rel="stylesheet" href="/static/dashboard.css">
<link rel="icon" href="/static/favicon.svg">
</head>
<body class="bare">
<main id="main" class="card narrow">
<p class="brand">Mesure</p>
{body}
</main>
</body>
</html>
"""


def login_page(*, next_path: str, error: str | None, retry: str | None, out: bool) -> str:
    messages = {
        "invalid": "Wrong e-mail address or password.",
        # Failures of this account or address, or more logins at once than the server hashes.
        "throttled": "Too many failed attempts, or logins at once. "
        f"Try again in {escape(retry or 'a few')} seconds.",
    }
    notice = ""
    if error in messages:
        notice = f'<p class="alert" role="alert">{messages[error]}</p>'
    elif out:
        notice = '<p class="notice" role="status">You are logged out.</p>'
    body = f"""<h1>Log in</h1>
{notice}
<form method="post" action="/login" class="stack">
  <input type="hidden" name="next" value="{escape(next_path)}">
  <label class="field"><span>E-mail address</span>
    <input type="email" name="email" autocomplete="username" required autofocus></label>
  <label class="field"><span>Password</span>
    <input type="password" name="password" autocomplete="current-password" required></label>
  <button type="submit">Log in</button>
</form>
<p class="muted">Accounts are created on the server with <code>mesure user add EMAIL --role
owner</code>.</p>"""
    return bare_page("Log in", body)


def forbidden_body(page: Page) -> str:
    return (
        f'<p class="alert" role="alert">Your role cannot open the {escape(page.title)} page. '
        "Ask an owner for the dpo or owner role.</p>"
    )
