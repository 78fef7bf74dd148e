"""Login protection: a locked-out user is told so and stays locked even with the right
password, unlocking early is audited, and passwords can be changed and reset by email."""

from __future__ import annotations

import re

import pytest
from axes.models import AccessAttempt
from django.core import mail
from django.core.management import call_command
from django.test import Client

from core.accounts import account_unlock
from core.errors import PermissionDenied
from core.models import AuditEvent
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
PASSWORD = "pw-for-tests"


def _login(client, username, password):
    return client.post("/accounts/login/", {"username": username, "password": password})


@pytest.fixture
def rita(db):
    return UserFactory(username="rita", email="rita@example.com")


def test_twenty_wrong_passwords_lock_the_user_out_with_a_clear_message(rita, settings):
    client = Client()
    answers = [_login(client, "rita", "wrong").status_code for _ in range(20)]
    limit = settings.AXES_FAILURE_LIMIT
    assert set(answers[: limit - 1]) == {200} and set(answers[limit:]) == {429}
    response = _login(client, "rita", PASSWORD)
    assert response.status_code == 429
    text = response.content.decode()
    assert "Too many failed logins" in text and "locked" in text
    assert "_auth_user_id" not in client.session


def test_the_lockout_is_per_address_too(rita, settings):
    settings.AXES_FAILURE_LIMIT = 3
    UserFactory(username="quinn")
    client = Client()
    for name in ("mallory", "eve", "trent"):
        _login(client, name, "wrong")
    assert _login(client, "quinn", PASSWORD).status_code == 429  # same address
    other = Client(REMOTE_ADDR="10.9.8.7")
    assert _login(other, "quinn", PASSWORD).status_code == 302


def test_unlocking_is_audited_and_lets_the_user_in(rita):
    client = Client()
    for _ in range(20):
        _login(client, "rita", "wrong")
    admin = UserFactory(username="ada", is_superuser=True, is_staff=True)
    with pytest.raises(PermissionDenied):
        account_unlock(actor=UserFactory(username="stella"), username="rita", reason="x")
    cleared = account_unlock(actor=admin, username="rita", reason="Verified by phone")
    assert cleared >= 1 and not AccessAttempt.objects.filter(username="rita").exists()
    event = AuditEvent.objects.get(action="account.unlock")
    assert event.actor == admin and event.reason == "Verified by phone"
    assert event.target_id == str(rita.pk) and event.before["failed_logins"] >= 10
    assert _login(client, "rita", PASSWORD).status_code == 302


def test_the_admin_unlock_action_is_audited_and_rows_cannot_be_deleted_plainly(rita):
    for _ in range(12):
        _login(Client(), "rita", "wrong")
    admin_client = Client()
    admin_client.force_login(UserFactory(username="ada", is_superuser=True, is_staff=True))
    rows = list(AccessAttempt.objects.values_list("pk", flat=True))
    response = admin_client.post(
        "/admin/axes/accessattempt/",
        {"action": "unlock", "_selected_action": rows},
    )
    assert response.status_code == 302
    assert not AccessAttempt.objects.exists()
    assert AuditEvent.objects.filter(action="account.unlock", actor__username="ada").exists()
    assert admin_client.get("/admin/axes/accessattempt/1/delete/").status_code in (403, 302)


def test_the_unlock_command_is_audited_as_the_system(rita):
    for _ in range(12):
        _login(Client(), "rita", "wrong")
    call_command("unlock_account", "rita", reason="Ticket 123")
    event = AuditEvent.objects.get(action="account.unlock")
    assert event.actor is None and event.actor_label == "system"


def test_admin_login_is_protected_too(rita, settings):
    settings.AXES_FAILURE_LIMIT = 3
    client = Client()
    for _ in range(3):
        client.post("/admin/login/", {"username": "rita", "password": "wrong"})
    response = client.post("/admin/login/", {"username": "rita", "password": PASSWORD})
    assert response.status_code == 429


def test_a_password_is_reset_by_email_and_changed_when_signed_in(rita):
    client = Client()
    assert (
        client.post("/accounts/password/reset/", {"email": "rita@example.com"}).status_code == 302
    )
    (message,) = mail.outbox
    link = re.search(r"https?://[^/]+(/accounts/password/reset/\S+)", message.body).group(1)
    form = client.get(link, follow=True)
    assert form.status_code == 200
    response = client.post(
        form.redirect_chain[-1][0],
        {"new_password1": "a-Longer-secret-42", "new_password2": "a-Longer-secret-42"},
    )
    assert response.status_code == 302
    assert _login(Client(), "rita", "a-Longer-secret-42").status_code == 302
    rita.refresh_from_db()
    client.force_login(rita)
    response = client.post(
        "/accounts/password/change/",
        {
            "old_password": "a-Longer-secret-42",
            "new_password1": "another-Secret-43",
            "new_password2": "another-Secret-43",
        },
    )
    assert response.status_code == 302
    rita.refresh_from_db()
    assert rita.check_password("another-Secret-43")
