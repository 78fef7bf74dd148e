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
def test_a_range_holds_exactly_the_windows_that_overlap_it(viewer, service):
    """Overlap is read as two index ranges (windows starting in the range, and windows open
    at its start); together exactly start < range end and end > range start."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    first = timezone.localdate() + timedelta(days=10)
    start, end = cal.day_bounds(first, first + timedelta(days=6))
    hour = timedelta(hours=1)
    spans = {
        "inside": (start + 5 * hour, start + 7 * hour),
        "open at start": (start - 48 * hour, start + hour),
        "spans the range": (start - hour, end + hour),
        "starts at the start": (start, start + hour),
        "runs past the end": (end - hour, end + 5 * hour),
        "ends at the start": (start - 2 * hour, start),  # touching is not overlapping
        "starts at the end": (end, end + hour),
        "long before": (start - 100 * hour, start - 90 * hour),
        "long after": (end + 90 * hour, end + 100 * hour),
    }
    made = {
        name: ReleaseFactory(services=[service], name=name, window_start=s, window_end=e)
        for name, (s, e) in spans.items()
    }
    qs = cal.calendar_queryset(viewer=viewer, start=start, end=end, filters=cal.CalendarFilters())
    with CaptureQueriesContext(connection) as ctx:
        found = set(qs.order_by().values_list("pk", flat=True))  # as the grid reads it
    assert found == {
        made[name].pk
        for name in (
            "inside",
            "open at start",
            "spans the range",
            "starts at the start",
            "runs past the end",
        )
    }
    if connection.vendor == "sqlite":  # both index ranges, no walk of the history before
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN QUERY PLAN " + ctx.captured_queries[0]["sql"])
            plan = " | ".join(row[-1] for row in cursor.fetchall())
        assert "release_window_span_idx" in plan and "release_window_end_idx" in plan, plan


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


def _conflicts(viewer, day: date):
    start, end = cal.day_bounds(day, day)
    filters = cal.CalendarFilters()
    windows, _ = cal.calendar_grid_releases(
        viewer=viewer, start=start, end=end, filters=filters, per_day=10
    )
    bands = cal.freeze_bands(start=start, end=end, filters=filters)
    found = cal.conflicts_for(windows=windows, bands=bands)
    return {w.name: [(c.kind, c.message) for c in found.get(w.pk, [])] for w in windows}


@pytest.mark.django_db
def test_freezes_conflict_with_the_windows_they_cover(
    viewer, service, other_service, production, staging
):
    from governance.models import FreezeWindow

    day = timezone.localdate() + timedelta(days=5)
    at = datetime.combine(day, datetime.min.time(), tzinfo=timezone.get_current_timezone())
    ReleaseFactory(name="Covered", services=[service], window_start=at + timedelta(hours=10))
    ReleaseFactory(name="Other", services=[other_service], window_start=at + timedelta(hours=14))
    ReleaseFactory(
        name="Done",
        services=[service],
        window_start=at + timedelta(hours=10),
        state=ReleaseState.CLOSED,  # history: never in conflict
    )
    scoped = FreezeWindow.objects.create(
        name="Ledger freeze", reason="Audit.", kind="once", start=at, end=at + timedelta(days=1)
    )
    scoped.services.set([service])
    staging_only = FreezeWindow.objects.create(
        name="Staging rebuild", kind="once", start=at, end=at + timedelta(days=1)
    )
    staging_only.environments.set([staging])

    found = _conflicts(viewer, day)

    assert [kind for kind, _ in found["Covered"]] == ["freeze"]
    assert "Window falls in freeze “Ledger freeze”" in found["Covered"][0][1]
    assert "Reason: Audit." in found["Covered"][0][1]
    assert found["Other"] == []  # the freeze covers another service; staging is not production
    assert found["Done"] == []


@pytest.mark.django_db
def test_overlaps_of_a_service_or_a_production_environment_are_explained_once(
    viewer, service, other_service, production
):
    from releases.models import Deployment

    day = timezone.localdate() + timedelta(days=6)
    at = datetime.combine(day, datetime.min.time(), tzinfo=timezone.get_current_timezone())
    first = ReleaseFactory(
        name="First", version="1.0.0", services=[service], window_start=at + timedelta(hours=9)
    )
    second = ReleaseFactory(
        name="Second", version="2.0.0", services=[service], window_start=at + timedelta(hours=10)
    )
    third = ReleaseFactory(
        name="Third",
        version="3.0.0",
        services=[other_service],
        window_start=at + timedelta(hours=10),
    )
    for release in (first, second, third):
        Deployment.objects.create(
            release=release,
            service=release.services.first(),
            environment=production,
            version=release.version,
        )

    found = _conflicts(viewer, day)

    # First and Second share a service (said once, not again for the environment)…
    assert [kind for kind, _ in found["First"]] == ["service", "environment"]
    assert found["First"][0][1].startswith(f"Same service {service.name}: overlaps Second 2.0.0")
    assert found["First"][1][1].startswith(
        f"Shares production environment {production.name}: overlaps Third 3.0.0"
    )
    # …Third shares only the production environment with both.
    assert [kind for kind, _ in found["Third"]] == ["environment", "environment"]
