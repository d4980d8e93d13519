"""Goals defined in ``mesure.toml`` beside goals saved through the API, and
``compare=previous_period`` on the goals, funnel, consent and attribution reports: two days of
known events, every number worked out by hand."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from collector.config import Config, load_config
from collector.errors import ConfigError
from collector.reports import (
    ReportQuery,
    attribution,
    consent_report,
    funnel,
    goals_report,
    resolve_goal,
)
from collector.reports.goals import site_goals
from collector.storage.rows import DropCount, Goal
from collector.storage.sqlite.reports import ReportsDatabase
from tests.reports.dataset import event, ms, opened, store
from tests.support import build_config

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
TODAY = ReportQuery(period="today", compare="previous_period")
GOALS = [
    {"name": "Signup", "kind": "event", "match": "signup"},
    {"name": "Pricing", "kind": "page", "match": "/pricing*"},
]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Config, ReportsDatabase]]:
    config = build_config(
        Path(tmp_path_factory.mktemp("config-goals")),
        {"example": ["example.com"]},
        site_options={"example": {"goals": GOALS}},
    )
    store(
        config,
        [
            # March 9: G1 (granted) /a, /pricing, signup; E1 (exempt) /a, signup; 2 denied hits.
            event(ms(2026, 3, 9, 10, 0), "G1", path="/a", source="Google"),
            event(ms(2026, 3, 9, 10, 2), "G1", path="/pricing"),
            event(ms(2026, 3, 9, 10, 3), "G1", "signup", path="/pricing"),
            event(ms(2026, 3, 9, 11, 0), "E1", path="/a", mode="exempt"),
            event(ms(2026, 3, 9, 11, 1), "E1", "signup", path="/a", mode="exempt"),
            event(ms(2026, 3, 9, 12, 0), None, path="/a"),
            event(ms(2026, 3, 9, 12, 1), None, path="/a"),
            # March 10 (today): G2 (granted) /a then signup; E2 (exempt) /pricing/team.
            event(ms(2026, 3, 10, 9, 0), "G2", path="/a", utm_source="newsletter"),
            event(ms(2026, 3, 10, 9, 5), "G2", "signup", path="/a"),
            event(ms(2026, 3, 10, 9, 30), "E2", path="/pricing/team", mode="exempt"),
        ],
        [
            DropCount("example", "2026-03-09", "optout", 3),
            DropCount("example", "2026-03-10", "optout", 1),
        ],
    )
    with opened(config) as db:
        # An API goal, and one named like a config goal: the configuration wins.
        db.save_goal("example", Goal(name="Landing", kind="page", match="/a"), 0)
        db.save_goal("example", Goal(name="Signup", kind="page", match="/nowhere"), 0)
        yield config, db


def test_goals_of_the_config_and_of_the_api(dataset: tuple[Config, ReportsDatabase]) -> None:
    config, db = dataset
    assert [(g.name, g.kind, g.match, g.source) for g in site_goals(db, config, ["example"])] == [
        ("Signup", "event", "signup", "config"),
        ("Pricing", "page", "/pricing*", "config"),
        ("Landing", "page", "/a", "api"),
    ]
    assert resolve_goal(db, ["example"], "Pricing", config=config) == Goal(
        name="Pricing", kind="page", match="/pricing*"
    )
    assert resolve_goal(db, ["example"], "Signup", config=config).kind == "event"


def test_goals_report_with_previous_period(dataset: tuple[Config, ReportsDatabase]) -> None:
    config, db = dataset
    report = goals_report(db, config, TODAY, sites=["example"], now=NOW)
    rows = {
        g.name: (
            g.source,
            g.visitors,
            g.conversions,
            g.conversion_rate,
            g.previous_conversions,
            g.previous_conversion_rate,
        )
        for g in report.goals
    }
    # Today: visitors G2 and E2; yesterday: G1 and E1.
    assert rows == {
        "Signup": ("config", 2, 1, 0.5, 2, 1.0),
        "Pricing": ("config", 2, 1, 0.5, 1, 0.5),
        "Landing": ("api", 2, 1, 0.5, 2, 1.0),
    }
    assert report.previous_period is not None
    assert str(report.previous_period.first_day) == "2026-03-09"


def test_funnel_with_previous_period(dataset: tuple[Config, ReportsDatabase]) -> None:
    config, db = dataset
    steps = [Goal(name="a", kind="page", match="/a"), Goal(name="s", kind="event", match="signup")]
    report = funnel(db, config, TODAY, sites=["example"], now=NOW, steps=steps)
    assert [s.visitors for s in report.steps] == [1, 1]  # G2
    assert report.previous is not None
    # G1 (/a, /pricing, signup) and E1 (/a, signup); the denied hits cannot be followed.
    assert [s.visitors for s in report.previous] == [2, 2]
    assert [s.median_ms_from_previous for s in report.previous] == [None, (3 + 1) / 2 * 60_000]


def test_consent_with_previous_period(dataset: tuple[Config, ReportsDatabase]) -> None:
    config, db = dataset
    report = consent_report(db, config, TODAY, sites=["example"], now=NOW)
    totals, previous = report.totals, report.previous
    assert (totals.granted.hits, totals.exempt.hits, totals.denied.hits) == (2, 1, 0)
    assert (totals.consent_rate, totals.optouts) == (2 / 3, 1)
    assert previous is not None
    assert (previous.granted.hits, previous.exempt.hits, previous.denied.hits) == (3, 2, 2)
    assert (previous.consent_rate, previous.optouts) == (3 / 7, 3)
    assert (previous.granted.visitors, previous.exempt.visitors) == (1, 1)


def test_attribution_with_previous_period(dataset: tuple[Config, ReportsDatabase]) -> None:
    config, db = dataset
    signup = Goal(name="signup", kind="event", match="signup")
    report = attribution(db, config, TODAY, sites=["example"], now=NOW, goal=signup)
    assert (report.conversions, report.attributable, report.attributable_share) == (1, 1, 1.0)
    assert [(s.source, s.conversions) for s in report.sources] == [("newsletter", 1)]
    assert report.previous is not None
    assert (
        report.previous.conversions,
        report.previous.attributable,
        report.previous.unattributable,
        report.previous.attributable_share,
    ) == (2, 1, 1, 0.5)


GOAL_TOML = """
[[sites]]
id = "example"
hostnames = ["example.com"]

[[sites.goals]]
name = "Signup"
kind = "event"
match = "signup"
"""


def test_goals_in_mesure_toml(tmp_path: Path) -> None:
    (tmp_path / "mesure.toml").write_text(GOAL_TOML)
    (site,) = load_config(tmp_path, {}).sites
    assert [(g.name, g.kind, g.match) for g in site.goals] == [("Signup", "event", "signup")]
    (tmp_path / "mesure.toml").write_text(GOAL_TOML + GOAL_TOML.split("\n\n", 1)[1])
    with pytest.raises(ConfigError, match="two goals share a name"):
        load_config(tmp_path, {})
    (tmp_path / "mesure.toml").write_text(GOAL_TOML.replace('"event"', '"click"'))
    with pytest.raises(ConfigError, match="kind"):
        load_config(tmp_path, {})
