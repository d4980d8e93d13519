"""The dashboard's pages: path, title, the permission each needs and which controls it shows."""

from __future__ import annotations

from typing import Literal

import msgspec

from collector.auth import Permission

#: Which report controls a page shows above its content.
Controls = Literal["full", "site-period", "site", "none"]


class Page(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    path: str
    title: str
    permission: Permission
    controls: Controls
    #: Shown in the navigation bar (account and help pages are reached from the header).
    nav: bool = True
    summary: str = ""


PAGES: tuple[Page, ...] = (
    Page(
        id="overview",
        path="/",
        title="Overview",
        permission="reports",
        controls="full",
        summary="Visitors, visits, pageviews, bounce rate and visit duration, their trend, "
        "and breakdowns by page, source, campaign, device, location, event and property.",
    ),
    Page(
        id="realtime",
        path="/realtime",
        title="Real-time",
        permission="reports",
        controls="site",
        summary="Visitors and pages of the last 30 minutes, refreshed every 5 seconds.",
    ),
    Page(
        id="goals",
        path="/goals",
        title="Goals",
        permission="reports",
        controls="full",
        summary="Conversions and conversion rate of each saved goal; owners add and delete goals.",
    ),
    Page(
        id="funnels",
        path="/funnels",
        title="Funnels",
        permission="reports",
        controls="full",
        summary="Visitors at each step of a saved funnel, drop-off, conversion and the median "
        "time between steps; owners add and delete funnels.",
    ),
    Page(
        id="retention",
        path="/retention",
        title="Retention",
        permission="reports",
        controls="site-period",
        summary="Weekly or monthly cohorts of new visitors and the share returning later, "
        "with the share of visitors a durable id lets us follow.",
    ),
    Page(
        id="experiments",
        path="/experiments",
        title="Experiments",
        permission="reports",
        controls="full",
        summary="A/B test results: per-variant conversion rate, lift over control with its 95 % "
        "confidence interval and p-value, and a verdict only above the minimum sample.",
    ),
    Page(
        id="consent",
        path="/consent",
        title="Consent",
        permission="reports",
        controls="full",
        summary="Hits and visitors by consent mode per day, the consent rate, opt-outs and the "
        "reason codes behind each mode.",
    ),
    Page(
        id="attribution",
        path="/attribution",
        title="Attribution",
        permission="reports",
        controls="full",
        summary="For a goal: the share of conversions attributable to a source or campaign "
        "(granted) versus unattributable (exempt or denied).",
    ),
    Page(
        id="rfm",
        path="/rfm",
        title="RFM",
        permission="reports",
        controls="full",
        summary="Recency, frequency and monetary scores of customers with revenue events, the "
        "named segments and the customer retention rate.",
    ),
    Page(
        id="privacy",
        path="/privacy",
        title="Privacy",
        permission="privacy",
        controls="none",
        summary="For the dpo and owner roles: the audit log and its chain check, the register "
        "of processing, signed exports and access or erasure requests.",
    ),
    Page(
        id="account",
        path="/account",
        title="Account",
        permission="reports",
        controls="none",
        nav=False,
        summary="Change your password.",
    ),
    Page(
        id="help",
        path="/help",
        title="Help",
        permission="reports",
        controls="none",
        nav=False,
        summary="How to install the tag and what each page shows.",
    ),
)
