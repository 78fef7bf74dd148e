"""The CAB workbench's forms (issue 15, item 6): a meeting in the past or beyond 2999 is
refused next to its field with the input kept, and "Build agenda" says when nothing is due."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from governance.models import CABMeeting

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _login(page, username: str) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill("pw-for-tests")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator(".user-name")).to_be_visible()


def _schedule(page, when: str) -> None:
    page.get_by_label("Title").fill("Weekly CAB")
    page.get_by_label("Scheduled at").fill(when)
    page.get_by_role("button", name="Schedule").click()


def test_scheduling_refuses_past_and_far_future_meetings_next_to_the_field(page, cab_chair):
    _login(page, cab_chair.username)
    page.goto("/governance/cab/")
    yesterday = timezone.localtime() - timedelta(days=1)
    _schedule(page, yesterday.strftime("%Y-%m-%dT%H:%M"))
    field = page.locator(".field-has-error")
    expect(field).to_contain_text("Must not be in the past.")
    expect(field.get_by_label("Scheduled at")).to_have_value(yesterday.strftime("%Y-%m-%dT%H:%M"))
    expect(page.get_by_label("Title")).to_have_value("Weekly CAB")

    _schedule(page, "9999-12-31T10:00")
    expect(page.locator(".field-has-error")).to_contain_text("between 1970-01-01 and 2999-12-31")
    assert not CABMeeting.objects.exists()

    tomorrow = timezone.localtime() + timedelta(days=1)
    _schedule(page, tomorrow.strftime("%Y-%m-%dT%H:%M"))
    expect(page.locator("#messages")).to_contain_text("Scheduled Weekly CAB.")

    page.get_by_role("button", name="Build agenda").click()
    expect(page.locator("#messages")).to_contain_text("Nothing is due before the next meeting")
