"""Each page's own content: headings, containers the ES modules fill, and the real forms
(labelled, keyboard-usable) that the modules submit to the JSON API."""

from __future__ import annotations

from collections.abc import Callable
from html import escape

import msgspec

from collector.auth import Principal
from collector.web.dashboard.pages import PAGES


class Context(msgspec.Struct, frozen=True, kw_only=True):
    """What a page's content may show: the caller, its sites, its CSRF token, embed tags."""

    principal: Principal
    sites: tuple[str, ...]
    csrf: str
    embed_tags: dict[str, str]


Skeleton = Callable[[Context], str]

BREAKDOWNS = (
    ("Pages", ("page", "entry_page", "exit_page")),
    ("Sources", ("source", "referrer")),
    ("Campaigns", ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")),
    ("Devices", ("device", "browser", "browser_version", "os", "os_version", "screen")),
    ("Locations", ("country",)),
    ("Events", ("event",)),
)
TAB_LABELS = {
    "page": "Page",
    "entry_page": "Entry",
    "exit_page": "Exit",
    "source": "Source",
    "referrer": "Referrer",
    "utm_source": "Source",
    "utm_medium": "Medium",
    "utm_campaign": "Campaign",
    "utm_term": "Term",
    "utm_content": "Content",
    "device": "Device",
    "browser": "Browser",
    "browser_version": "Version",
    "os": "OS",
    "os_version": "OS version",
    "screen": "Screen",
    "country": "Country",
    "event": "Event",
}
DOCS_HREF = "/help"


def embed_section(
    embed_tags: dict[str, str],
    *,
    hidden: bool,
    title: str = "No visits recorded in this period yet",
) -> str:
    tags = "".join(
        f'<h3>{escape(site)}</h3><pre class="code" tabindex="0"><code>{escape(tag)}</code></pre>'
        for site, tag in embed_tags.items()
    )
    attr = " hidden" if hidden else ""
    guide = f'<p><a href="{DOCS_HREF}">Read the setup guide</a> for events, goals and consent.</p>'
    return f"""<section class="card empty" id="empty"{attr} aria-labelledby="empty-title">
<h2 id="empty-title">{escape(title)}</h2>
<p>If you have just installed Mesure, paste this tag into the <code>&lt;head&gt;</code> of every
page of your site (the server prints it with <code>mesure snippet --site SITE</code>). Visits
appear here within seconds; the <a href="/realtime">Real-time</a> page shows them live.</p>
{tags}
{"" if not hidden else guide}
</section>"""


def _site_select(sites: tuple[str, ...], name: str = "site") -> str:
    options = "".join(f'<option value="{escape(s)}">{escape(s)}</option>' for s in sites)
    return f'<label class="field"><span>Site</span><select name="{name}">{options}</select></label>'


def overview(ctx: Context) -> str:
    cards = []
    for title, dims in BREAKDOWNS:
        buttons = "".join(
            f'<button type="button" data-dim="{d}" aria-pressed="{"true" if i == 0 else "false"}">'
            f"{TAB_LABELS[d]}</button>"
            for i, d in enumerate(dims)
        )
        tabs = (
            f'<div class="seg" role="group" aria-label="{escape(title)} breakdowns">{buttons}</div>'
            if len(dims) > 1
            else ""
        )
        label = "" if len(dims) > 1 else f' data-label="{TAB_LABELS[dims[0]]}"'
        cards.append(
            f'<section class="card breakdown" data-dim="{dims[0]}"{label} '
            f'aria-label="{escape(title)}">'
            f'<div class="card-head"><h2>{escape(title)}</h2>{tabs}</div>'
            '<div class="table-slot" aria-live="polite"></div></section>'
        )
    cards.append(
        '<section class="card breakdown" data-dim="" aria-label="Properties">'
        '<div class="card-head"><h2>Properties</h2>'
        '<form class="prop-form inline-form" data-prop-form>'
        '<label class="field compact"><span>Property</span>'
        '<input name="prop" placeholder="e.g. plan" pattern="[A-Za-z0-9_.\\-]{1,64}" '
        'required></label><button type="submit" class="secondary">Show</button></form></div>'
        '<div class="table-slot" aria-live="polite"><p class="muted">Custom properties sent '
        "with granted events (e.g. <code>plan</code>, <code>variant</code>): name one to see "
        "its values.</p></div></section>"
    )
    return f"""{embed_section(ctx.embed_tags, hidden=True)}
<section class="metric-cards" id="cards" aria-label="Totals" aria-live="polite"></section>
<section class="card">
<div class="card-head"><h2 id="chart-title">Visitors</h2><span class="muted" id="chart-note"></span>
</div>
<div class="chart" id="chart"></div>
</section>
<div class="grid">{"".join(cards)}</div>"""


def realtime(ctx: Context) -> str:
    return """<p class="muted" id="rt-status" role="status">Refreshing every 5 seconds.</p>
<section class="metric-cards" id="rt-cards" aria-label="Last 30 minutes"></section>
<section class="card"><div class="card-head"><h2>Pages in the last 30 minutes</h2></div>
<div class="table-slot" id="rt-pages"></div></section>"""


def goals(ctx: Context) -> str:
    form = ""
    if ctx.principal.may("manage"):
        form = f"""<section class="card">
<h2>Add or update a goal</h2>
<form id="goal-form" class="form-grid">
{_site_select(ctx.sites)}
<label class="field"><span>Name</span><input name="name" required maxlength="100"
 placeholder="Signed up"></label>
<label class="field"><span>Type</span><select name="kind">
<option value="page">Pageview of a path</option><option value="event">Event</option></select>
</label>
<label class="field"><span>Path pattern or event name</span><input name="match" required
 maxlength="500" placeholder="/thank-you* or signup"></label>
<button type="submit">Save goal</button>
<p class="form-msg" role="status"></p>
</form>
<p class="muted">A path pattern matches pageviews; <code>*</code> matches anything
(<code>/blog/*</code>). An event goal matches events of that name.</p>
</section>"""
    return f"""<section class="card"><div class="card-head"><h2>Goal conversions</h2></div>
<div class="table-slot" id="goals-table" aria-live="polite"></div></section>
{form}"""


def funnels(ctx: Context) -> str:
    form = ""
    if ctx.principal.may("manage"):
        form = f"""<section class="card">
<h2>Add or update a funnel</h2>
<form id="funnel-form" class="form-grid">
{_site_select(ctx.sites)}
<label class="field"><span>Name</span><input name="name" required maxlength="100"
 placeholder="Checkout"></label>
<label class="field wide"><span>Steps, one per line: <code>page:/path*</code> or
<code>event:name</code></span><textarea name="steps" rows="4" required
 placeholder="page:/pricing&#10;page:/signup&#10;event:signup"></textarea></label>
<label class="field"><span>Within</span><select name="within">
<option value="visit">one visit</option><option value="1d">1 day</option>
<option value="7d">7 days</option><option value="30d">30 days</option></select></label>
<button type="submit">Save funnel</button>
<p class="form-msg" role="status"></p>
</form></section>"""
    return f"""<section class="card"><div class="card-head"><h2>Saved funnels</h2></div>
<div class="table-slot" id="funnel-list"></div></section>
<section class="card" id="funnel-result" hidden><div class="card-head">
<h2 id="funnel-title">Funnel</h2><span class="muted" id="funnel-within"></span></div>
<div class="chart" id="funnel-chart"></div><div class="table-slot" id="funnel-table"></div>
</section>
{form}"""


def retention(ctx: Context) -> str:
    return """<section class="card"><div class="card-head"><h2>Cohorts</h2>
<div class="seg" role="group" aria-label="Cohort size">
<button type="button" data-cohorts="week" aria-pressed="true">Weekly</button>
<button type="button" data-cohorts="month" aria-pressed="false">Monthly</button></div></div>
<p class="muted" id="coverage"></p>
<div class="table-slot" id="cohorts" aria-live="polite"></div></section>"""


def experiments(ctx: Context) -> str:
    return """<section class="card">
<form id="experiment-form" class="form-grid">
<label class="field"><span>Variant property</span><input name="property" required
 placeholder="variant" pattern="[A-Za-z0-9_.\\-]{1,64}"></label>
<label class="field"><span>Goal (saved name, page:/path or event:name)</span>
<input name="goal" required list="goal-names" placeholder="event:signup"></label>
<datalist id="goal-names"></datalist>
<label class="field"><span>Control variant (optional)</span><input name="control"
 placeholder="A"></label>
<button type="submit">Show results</button>
</form></section>
<section class="card" id="experiment-result" hidden><div class="card-head">
<h2 id="experiment-title">Results</h2></div>
<div class="table-slot" id="experiment-table"></div><p class="muted" id="experiment-note"></p>
</section>"""


def consent(ctx: Context) -> str:
    return """<section class="metric-cards" id="consent-cards" aria-label="Consent totals">
</section>
<section class="card"><div class="card-head"><h2>Hits by consent mode per day</h2>
<span class="legend"><span class="sw granted"></span>granted <span class="sw exempt"></span>exempt
<span class="sw denied"></span>denied</span></div>
<div class="chart" id="consent-chart"></div></section>
<div class="grid">
<section class="card"><div class="card-head"><h2>Reason codes</h2></div>
<div class="table-slot" id="consent-reasons"></div></section>
<section class="card"><div class="card-head"><h2>Hits not stored</h2></div>
<div class="table-slot" id="consent-dropped"></div></section>
</div>
<section class="card"><details><summary><h2>By day</h2></summary>
<div class="table-slot" id="consent-days"></div></details>
<p class="muted" id="consent-note"></p></section>"""


def attribution(ctx: Context) -> str:
    return """<section class="card">
<form id="attribution-form" class="form-grid">
<label class="field"><span>Goal (saved name, page:/path or event:name)</span>
<input name="goal" required list="goal-names" placeholder="event:signup"></label>
<datalist id="goal-names"></datalist>
<button type="submit">Show attribution</button>
</form></section>
<section class="metric-cards" id="attribution-cards" aria-label="Attribution"></section>
<section class="card" id="attribution-result" hidden><div class="card-head">
<h2>Attributable conversions by source</h2></div>
<div class="table-slot" id="attribution-sources"></div>
<p class="muted" id="attribution-note"></p></section>"""


def rfm(ctx: Context) -> str:
    return """<section class="metric-cards" id="rfm-cards" aria-label="Customers"></section>
<div class="grid">
<section class="card"><div class="card-head"><h2>Segments</h2></div>
<div class="chart" id="rfm-chart"></div>
<div class="table-slot" id="rfm-segments"></div></section>
<section class="card"><div class="card-head"><h2>Top customers (pseudonymous)</h2></div>
<div class="table-slot" id="rfm-scores"></div></section>
</div><p class="muted" id="rfm-note"></p>"""


def privacy(ctx: Context) -> str:
    site = _site_select(ctx.sites)
    return f"""<section class="card"><div class="card-head"><h2>Audit log</h2>
<span id="audit-status" class="badge"></span></div>
<p class="muted" id="audit-summary"></p>
<div class="table-slot" id="audit-entries"></div></section>
<div class="grid">
<section class="card"><h2>Signed export</h2>
<form id="export-form" class="stack" data-privacy="export">
{site}
<label class="field"><span>First day</span><input type="date" name="first_day" required></label>
<label class="field"><span>Last day</span><input type="date" name="last_day" required></label>
<label class="field"><span>Format</span><select name="format"><option>ndjson</option>
<option>csv</option></select></label>
<button type="submit">Export</button>
<div class="form-msg" role="status"></div></form></section>
<section class="card"><h2>Access request (Art. 15)</h2>
<form id="access-form" class="stack" data-privacy="dsar/access">
{site}
{_subject_fields()}
<button type="submit">Export their data</button>
<div class="form-msg" role="status"></div></form></section>
<section class="card"><h2>Erasure request (Art. 17)</h2>
<form id="erase-form" class="stack" data-privacy="dsar/erase">
{site}
{_subject_fields()}
<label class="toggle"><input type="checkbox" name="confirm" required>
<span>I understand this deletes every row stored under this identifier</span></label>
<button type="submit" class="danger">Erase their data</button>
<div class="form-msg" role="status"></div></form></section>
</div>
<section class="card"><div class="card-head"><h2>Register of processing (GDPR Art. 30)</h2>
<span class="links"><a href="/api/v1/privacy/register?format=md" download="register.md">Markdown</a>
<a href="/api/v1/privacy/register?format=html" download="register.html">HTML</a></span></div>
<div id="register"></div></section>"""


def _subject_fields() -> str:
    return """<label class="field"><span>Identifier</span><select name="identifier">
<option value="user_id">User id (as the site sends it)</option>
<option value="client_id">Client id (shown on the opt-out page)</option></select></label>
<label class="field"><span>Value</span><input name="value" required autocomplete="off"></label>"""


def account(ctx: Context) -> str:
    return f"""<section class="card narrow-card">
<p>Logged in as <strong>{escape(ctx.principal.name)}</strong>, role
<strong>{escape(ctx.principal.role)}</strong>.</p>
<h2>Change password</h2>
<form method="post" action="/account/password" class="stack">
<input type="hidden" name="csrf_token" value="{escape(ctx.csrf)}">
<label class="field"><span>Current password</span><input type="password" name="current"
 autocomplete="current-password" required></label>
<label class="field"><span>New password (at least 10 characters)</span><input type="password"
 name="new" autocomplete="new-password" minlength="10" required></label>
<label class="field"><span>New password again</span><input type="password" name="again"
 autocomplete="new-password" minlength="10" required></label>
<button type="submit">Change password</button>
</form>
<p class="muted">Changing it ends every other session of this account.</p>
</section>"""


def help_page(ctx: Context) -> str:
    items = "".join(
        f'<dt><a href="{p.path}">{escape(p.title)}</a></dt><dd>{escape(p.summary)}</dd>'
        for p in PAGES
        if p.nav and ctx.principal.may(p.permission)
    )
    tags = embed_section(ctx.embed_tags, hidden=False, title="Install the tag")
    return f"""{tags}
<section class="card"><h2>Goals, events and properties</h2>
<p>Send events with <code>mesure('event', 'signup', {{props: {{plan: 'pro'}}}})</code> from
the page; add a goal on the <a href="/goals">Goals</a> page (a path pattern or an event
name); name a property on the Overview page to break it down; an experiment is a property such as
<code>variant</code> plus a goal.</p></section>
<section class="card"><h2>What each page shows</h2><dl class="pages">{items}</dl></section>"""


SKELETONS: dict[str, Skeleton] = {
    "overview": overview,
    "realtime": realtime,
    "goals": goals,
    "funnels": funnels,
    "retention": retention,
    "experiments": experiments,
    "consent": consent,
    "attribution": attribution,
    "rfm": rfm,
    "privacy": privacy,
    "account": account,
    "help": help_page,
}
