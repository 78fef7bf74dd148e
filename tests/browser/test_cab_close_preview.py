"""The chair sees what "Close item" records before pressing it: a change voted 2–0 in
favour whose mandatory security-lead vote is missing closes as a rejection, which needs an
explicit confirmation; the reasons then show on the page (issue 15, item 3)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from core.roles import Role
from governance import services
from governance.models import ChangeRequest, QuorumPolicyRecord
from tests.factories import UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def voted_item(release_manager, cab_member, cab_chair):
    QuorumPolicyRecord.objects.create(
        change_type="normal", min_votes=2, approval_share="0.5", mandatory_roles=["security_lead"]
    )
    now = timezone.now()
    cr = services.change_request_create(
        actor=release_manager,
        title="Rotate signing keys",
        risk_level="high",
        reason="Expiry",
        implementation_plan="Rotate",
        backout_plan="Restore",
        window_start=now + timedelta(days=1),
        window_end=now + timedelta(days=1, hours=1),
    )
    cr = services.change_request_submit(change_request=cr, actor=release_manager)
    meeting = services.meeting_create(
        actor=cab_chair, title="Weekly CAB", scheduled_at=now + timedelta(hours=2)
    )
    services.meeting_build_agenda(meeting=meeting, actor=cab_chair)
    second = UserFactory(username="cora", roles=[Role.CAB_MEMBER])
    for voter in (cab_member, second):
        services.vote_cast(change_request=cr, actor=voter, choice="approve")
    return cr


def test_closing_a_2_0_vote_without_the_security_lead_asks_first(
    page, screenshot, voted_item, cab_chair
):
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(cab_chair.username)
    page.get_by_label("Password").fill("pw-for-tests")
    page.get_by_role("button", name="Log in").click()
    page.goto("/governance/cab/")
    item = page.locator(".gov-item", has_text=f"CR-{voted_item.number}")
    expect(item).to_contain_text("2 approve")
    expect(item.locator(".gov-close-preview")).to_contain_text("Closing now records Rejected")
    expect(item.locator(".gov-close-preview")).to_contain_text("security")

    screenshot("cab-close-preview")
    close = item.get_by_role("button", name="Close item (record rejection)")
    close.click()  # the confirmation is required: nothing is sent
    expect(item.get_by_label("Record the rejection")).to_be_visible()
    assert ChangeRequest.objects.get(pk=voted_item.pk).state != "rejected"

    item.get_by_label("Chair note").fill("No security review this week.")
    item.get_by_label("Record the rejection").check()
    close.click()
    item = page.locator(".gov-item", has_text=f"CR-{voted_item.number}")
    expect(item).to_contain_text("Closed: Rejected")
    reasons = item.locator(".gov-decision-reasons")
    expect(reasons).to_contain_text("security")
    expect(reasons).to_contain_text("chair: No security review this week.")
    screenshot("cab-closed-with-reasons")
    assert ChangeRequest.objects.get(pk=voted_item.pk).state == "rejected"
