"""A stakeholder in the release calendar, in a real browser: opens it, moves a month, reads a
conflict's explanation, and downloads the iCal feed."""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from icalendar import Calendar
from playwright.sync_api import expect

from governance.models import FreezeWindow
from tests.factories import ReleaseFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _login(page, username: str) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill("pw-for-tests")
    page.get_by_role("button", name="Log in").click()


def _at(day, hour: int) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=timezone.get_current_timezone())


def test_stakeholder_browses_the_calendar_and_downloads_ical(
    page, screenshot, viewer, service, other_service, release_manager
):
    today = timezone.localdate()
    this_month = today.replace(day=10)
    next_month = (today.replace(day=28) + timedelta(days=10)).replace(day=12)
    # Two releases of payments-api whose windows overlap: a conflict.
    ReleaseFactory(
        name="Checkout redesign",
        version="4.0.0",
        services=[service],
        owner=release_manager,
        window_start=_at(this_month, 9),
        window_end=_at(this_month, 12),
    )
    ReleaseFactory(
        name="Ledger fix",
        version="4.0.1",
        services=[service],
        window_start=_at(this_month, 11),
        window_end=_at(this_month, 13),
    )
    ReleaseFactory(
        name="Login revamp",
        version="7.2.0",
        services=[other_service],
        window_start=_at(next_month, 14),
        window_end=_at(next_month, 15),
    )
    FreezeWindow.objects.create(
        name="Quarter close",
        reason="Finance closes the books.",
        kind="once",
        start=_at(next_month + timedelta(days=2), 0),
        end=_at(next_month + timedelta(days=4), 0),
    )

    _login(page, "stella")
    page.get_by_role("link", name="Calendar").click()
    expect(page.get_by_role("heading", name="Release calendar")).to_be_visible()
    expect(page.locator("#calendar-title")).to_have_text(f"{today:%B %Y}")
    expect(page.locator(".event > a", has_text="Checkout redesign 4.0.0")).to_be_visible()

    # The conflict is highlighted; its explanation opens from the keyboard.
    conflict = page.locator(".event-conflict").filter(
        has=page.locator("a", has_text="Checkout redesign 4.0.0")
    )
    expect(conflict).to_have_attribute("title", re.compile("Same service payments-api"))
    summary = conflict.locator("summary")
    summary.focus()
    page.keyboard.press("Enter")
    expect(conflict.locator("details.conflict ul")).to_contain_text(
        "Same service payments-api: overlaps Ledger fix 4.0.1"
    )
    screenshot("dashboards-calendar-conflict")

    # Next month (htmx swaps the grid and pushes the URL): its release and freeze band.
    page.get_by_role("link", name=re.compile("Next")).click()
    expect(page.locator("#calendar-title")).to_have_text(f"{next_month:%B %Y}")
    expect(page).to_have_url(re.compile(r"date="))
    expect(page.locator(".event > a", has_text="Login revamp 7.2.0")).to_be_visible()
    expect(page.locator(".freeze-band").first).to_contain_text("Quarter close")
    expect(page.locator(".freeze-list")).to_contain_text("Finance closes the books.")
    screenshot("dashboards-calendar-next-month")

    # Download the iCal feed and read it back.
    with page.expect_download() as info:
        page.get_by_role("link", name="Download .ics").click()
    cal = Calendar.from_ical(Path(info.value.path()).read_bytes())
    summaries = {str(e["SUMMARY"]) for e in cal.walk("VEVENT")}
    assert "Checkout redesign 4.0.0 (Draft)" in summaries
    assert "Freeze: Quarter close" in summaries

    # A personal subscription URL, shown once, with the lag explained.
    page.get_by_role("button", name="Create my feed URL").click()
    expect(page.locator("#feed-url")).to_have_value(re.compile(r"/dashboards/calendar/feed/cal_"))
    expect(page.locator(".feed-panel")).to_contain_text("may lag by hours")
    screenshot("dashboards-calendar-feed")
