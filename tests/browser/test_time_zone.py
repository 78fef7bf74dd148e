"""A person in a non-UTC zone sees every date and time in their zone, with UTC on hover
(issue 15: one date and time presentation)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from playwright.sync_api import expect

from core.profiles import profile_update
from tests.factories import ReleaseFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _login(page, username: str) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill("pw-for-tests")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator(".user-name")).to_be_visible()


def test_a_release_page_shows_local_time_with_utc_on_hover(
    page, screenshot, service, release_manager
):
    release = ReleaseFactory(
        services=[service],
        owner=release_manager,
        window_start=datetime(2027, 1, 20, 20, 0, tzinfo=UTC),
        window_end=datetime(2027, 1, 20, 22, 0, tzinfo=UTC),
    )
    profile_update(actor=release_manager, user=release_manager, time_zone="Asia/Tokyo")

    _login(page, release_manager.username)
    page.goto(release.get_absolute_url())
    start = page.locator("dd time[datetime='2027-01-20T20:00:00Z']")
    # 20:00 UTC is 05:00 the next morning in Tokyo.
    expect(start).to_have_text("Thu 21 Jan 2027, 05:00 JST")
    expect(start).to_have_attribute("title", "2027-01-20 20:00 UTC")
    start.hover()
    expect(page.locator("dd time[datetime='2027-01-20T22:00:00Z']")).to_have_text("07:00 JST")
    screenshot("time-zone-release-page")


def test_the_profile_page_changes_the_zone_pages_use(page, service, release_manager):
    release = ReleaseFactory(
        services=[service],
        owner=release_manager,
        window_start=datetime(2027, 7, 1, 12, 0, tzinfo=UTC),
        window_end=datetime(2027, 7, 1, 13, 0, tzinfo=UTC),
    )
    _login(page, release_manager.username)
    page.goto(release.get_absolute_url())
    expect(page.locator("dd time[datetime='2027-07-01T12:00:00Z']")).to_have_text(
        "Thu 1 Jul 2027, 12:00 UTC"
    )
    page.get_by_role("link", name="Profile").click()
    page.get_by_label("Time zone").select_option("America/New_York")
    page.get_by_role("button", name="Save time zone").click()
    expect(page.locator(".message")).to_contain_text("America/New_York")
    page.goto(release.get_absolute_url())
    expect(page.locator("dd time[datetime='2027-07-01T12:00:00Z']")).to_have_text(
        "Thu 1 Jul 2027, 08:00 EDT"
    )
