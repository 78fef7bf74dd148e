"""Single sign-on's role and team mapping, local passwords switched off, and MFA enrolment
for the roles that require it. (The browser test tests/browser/test_sso_login.py signs in
through a real OpenID provider process.)"""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct
import time
from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from core.models import AuditEvent
from core.roles import Role, user_roles
from core.sso import groups_from_claims, sso_login_sync
from tests.factories import TeamFactory, UserFactory

pytestmark = pytest.mark.django_db
PASSWORD = "pw-for-tests"


def _roles(user) -> set[str]:
    user._releasegate_roles = None
    return set(user_roles(user))


def _login(client, username, password=PASSWORD, path="/accounts/login/"):
    return client.post(path, {"username": username, "password": password})


@pytest.fixture
def mapping(settings):
    settings.OIDC_GROUP_ROLE_MAP = {
        "rg-release-managers": "release_manager",
        "rg-cab": ["cab_member", "stakeholder"],
        "rg-admins": "administrator",
    }
    settings.OIDC_GROUP_TEAM_MAP = {"rg-payments": "payments", "rg-identity": "identity"}
    return settings


# --- mapping -----------------------------------------------------------------------------


def test_groups_are_read_from_the_id_token_and_userinfo_together(settings):
    settings.OIDC_GROUPS_CLAIM = "roles"
    claims = {"id_token": {"roles": ["a", "b"]}, "userinfo": {"roles": "c", "groups": ["x"]}}
    assert groups_from_claims(claims) == ["a", "b", "c"]
    assert groups_from_claims({"userinfo": {"roles": {"not": "a list"}}}) == []


def test_group_removal_at_the_idp_revokes_the_role_and_team_at_next_login(mapping):
    payments = TeamFactory(name="Payments", slug="payments")
    local_team = TeamFactory(name="Platform", slug="platform")
    rita = UserFactory(username="rita", teams=[local_team])
    sso_login_sync(user=rita, groups=["rg-release-managers", "rg-payments"], provider="Okta")
    assert _roles(rita) == {"release_manager"}
    assert set(rita.teams.values_list("slug", flat=True)) == {"payments", "platform"}

    sso_login_sync(user=rita, groups=["rg-cab"], provider="Okta")
    assert _roles(rita) == {"cab_member", "stakeholder"}
    # The team the map does not name stays as the admin set it.
    assert set(rita.teams.values_list("slug", flat=True)) == {"platform"}
    first, second = AuditEvent.objects.filter(action="account.sso_sync").order_by("pk")
    assert first.before == {"roles": [], "teams": []}
    assert first.after == {
        "idp_groups": ["rg-payments", "rg-release-managers"],
        "roles": ["release_manager"],
        "teams": ["payments"],
    }
    assert second.before == {"roles": ["release_manager"], "teams": ["payments"]}
    assert second.after["roles"] == ["cab_member", "stakeholder"]
    assert second.reason == "signed in through Okta" and second.actor_label == "system"
    assert payments.members.count() == 0


def test_a_locally_granted_role_is_revoked_when_the_idp_does_not_grant_it(mapping):
    ada = UserFactory(username="ada", roles=[Role.ADMINISTRATOR], is_staff=True)
    sso_login_sync(user=ada, groups=["rg-cab"], provider="Okta")
    ada.refresh_from_db()
    assert _roles(ada) == {"cab_member", "stakeholder"} and not ada.is_staff


def test_an_administrator_from_the_idp_may_open_the_admin(mapping):
    ada = UserFactory(username="ada")
    sso_login_sync(user=ada, groups=["rg-admins"], provider="Okta")
    ada.refresh_from_db()
    assert ada.is_staff and _roles(ada) == {"administrator"}


def test_an_unchanged_login_writes_no_audit_event(mapping):
    rita = UserFactory(username="rita")
    sso_login_sync(user=rita, groups=["rg-release-managers"], provider="Okta")
    sso_login_sync(user=rita, groups=["rg-release-managers"], provider="Okta")
    assert AuditEvent.objects.filter(action="account.sso_sync").count() == 1


def test_without_a_role_map_roles_stay_as_the_admin_set_them(settings):
    settings.OIDC_GROUP_ROLE_MAP = {}
    settings.OIDC_GROUP_TEAM_MAP = {}
    rita = UserFactory(username="rita", roles=[Role.QA_LEAD])
    assert sso_login_sync(user=rita, groups=["anything"], provider="Okta") == {}
    assert _roles(rita) == {"qa_lead"}


# --- the login page and local passwords ---------------------------------------------------


@pytest.fixture
def sso_provider(settings):
    settings.SOCIALACCOUNT_PROVIDERS = {
        "openid_connect": {
            "APPS": [
                {
                    "provider_id": "sso",
                    "name": "Okta",
                    "client_id": "rg",
                    "secret": "s",
                    "settings": {"server_url": "https://idp.example.com"},
                }
            ]
        }
    }


def test_the_login_page_and_the_admin_offer_the_idp(sso_provider):
    for path in ("/accounts/login/", "/admin/login/?next=/admin/"):
        page = Client().get(path).content.decode()
        assert "Sign in with Okta" in page and 'action="/accounts/oidc/sso/login/"' in page
        assert 'name="password"' in page


