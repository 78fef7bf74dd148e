"""A release manager's first session, in a real browser: log in, create a release, add
scope and a rollback plan, plan it, start work, cancel it with a reason, read the timeline."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from core.models import AuditEvent
from governance.services.risk import effective_risk_level
from releases.choices import ReleaseState
from releases.models import Release

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _state_badge(page):
    return page.locator("#release-page .release-badges .badge-state")


def test_release_manager_plans_starts_and_cancels_a_release(
    page, screenshot, release_manager, service, other_service
):
    # Log in.
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    page.get_by_label("Username").fill("rita")
    page.get_by_label("Password").fill("pw-for-tests")
    screenshot("01-login")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Releases")).to_be_visible()
    expect(page.locator(".user-roles")).to_have_text("Release manager")

    # Create a release; a first attempt with a bad window shows field errors.
    page.get_by_role("link", name="New release").click()
    page.get_by_label("Name").fill("Wallet top-ups")
    page.get_by_label("Version").fill("3.1.0")
    page.get_by_label("Risk").select_option("medium")
    page.get_by_label("payments-api").check()
    expect(page.get_by_label("identity-api")).to_have_count(0)  # not rita's team
    page.get_by_label("Deployment window start").fill("2031-03-10T22:00")
    page.get_by_label("Deployment window end").fill("2031-03-10T21:00")
    page.get_by_label("Release notes").fill("## Added\n\n- Top up a wallet by card")
    page.get_by_role("button", name="Create draft release").click()
    expect(page.locator(".field-has-error")).to_contain_text("The window must end after it starts.")
    screenshot("02-form-errors")
    page.get_by_label("Deployment window end").fill("2031-03-10T23:30")
    page.get_by_role("button", name="Create draft release").click()
    expect(page.locator("h1")).to_contain_text("Wallet top-ups")
    expect(_state_badge(page)).to_have_text("Draft")
    expect(page.locator("#messages")).to_contain_text("Created Wallet top-ups 3.1.0")

    # Before planning the header's risk is the declared one, and says so.
    expect(page.locator("#release-risk")).to_contain_text("not yet assessed")

    # Planning is not offered until the release has what planning needs.
    expect(page.locator("#transitions").get_by_role("button", name="Plan")).to_have_count(0)
    screenshot("03-draft")

    # Scope and rollback plan through the inline htmx forms.
    page.locator("#scope summary", has_text="Add scope item").click()
    page.locator("#id_scope_new_external_key").fill("PAY-321")
    page.locator("#id_scope_new_title").fill("Top up by card")
    page.locator("#scope").get_by_role("button", name="Add item").click()
    expect(page.locator("#scope table")).to_contain_text("Top up by card")
    page.locator("#rollback summary", has_text="Add rollback plan").click()
    page.locator("#id_rollback_steps").fill("1. Disable the top-up flag\n2. Redeploy 3.0.4")
    page.locator("#rollback").get_by_role("button", name="Save rollback plan").click()
    expect(page.locator("#rollback .steps")).to_contain_text("Disable the top-up flag")

    # Plan, then start work: each press swaps the page in place.
    page.locator("#transitions").get_by_role("button", name="Plan").click()
    expect(_state_badge(page)).to_have_text("Planned")
    expect(page.locator("#messages")).to_contain_text("the release is now Planned")

    # Planning assessed the risk: the header shows the governing level and, opened, why.
    governing = effective_risk_level(Release.objects.get(name="Wallet top-ups"))
    header = page.locator("#release-page .release-header")
    expect(header.locator(".badge-risk")).to_have_text(f"Risk: {governing.capitalize()}")
    header.locator(".risk-why summary").click()
    expect(header.locator(".risk-why summary")).to_contain_text(f"Why {governing}?")
    expect(header.locator(".risk-factors li").first).to_be_visible()
    shot = screenshot("release-header-risk")
    header.screenshot(path=str(shot.with_name("release-header-risk-close.png")))
    page.locator("#transitions").get_by_role("button", name="Start work").click()
    expect(_state_badge(page)).to_have_text("In progress")
    screenshot("04-in-progress")

    # Cancel needs a reason: a blank one is refused on the form.
    page.locator("#transitions summary", has_text="Cancel").click()
    # (Whitespace passes the browser's own "required" check; the server refuses it.)
    page.locator("#id_cancel_reason").fill("   ")
    page.locator("#transitions form").get_by_role("button", name="Cancel").click()
    expect(page.locator("#transitions")).to_contain_text("Please give a reason.")
    screenshot("05-reason-required")
    page.locator("#id_cancel_reason").fill("Merged into the 3.2 release to save a window.")
    page.locator("#transitions form").get_by_role("button", name="Cancel").click()
    expect(_state_badge(page)).to_have_text("Cancelled")
    expect(page.locator("#transitions button")).to_have_count(0)

    # The audit timeline tells the whole story, newest last.
    timeline = page.locator("#timeline")
    expect(timeline).to_contain_text("Merged into the 3.2 release to save a window.")
    for label in ("Release create", "Scope add", "Rollback plan set", "Plan", "Start work"):
        expect(timeline).to_contain_text(label)
    expect(timeline.get_by_role("link", name="Export CSV")).to_be_visible()
    screenshot("06-cancelled-timeline")

    release = Release.objects.get(name="Wallet top-ups")
    assert release.state == ReleaseState.CANCELLED
    actions = list(
        AuditEvent.objects.filter(release_id=release.pk).values_list("action", flat=True)
    )
    assert actions == [
        "release.create",
        "scope.add",
        "rollback_plan.set",
        "release.plan",
        "release.start_work",
        "release.cancel",
    ]

    # The list shows it with its badge.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Releases").click()
    expect(page.locator(".releases-table")).to_contain_text("Wallet top-ups")
    screenshot("07-list")

    # Filters apply in place (htmx) and land in the address bar.
    page.locator(".state-filter").get_by_label("Draft").check()
    expect(page.locator("#results")).to_contain_text("No releases match these filters.")
    expect(page).to_have_url(re.compile(r"state=draft"))
    page.locator(".state-filter").get_by_label("Cancelled").check()
    expect(page.locator(".releases-table")).to_contain_text("Wallet top-ups")


def test_release_header_explains_an_overridden_risk(
    page, screenshot, viewer, service, release_manager
):
    """A stakeholder reads the governing risk in the header: overridden above what was
    computed, with who and why, and the declared level beside it."""
    from django.utils import timezone

    from governance.models import RiskAssessment
    from tests.factories import ReleaseFactory

    release = ReleaseFactory(
        name="Ledger split", services=[service], owner=release_manager, risk_level="low"
    )
    RiskAssessment.objects.create(
        release=release,
        score=41,
        computed_level="medium",
        factors=[
            {"label": "Data migration", "value": "ledger table split", "contribution": 25},
            {"label": "Service criticality", "value": "payments-api is high", "contribution": 14},
            {"label": "Change size", "value": "3 scope items", "contribution": 2},
        ],
        override_level="high",
        override_justification="The split cannot be rolled back once writes start.",
        overridden_by=release_manager,
        overridden_at=timezone.now(),
    )
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill("stella")
    page.get_by_label("Password").fill("pw-for-tests")
    page.get_by_role("button", name="Log in").click()
    page.goto(release.get_absolute_url())
    header = page.locator("#release-page .release-header")
    expect(header.locator(".badge-risk")).to_have_text("Risk: High")
    summary = header.locator(".risk-why summary")
    expect(summary).to_contain_text("overridden by rita")
    expect(summary).to_contain_text("declared: low")
    summary.click()
    expect(header.locator(".risk-override")).to_contain_text("cannot be rolled back")
    header.screenshot(path=str(screenshot("release-header-risk-override")))
