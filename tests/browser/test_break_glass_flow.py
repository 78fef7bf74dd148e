"""Break-glass in a real browser: during a freeze a release manager breaks the glass for a
rollback from the release page (a too-short reason is refused next to its field), the freeze
no longer blocks, and an administrator — not the requester — approves the review."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from governance import services
from governance.models import BreakGlass
from tests.factories import ReleaseFactory, force_state, make_ready

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _login(browser, live_server, username: str):
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill("pw-for-tests")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator(".user-name")).to_be_visible()
    return page


@pytest.fixture
def frozen_rollback(service, production, release_manager):
    from core.roles import Role
    from tests.factories import UserFactory

    now = timezone.now()
    services.freeze_window_create(
        actor=UserFactory(username="omar", roles=[Role.OPERATIONS]),
        name="Year-end freeze",
        kind="once",
        tz="UTC",
        start=now - timedelta(hours=1),
        end=now + timedelta(days=1),
        environments=[production],
    )
    release = make_ready(
        ReleaseFactory(
            name="Rollback checkout",
            version="2.3.1",
            services=[service],
            owner=release_manager,
            window_start=now - timedelta(minutes=30),
            window_end=now + timedelta(hours=4),
        )
    )
    return force_state(release, "approved")


def test_break_the_glass_and_approve_the_review_in_the_browser(
    chromium_browser, live_server, frozen_rollback, release_manager, administrator
):
    release = frozen_rollback
    rita = _login(chromium_browser, live_server, "rita")
    rita.goto(f"/releases/{release.pk}/")
    panel = rita.locator("#governance")
    expect(panel.locator(".gov-blocker-freeze")).to_contain_text("Year-end freeze")

    panel.get_by_text("Break glass…").click()
    form = panel.locator("#break-glass-form")
    form.get_by_label("For a").select_option("rollback")
    form.get_by_label("Reason").fill("too short")
    expiry = (timezone.now() + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")
    form.get_by_label("Expires at").fill(expiry)
    form.get_by_role("button", name="Break glass").click()
    reason_field = rita.locator("#break-glass-form .field", has=rita.locator("[name=reason]"))
    expect(reason_field).to_have_class("field field-has-error")
    expect(reason_field).to_contain_text("at least 20 characters")
    assert not BreakGlass.objects.exists()

    form = rita.locator("#break-glass-form")
    form.get_by_label("Reason").fill("Roll back 2.4.0: checkout 500s for 12% of EU customers")
    form.get_by_role("button", name="Break glass").click()
    panel = rita.locator("#governance")
    expect(panel.locator(".gov-break-glass-notes")).to_contain_text(
        "Break-glass (rollback) by rita lifts freeze “Year-end freeze”"
    )
    expect(panel.locator(".gov-blocker-freeze")).to_have_count(0)
    expect(panel.get_by_text("Approve review")).to_have_count(0)  # not for the requester

    ada = _login(chromium_browser, live_server, "ada")
    ada.goto(f"/releases/{release.pk}/")
    panel = ada.locator("#governance")
    panel.locator("summary", has_text="Approve review").click()
    panel.get_by_label("Review note (required)").fill("Rollback was right; PAY-88 fixed forward.")
    panel.get_by_role("button", name="Approve review").click()
    expect(ada.locator("#governance .gov-break-glass")).to_contain_text("Review approved by ada")
    glass = BreakGlass.objects.get()
    assert glass.review_state == "approved" and glass.reviewed_by == administrator
