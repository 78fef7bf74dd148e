"""The compact inbox in a browser: one line per item, a filter that redraws the rows in
place (and keeps the address), and a row that opens in place to act on it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from core.roles import Role
from governance import services
from governance.models import GateCheck, GatePolicy, QuorumPolicyRecord
from releases import services as release_services
from tests.factories import ReleaseFactory, UserFactory, make_ready

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _login(page, username: str) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill("pw-for-tests")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator(".user-name")).to_be_visible()


def test_filter_sort_and_open_a_row_in_place(page, screenshot, service, release_manager):
    approver = UserFactory(username="sec", roles=[Role.SECURITY_LEAD, Role.CAB_MEMBER])
    GatePolicy.objects.create(
        name="Security review",
        change_request="",
        requirements=[{"stage": "pre_approval", "kind": "manual", "role": "security_lead"}],
    )
    QuorumPolicyRecord.objects.create(
        change_type="normal", min_votes=2, approval_share="0.5", mandatory_roles=[]
    )
    release = make_ready(ReleaseFactory(services=[service], owner=release_manager))
    for step in ("release_plan", "release_start_work"):
        release = getattr(release_services, step)(release=release, actor=release_manager)
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
    gate = release.gate_checks.get(role="security_lead")

    _login(page, approver.username)
    page.goto("/governance/inbox/")
    rows = page.locator(".inbox-row")
    expect(rows).to_have_count(2)
    expect(page.locator(".gov-item").first).to_be_hidden()  # compact until opened

    page.get_by_label("Kind").select_option("vote")
    expect(rows).to_have_count(1)
    expect(page.locator(".inbox-count")).to_contain_text("1 of 2 items shown")
    assert "kind=vote" in page.url
    page.get_by_label("Kind").select_option("")
    expect(rows).to_have_count(2)

    row = page.locator(f"#row-signoff-{gate.pk}")
    row.locator("summary").click()
    item = row.locator(f"#signoff-{gate.pk}")
    expect(item).to_be_visible()
    screenshot("inbox-compact-open")
    item.get_by_label("Comment").fill("Scan clean.")
    item.get_by_role("button", name="Sign off").click()
    expect(row.locator(f"#signoff-{gate.pk}")).to_contain_text("Passed")
    assert GateCheck.objects.get(pk=gate.pk).status == "passed"
