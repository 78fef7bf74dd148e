"""Freeze-window recurrence, especially across daylight-saving changes.

2026 DST switches used below:
Europe/Berlin   29 Mar (02:00 CET → 03:00 CEST), 25 Oct (03:00 CEST → 02:00 CET)
America/New_York 8 Mar (02:00 EST → 03:00 EDT),  1 Nov (02:00 EDT → 01:00 EST)
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from governance.domain.freeze import (
    FreezeRule,
    FreezeRuleError,
    active_at,
    describe,
    next_end_after,
    occurrences,
    parse_cron,
    parse_rule,
)

BERLIN = "Europe/Berlin"
NEW_YORK = "America/New_York"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# ----------------------------------------------------------------- rule builders
# Three ways of writing "Friday 16:00 until Monday 08:00" that must agree.


def weekend_rrule_end_time(tz: str) -> FreezeRule:
    return parse_rule(
        "rrule",
        tz,
        rrule="FREQ=WEEKLY;BYDAY=FR;BYHOUR=16;BYMINUTE=0",
        end_time="08:00",
        end_weekday="MO",
    )


def weekend_rrule_duration(tz: str) -> FreezeRule:
    return FreezeRule(
        kind="rrule",
        tz=tz,
        rrule="FREQ=WEEKLY;BYDAY=FR;BYHOUR=16;BYMINUTE=0",
        duration=timedelta(hours=64),
    )


def weekend_cron(tz: str) -> FreezeRule:
    return FreezeRule(kind="cron", tz=tz, cron="0 16 * * FRI", duration=timedelta(hours=64))


WEEKEND_BUILDERS: list[Callable[[str], FreezeRule]] = [
    weekend_rrule_end_time,
    weekend_rrule_duration,
    weekend_cron,
]


def nightly_rrule(tz: str) -> FreezeRule:
    return FreezeRule(
        kind="rrule", tz=tz, rrule="FREQ=DAILY;BYHOUR=22;BYMINUTE=0", end_time=time(6, 0)
    )


def nightly_cron(tz: str) -> FreezeRule:
    return FreezeRule(kind="cron", tz=tz, cron="0 22 * * *", duration=timedelta(hours=8))


NIGHTLY_BUILDERS: list[Callable[[str], FreezeRule]] = [nightly_rrule, nightly_cron]


# ------------------------------------------------------------ DST: weekly window


@pytest.mark.parametrize("build", WEEKEND_BUILDERS)
@pytest.mark.parametrize(
    ("tz", "query", "expected"),
    [
        pytest.param(
            BERLIN,
            (utc(2026, 3, 20), utc(2026, 4, 6)),
            [
                (utc(2026, 3, 20, 15), utc(2026, 3, 23, 7)),  # CET both ends, 64 h
                (utc(2026, 3, 27, 15), utc(2026, 3, 30, 6)),  # CET → CEST, 63 h
                (utc(2026, 4, 3, 14), utc(2026, 4, 6, 6)),  # CEST both ends
            ],
            id="berlin-spring",
        ),
        pytest.param(
            BERLIN,
            (utc(2026, 10, 16, 12), utc(2026, 11, 2)),
            [
                (utc(2026, 10, 16, 14), utc(2026, 10, 19, 6)),  # CEST
                (utc(2026, 10, 23, 14), utc(2026, 10, 26, 7)),  # CEST → CET, 65 h
                (utc(2026, 10, 30, 15), utc(2026, 11, 2, 7)),  # CET
            ],
            id="berlin-autumn",
        ),
        pytest.param(
            NEW_YORK,
            (utc(2026, 2, 27), utc(2026, 3, 16)),
            [
                (utc(2026, 2, 27, 21), utc(2026, 3, 2, 13)),  # EST
                (utc(2026, 3, 6, 21), utc(2026, 3, 9, 12)),  # EST → EDT, 63 h
                (utc(2026, 3, 13, 20), utc(2026, 3, 16, 12)),  # EDT
            ],
            id="new-york-spring",
        ),
        pytest.param(
            NEW_YORK,
            (utc(2026, 10, 23), utc(2026, 11, 9)),
            [
                (utc(2026, 10, 23, 20), utc(2026, 10, 26, 12)),  # EDT
                (utc(2026, 10, 30, 20), utc(2026, 11, 2, 13)),  # EDT → EST, 65 h
                (utc(2026, 11, 6, 21), utc(2026, 11, 9, 13)),  # EST
            ],
            id="new-york-autumn",
        ),
    ],
)
def test_weekend_freeze_keeps_local_wall_time_across_dst(
    build: Callable[[str], FreezeRule],
    tz: str,
    query: tuple[datetime, datetime],
    expected: list[tuple[datetime, datetime]],
) -> None:
    rule = build(tz)
    got = occurrences(rule, *query)
    assert got == expected
    zone = ZoneInfo(tz)
    for start, end in got:
        local_start, local_end = start.astimezone(zone), end.astimezone(zone)
        assert (local_start.weekday(), local_start.time()) == (4, time(16, 0))
        assert (local_end.weekday(), local_end.time()) == (0, time(8, 0))
        assert start.tzinfo is UTC and end.tzinfo is UTC


@pytest.mark.parametrize("build", WEEKEND_BUILDERS)
def test_weekend_freeze_blocks_until_monday_local_across_dst(
    build: Callable[[str], FreezeRule],
) -> None:
    rule = build(BERLIN)
    sunday_after_switch = utc(2026, 10, 25, 12)
    assert active_at(rule, sunday_after_switch) == (utc(2026, 10, 23, 14), utc(2026, 10, 26, 7))
    assert next_end_after(rule, sunday_after_switch) == utc(2026, 10, 26, 7)
    # Just before and at the local boundaries.
    assert active_at(rule, utc(2026, 10, 23, 13, 59)) is None
    assert active_at(rule, utc(2026, 10, 23, 14)) is not None
    assert active_at(rule, utc(2026, 10, 26, 6, 59)) is not None
    assert active_at(rule, utc(2026, 10, 26, 7)) is None
    assert next_end_after(rule, utc(2026, 10, 28, 12)) is None


# ------------------------------------------------------------- DST: daily window


@pytest.mark.parametrize("build", NIGHTLY_BUILDERS)
@pytest.mark.parametrize(
    ("tz", "query", "expected"),
    [
        pytest.param(
            BERLIN,
            (utc(2026, 3, 28, 12), utc(2026, 3, 30, 12)),
            [
                (utc(2026, 3, 28, 21), utc(2026, 3, 29, 4)),  # 7 h: clocks jump forward
                (utc(2026, 3, 29, 20), utc(2026, 3, 30, 4)),
            ],
            id="berlin-spring",
        ),
        pytest.param(
            BERLIN,
            (utc(2026, 10, 24, 12), utc(2026, 10, 26, 12)),
            [
                (utc(2026, 10, 24, 20), utc(2026, 10, 25, 5)),  # 9 h: clocks go back
                (utc(2026, 10, 25, 21), utc(2026, 10, 26, 5)),
            ],
            id="berlin-autumn",
        ),
        pytest.param(
            NEW_YORK,
            (utc(2026, 3, 7, 12), utc(2026, 3, 9, 12)),
            [
                (utc(2026, 3, 8, 3), utc(2026, 3, 8, 10)),
                (utc(2026, 3, 9, 2), utc(2026, 3, 9, 10)),
            ],
            id="new-york-spring",
        ),
        pytest.param(
            NEW_YORK,
            (utc(2026, 10, 31, 12), utc(2026, 11, 2, 12)),
            [
                (utc(2026, 11, 1, 2), utc(2026, 11, 1, 11)),
                (utc(2026, 11, 2, 3), utc(2026, 11, 2, 11)),
            ],
            id="new-york-autumn",
        ),
    ],
)
def test_nightly_freeze_across_dst(
    build: Callable[[str], FreezeRule],
    tz: str,
    query: tuple[datetime, datetime],
    expected: list[tuple[datetime, datetime]],
) -> None:
    got = occurrences(build(tz), *query)
    assert got == expected
    zone = ZoneInfo(tz)
    for start, end in got:
        assert start.astimezone(zone).time() == time(22, 0)
        assert end.astimezone(zone).time() == time(6, 0)


@pytest.mark.parametrize("tz", [BERLIN, NEW_YORK, "Australia/Sydney", "UTC"])
@settings(max_examples=60, deadline=None)
@given(at=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31)))
def test_weekend_rule_properties_hold_at_any_instant(tz: str, at: datetime) -> None:
    """At any instant: active_at agrees with the local calendar definition."""
    rule = weekend_rrule_duration(tz)
    instant = at.replace(tzinfo=UTC)
    local = instant.astimezone(ZoneInfo(tz))
    wall = (local.weekday(), local.time())
    in_window = (
        (wall[0] == 4 and wall[1] >= time(16))
        or wall[0] in (5, 6)
        or (wall[0] == 0 and wall[1] < time(8))
    )
    current = active_at(rule, instant)
    assert (current is not None) == in_window
    if current is not None:
        assert current[0] <= instant < current[1]
        assert next_end_after(rule, instant) == current[1]


# ------------------------------------------ nonexistent and ambiguous local times


def test_nonexistent_start_shifts_forward_to_end_of_gap() -> None:
    rule = FreezeRule(kind="cron", tz=BERLIN, cron="30 2 * * *", duration=timedelta(hours=1))
    got = occurrences(rule, utc(2026, 3, 28, 12), utc(2026, 3, 29, 12))
    # 02:30 does not exist on 29 March: start 03:00 CEST (01:00Z); end is 03:30 CEST.
    assert got == [(utc(2026, 3, 29, 1), utc(2026, 3, 29, 1, 30))]


def test_ambiguous_time_uses_first_occurrence_and_fires_once() -> None:
    rule = FreezeRule(kind="cron", tz=BERLIN, cron="30 2 * * *", duration=timedelta(minutes=20))
    got = occurrences(rule, utc(2026, 10, 24, 12), utc(2026, 10, 25, 12))
    # 02:30 happens twice on 25 October; fold=0 is the earlier one, 02:30 CEST.
    assert got == [(utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 0, 50))]


def test_occurrence_that_collapses_inside_a_gap_is_dropped() -> None:
    rule = FreezeRule(kind="cron", tz=BERLIN, cron="15 2 * * *", end_time=time(2, 45))
    got = occurrences(rule, utc(2026, 3, 27), utc(2026, 3, 31))
    days = [s.astimezone(ZoneInfo(BERLIN)).day for s, _ in got]
    assert days == [27, 28, 30]


def test_nonexistent_time_in_new_york() -> None:
    rule = FreezeRule(kind="rrule", tz=NEW_YORK, rrule="FREQ=DAILY;BYHOUR=2;BYMINUTE=30",
                      duration=timedelta(hours=2))  # fmt: skip
    got = occurrences(rule, utc(2026, 3, 8), utc(2026, 3, 8, 12))
    assert got == [(utc(2026, 3, 8, 7), utc(2026, 3, 8, 8, 30))]  # 03:00–04:30 EDT


# ------------------------------------------------------------ querying semantics


def test_occurrences_include_the_one_already_running() -> None:
    rule = weekend_cron(BERLIN)
    got = occurrences(rule, utc(2026, 6, 7, 12), utc(2026, 6, 7, 13))  # a Sunday
    assert got == [(utc(2026, 6, 5, 14), utc(2026, 6, 8, 6))]


def test_occurrences_are_half_open() -> None:
    rule = weekend_cron("UTC")
    assert occurrences(rule, utc(2026, 6, 8, 8), utc(2026, 6, 12, 16)) == []
    assert occurrences(rule, utc(2026, 6, 12, 16), utc(2026, 6, 12, 16)) == []


def test_occurrences_need_aware_datetimes() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        occurrences(weekend_cron("UTC"), datetime(2026, 1, 1), utc(2026, 2, 1))
    with pytest.raises(ValueError, match="timezone-aware"):
        active_at(weekend_cron("UTC"), datetime(2026, 1, 1))


def test_once_rule() -> None:
    london = ZoneInfo("Europe/London")
    rule = parse_rule(
        "once",
        "Europe/London",
        start=datetime(2026, 12, 24, tzinfo=london),
        end=datetime(2027, 1, 2, tzinfo=london),
    )
    assert occurrences(rule, utc(2026, 12, 1), utc(2027, 2, 1)) == [
        (utc(2026, 12, 24), utc(2027, 1, 2))
    ]
    assert occurrences(rule, utc(2027, 1, 2), utc(2027, 2, 1)) == []
    assert next_end_after(rule, utc(2026, 12, 30)) == utc(2027, 1, 2)
    assert describe(rule) == "Once: 24 Dec 2026 00:00 – 2 Jan 2027 00:00 Europe/London"


def test_next_end_after_follows_back_to_back_occurrences() -> None:
    # 08:00–16:00 and 16:00–24:00 touch: someone blocked at 09:00 waits until midnight.
    rule = FreezeRule(kind="cron", tz="UTC", cron="0 8,16 * * *", duration=timedelta(hours=8))
    assert active_at(rule, utc(2026, 5, 5, 9)) == (utc(2026, 5, 5, 8), utc(2026, 5, 5, 16))
    assert next_end_after(rule, utc(2026, 5, 5, 9)) == utc(2026, 5, 6)


def test_next_end_after_is_bounded_for_permanent_freezes() -> None:
    rule = FreezeRule(kind="cron", tz="UTC", cron="0 0 * * *", duration=timedelta(days=2))
    at = utc(2026, 5, 5, 9)
    end = next_end_after(rule, at, horizon=timedelta(days=10))
    assert end is not None and timedelta(days=10) <= end - at <= timedelta(days=12)


def test_active_at_prefers_the_longest_overlapping_occurrence() -> None:
    rule = FreezeRule(kind="cron", tz="UTC", cron="0 0,6 * * *", duration=timedelta(hours=10))
    assert active_at(rule, utc(2026, 5, 5, 7)) == (utc(2026, 5, 5, 6), utc(2026, 5, 5, 16))


def test_biweekly_interval_keeps_its_phase_from_the_anchor() -> None:
    rule = FreezeRule(
        kind="rrule",
        tz=BERLIN,
        rrule="FREQ=WEEKLY;INTERVAL=2;BYDAY=FR;BYHOUR=18;BYMINUTE=0",
        duration=timedelta(hours=6),
        anchor=datetime(2026, 1, 2),  # a Friday
    )
    starts = [s for s, _ in occurrences(rule, utc(2026, 11, 1), utc(2026, 12, 31))]
    assert starts
    for start in starts:
        local = start.astimezone(ZoneInfo(BERLIN))
        assert (local.date() - datetime(2026, 1, 2).date()).days % 14 == 0
        assert local.time() == time(18, 0)


@settings(max_examples=25, deadline=None)
@given(
    day=st.integers(min_value=0, max_value=365 * 3),
    freq=st.sampled_from(
        [
            "FREQ=DAILY;INTERVAL=3;BYHOUR=7",
            "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU,SA;BYHOUR=22;BYMINUTE=30",
            "FREQ=MONTHLY;BYMONTHDAY=1,15;BYHOUR=0",
            "FREQ=MONTHLY;BYDAY=-1FR;BYHOUR=12",
            "FREQ=YEARLY;BYMONTH=12;BYMONTHDAY=24",
            "FREQ=HOURLY;INTERVAL=5",
        ]
    ),
)
def test_fast_forwarded_rrule_matches_full_iteration(day: int, freq: str) -> None:
    """Skipping ahead from the anchor must not change which occurrences exist.

    A huge COUNT disables the skip-ahead optimisation, giving the reference result.
    """
    fast = FreezeRule(kind="rrule", tz=BERLIN, rrule=freq, duration=timedelta(hours=3))
    slow = FreezeRule(
        kind="rrule", tz=BERLIN, rrule=freq + ";COUNT=100000", duration=timedelta(hours=3)
    )
    start = utc(2024, 1, 1) + timedelta(days=day)
    end = start + timedelta(days=40)
    assert occurrences(fast, start, end) == occurrences(slow, start, end)


def test_utc_until_is_converted_to_local_time() -> None:
    rule = FreezeRule(
        kind="rrule",
        tz=BERLIN,
        rrule="FREQ=DAILY;BYHOUR=22;UNTIL=20260310T205959Z",
        duration=timedelta(hours=1),
    )
    starts = [s for s, _ in occurrences(rule, utc(2026, 3, 8), utc(2026, 3, 20))]
    assert starts == [utc(2026, 3, 8, 21), utc(2026, 3, 9, 21)]


# ------------------------------------------------------------------------ cron


def test_cron_names_ranges_steps_and_sunday_as_seven() -> None:
    spec = parse_cron("*/15 9-17/4 * JAN,jul sun,7")
    assert spec.minutes == {0, 15, 30, 45}
    assert spec.hours == {9, 13, 17}
    assert spec.months == {1, 7}
    assert spec.weekdays == {0}
    assert parse_cron("5/20 0 * * *").minutes == {5, 25, 45}
    assert parse_cron("@daily") == parse_cron("0 0 * * *")


def test_cron_day_fields_or_when_both_restricted() -> None:
    # Vixie cron: the 13th of the month OR any Friday.
    rule = FreezeRule(kind="cron", tz="UTC", cron="0 12 13 * FRI", duration=timedelta(hours=1))
    days = [s.day for s, _ in occurrences(rule, utc(2026, 3, 1), utc(2026, 4, 1))]
    assert days == [6, 13, 20, 27]
    # Only the day of month restricted: AND with "every weekday".
    rule = FreezeRule(kind="cron", tz="UTC", cron="0 12 13 * *", duration=timedelta(hours=1))
    assert [s.day for s, _ in occurrences(rule, utc(2026, 3, 1), utc(2026, 4, 1))] == [13]


# -------------------------------------------------------------------- describe


@pytest.mark.parametrize(
    ("rule", "text"),
    [
        (weekend_rrule_end_time(BERLIN), "Every Friday 16:00–Monday 08:00 Europe/Berlin"),
        (weekend_rrule_duration(BERLIN), "Every Friday 16:00–Monday 08:00 Europe/Berlin"),
        (weekend_cron(BERLIN), "Every Friday 16:00–Monday 08:00 Europe/Berlin"),
        (nightly_rrule("UTC"), "Every day 22:00–06:00 UTC"),
        (nightly_cron("UTC"), "Every day 22:00–06:00 UTC"),
        (
            FreezeRule(kind="cron", tz=NEW_YORK, cron="30 17 * * 1-5", end_time=time(19, 0)),
            "Every weekday 17:30–19:00 America/New_York",
        ),
        (
            FreezeRule(
                kind="rrule",
                tz="UTC",
                rrule="FREQ=WEEKLY;BYDAY=TU,TH;BYHOUR=10;BYMINUTE=0",
                duration=timedelta(hours=2),
            ),
            "Every Tuesday and Thursday 10:00–12:00 UTC",
        ),
        (
            FreezeRule(kind="cron", tz="UTC", cron="0 0 1 * *", duration=timedelta(days=2)),
            "Every month on day 1 00:00 for 2 days UTC",
        ),
        (
            FreezeRule(
                kind="rrule",
                tz=BERLIN,
                rrule="FREQ=YEARLY;BYMONTH=12;BYMONTHDAY=24;BYHOUR=0",
                duration=timedelta(days=9),
            ),
            "Every year on 24 Dec 00:00 for 9 days Europe/Berlin",
        ),
        (
            FreezeRule(
                kind="rrule",
                tz="UTC",
                rrule="FREQ=MONTHLY;BYDAY=-1FR;BYHOUR=12",
                duration=timedelta(hours=90),
            ),
            "Recurring (RRULE FREQ=MONTHLY;BYDAY=-1FR;BYHOUR=12) for 3 days 18 hours UTC",
        ),
        (
            FreezeRule(kind="cron", tz="UTC", cron="0 9 13 * FRI", end_time=time(17, 0)),
            "Recurring (cron 0 9 13 * FRI) until the next 17:00 UTC",
        ),
    ],
)
def test_describe(rule: FreezeRule, text: str) -> None:
    assert describe(rule) == text


# ------------------------------------------------------------------ validation


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "weekly", "tz": "UTC"}, "kind must be one of"),
        (
            {
                "kind": "cron",
                "tz": "Mars/Olympus",
                "cron": "0 0 * * *",
                "duration": timedelta(hours=1),
            },
            "unknown time zone",
        ),  # fmt: skip
        (
            {"kind": "cron", "tz": "", "cron": "0 0 * * *", "duration": timedelta(hours=1)},
            "needs a time zone",
        ),  # fmt: skip
        (
            {
                "kind": "rrule",
                "tz": "UTC",
                "rrule": "FREQ=FORTNIGHTLY",
                "duration": timedelta(hours=1),
            },
            "invalid RRULE",
        ),  # fmt: skip
        (
            {"kind": "rrule", "tz": "UTC", "rrule": "BYDAY=FR", "duration": timedelta(hours=1)},
            "needs a FREQ",
        ),  # fmt: skip
        (
            {
                "kind": "rrule",
                "tz": "UTC",
                "rrule": "FREQ=DAILY;BYHOUR=25",
                "duration": timedelta(hours=1),
            },
            "invalid RRULE",
        ),  # fmt: skip
        (
            {
                "kind": "rrule",
                "tz": "UTC",
                "rrule": "FREQ=DAILY;BYHOUR",
                "duration": timedelta(hours=1),
            },
            "not KEY=VALUE",
        ),  # fmt: skip
        (
            {
                "kind": "rrule",
                "tz": "UTC",
                "rrule": "DTSTART:20260101T000000\nRRULE:FREQ=DAILY",
                "duration": timedelta(hours=1),
            },
            "without DTSTART",
        ),  # fmt: skip
        (
            {
                "kind": "rrule",
                "tz": "UTC",
                "rrule": "FREQ=SECONDLY",
                "duration": timedelta(hours=1),
            },
            "too fine-grained",
        ),  # fmt: skip
        ({"kind": "rrule", "tz": "UTC", "duration": timedelta(hours=1)}, "needs an RRULE"),
        (
            {"kind": "cron", "tz": "UTC", "cron": "0 0 * *", "duration": timedelta(hours=1)},
            "must have 5 fields",
        ),  # fmt: skip
        (
            {"kind": "cron", "tz": "UTC", "cron": "0 24 * * *", "duration": timedelta(hours=1)},
            "hour: 24 is outside 0–23",
        ),  # fmt: skip
        (
            {"kind": "cron", "tz": "UTC", "cron": "*/0 0 * * *", "duration": timedelta(hours=1)},
            "step",
        ),  # fmt: skip
        (
            {
                "kind": "cron",
                "tz": "UTC",
                "cron": "0 0 * * FRI-MON",
                "duration": timedelta(hours=1),
            },
            "runs backwards",
        ),  # fmt: skip
        (
            {"kind": "cron", "tz": "UTC", "cron": "0 0 * * x", "duration": timedelta(hours=1)},
            "not a number",
        ),  # fmt: skip
        (
            {"kind": "cron", "tz": "UTC", "cron": "@reboot", "duration": timedelta(hours=1)},
            "not supported",
        ),  # fmt: skip
        ({"kind": "cron", "tz": "UTC", "cron": "0 0 * * *"}, "exactly one of"),
        (
            {
                "kind": "cron",
                "tz": "UTC",
                "cron": "0 0 * * *",
                "duration": timedelta(hours=1),
                "end_time": time(6),
            },
            "exactly one of",
        ),  # fmt: skip
        (
            {"kind": "cron", "tz": "UTC", "cron": "0 0 * * *", "duration": timedelta(0)},
            "must be positive",
        ),  # fmt: skip
        (
            {
                "kind": "cron",
                "tz": "UTC",
                "cron": "0 0 * * *",
                "end_time": time(6),
                "end_weekday": 9,
            },
            "end weekday",
        ),  # fmt: skip
        (
            {
                "kind": "once",
                "tz": "UTC",
                "start": datetime(2026, 1, 1),
                "end": datetime(2026, 1, 2),
            },
            "timezone-aware",
        ),  # fmt: skip
        (
            {
                "kind": "once",
                "tz": "UTC",
                "start": datetime(2026, 1, 2, tzinfo=UTC),
                "end": datetime(2026, 1, 1, tzinfo=UTC),
            },
            "end after it starts",
        ),  # fmt: skip
        ({"kind": "once", "tz": "UTC"}, "needs a start and an end"),
    ],
)
def test_invalid_rules_raise_clear_errors(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(FreezeRuleError, match=message):
        FreezeRule(**kwargs)  # type: ignore[arg-type]


def test_freeze_rule_error_is_a_value_error() -> None:
    assert issubclass(FreezeRuleError, ValueError)


def test_parse_rule_coerces_form_values() -> None:
    rule = parse_rule(
        "rrule",
        BERLIN,
        rrule="RRULE:FREQ=WEEKLY;BYDAY=FR;BYHOUR=16;BYMINUTE=0",
        end_time="8:00",
        end_weekday="monday",
        cron="",
    )
    assert rule.end_time == time(8, 0)
    assert rule.end_weekday == 0
    assert (
        parse_rule("cron", "UTC", cron="0 0 * * *", end_time="06:00", end_weekday="").end_weekday
        is None
    )
    with pytest.raises(FreezeRuleError, match="HH:MM"):
        parse_rule("cron", "UTC", cron="0 0 * * *", end_time="25:00")
    with pytest.raises(FreezeRuleError, match="unknown weekday"):
        parse_rule("cron", "UTC", cron="0 0 * * *", end_time="06:00", end_weekday="someday")


def test_rules_are_hashable_values() -> None:
    assert weekend_cron(BERLIN) == weekend_cron(BERLIN)
    assert len({weekend_cron(BERLIN), weekend_cron(BERLIN), weekend_cron("UTC")}) == 2


# ------------------------------------------------------------- extreme instants
# A release window may be typed as 9999-12-31; the freeze rules must answer, never raise
# OverflowError (issue 15, item 1).

EXTREME_RULES = [
    parse_rule("cron", BERLIN, cron="0 16 * * 5", duration=timedelta(hours=64)),
    parse_rule(
        "rrule",
        "Pacific/Kiritimati",
        rrule="FREQ=WEEKLY;BYDAY=FR;BYHOUR=16;BYMINUTE=0",
        end_time="08:00",
        end_weekday=0,
    ),
    parse_rule("once", "UTC", start=utc(2026, 1, 1), end=datetime.max.replace(tzinfo=UTC)),
]
FAR_FUTURE = (utc(9999, 12, 30), datetime.max.replace(tzinfo=UTC))
FAR_PAST = (datetime.min.replace(tzinfo=UTC), utc(1, 1, 3))


@pytest.mark.parametrize("rule", EXTREME_RULES, ids=lambda rule: rule.kind)
@pytest.mark.parametrize("span", [FAR_FUTURE, FAR_PAST], ids=["future", "past"])
def test_extreme_instants_never_overflow(rule, span):
    start, end = span
    occurrences(rule, start, end)
    for at in span:
        active_at(rule, at)
        next_end_after(rule, at)


def test_a_window_ending_in_9999_is_evaluated_up_to_the_horizon():
    rule = EXTREME_RULES[1]
    spans = occurrences(rule, utc(2990, 1, 1), utc(9999, 12, 31))
    assert spans and spans[-1][0] < utc(3001, 1, 1)
    assert active_at(rule, utc(9999, 12, 31, 20)) is None
