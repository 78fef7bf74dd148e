"""Explained risk scoring: each factor, the levels, the bounds, off-hours across zones."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from governance.domain import risk
from governance.domain.risk import (
    BusinessHours,
    RiskAssessment,
    RiskFactor,
    RiskInput,
    assess,
    level_for,
)

BERLIN_HOURS = BusinessHours(tz="Europe/Berlin")
NEW_YORK_HOURS = BusinessHours(tz="America/New_York")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def factor(assessment: RiskAssessment, name: str) -> RiskFactor:
    return next(f for f in assessment.factors if f.name == name)


def quiet(**overrides: object) -> RiskInput:
    """A release contributing 0 on every factor, with one thing changed."""
    values: dict[str, object] = {
        "scope_item_count": 1,
        "services": [("docs-site", "low")],
        "data_migration": False,
        "window_start": utc(2026, 6, 10, 10),  # a Wednesday, 10:00–11:00 UTC
        "window_end": utc(2026, 6, 10, 11),
        "recent_change_failure_rate": 0.0,
        "hours_to_nearest_freeze": None,
    }
    values.update(overrides)
    return RiskInput(**values)  # type: ignore[arg-type]


def test_quiet_release_scores_zero() -> None:
    assessment = assess(quiet())
    assert assessment.score == 0
    assert assessment.level == "low"
    assert [f.contribution for f in assessment.factors] == [0] * 7


def test_weights_are_named_and_sum_to_at_most_100() -> None:
    assert sum(risk.WEIGHTS.values()) <= 100
    assert set(risk.WEIGHTS) == {f.name for f in assess(quiet()).factors}


# --------------------------------------------------------------------- factors


@pytest.mark.parametrize(
    ("items", "points"), [(0, 0), (1, 0), (2, 0), (3, 1), (14, 12), (22, 20), (500, 20)]
)
def test_change_size(items: int, points: int) -> None:
    f = factor(assess(quiet(scope_item_count=items)), "change_size")
    assert f.contribution == points


def test_change_size_explanation_reads_naturally() -> None:
    assert factor(assess(quiet(scope_item_count=14)), "change_size").explanation == (
        "Change size: 14 scope items → +12"
    )
    assert factor(assess(quiet(scope_item_count=1)), "change_size").value_description == (
        "1 scope item"
    )


@pytest.mark.parametrize(
    ("criticality", "points"), [("low", 0), ("medium", 7), ("high", 14), ("critical", 20)]
)
def test_service_criticality_takes_the_most_critical_service(criticality: str, points: int) -> None:
    services = [("docs-site", "low"), ("payments-api", criticality), ("search", "medium")]
    f = factor(assess(quiet(services=services)), "service_criticality")
    assert f.contribution == max(points, 7)
    if criticality in ("high", "critical"):
        assert f.value_description == f"most critical service payments-api is {criticality}"


def test_no_services() -> None:
    assessment = assess(quiet(services=[]))
    assert factor(assessment, "service_criticality").contribution == 0
    assert factor(assessment, "services_touched").value_description == "0 services"


@pytest.mark.parametrize(("count", "points"), [(1, 0), (2, 2), (3, 4), (4, 6), (9, 6)])
def test_services_touched(count: int, points: int) -> None:
    services = [(f"svc-{i}", "low") for i in range(count)]
    assert factor(assess(quiet(services=services)), "services_touched").contribution == points


def test_services_touched_counts_each_slug_once() -> None:
    services = [("api", "low"), ("api", "low")]
    assert factor(assess(quiet(services=services)), "services_touched").contribution == 0


def test_data_migration() -> None:
    f = factor(assess(quiet(data_migration=True)), "data_migration")
    assert f.contribution == risk.DATA_MIGRATION_WEIGHT == 15
    assert f.explanation == "Data migration: includes a data migration → +15"


@pytest.mark.parametrize(
    ("rate", "points"), [(0.0, 0), (0.05, 2), (0.25, 10), (0.5, 20), (1.0, 20), (None, 5)]
)
def test_failure_history(rate: float | None, points: int) -> None:
    f = factor(assess(quiet(recent_change_failure_rate=rate)), "failure_history")
    assert f.contribution == points
    if rate is None:
        assert "unknown" in f.value_description
    else:
        assert f.value_description == f"recent change failure rate {rate:.0%}"


@pytest.mark.parametrize(
    ("hours", "points"),
    [(None, 0), (-1, 9), (0, 9), (4, 9), (4.5, 5), (24, 5), (48, 2), (72, 2), (73, 0)],
)
def test_freeze_proximity(hours: float | None, points: int) -> None:
    f = factor(assess(quiet(hours_to_nearest_freeze=hours)), "freeze_proximity")
    assert f.contribution == points


# ------------------------------------------------------------------ off-hours


def test_off_hours_depends_on_the_business_time_zone() -> None:
    # Wednesday 08:00–10:00 UTC: 10:00–12:00 in Berlin (summer), 04:00–06:00 in New York.
    window = {"window_start": utc(2026, 6, 10, 8), "window_end": utc(2026, 6, 10, 10)}
    berlin = factor(assess(quiet(business_hours=BERLIN_HOURS, **window)), "off_hours")
    new_york = factor(assess(quiet(business_hours=NEW_YORK_HOURS, **window)), "off_hours")
    assert berlin.contribution == 0
    assert berlin.value_description == (
        "window Wed 10:00–Wed 12:00 within business hours (Mon–Fri 09:00–17:00 Europe/Berlin)"
    )
    assert new_york.contribution == 10
    assert new_york.value_description.startswith("100% of window Wed 04:00–Wed 06:00 outside")


def test_off_hours_is_proportional_to_the_share_outside() -> None:
    # Berlin, Wednesday 16:00–18:00 local: half inside business hours.
    f = factor(
        assess(
            quiet(
                business_hours=BERLIN_HOURS,
                window_start=utc(2026, 6, 10, 14),
                window_end=utc(2026, 6, 10, 16),
            )
        ),
        "off_hours",
    )
    assert f.contribution == 5
    assert f.value_description.startswith("50% of window")


def test_weekend_is_off_hours() -> None:
    f = factor(
        assess(
            quiet(
                business_hours=BERLIN_HOURS,
                window_start=utc(2026, 6, 13, 10),  # Saturday
                window_end=utc(2026, 6, 13, 12),
            )
        ),
        "off_hours",
    )
    assert f.contribution == 10


def test_business_hours_follow_local_time_across_dst() -> None:
    # 08:00–09:00 UTC is 09:00–10:00 CET on Friday 27 March and 10:00–11:00 CEST on
    # Monday 30 March: both inside. 07:30–08:00 UTC is inside only after the switch.
    hours = BERLIN_HOURS
    assert hours.overlap(utc(2026, 3, 27, 8), utc(2026, 3, 27, 9)) == timedelta(hours=1)
    assert hours.overlap(utc(2026, 3, 30, 8), utc(2026, 3, 30, 9)) == timedelta(hours=1)
    assert hours.overlap(utc(2026, 3, 27, 7, 30), utc(2026, 3, 27, 8)) == timedelta(0)
    assert hours.overlap(utc(2026, 3, 30, 7, 30), utc(2026, 3, 30, 8)) == timedelta(minutes=30)


def test_multi_day_window_counts_each_business_day() -> None:
    hours = BusinessHours(tz="UTC")
    # Friday 00:00 to Tuesday 00:00: Friday and Monday business days, 8 h each.
    assert hours.overlap(utc(2026, 6, 12), utc(2026, 6, 16)) == timedelta(hours=16)


def test_custom_business_hours() -> None:
    hours = BusinessHours(tz="Asia/Dubai", weekdays=frozenset({6, 0, 1, 2, 3}), end=time(18))
    assert hours.describe() == "Sun–Thu 09:00–18:00 Asia/Dubai"
    assert (
        BusinessHours(weekdays=frozenset({0, 2, 4})).describe() == "Mon, Wed, Fri 09:00–17:00 UTC"
    )
    assert BusinessHours(weekdays=frozenset(range(7))).describe() == "Mon–Sun 09:00–17:00 UTC"
    assert BusinessHours(weekdays=frozenset({3})).describe() == "Thu 09:00–17:00 UTC"
    local = ZoneInfo("Asia/Dubai")
    sunday = datetime(2026, 6, 14, 10, tzinfo=local)
    assert hours.overlap(sunday, sunday + timedelta(hours=1)) == timedelta(hours=1)


def test_no_window_contributes_nothing() -> None:
    f = factor(assess(quiet(window_start=None, window_end=None)), "off_hours")
    assert (f.contribution, f.value_description) == (0, "no deployment window set")


# ---------------------------------------------------------------------- levels


@pytest.mark.parametrize(
    ("score", "level"),
    [
        (0, "low"),
        (24, "low"),
        (25, "medium"),
        (49, "medium"),
        (50, "high"),
        (74, "high"),
        (75, "critical"),
        (100, "critical"),
    ],
)
def test_level_thresholds(score: int, level: str) -> None:
    assert level_for(score) == level
    assert (risk.LOW_BELOW, risk.MEDIUM_BELOW, risk.HIGH_BELOW) == (25, 50, 75)


def test_worst_case_is_100_and_critical() -> None:
    assessment = assess(
        RiskInput(
            scope_item_count=80,
            services=[(f"svc-{i}", "critical") for i in range(6)],
            data_migration=True,
            window_start=utc(2026, 6, 13, 1),
            window_end=utc(2026, 6, 13, 3),
            recent_change_failure_rate=0.9,
            hours_to_nearest_freeze=1,
        )
    )
    assert assessment.score == 100
    assert assessment.level == "critical"


def test_typical_big_release_explained() -> None:
    assessment = assess(
        RiskInput(
            scope_item_count=14,
            services=[("payments-api", "critical"), ("ledger", "high"), ("web", "medium")],
            data_migration=True,
            window_start=utc(2026, 6, 10, 20),
            window_end=utc(2026, 6, 10, 22),
            recent_change_failure_rate=0.2,
            hours_to_nearest_freeze=None,
        )
    )
    assert assessment.explanation == [
        "Change size: 14 scope items → +12",
        "Service criticality: most critical service payments-api is critical → +20",
        "Services touched: 3 services → +4",
        "Data migration: includes a data migration → +15",
        "Off-hours window: 100% of window Wed 20:00–Wed 22:00 outside business hours "
        "(Mon–Fri 09:00–17:00 UTC) → +10",
        "Change failure history: recent change failure rate 20% → +8",
        "Freeze proximity: no freeze nearby → +0",
    ]
    assert assessment.score == 69
    assert assessment.level == "high"


# ------------------------------------------------------------------ properties

criticalities = st.sampled_from(["low", "medium", "high", "critical"])


@st.composite
def risk_inputs(draw: st.DrawFn) -> RiskInput:
    start = draw(st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 1, 1)))
    length = draw(st.timedeltas(min_value=timedelta(minutes=1), max_value=timedelta(days=3)))
    has_window = draw(st.booleans())
    return RiskInput(
        scope_item_count=draw(st.integers(min_value=0, max_value=10_000)),
        services=draw(
            st.lists(st.tuples(st.sampled_from(["a", "b", "c", "d", "e"]), criticalities))
        ),
        data_migration=draw(st.booleans()),
        window_start=start.replace(tzinfo=UTC) if has_window else None,
        window_end=(start + length).replace(tzinfo=UTC) if has_window else None,
        business_hours=BusinessHours(
            tz=draw(st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo"]))
        ),
        recent_change_failure_rate=draw(st.none() | st.floats(min_value=0, max_value=1)),
        hours_to_nearest_freeze=draw(st.none() | st.floats(min_value=-100, max_value=1000)),
    )


@given(risk_inputs())
def test_score_is_bounded_and_is_the_sum_of_factors(data: RiskInput) -> None:
    assessment = assess(data)
    assert 0 <= assessment.score <= 100
    assert assessment.score == sum(f.contribution for f in assessment.factors)
    assert assessment.level == level_for(assessment.score)
    for f in assessment.factors:
        assert 0 <= f.contribution <= risk.WEIGHTS[f.name]
        assert f.explanation.endswith(f"→ +{f.contribution}")


@given(risk_inputs())
def test_adding_a_migration_never_lowers_the_score(data: RiskInput) -> None:
    without = assess(RiskInput(**{**data.__dict__, "data_migration": False}))
    with_migration = assess(RiskInput(**{**data.__dict__, "data_migration": True}))
    assert with_migration.score - without.score == risk.DATA_MIGRATION_WEIGHT


# ------------------------------------------------------------------ validation


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"scope_item_count": -1}, "negative"),
        ({"services": [("api", "extreme")]}, "unknown criticality"),
        ({"recent_change_failure_rate": 1.5}, "between 0 and 1"),
        ({"window_end": None}, "both window_start and window_end"),
        (
            {"window_start": datetime(2026, 6, 10, 10), "window_end": datetime(2026, 6, 10, 11)},
            "timezone-aware",
        ),  # fmt: skip
        ({"window_end": utc(2026, 6, 10, 9)}, "after window_start"),
    ],
)
def test_invalid_input(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        quiet(**overrides)


def test_invalid_business_hours() -> None:
    with pytest.raises(ValueError, match="unknown time zone"):
        BusinessHours(tz="Nowhere/Special")
    with pytest.raises(ValueError, match="end after"):
        BusinessHours(start=time(17), end=time(9))
    with pytest.raises(ValueError, match="weekdays"):
        BusinessHours(weekdays=frozenset({7}))