def test_with_local_passwords_off_a_local_login_is_refused(settings, sso_provider):
    settings.LOCAL_PASSWORDS_ENABLED = False
    UserFactory(username="rita", roles=[Role.RELEASE_MANAGER])
    page = Client().get("/accounts/login/").content.decode()
    assert "Sign in with Okta" in page and 'name="password"' not in page
    for path in ("/accounts/login/", "/admin/login/"):
        client = Client()
        response = _login(client, "rita", path=path)
        assert response.status_code == 200
        assert "Signing in with a local password is switched off" in response.content.decode()
        assert "_auth_user_id" not in client.session
    # Reset and change are off too.
    assert Client().get("/accounts/password/reset/").status_code == 403
    rita_client = Client()
    rita_client.force_login(UserFactory(username="rita"))
    assert rita_client.get("/accounts/password/change/").status_code == 403


def test_with_local_passwords_off_a_superuser_breaks_glass_on_the_record(settings):
    settings.LOCAL_PASSWORDS_ENABLED = False
    root = UserFactory(username="root", is_superuser=True, is_staff=True)
    page = Client().get("/accounts/login/?break-glass=1").content.decode()
    assert 'name="password"' in page and "break-glass" in page
    client = Client()
    wrong = _login(client, "root", "wrong")
    assert "Signing in with a local password is switched off" in wrong.content.decode()
    assert _login(client, "root").status_code == 302
    assert client.session["_auth_user_id"] == str(root.pk)
    event = AuditEvent.objects.get(action="account.break_glass_login")
    assert event.actor_label == "root"
    assert client.get("/accounts/password/change/").status_code == 200


def test_local_passwords_stay_on_by_default():
    UserFactory(username="rita")
    client = Client()
    assert _login(client, "rita").status_code == 302
    assert Client().get("/accounts/password/reset/").status_code == 200


# --- MFA ----------------------------------------------------------------------------------


def totp(secret: str, at: float | None = None) -> str:
    """RFC 6238: the 6-digit code of a base32 secret, every 30 seconds (the test's own)."""
    key = base64.b32decode(secret.upper() + "=" * (-len(secret) % 8))
    counter = int((time.time() if at is None else at) // 30)
    digest = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return f"{value % 1_000_000:06d}"


@pytest.fixture
def mfa_for_approvers(settings):
    settings.MFA_REQUIRED_ROLES = [Role.RELEASE_MANAGER, Role.CAB_MEMBER, Role.ADMINISTRATOR]


def test_a_user_whose_role_requires_mfa_is_sent_to_enrol_then_can_act(
    mfa_for_approvers, release_manager, service, django_capture_on_commit_callbacks
):
    client = Client()
    assert _login(client, release_manager.username).status_code == 302
    response = client.get("/")
    assert response.status_code == 302 and response["Location"] == "/accounts/2fa/"
    api = client.get("/api/v1/releases/")
    assert api.status_code == 403 and api.json()["code"] == "mfa_enrolment_required"

    enrol = client.get("/accounts/2fa/totp/activate/")
    assert enrol.status_code == 200
    secret = enrol.context["form"].secret
    assert secret in enrol.content.decode()  # shown for typing into an authenticator app
    wrong = client.post("/accounts/2fa/totp/activate/", {"code": "000000"})
    assert wrong.status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        activated = client.post("/accounts/2fa/totp/activate/", {"code": totp(secret)})
    assert activated.status_code == 302
    # The app, and the recovery codes allauth makes with the first factor.
    enrolled = AuditEvent.objects.filter(action="account.mfa_added").order_by("pk")
    assert [event.after["type"] for event in enrolled] == ["totp", "recovery_codes"]
    assert {event.actor_label for event in enrolled} == {release_manager.username}

    assert client.get("/").status_code == 200
    start = timezone.now() + timedelta(days=3)
    created = client.post(
        "/api/v1/releases/",
        {
            "name": "Payments spring",
            "version": "2.4.0",
            "release_type": "minor",
            "services": [service.slug],
            "window_start": start.isoformat(),
            "window_end": (start + timedelta(hours=2)).isoformat(),
        },
        content_type="application/json",
    )
    assert created.status_code == 201, created.content

    # The next password login asks for the second factor before letting them in.
    client.post("/accounts/logout/")
    with time_machine.travel(timezone.now() + timedelta(seconds=31), tick=True):
        client = Client()
        response = _login(client, release_manager.username)
        assert response.status_code == 302 and response["Location"] == "/accounts/2fa/authenticate/"
        assert "_auth_user_id" not in client.session
        response = client.post("/accounts/2fa/authenticate/", {"code": totp(secret)})
        assert response.status_code == 302
        assert client.session["_auth_user_id"] == str(release_manager.pk)
        assert client.get("/").status_code == 200


def test_a_role_that_does_not_require_mfa_is_not_sent_to_enrol(mfa_for_approvers, viewer):
    client = Client()
    client.force_login(viewer)
    assert client.get("/").status_code == 200


def test_the_mfa_page_offers_an_authenticator_app_and_a_security_key(mfa_for_approvers, cab_member):
    client = Client()
    client.force_login(cab_member)
    page = client.get("/accounts/2fa/", follow=True).content.decode()
    assert "/accounts/2fa/totp/activate/" in page and "/accounts/2fa/webauthn/add/" in page


def test_an_administrator_resets_a_lost_factor_in_the_admin_on_the_record(cab_member):
    from allauth.mfa.models import Authenticator

    lost = Authenticator.objects.create(user=cab_member, type="totp", data={"secret": "x"})
    root = UserFactory(username="root", is_superuser=True, is_staff=True)
    client = Client()
    client.force_login(root)
    response = client.post(f"/admin/mfa/authenticator/{lost.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Authenticator.objects.filter(pk=lost.pk).exists()
    event = AuditEvent.objects.get(action="account.mfa_removed")
    assert event.actor_label == "root" and event.target_id == str(cab_member.pk)
    assert event.before == {"type": "totp"} and event.reason == "reset in the admin"
