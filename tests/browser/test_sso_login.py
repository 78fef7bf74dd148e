"""Single sign-on end to end: a person signs in through a real OpenID provider process
(django-oauth-toolkit, tests/oidc_provider/, started here on a loopback port with an RSA key
made for this run) and lands in Releasegate with the roles and team its IdP groups map to.
When the IdP drops a group, the next login takes the role away."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from allauth.socialaccount.models import SocialAccount
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from core.models import AuditEvent
from core.roles import user_roles
from tests.browser.conftest import ARTIFACTS
from tests.factories import UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parent.parent.parent
APP_PORT = 18180
IDP_PORT = 18181
IDP_URL = f"http://127.0.0.1:{IDP_PORT}/o"
CLIENT_ID = "releasegate-test"
CLIENT_SECRET = "a-client-secret-for-this-test-only"
CALLBACK = f"http://127.0.0.1:{APP_PORT}/accounts/oidc/sso/login/callback/"


def _idp_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "tests.oidc_provider.serve", *args]


@pytest.fixture
def idp(tmp_path):
    """The OpenID provider process, with alice in three groups; yields a set_groups(...)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    env = {
        **os.environ,
        "OIDC_PROVIDER_DB": str(tmp_path / "idp.sqlite3"),
        "OIDC_RSA_PRIVATE_KEY": pem,
        "DJANGO_SETTINGS_MODULE": "tests.oidc_provider.settings",
    }
    env.pop("DATABASE_URL", None)
    log = (tmp_path / "idp.log").open("w")
    process = subprocess.Popen(
        _idp_command(
            "serve",
            "--port",
            str(IDP_PORT),
            "--client-id",
            CLIENT_ID,
            "--client-secret",
            CLIENT_SECRET,
            "--redirect-uri",
            CALLBACK,
            "--user",
            "alice:idp-password-1:alice@example.com:rg-release-managers,rg-cab,rg-payments",
        ),
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{IDP_URL}/.well-known/openid-configuration").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(
                    f"the OpenID provider did not start: {(tmp_path / 'idp.log').read_text()}"
                )
            time.sleep(0.2)

        def set_groups(username: str, *groups: str) -> None:
            subprocess.run(
                _idp_command("set-groups", username, *groups),
                cwd=ROOT,
                env=env,
                check=True,
            )

        yield set_groups
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


@pytest.fixture
def sso_settings(settings, team):
    settings.SOCIALACCOUNT_PROVIDERS = {
        "openid_connect": {
            "SCOPE": ["openid", "profile", "email"],
            "APPS": [
                {
                    "provider_id": "sso",
                    "name": "Test IdP",
                    "client_id": CLIENT_ID,
                    "secret": CLIENT_SECRET,
                    "settings": {"server_url": IDP_URL, "oauth_pkce_enabled": True},
                }
            ],
        }
    }
    settings.OIDC_GROUP_ROLE_MAP = {
        "rg-release-managers": "release_manager",
        "rg-cab": ["cab_member", "stakeholder"],
    }
    settings.OIDC_GROUP_TEAM_MAP = {"rg-payments": "payments"}
    # What base.py derives from OIDC_SERVER_URL: the button's redirect goes to the IdP.
    directives = settings.CONTENT_SECURITY_POLICY["DIRECTIVES"]
    settings.CONTENT_SECURITY_POLICY = {
        **settings.CONTENT_SECURITY_POLICY,
        "DIRECTIVES": {**directives, "form-action": ["'self'", f"http://127.0.0.1:{IDP_PORT}"]},
    }
    return settings


@pytest.fixture
def app_page(page_on_port, sso_settings):
    return page_on_port(APP_PORT)


def _sign_in_through_the_idp(page, *, idp_login: bool) -> None:
    page.goto("/accounts/login/")
    if idp_login:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "sso-login-page.png"), full_page=True)
    page.get_by_role("button", name="Sign in with Test IdP").click()
    if idp_login:
        expect(page.get_by_role("heading", name="Test identity provider")).to_be_visible()
        page.get_by_label("IdP username").fill("alice")
        page.get_by_label("IdP password").fill("idp-password-1")
        page.get_by_role("button", name="Sign in to the IdP").click()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()


def test_a_person_signs_in_through_the_idp_with_the_roles_its_groups_map_to(app_page, idp, team):
    page = app_page
    # A local account with the same username and address is not taken over by the IdP's alice.
    local_alice = UserFactory(username="alice", email="alice@example.com")
    _sign_in_through_the_idp(page, idp_login=True)
    assert page.url.startswith(f"http://127.0.0.1:{APP_PORT}/")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "sso-landed.png"), full_page=True)
    expect(page.locator(".user-roles")).to_contain_text("Release manager")
    expect(page.locator(".user-roles")).to_contain_text("CAB member")

    alice = SocialAccount.objects.get(provider="sso").user
    assert alice != local_alice and alice.username.startswith("alice")
    assert not local_alice.groups.exists() and not local_alice.teams.exists()
    assert set(user_roles(alice)) == {"release_manager", "cab_member", "stakeholder"}
    assert list(alice.teams.values_list("slug", flat=True)) == ["payments"]
    assert alice.email == "alice@example.com" and not alice.has_usable_password()
    event = AuditEvent.objects.get(action="account.sso_sync", target_id=str(alice.pk))
    assert event.after["idp_groups"] == ["rg-cab", "rg-payments", "rg-release-managers"]
    assert event.before["roles"] == [] and event.actor_label == "system"

    # The IdP takes alice out of the release managers and the payments team.
    page.get_by_role("button", name="Log out").click()
    idp("alice", "rg-cab")
    _sign_in_through_the_idp(page, idp_login=False)  # the IdP still knows her: no prompt
    expect(page.locator(".user-roles")).not_to_contain_text("Release manager")
    alice = get_user_model().objects.get(pk=alice.pk)
    assert set(user_roles(alice)) == {"cab_member", "stakeholder"}
    assert not alice.teams.exists()
    latest = AuditEvent.objects.filter(action="account.sso_sync").order_by("-pk").first()
    assert latest.before == {
        "roles": ["cab_member", "release_manager", "stakeholder"],
        "teams": ["payments"],
    }
    assert latest.after["roles"] == ["cab_member", "stakeholder"]
