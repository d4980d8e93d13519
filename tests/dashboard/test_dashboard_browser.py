"""The dashboard in Chromium with real data: log in through the form, open every page, check
the numbers shown against the JSON API, filter by clicking a breakdown row, toggle the
comparison, edit goals and funnels, watch real-time refresh, and fit a 360 px screen. Every
page's screenshot is saved under ``tests/artifacts/``. No console error and no CSP violation
may happen in any of it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.dashboard.conftest import ARTIFACTS, Dashboard
from tests.dashboard.dataset import PASSWORD, USERS
from tests.support import BROWSER_UA

#: Reported as console errors by the page itself, so that the check below sees them.
WATCH_CSP = """
document.addEventListener('securitypolicyviolation', (e) => {
  console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`);
});
"""


class Console:
    """Console errors, page errors and CSP violations seen by one browser context."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def watch(self, page: Page) -> None:
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))


@pytest.fixture(scope="module")
def console() -> Console:
    return Console()


@pytest.fixture(scope="module")
def context(dashboard_browser: Browser, console: Console) -> Iterator[BrowserContext]:
    context = dashboard_browser.new_context(
        locale="en-US", viewport={"width": 1280, "height": 900}, base_url=""
    )
    context.add_init_script(WATCH_CSP)
    context.on("page", console.watch)
    yield context
    context.close()
    assert console.errors == [], console.errors


@pytest.fixture(scope="module")
def page(context: BrowserContext, dashboard: Dashboard) -> Page:
    """The owner, logged in through the login form."""
    page = context.new_page()
    page.goto(f"{dashboard.url}/goals?period=7d")
    assert urlsplit(page.url).path == "/login"  # anonymous: sent to the login page
    page.get_by_label("E-mail address").fill(USERS["owner"])
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{dashboard.url}/goals?period=7d")  # and back where it was going
    return page


def api(page: Page, path: str, **params: Any) -> Any:
    """What the JSON API answers this session (the browser context's own cookies)."""
    query = urlencode(params, doseq=True)
    response = page.request.get(f"{path}?{query}" if query else path)
    assert response.ok, response.text()
    return response.json()


def count(n: int) -> str:
    return f"{n:,}"


def percent(fraction: float) -> str:
    return f"{fraction * 100:.1f}".removesuffix(".0") + "%"


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"dashboard-{name}.png"), full_page=True)


def open_page(page: Page, dashboard: Dashboard, path: str) -> None:
    page.goto(dashboard.url + path)
    wait_for_data(page)


def wait_for_data(page: Page) -> None:
    """Until the page's API requests are answered and drawn (``<html data-busy=false>``)."""
    page.wait_for_selector("html[data-busy=false]", state="attached")


def test_overview_shows_the_api_numbers(page: Page, dashboard: Dashboard) -> None:
    open_page(page, dashboard, "/")
    aggregate = api(page, f"{dashboard.url}/api/v1/aggregate")["metrics"]
    cards = page.locator("#cards")
    expect(cards.locator("[data-metric=visitors] .metric-value")).to_have_text(
        count(aggregate["visitors"])
    )
    expect(cards.locator("[data-metric=pageviews] .metric-value")).to_have_text(
        count(aggregate["pageviews"])
    )
    expect(cards.locator("[data-metric=bounce_rate] .metric-value")).to_have_text(
        percent(aggregate["bounce_rate"])
    )
    assert aggregate["visitors"] > 100  # real data, not an empty state
    expect(page.locator("#empty")).to_be_hidden()
    pages = api(page, f"{dashboard.url}/api/v1/breakdown", by="page", limit=10)["rows"]
    first = page.locator("section[aria-label=Pages] tbody tr").first
    expect(first.locator("td").nth(0)).to_have_text(pages[0]["value"])
    expect(first.locator("td").nth(2)).to_have_text(count(pages[0]["metrics"]["pageviews"]))
    # Thirty daily points in the chart, each titled with its value.
    series = api(page, f"{dashboard.url}/api/v1/timeseries", interval="day")["points"]
    assert page.locator("#chart circle").count() == len(series) == 30
    # Another breakdown tab, then its CSV link: the API's own CSV.
    devices = page.locator("section[aria-label=Devices]")
    devices.get_by_role("button", name="Browser", exact=True).click()
    browsers = api(page, f"{dashboard.url}/api/v1/breakdown", by="browser", limit=10)["rows"]
    expect(devices.locator("tbody tr").first.locator("td").first).to_have_text(browsers[0]["value"])
    csv = devices.get_by_role("link", name="CSV").get_attribute("href")
    assert csv is not None
    download = page.request.get(dashboard.url + csv)
    assert download.text().splitlines()[0].startswith("browser,visitors,visits,pageviews")
    assert download.text().splitlines()[1].startswith(f"{browsers[0]['value']},")
    # A custom property, named in the Properties card.
    props = page.locator("section[aria-label=Properties]")
    props.get_by_label("Property").fill("variant")
    props.get_by_role("button", name="Show").click()
    variants = api(page, f"{dashboard.url}/api/v1/breakdown", by="prop:variant", limit=10)
    expect(props.locator("tbody tr")).to_have_count(len(variants["rows"]))
    expect(props.locator("tbody tr").first.locator("td").nth(1)).to_have_text(
        count(variants["rows"][0]["metrics"]["visitors"])
    )
    shot(page, "overview")


def test_an_empty_period_tells_the_owner_what_to_do(page: Page, dashboard: Dashboard) -> None:
    open_page(page, dashboard, "/?site=example&period=custom&from=2020-01-01&to=2020-01-31")
    empty = page.locator("#empty")
    expect(empty).to_be_visible()
    expect(empty.locator("pre")).to_have_count(1)  # the selected site's tag only
    expect(empty.locator("pre")).to_contain_text('data-site="example"')
    expect(empty.get_by_role("link", name="Read the setup guide")).to_have_attribute(
        "href", "/help"
    )
    expect(page.locator("[data-metric=visitors] .metric-value")).to_have_text("0")
    shot(page, "overview-empty")


def test_clicking_a_row_filters_and_comparison_toggles(page: Page, dashboard: Dashboard) -> None:
    open_page(page, dashboard, "/")
    page.locator("section[aria-label=Pages]").get_by_role("link", name="/pricing").click()
    page.wait_for_url("**filter=page%3Ais%3A%2Fpricing")
    wait_for_data(page)
    assert parse_qs(urlsplit(page.url).query)["filter"] == ["page:is:/pricing"]
    expect(page.locator(".chip")).to_have_text("Page is /pricing×")
    filtered = api(page, f"{dashboard.url}/api/v1/aggregate", filter="page:is:/pricing")
    expect(page.locator("[data-metric=visitors] .metric-value")).to_have_text(
        count(filtered["metrics"]["visitors"])
    )
    page.get_by_label("Compare with previous period").check()
    page.wait_for_url("**compare=previous_period**")
    wait_for_data(page)
    compared = api(
        page,
        f"{dashboard.url}/api/v1/aggregate",
        filter="page:is:/pricing",
        compare="previous_period",
    )
    before, now = compared["previous"]["visitors"], compared["metrics"]["visitors"]
    change = (now - before) / before
    expected = f"{change * 100:+.1f}".removesuffix(".0") + "%"
    expect(page.locator("[data-metric=visitors] .delta")).to_have_text(expected)
    expect(page.locator("#chart path.previous")).to_have_count(1)
    shot(page, "overview-filtered-compared")
    page.get_by_role("link", name="Remove filter Page is /pricing").click()
    page.wait_for_url(lambda url: "filter" not in url)
    wait_for_data(page)
    assert "filter" not in parse_qs(urlsplit(page.url).query)
    assert parse_qs(urlsplit(page.url).query)["compare"] == ["previous_period"]


def test_every_report_page_shows_the_api_numbers(page: Page, dashboard: Dashboard) -> None:
    url = dashboard.url
    open_page(page, dashboard, "/goals")
    goals = {g["name"]: g for g in api(page, f"{url}/api/v1/goals")["goals"]}
    row = page.locator("#goals-table tr", has_text="Signed up")
    expect(row.locator("td").nth(4)).to_have_text(count(goals["Signed up"]["conversions"]))
    shot(page, "goals")

    open_page(page, dashboard, "/funnels")
    steps = ["page:/pricing", "page:/signup", "event:signup"]
    funnel = api(page, f"{url}/api/v1/funnel", site="example", step=steps)["steps"]
    rows = page.locator("#funnel-table tbody tr")
    expect(rows).to_have_count(3)
    for index, step in enumerate(funnel):
        expect(rows.nth(index).locator("td").nth(1)).to_have_text(count(step["visitors"]))
    shot(page, "funnels")

    open_page(page, dashboard, "/retention")
    cohorts = api(page, f"{url}/api/v1/retention", cohorts="week")["cohorts"]
    first = page.locator("#cohorts tbody tr").first
    expect(first.locator("td").nth(1)).to_have_text(count(cohorts[0]["visitors"]))
    expect(first.locator("td").nth(2)).to_have_text(percent(cohorts[0]["rates"][0]))
    shot(page, "retention")

    open_page(page, dashboard, "/experiments?property=variant&goal=Signed+up&control=A")
    variants = api(
        page, f"{url}/api/v1/experiment", property="variant", goal="Signed up", control="A"
    )["variants"]
    rows = page.locator("#experiment-table tbody tr")
    expect(rows).to_have_count(2)
    for index, variant in enumerate(variants):
        expect(rows.nth(index).locator("td").nth(1)).to_have_text(count(variant["exposed"]))
        expect(rows.nth(index).locator("td").nth(2)).to_have_text(count(variant["converted"]))
    assert variants[1]["no_verdict_reason"]  # below the minimum sample: no winner declared
    expect(rows.nth(1)).to_contain_text("a verdict needs 100 per arm")
    shot(page, "experiments")

    open_page(page, dashboard, "/consent")
    totals = api(page, f"{url}/api/v1/consent")["totals"]
    cards = page.locator("#consent-cards .metric-value")
    expect(cards.nth(0)).to_have_text(percent(totals["consent_rate"]))
    expect(cards.nth(1)).to_have_text(count(totals["granted"]["hits"]))
    expect(cards.nth(4)).to_have_text(count(totals["optouts"]))
    assert page.locator("#consent-chart rect.stack").count() > 20
    shot(page, "consent")

    open_page(page, dashboard, "/attribution?goal=Signed+up")
    attribution = api(page, f"{url}/api/v1/attribution", goal="Signed up")
    cards = page.locator("#attribution-cards .metric-value")
    expect(cards.nth(0)).to_have_text(count(attribution["conversions"]))
    expect(cards.nth(1)).to_have_text(percent(attribution["attributable_share"]))
    shot(page, "attribution")

    open_page(page, dashboard, "/rfm?site=shop")
    rfm = api(page, f"{url}/api/v1/rfm", site="shop")
    expect(page.locator("#rfm-cards .metric-value").first).to_have_text(count(rfm["customers"]))
    assert rfm["customers"] > 0
    expect(page.locator("#rfm-segments tbody tr")).to_have_count(len(rfm["segments"]))
    shot(page, "rfm")

    open_page(page, dashboard, "/privacy")
    audit = api(page, f"{url}/api/v1/privacy/audit")
    expect(page.locator("#audit-status")).to_have_text("Chain intact")
    expect(page.locator("#audit-entries tbody tr")).to_have_count(len(audit["entries"]))
    expect(page.locator("#register")).to_contain_text("Legal basis")
    shot(page, "privacy")

    for path, name in (("/account", "account"), ("/help", "help")):
        open_page(page, dashboard, path)
        shot(page, name)


def test_goals_and_funnels_are_edited_in_the_ui(page: Page, dashboard: Dashboard) -> None:
    open_page(page, dashboard, "/goals")
    form = page.locator("#goal-form")
    form.get_by_label("Name", exact=True).fill("Read the docs")
    form.get_by_label("Type").select_option("page")
    form.get_by_label("Path pattern or event name").fill("/docs*")
    form.get_by_role("button", name="Save goal").click()
    row = page.locator("#goals-table tr", has_text="Read the docs")
    expect(row).to_have_count(1)
    goals = {g["name"]: g for g in api(page, f"{dashboard.url}/api/v1/goals")["goals"]}
    expect(row.locator("td").nth(4)).to_have_text(count(goals["Read the docs"]["conversions"]))
    assert goals["Read the docs"]["conversions"] > 0
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Delete goal Read the docs of example").click()
    expect(row).to_have_count(0)
    assert "Read the docs" not in {
        g["name"] for g in api(page, f"{dashboard.url}/api/v1/goals")["goals"]
    }

    open_page(page, dashboard, "/funnels")
    form = page.locator("#funnel-form")
    form.get_by_label("Name", exact=True).fill("Docs to pricing")
    form.locator("textarea[name=steps]").fill("page:/docs\npage:/pricing")
    form.get_by_label("Within").select_option("7d")
    form.get_by_role("button", name="Save funnel").click()
    expect(page.locator("#funnel-title")).to_have_text("Docs to pricing (example)")
    expect(page.locator("#funnel-within")).to_have_text("within 7 days")
    report = api(
        page,
        f"{dashboard.url}/api/v1/funnel",
        site="example",
        step=["page:/docs", "page:/pricing"],
        within="7d",
    )
    rows = page.locator("#funnel-table tbody tr")
    expect(rows.nth(1).locator("td").nth(1)).to_have_text(count(report["steps"][1]["visitors"]))
    saved = api(page, f"{dashboard.url}/api/v1/funnels")["funnels"]
    assert {
        "site": "example",
        "name": "Docs to pricing",
        "steps": ["page:/docs", "page:/pricing"],
        "within": "7d",
    } in saved


def test_privacy_forms_export_and_erase(page: Page, dashboard: Dashboard) -> None:
    client_id = "cid-dashboard-erase-1"
    with httpx.Client(base_url=dashboard.url, headers={"user-agent": BROWSER_UA}) as client:
        for path in ("/a", "/b"):
            hit = {
                "site": "example",
                "url": f"https://example.com{path}",
                "mode": "granted",
                "cid": client_id,
            }
            assert client.post("/api/hit", json=hit).status_code == 202
    open_page(page, dashboard, "/privacy")
    entries = len(api(page, f"{dashboard.url}/api/v1/privacy/audit")["entries"])
    export = page.locator("#export-form")
    export.get_by_label("First day").fill("2026-03-01")
    export.get_by_label("Last day").fill("2026-03-10")
    export.get_by_role("button", name="Export").click()
    expect(export.locator(".form-msg")).to_contain_text("Signed export written:")
    audit = api(page, f"{dashboard.url}/api/v1/privacy/audit")["entries"]
    assert len(audit) > entries and audit[-1]["action"].startswith("export")
    expect(page.locator("#audit-entries tbody tr")).to_have_count(len(audit))
    expect(page.locator("#audit-entries tbody tr").first).to_contain_text(audit[-1]["action"])
    erase = page.locator("#erase-form")
    erase.locator("select[name=identifier]").select_option("client_id")
    erase.locator("input[name=value]").fill(client_id)
    erase.get_by_label("I understand").check()
    erase.get_by_role("button", name="Erase their data").click()
    expect(erase.locator(".form-msg")).to_contain_text("Erased 2 events in 1 visits.")
    expect(erase.locator(".form-msg")).to_contain_text("Searching again finds 0 rows.")
    shot(page, "privacy-after-erasure")


def test_realtime_refreshes_by_itself(page: Page, dashboard: Dashboard) -> None:
    open_page(page, dashboard, "/realtime?site=example")
    before = api(page, f"{dashboard.url}/api/v1/realtime", site="example")["pageviews"]
    expect(page.locator("#rt-cards .metric-value").nth(1)).to_have_text(count(before))
    with httpx.Client(base_url=dashboard.url, headers={"user-agent": BROWSER_UA}) as client:
        hit = {"site": "example", "url": "https://example.com/live-now", "mode": "granted"}
        assert client.post("/api/hit", json=hit).status_code == 202
    # No reload: the page polls every 5 s (a bound on the wait, not a timing assertion).
    expect(page.locator("#rt-cards .metric-value").nth(1)).to_have_text(
        count(before + 1), timeout=15_000
    )
    expect(page.locator("#rt-pages")).to_contain_text("/live-now")
    shot(page, "realtime")


def test_pages_fit_a_360px_screen(page: Page, dashboard: Dashboard) -> None:
    page.set_viewport_size({"width": 360, "height": 740})
    try:
        for path in (
            "/",
            "/goals",
            "/funnels",
            "/retention",
            "/consent",
            "/privacy",
            "/rfm?site=shop",
        ):
            open_page(page, dashboard, path)
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 360, f"{path} is {width}px wide at 360px"
        open_page(page, dashboard, "/")
        shot(page, "overview-360px")
    finally:
        page.set_viewport_size({"width": 1280, "height": 900})


def test_keyboard_reaches_the_controls_and_rows(page: Page, dashboard: Dashboard) -> None:
    open_page(page, dashboard, "/")
    page.keyboard.press("Tab")
    expect(page.locator(":focus")).to_have_text("Skip to content")
    focused: list[str] = []
    for _ in range(40):
        page.keyboard.press("Tab")
        focused.append(
            page.evaluate(
                "(document.activeElement.name || document.activeElement.textContent).trim()"
            )
        )
    assert {"Overview", "Privacy", "site", "period", "compare"} <= set(focused)
    assert "Visitors" in " ".join(focused)  # the metric cards are buttons


def test_the_csp_violation_check_can_fail(
    page: Page, dashboard: Dashboard, console: Console
) -> None:
    """An inline style is refused and reported: the module-wide check is live."""
    open_page(page, dashboard, "/help")
    with (
        page.expect_console_message(lambda m: "Content Security Policy" in m.text) as chromium,
        page.expect_console_message(lambda m: "CSP violation" in m.text) as event,
    ):
        page.evaluate("document.body.setAttribute('style', 'color: red')")
    assert event.value.text.startswith("CSP violation: style-src")
    expect(page.locator("body")).not_to_have_css("color", "rgb(255, 0, 0)")
    # Both reports of the one violation this test caused on purpose reached the check.
    console.errors.remove(event.value.text)
    console.errors.remove(chromium.value.text)
