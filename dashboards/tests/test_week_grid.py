"""The calendar's week view is a time grid: each window and CAB meeting sits at its time of
day, as tall as it lasts, side by side when they overlap (issue 15, item 10)."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from dashboards.templatetags.calendar_html import week_time_grid
from dashboards.views import Day
from releases.models import Release


class _Window:
    def __init__(self, pk, start, end, state="planned"):
        self.pk, self.name, self.version, self.state = pk, f"Rel {pk}", "1.0", state
        self.window_start, self.window_end = start, end
        self.service_names, self.conflicts = "svc", []

    def get_state_display(self):
        return self.state.title()


def _week(releases_by_day: dict[int, list]) -> list[Day]:
    monday = date(2027, 3, 1)
    return [
        Day(
            date=monday + timedelta(days=i),
            in_month=True,
            is_today=False,
            releases=releases_by_day.get(i, []),
        )
        for i in range(7)
    ]


def _at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2027, 3, 1 + day, hour, minute)


def _classes(html: str, name: str) -> str:
    return re.search(
        rf'<li class="([^"]*)"><a href="[^"]*"><span class="event-time">[^<]*</span> '
        rf"{re.escape(name)}</a>",
        html,
    )[1]


def test_a_window_sits_at_its_time_and_is_as_tall_as_it_lasts():
    html = week_time_grid(_week({1: [_Window(1, _at(1, 14), _at(1, 16))]}), "/releases/2147483647/")
    # the default day runs 07:00–20:00: 26 half-hour rows; 14:00 is row 14, two hours span 4
    assert "rows-26" in html
    assert "row-14 span-4 lane-0-of-1" in _classes(html, "Rel 1 1.0")
    assert 'href="/releases/1/"' in html and "14:00–16:00" in html
    assert html.count('class="week-hour') == 13


def test_early_and_late_windows_stretch_the_day():
    early = _Window(1, _at(0, 5, 30), _at(0, 6, 30))
    late = _Window(2, _at(2, 21), _at(2, 22, 30))
    html = week_time_grid(_week({0: [early], 2: [late]}), "/releases/2147483647/")
    assert "rows-36" in html  # 05:00–23:00
    assert "row-1 span-2" in _classes(html, "Rel 1 1.0")
    assert "row-32 span-3" in _classes(html, "Rel 2 1.0")


def test_overlapping_windows_go_side_by_side_and_the_next_one_is_full_width():
    first = _Window(1, _at(3, 9), _at(3, 11))
    second = _Window(2, _at(3, 10), _at(3, 12))
    later = _Window(3, _at(3, 13), _at(3, 14))
    html = week_time_grid(_week({3: [first, second, later]}), "/releases/2147483647/")
    assert "lane-0-of-2" in _classes(html, "Rel 1 1.0")
    assert "lane-1-of-2" in _classes(html, "Rel 2 1.0")
    assert "lane-0-of-1" in _classes(html, "Rel 3 1.0")


def test_a_window_into_the_next_day_runs_to_the_bottom():
    html = week_time_grid(_week({4: [_Window(1, _at(4, 22), _at(5, 2))]}), "/releases/2147483647/")
    assert "rows-34" in html  # 07:00–24:00
    assert "row-30 span-4" in _classes(html, "Rel 1 1.0")
    assert "22:00–Sat 6 Mar 02:00" in html


@pytest.mark.django_db
def test_the_week_page_draws_the_grid_with_cab_meetings(client, viewer, release_manager, service):
    from governance.models import CABMeeting

    tz = timezone.get_current_timezone()
    monday = date(2027, 3, 1)
    release = Release.objects.create(
        name="Ledger move",
        version="4.0",
        owner=release_manager,
        window_start=datetime(2027, 3, 2, 14, 0, tzinfo=tz),
        window_end=datetime(2027, 3, 2, 15, 30, tzinfo=tz),
        target_date=monday,
    )
    release.services.add(service)
    CABMeeting.objects.create(
        title="Weekly CAB", scheduled_at=datetime(2027, 3, 3, 9, 0, tzinfo=tz)
    )
    client.force_login(viewer)
    page = client.get(reverse("dashboards:calendar"), {"view": "week", "date": "2027-03-03"})
    html = page.content.decode()
    assert 'class="week-grid"' in html
    assert "row-14 span-3" in html and "Ledger move 4.0" in html
    assert re.search(
        r'week-event event-cab row-4 span-2 lane-0-of-1">.*09:00–10:00</span> CAB: Weekly CAB', html
    )
