"""MFA in the browser: a release manager, whose role requires a second factor, is sent to
enrol after signing in, sets up an authenticator app (the test computes the code from the
secret the page shows) and then uses the app; the next login asks for a code."""

from __future__ import annotations

import pytest
from allauth.mfa.models import Authenticator
from playwright.sync_api import expect

from core.models import AuditEvent
from core.roles import Role
from core.tests.test_sso import totp
from tests.browser.conftest import ARTIFACTS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
APP_PORT = 18182
WEBAUTHN_PORT = 18183


def test_a_release_manager_enrols_an_authenticator_app_before_using_the_app(
    page_on_port, settings, release_manager
):
    settings.MFA_REQUIRED_ROLES = [Role.RELEASE_MANAGER, Role.CAB_MEMBER, Role.ADMINISTRATOR]
    page = page_on_port(APP_PORT)
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(release_manager.username)
    page.get_by_label("Password").fill("pw-for-tests")
    page.get_by_role("button", name="Log in").click()

    expect(page).to_have_url(f"http://127.0.0.1:{APP_PORT}/accounts/2fa/")
    expect(page.locator(".messages")).to_contain_text("requires two-factor authentication")
    page.goto("/dashboards/calendar/")  # any page: back to enrolment
    expect(page).to_have_url(f"http://127.0.0.1:{APP_PORT}/accounts/2fa/")
    page.get_by_role("link", name="Activate").click()
    secret = page.get_by_label("Authenticator secret").input_value()
    page.get_by_label("Authenticator code").fill(totp(secret))
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "mfa-enrol-totp.png"), full_page=True)
    page.get_by_role("button", name="Activate").click()

    page.goto("/")
    expect(page.get_by_role("link", name="Releases", exact=True)).to_be_visible()
    expect(page).to_have_url(f"http://127.0.0.1:{APP_PORT}/")

    page.get_by_role("button", name="Log out").click()
    page.get_by_label("Username").fill(release_manager.username)
    page.get_by_label("Password").fill("pw-for-tests")
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"http://127.0.0.1:{APP_PORT}/accounts/2fa/authenticate/")


def test_a_cab_member_enrols_a_security_key(page_on_port, settings, cab_member):
    """WebAuthn with Chrome's virtual authenticator (DevTools protocol): allauth's scripts run
    under the Content-Security-Policy and the key is stored."""
    settings.MFA_REQUIRED_ROLES = [Role.CAB_MEMBER]
    settings.MFA_WEBAUTHN_ALLOW_INSECURE_ORIGIN = True  # http://localhost in the test
    page = page_on_port(WEBAUTHN_PORT, host="localhost")
    devtools = page.context.new_cdp_session(page)
    devtools.send("WebAuthn.enable")
    devtools.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "usb",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(cab_member.username)
    page.get_by_label("Password").fill("pw-for-tests")
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"http://localhost:{WEBAUTHN_PORT}/accounts/2fa/")
    page.get_by_role("link", name="Add").click()
    page.get_by_label("Name").fill("YubiKey")
    page.get_by_role("button", name="Add").click()
    expect(page).not_to_have_url(f"http://localhost:{WEBAUTHN_PORT}/accounts/2fa/webauthn/add/")
    assert Authenticator.objects.filter(user=cab_member, type="webauthn").count() == 1
    added = AuditEvent.objects.filter(action="account.mfa_added")
    assert {event.after["type"] for event in added} == {"webauthn", "recovery_codes"}
    page.goto("/")
    expect(page).to_have_url(f"http://localhost:{WEBAUTHN_PORT}/")
