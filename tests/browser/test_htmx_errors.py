"""Error replies to htmx actions in DEBUG (``make run``): a refusal swaps into its panel as
in production, and a real error shows a message in place — the page is never replaced by
an unstyled fragment (issue 15, item 2)."""

from __future__ import annotations

import pytest
from django.test import override_settings
from playwright.sync_api import expect

from governance import services
from governance.models import GatePolicy
from releases import services as release_services
from tests.factories import ReleaseFactory, make_ready

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def security_gate(service, release_manager):
    GatePolicy.objects.create(
        name="Security review",
        change_request="normal",
        requirements=[{"stage": "pre_approval", "kind": "manual", "role": "security_lead"}],
    )
    release = make_ready(ReleaseFactory(services=[service], owner=release_manager))
    for step in ("release_plan", "release_start_work"):
        release = getattr(release_services, step)(release=release, actor=release_manager)
    return release.gate_checks.get(role="security_lead")


def _login(page, username: str) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill("pw-for-tests")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator(".user-name")).to_be_visible()


@override_settings(DEBUG=True)
def test_refusals_and_errors_stay_in_place_in_debug(
    page, security_gate, security_approver, monkeypatch
):
    failed = []
    page.on(
        "response",
        lambda r: failed.append((r.url, r.status)) if "/static/" in r.url and not r.ok else None,
    )
    _login(page, security_approver.username)
    page.goto("/governance/inbox/")
    page.locator(f"#row-signoff-{security_gate.pk} > summary").click()
    item = page.locator(f"#signoff-{security_gate.pk}")
    expect(item).to_be_visible()
    assert failed == [], f"static files not served: {failed}"

    # A refusal (422: rejecting needs a comment) swaps into its item.
    item.get_by_role("button", name="Reject").click()
    expect(item.get_by_role("alert")).to_contain_text("A comment is required to reject.")
    expect(page.locator(".site-header")).to_be_visible()

    # A real error (500) keeps the page and says so next to the action.
    def broken(**kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(services, "gate_sign_off", broken)
    item.get_by_role("button", name="Sign off").click()
    expect(page.get_by_role("alert").filter(has_text="went wrong")).to_be_visible()
    expect(page.locator(".site-header")).to_be_visible()
    expect(item).to_be_visible()
