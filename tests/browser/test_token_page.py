"""A release manager creates a CI token in the browser, copies its secret, and revokes it."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from pipelines.models import ApiToken

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_create_copy_and_revoke_a_token(page, screenshot, release_manager, service):
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(release_manager.username)
    page.get_by_label("Password").fill("pw-for-tests")
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("link", name="Tokens").click()

    page.get_by_label("Name").fill("payments GitHub Actions")
    page.get_by_label(service.slug).check()
    page.get_by_label("Ask whether a deployment may proceed").check()
    page.get_by_role("button", name="Create token").click()
    secret = page.get_by_label("Secret")
    assert secret.input_value().startswith("rg_")
    token = ApiToken.objects.get(name="payments GitHub Actions")
    assert set(token.scopes) == {"runs:write", "deployments:write", "deployments:check"}
    screenshot("tokens-created")

    page.reload()  # the secret is gone for good
    expect(page.get_by_label("Secret")).to_have_count(0)
    page.get_by_text("Revoke…").click()
    page.get_by_label("Reason").fill("rotating")
    page.get_by_role("button", name="Revoke payments GitHub Actions").click()
    expect(page.locator(".message-success")).to_contain_text("is revoked")
    expect(page.locator("tr", has_text="payments GitHub Actions")).to_contain_text("revoked")
    token.refresh_from_db()
    assert token.revoked_at is not None
