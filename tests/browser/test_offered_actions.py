"""Pages offer only the actions a person may press now (issue 15, item 4): vote buttons to
those who may vote, blocked transitions disabled with what blocks them, no "Re-open" on the
gates of a closed release. Each page asks the same code as the service that would refuse."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from governance import services
from governance.models import GatePolicy, QuorumPolicyRecord
from releases import services as release_services
from releases.choices import ReleaseState
from tests.factories import ReleaseFactory, force_state, make_ready

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _login(page, username: str) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill("pw-for-tests")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator(".user-name")).to_be_visible()


@pytest.fixture
def awaiting(service, release_manager):
    """A release awaiting approval whose security sign-off is still missing."""
    GatePolicy.objects.create(
        name="Security review",
        change_request="",
        requirements=[{"stage": "pre_approval", "kind": "manual", "role": "security_lead"}],
    )
    release = make_ready(ReleaseFactory(services=[service], owner=release_manager))
    for step in ("release_plan", "release_start_work", "release_request_approval"):
        release = getattr(release_services, step)(release=release, actor=release_manager)
    return release


def test_a_blocked_transition_is_shown_disabled_with_its_blockers(
    page, screenshot, awaiting, release_manager
):
    _login(page, release_manager.username)
    page.goto(awaiting.get_absolute_url())
    button = page.locator("#transitions").get_by_role("button", name="Approve", exact=True)
    expect(button).to_be_disabled()
    expect(page.locator("#blocked-approve")).to_contain_text("Security lead")
    screenshot("release-blocked-transition")


def test_gates_of_a_closed_release_offer_no_re_open(
    page, awaiting, release_manager, security_approver
):
    gate = awaiting.gate_checks.get(role="security_lead")
    services.gate_sign_off(gate=gate, actor=security_approver, comment="ok")
    force_state(awaiting, ReleaseState.CLOSED)
    _login(page, release_manager.username)
    page.goto(awaiting.get_absolute_url())
    expect(page.locator(f"#gate-{gate.pk}")).to_contain_text("Passed")
    expect(page.locator("#governance").get_by_text("Re-open")).to_have_count(0)


def test_vote_buttons_only_for_those_who_may_vote(
    page, release_manager, cab_chair, viewer, cab_member
):
    QuorumPolicyRecord.objects.create(change_type="normal", min_votes=2, approval_share="0.5")
    now = timezone.now()
    cr = services.change_request_create(
        actor=release_manager,
        title="Rotate keys",
        reason="Expiry",
        implementation_plan="Rotate",
        backout_plan="Restore",
        window_start=now + timedelta(days=1),
        window_end=now + timedelta(days=1, hours=1),
    )
    services.change_request_submit(change_request=cr, actor=release_manager)
    meeting = services.meeting_create(
        actor=cab_chair, title="Weekly CAB", scheduled_at=now + timedelta(hours=2)
    )
    services.meeting_build_agenda(meeting=meeting, actor=cab_chair)

    _login(page, viewer.username)
    page.goto("/governance/cab/")
    item = page.locator(".gov-item", has_text=f"CR-{cr.number}")
    expect(item).to_be_visible()
    expect(item.get_by_role("button", name="Approve")).to_have_count(0)

    page.get_by_role("button", name="Log out").click()
    _login(page, cab_member.username)
    page.goto("/governance/cab/")
    item = page.locator(".gov-item", has_text=f"CR-{cr.number}")
    expect(item.get_by_role("button", name="Approve")).to_be_visible()


def test_the_inbox_offers_waive_only_to_those_who_may_waive(page, awaiting, security_approver):
    """Waive shows only to its roles (a CAB chair or an administrator by default)."""
    gate = awaiting.gate_checks.get(role="security_lead")
    _login(page, security_approver.username)
    page.goto("/governance/inbox/")
    page.locator(f"#row-signoff-{gate.pk} > summary").click()
    item = page.locator(f"#signoff-{gate.pk}")
    expect(item.get_by_role("button", name="Sign off")).to_be_visible()
    expect(item.get_by_role("button", name="Waive")).to_have_count(0)
