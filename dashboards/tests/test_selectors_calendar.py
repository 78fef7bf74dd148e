"""The calendar grid's reads: windows capped per day with the day's total, days counted in
the viewer's time zone (daylight-saving changes included), and entries escaped."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from django.utils import timezone

from dashboards.selectors import calendar as cal
from releases.choices import ReleaseState
from tests.factories import ReleaseFactory

BERLIN = ZoneInfo("Europe/Berlin")


def _grid(viewer, first: date, last: date, per_day: int = 3):
    start, end = cal.day_bounds(first, last)
    return cal.calendar_grid_releases(
        viewer=viewer, start=start, end=end, filters=cal.CalendarFilters(), per_day=per_day
    )


@pytest.mark.django_db
def test_a_busy_day_shows_its_first_windows_and_counts_them_all(viewer, service):
    day = timezone.localdate() + timedelta(days=3)
    at = datetime.combine(day, datetime.min.time(), tzinfo=timezone.get_current_timezone())
    made = [
        ReleaseFactory(services=[service], window_start=at + timedelta(hours=h))
        for h in (15, 9, 12, 18, 10)
    ]
    ReleaseFactory(
        services=[service],
        window_start=at + timedelta(hours=8),
        state=ReleaseState.CANCELLED,  # hidden by default: neither shown nor counted
    )

    windows, totals = _grid(viewer, day - timedelta(days=1), day + timedelta(days=1))

    assert [w.window_start.hour for w in windows] == [9, 10, 12]
    assert totals == {day: 5}
    assert {w.pk for w in windows} <= {r.pk for r in made}
    assert windows[0].service_names == service.name
    assert windows[0].service_slugs == [service.slug]


@pytest.mark.django_db
def test_a_window_that_began_before_the_range_shows_on_its_first_day(viewer, service):
    first = timezone.localdate()
    started = timezone.now() - timedelta(days=2)
    ReleaseFactory(services=[service], window_start=started, window_end=started + timedelta(days=3))

    windows, totals = _grid(viewer, first, first + timedelta(days=6))

    assert len(windows) == 1
    assert totals == {first: 1}


@pytest.mark.django_db
def test_days_follow_the_viewers_time_zone_across_the_daylight_saving_change(viewer, service):
    # Berlin leaves summer time on Sunday 25 October 2026 at 03:00 (a 25-hour day).
    local = [
        datetime(2026, 10, 24, 23, 30, tzinfo=BERLIN),  # 21:30 UTC on the 24th
        datetime(2026, 10, 25, 0, 30, tzinfo=BERLIN),  # 22:30 UTC on the 24th
        datetime(2026, 10, 25, 23, 30, tzinfo=BERLIN),  # 22:30 UTC on the 25th
        datetime(2026, 10, 26, 0, 30, tzinfo=BERLIN),  # 23:30 UTC on the 25th
    ]
    for start in local:
        ReleaseFactory(
            services=[service], window_start=start, window_end=start + timedelta(hours=1)
        )

    with timezone.override(BERLIN):
        windows, totals = _grid(viewer, date(2026, 10, 19), date(2026, 11, 1))

    assert totals == {date(2026, 10, 24): 1, date(2026, 10, 25): 2, date(2026, 10, 26): 1}
    assert len(windows) == 4


@pytest.mark.django_db
def test_month_and_list_entries_are_escaped(client, viewer, service):
    ReleaseFactory(
        name='<script>alert("x")</script>',
        version="1.0.0",
        services=[service],
        window_start=timezone.now() + timedelta(hours=2),
    )
    client.force_login(viewer)
    for view in ("month", "list"):
        body = client.get(reverse("dashboards:calendar"), {"view": view}).content.decode()
        assert "<script>alert" not in body
        assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; 1.0.0" in body
