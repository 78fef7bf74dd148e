"""The notification outbox: rows written with the event's transaction, idempotent producers,
delivery by email and signed Slack-compatible webhooks with retries, claims, the in-app list
and preferences."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.core import mail
from django.db import transaction
from django.utils import timezone
from werkzeug import Response

from core import notifications as outbox
from core.models import Notification, NotificationAttempt, NotificationPreference
from pipelines import queueing

pytestmark = pytest.mark.django_db


def _enqueue(users, key="gate_waiting:1", event="gate_waiting"):
    return outbox.notification_enqueue(
        event=event,
        recipients=users,
        subject="Gate “Security sign-off” is waiting for you",
        body="Release 2.4.0 needs your sign-off.",
        link="/releases/1/",
        idempotency_key=key,
    )


def test_rows_are_written_in_the_events_transaction(release_manager):
    with pytest.raises(RuntimeError), transaction.atomic():
        _enqueue([release_manager])
        raise RuntimeError("the event rolled back")
    assert not Notification.objects.exists()
    _enqueue([release_manager])
    channels = dict(Notification.objects.values_list("channel", "status"))
    assert channels == {"in_app": "delivered", "email": "pending"}


def test_same_key_twice_notifies_once(release_manager, security_approver):
    first = _enqueue([release_manager, security_approver, release_manager])
    again = _enqueue([release_manager, security_approver])
    assert len(first) == 4 and again == []
    assert Notification.objects.count() == 4


def test_on_commit_queues_delivery(
    release_manager, django_capture_on_commit_callbacks, monkeypatch
):
    sent = []
    monkeypatch.setattr(queueing, "enqueue_on_commit", lambda name, *a: sent.append((name, a)))
    _enqueue([release_manager])
    email = Notification.objects.get(channel="email")
    assert sent == [("pipelines.deliver_notification", (email.pk,))]


def test_email_delivery(release_manager):
    _enqueue([release_manager])
    email = Notification.objects.get(channel="email")
    assert outbox.deliver_notification(email.pk) == "delivered"
    assert outbox.deliver_notification(email.pk) == "skipped"  # never twice
    (message,) = mail.outbox
    assert message.to == ["rita@example.test"]
    assert "http://localhost:8000/releases/1/" in message.body
    email.refresh_from_db()
    assert email.status == "delivered" and email.attempts == 1
    assert NotificationAttempt.objects.get(notification=email).ok


def test_slack_webhook_is_signed_and_carries_the_idempotency_key(
    release_manager, httpserver, monkeypatch
):
    monkeypatch.setenv("NOTIFICATION_WEBHOOK_SECRET", "hook-secret")
    NotificationPreference.objects.create(
        user=release_manager,
        channels={"gate_waiting": ["slack"]},
        slack_webhook_url=httpserver.url_for("/hook"),
    )
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    _enqueue([release_manager])
    row = Notification.objects.get()
    assert row.channel == "slack"
    assert outbox.deliver_notification(row.pk) == "delivered"
    request, _ = httpserver.log[0]
    body = request.get_data()
    assert outbox.verify(
        "hook-secret",
        request.headers["X-Releasegate-Timestamp"],
        body,
        request.headers["X-Releasegate-Signature"],
    )
    assert not outbox.verify("wrong", request.headers["X-Releasegate-Timestamp"], body, "v1=00")
    payload = json.loads(body)
    assert payload["idempotency_key"] == row.delivery_key
    assert request.headers["X-Releasegate-Idempotency-Key"] == row.delivery_key
    assert "Security sign-off" in payload["text"]


def test_failed_webhook_is_retried_with_backoff_then_given_up(release_manager, httpserver):
    NotificationPreference.objects.create(
        user=release_manager,
        channels={"gate_waiting": ["slack"]},
        slack_webhook_url=httpserver.url_for("/hook"),
    )
    httpserver.expect_request("/hook").respond_with_data("down", status=503)
    _enqueue([release_manager])
    row = Notification.objects.get()
    assert outbox.deliver_notification(row.pk) == "retry"
    row.refresh_from_db()
    assert row.status == "pending" and row.attempts == 1 and row.last_error == "HTTP 503"
    assert row.next_attempt_at > timezone.now() - timedelta(seconds=1)
    assert outbox.deliver_notification(row.pk) in ("skipped", "retry")  # not due yet (jitter)
    for _ in range(outbox.MAX_ATTEMPTS - 1):
        Notification.objects.filter(pk=row.pk).update(next_attempt_at=timezone.now())
        result = outbox.deliver_notification(row.pk)
    assert result == "dead"
    row.refresh_from_db()
    assert row.status == "dead" and row.attempts == outbox.MAX_ATTEMPTS


def test_a_row_being_sent_is_left_to_its_worker_until_the_lease_ends(release_manager):
    _enqueue([release_manager])
    row = Notification.objects.get(channel="email")
    Notification.objects.filter(pk=row.pk).update(
        status="sending", attempts=1, next_attempt_at=timezone.now() + timedelta(seconds=60)
    )
    assert outbox.deliver_notification(row.pk) == "skipped"
    assert outbox.due_notification_ids() == []
    Notification.objects.filter(pk=row.pk).update(next_attempt_at=timezone.now())
    assert outbox.due_notification_ids() == [row.pk]  # the worker died: send again
    assert outbox.deliver_due_notifications() == 1
    assert len(mail.outbox) == 1


def test_preferences_choose_events_and_channels(release_manager):
    assert outbox.channels_for(release_manager, "vote_requested") == ["in_app", "email"]
    outbox.preferences_update(
        actor=release_manager, channels={"vote_requested": ["in_app"], "bogus": ["email"]}
    )
    assert outbox.channels_for(release_manager, "vote_requested") == ["in_app"]
    assert outbox.channels_for(release_manager, "decision_made") == ["in_app", "email"]
    outbox.preferences_update(actor=release_manager, channels={"vote_requested": []})
    assert (
        outbox.notification_enqueue(
            event="vote_requested",
            recipients=[release_manager],
            subject="s",
            idempotency_key="vote:1",
        )
        == []
    )


def test_unknown_event_is_refused(release_manager):
    with pytest.raises(ValueError):
        _enqueue([release_manager], event="nope")


def test_in_app_list_and_mark_read(client, release_manager, security_approver):
    _enqueue([release_manager, security_approver])
    _enqueue([release_manager], key="gate_waiting:2")
    client.force_login(release_manager)
    page = client.get("/pipelines/notifications/")
    assert page.status_code == 200
    assert page.content.decode().count("Security sign-off") == 2
    mine = Notification.objects.filter(recipient=release_manager, channel="in_app")
    other = Notification.objects.get(recipient=security_approver, channel="in_app")
    response = client.post("/pipelines/notifications/read/", {"id": [mine[0].pk, other.pk]})
    assert response.status_code == 302
    assert mine.filter(read_at__isnull=False).count() == 1
    other.refresh_from_db()
    assert other.read_at is None  # nobody marks another person's notifications
    client.post("/pipelines/notifications/read/", {"all": "1"})
    assert not mine.filter(read_at__isnull=True).exists()
    read = client.get("/pipelines/notifications/?show=read")
    assert read.content.decode().count("Security sign-off") == 2


def test_preferences_page(client, release_manager):
    client.force_login(release_manager)
    assert client.get("/pipelines/notifications/preferences/").status_code == 200
    response = client.post(
        "/pipelines/notifications/preferences/",
        {
            "event_deployment_failed": ["in_app", "slack"],
            "event_gate_waiting": ["email"],
            "slack_webhook_url": "https://hooks.slack.example/T000/B000",
        },
    )
    assert response.status_code == 302
    pref = NotificationPreference.objects.get(user=release_manager)
    assert pref.channels["deployment_failed"] == ["in_app", "slack"]
    assert pref.channels["vote_requested"] == []
    assert outbox.channels_for(release_manager, "deployment_failed") == ["in_app", "slack"]


def test_preferences_refuse_plain_http_webhooks(client, release_manager):
    client.force_login(release_manager)
    response = client.post(
        "/pipelines/notifications/preferences/",
        {"slack_webhook_url": "http://10.0.0.5/hook"},
    )
    assert response.status_code == 200
    assert "Use an https:// webhook URL." in response.content.decode()
    assert not NotificationPreference.objects.exists()


def test_webhook_timeout_is_a_failed_attempt(release_manager, httpserver, settings):
    import threading
    import time

    settings.NOTIFICATION_WEBHOOK_TIMEOUT = 0.2
    NotificationPreference.objects.create(
        user=release_manager,
        channels={"gate_waiting": ["slack"]},
        slack_webhook_url=httpserver.url_for("/slow"),
    )

    finished = threading.Event()

    def slow(request):
        time.sleep(0.6)
        finished.set()
        return Response("late")

    httpserver.expect_request("/slow").respond_with_handler(slow)
    _enqueue([release_manager])
    row = Notification.objects.get()
    assert outbox.deliver_notification(row.pk) == "retry"
    assert "Timeout" in NotificationAttempt.objects.get().error
    # Let the stub finish before the next test uses the shared server (and its log).
    assert finished.wait(5)
