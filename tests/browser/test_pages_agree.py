"""Pages agree with each other (issue 15, item 5): the metrics period select names the
period the figures cover, the inbox shows the governing risk as the list and release page
do, and two gates of one role at different stages are told apart."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from governance.models import GatePolicy
from releases import services as release_services
from tests.factories import ReleaseFactory, make_ready

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _login(page, username: str) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill("pw-for-tests")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator(".user-name")).to_be_visible()


def test_the_metrics_period_select_names_the_period_shown(page, viewer, service):
    _login(page, viewer.username)
    page.goto("/dashboards/metrics/")
    expect(page.get_by_label("Period")).to_have_value("90")
    page.goto(f"/dashboards/metrics/?service={service.slug}")
    expect(page.get_by_label("Period")).to_have_value("90")


@pytest.fixture
def operations_user(db):
    from core.roles import Role
    from tests.factories import UserFactory

    return UserFactory(username="omar", roles=[Role.OPERATIONS])


def test_the_inbox_shows_the_governing_risk_and_each_gate_once(
    page, service, release_manager, operations_user
):
    GatePolicy.objects.create(
        name="Operations",
        change_request="",
        requirements=[
            {"stage": "pre_approval", "kind": "manual", "role": "operations"},
            {"stage": "post_deployment", "kind": "manual", "role": "operations"},
        ],
    )
    release = make_ready(
        ReleaseFactory(services=[service], owner=release_manager, risk_level="high")
    )
    for step in ("release_plan", "release_start_work"):
        release = getattr(release_services, step)(release=release, actor=release_manager)
    assert release.risk_assessment.computed_level != "high"  # the declared level governs

    _login(page, operations_user.username)
    page.goto("/governance/inbox/")
    row = page.locator(".inbox-row", has_text="Operations sign-off")
    expect(row).to_have_count(1)  # the post-deployment one is not due yet
    expect(row.locator("summary .badge-risk")).to_have_text("Risk: High")
    row.locator("summary").click()
    item = page.locator(".gov-item", has_text="Operations sign-off")
    expect(item).to_have_count(1)
    expect(item.locator(".badge-risk")).to_have_text("Risk: High")
    chips = item.locator(".gov-chips li")
    expect(chips).to_have_count(2)
    expect(chips.nth(0)).to_contain_text("(pre-approval)")
    expect(chips.nth(1)).to_contain_text("(post-deployment)")
