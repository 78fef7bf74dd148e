"""The CAB chair runs a meeting from its own page: marks who is present, sees the tally move
when a member votes, and reads what closing the item would record before closing it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from governance import selectors, services
from governance.models import QuorumPolicyRecord

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _login(page, username: str) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill("pw-for-tests")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator(".user-name")).to_be_visible()


def test_the_chair_marks_presence_and_previews_the_outcome(
    page, screenshot, release_manager, cab_member, cab_chair
):
    QuorumPolicyRecord.objects.create(
        change_type="normal", min_votes=2, approval_share="0.5", mandatory_roles=[]
    )
    now = timezone.now()
    cr = services.change_request_create(
        actor=release_manager,
        title="Rotate the payment keys",
        reason="r",
        implementation_plan="i",
        backout_plan="b",
        window_start=now + timedelta(days=1),
        window_end=now + timedelta(days=1, hours=1),
    )
    services.change_request_submit(change_request=cr, actor=release_manager)
    meeting = services.meeting_create(
        actor=cab_chair, title="Weekly CAB", scheduled_at=now + timedelta(hours=2)
    )
    services.meeting_build_agenda(meeting=meeting, actor=cab_chair)

    _login(page, cab_chair.username)
    page.goto("/governance/cab/")
    page.get_by_role("link", name="Weekly CAB").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Weekly CAB")
    attendees = page.locator("#attendees")
    expect(attendees).to_contain_text("0 of 2 present")
    attendees.get_by_role("button", name=f"Mark {cab_member.username} present").click()
    expect(attendees).to_contain_text("1 of 2 present")
    expect(page.locator(f"#attendee-{cab_member.pk} .presence")).to_have_text("Present")
    assert selectors.meeting_presence(meeting) == {cab_member.pk: True}

    preview = page.locator(f"#outcome-preview li#preview-{meeting.items.get().pk}")
    expect(preview).to_contain_text("Closing now records Rejected")
    expect(preview).to_contain_text("0 of 2 required votes cast")  # and why
    # A member votes elsewhere; the page's tally and preview follow without a reload.
    services.vote_cast(change_request=cr, actor=cab_member, choice="approve")
    expect(preview).to_contain_text("1 approve", timeout=20_000)
    expect(preview).to_contain_text("1 of 2 required votes cast")
    expect(page.locator(".gov-item .gov-tally")).to_contain_text("1 approve", timeout=20_000)
    screenshot("cab-meeting-page")
    # The member's own view: no chair actions.
    page.get_by_role("button", name="Log out").click()
    _login(page, cab_member.username)
    page.goto(f"/governance/cab/meetings/{meeting.pk}/")
    expect(page.get_by_role("button", name="Close meeting")).to_have_count(0)
    expect(page.locator("#attendees button")).to_have_count(0)
