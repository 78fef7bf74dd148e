"""Governance in a real browser: a security lead signs off a gate from the approvals
inbox, a CAB member votes on the workbench, and the chair's vote reaches the quorum: the
chair sees the decision and the release is approved."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from governance import services
from governance.models import ChangeRequest, GateCheck, GatePolicy, QuorumPolicyRecord
from releases import services as release_services
from releases.models import Release
from tests.factories import ReleaseFactory, make_ready

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
def awaiting_release(service, release_manager, cab_chair):
    """A release awaiting approval: a security sign-off and a CAB decision are missing."""
    GatePolicy.objects.create(
        name="Security review",
        change_request="normal",
        requirements=[{"stage": "pre_approval", "kind": "manual", "role": "security_lead"}],
    )
    QuorumPolicyRecord.objects.create(change_type="normal", min_votes=2, approval_share="0.5")
    release = make_ready(
        ReleaseFactory(
            name="Wallet top-ups",
            version="3.1.0",
            services=[service],
            owner=release_manager,
            window_start=timezone.now() + timedelta(days=2),
        )
    )
    for step in ("release_plan", "release_start_work", "release_request_approval"):
        release = getattr(release_services, step)(release=release, actor=release_manager)
    meeting = services.meeting_create(
        actor=cab_chair, title="Weekly CAB", scheduled_at=timezone.now() + timedelta(hours=3)
    )
    services.meeting_build_agenda(meeting=meeting, actor=cab_chair)
    return release


def test_sign_off_vote_and_decision_in_the_browser(
    chromium_browser,
    live_server,
    awaiting_release,
    security_approver,
    cab_member,
    cab_chair,
):
    release = awaiting_release
    cr = ChangeRequest.objects.get(release=release)

    # The security lead signs off from the inbox, with the evidence in view.
    sam = _login(chromium_browser, live_server, "sam")
    sam.get_by_role("link", name="Inbox").click()
    # One compact row per item; opening it shows the item in place.
    sam.locator(".inbox-row", has_text="Security lead sign-off").locator("summary").click()
    item = sam.locator(".gov-item", has_text="Security lead sign-off")
    expect(item).to_contain_text("Wallet top-ups 3.1.0")
    expect(item.locator(".gov-evidence")).to_contain_text("Risk")
    item.get_by_label("Comment").fill("Threat model reviewed; scan clean.")
    sam.screenshot(path=str(_path("governance-01-inbox")), full_page=True)
    item.get_by_role("button", name="Sign off").click()
    expect(sam.locator(".gov-item", has_text="Security lead sign-off")).to_contain_text("Passed")
    sam.screenshot(path=str(_path("governance-02-signed-off")), full_page=True)
    assert GateCheck.objects.get(release=release).status == "passed"

    # A CAB member votes on the workbench.
    carla = _login(chromium_browser, live_server, "carla")
    carla.get_by_role("link", name="CAB").click()
    agenda_item = carla.locator(".gov-item", has_text=f"CR-{cr.number}")
    expect(agenda_item).to_contain_text("0 of 2 required votes cast")
    agenda_item.get_by_label("Comment").fill("Backout plan is clear.")
    agenda_item.get_by_role("button", name="Approve").click()
    agenda_item = carla.locator(".gov-item", has_text=f"CR-{cr.number}")
    expect(agenda_item).to_contain_text("Your vote: Approve")
    expect(agenda_item).to_contain_text("1 approve")
    carla.screenshot(path=str(_path("governance-03-member-voted")), full_page=True)

    # The chair votes too: the quorum is met, the decision shows, the release is approved.
    chris = _login(chromium_browser, live_server, "chris")
    chris.get_by_role("link", name="CAB").click()
    chair_item = chris.locator(".gov-item", has_text=f"CR-{cr.number}")
    expect(chair_item).to_contain_text("1 approve")
    expect(chair_item.get_by_role("button", name="Close item (record rejection)")).to_be_visible()
    chair_item.get_by_role("button", name="Approve").click()
    chair_item = chris.locator(".gov-item", has_text=f"CR-{cr.number}")
    expect(chair_item).to_contain_text("Decision: Approved")
    expect(chair_item).to_contain_text("quorum reached: 2 votes cast")
    chris.screenshot(path=str(_path("governance-04-chair-decision")), full_page=True)
    assert ChangeRequest.objects.get(pk=cr.pk).state == "approved"
    assert Release.objects.get(pk=release.pk).state == "approved"

    # The release page shows the approved change request and a clear gate checklist.
    chris.goto(release.get_absolute_url())
    panel = chris.locator("#governance")
    expect(panel).to_contain_text("Gate policy: Security review v1")
    expect(panel).to_contain_text(f"CR-{cr.number}")
    chris.screenshot(path=str(_path("governance-05-release-panel")), full_page=True)


def _path(name: str):
    from tests.browser.conftest import ARTIFACTS

    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS / f"{name}.png"
