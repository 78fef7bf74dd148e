"""The communications plan: scheduling, due times that follow the window and transitions."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from core.errors import InvalidInput, PermissionDenied
from releases import communications, services
from releases.choices import ReleaseState
from releases.models import Communication
from tests.factories import ReleaseFactory, force_state, make_ready


@pytest.fixture
def release(service, release_manager):
    return make_ready(ReleaseFactory(services=[service], owner=release_manager))


def schedule(release, actor, trigger, **kw):
    values = {
        "audience": "customers",
        "channel": "email",
        "destination": "customers@example.com, status@example.com",
        "subject": "Maintenance tonight",
        "message": "Payments may be slow for a few minutes.",
    }
    values.update(kw)
    return communications.communication_schedule(
        release=release, actor=actor, trigger=trigger, **values
    )


@pytest.mark.django_db
def test_timed_messages_are_due_relative_to_the_window(release, release_manager):
    before = schedule(release, release_manager, "before_window", offset_hours=24)
    start = schedule(release, release_manager, "window_start")
    assert before.due_at == release.window_start - timedelta(hours=24)
    assert start.due_at == release.window_start


@pytest.mark.django_db
def test_moving_the_window_moves_scheduled_messages(release, release_manager):
    start = schedule(release, release_manager, "window_start")
    new_start = release.window_start + timedelta(days=3)
    services.release_update(
        release=release,
        actor=release_manager,
        changes={"window_start": new_start, "window_end": new_start + timedelta(hours=2)},
    )
    start.refresh_from_db()
    assert start.due_at == new_start


@pytest.mark.django_db
def test_completion_message_falls_due_on_deploy_and_rollback_one_is_skipped(
    release, release_manager
):
    done = schedule(release, release_manager, "completed")
    rollback = schedule(release, release_manager, "rolled_back")
    assert done.due_at is None
    release = force_state(release, ReleaseState.DEPLOYING)
    services.release_mark_deployed(release=release, actor=release_manager)
    done.refresh_from_db()
    rollback.refresh_from_db()
    assert done.due_at <= timezone.now() and done.status == "scheduled"
    assert rollback.status == "skipped"


@pytest.mark.django_db
def test_cancelling_the_release_cancels_its_messages(release, release_manager):
    msg = schedule(release, release_manager, "window_start")
    services.release_cancel(release=release, actor=release_manager, reason="descoped")
    msg.refresh_from_db()
    assert msg.status == "cancelled"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("channel", "destination"),
    [("email", "not-an-address"), ("email", ""), ("slack", "ftp://hooks.example/x")],
)
def test_bad_destinations_are_refused(release, release_manager, channel, destination):
    with pytest.raises(InvalidInput):
        schedule(release, release_manager, "window_start", channel=channel, destination=destination)
    assert not Communication.objects.exists()


@pytest.mark.django_db
def test_only_release_managers_plan_messages(release, viewer):
    with pytest.raises(PermissionDenied):
        schedule(release, viewer, "window_start")


# --- sending ---------------------------------------------------------------------------------


def _due_now(release, actor, **kw):
    msg = schedule(release, actor, "completed", **kw)
    Communication.objects.filter(pk=msg.pk).update(due_at=timezone.now())
    return msg


@pytest.mark.django_db
def test_due_message_goes_through_the_outbox_once(release, release_manager, mailoutbox):
    from core.models import Notification
    from core.notifications import deliver_due_notifications

    msg = _due_now(release, release_manager)
    assert communications.communications_send_due() == 1
    assert communications.communications_send_due() == 0  # already sent
    row = Notification.objects.get(idempotency_key=msg.idempotency_key)
    assert row.recipient is None and row.channel == "email"
    assert deliver_due_notifications() == 1
    assert deliver_due_notifications() == 0
    assert len(mailoutbox) == 1
    assert mailoutbox[0].to == ["customers@example.com", "status@example.com"]
    assert mailoutbox[0].subject == "Maintenance tonight"
    msg.refresh_from_db()
    assert msg.status == "sent" and msg.sent_at is not None


@pytest.mark.django_db
def test_a_worker_dying_mid_send_leaves_it_to_the_next_run_which_sends_it_once(
    release, release_manager, monkeypatch
):
    from core import notifications
    from core.models import Notification

    msg = _due_now(release, release_manager)
    real = notifications.notification_enqueue_external

    def crash(**kwargs):
        real(**kwargs)
        raise SystemExit("worker killed")  # after the outbox write, before the commit

    monkeypatch.setattr(notifications, "notification_enqueue_external", crash)
    with pytest.raises(SystemExit):
        communications.communications_send_due()
    msg.refresh_from_db()
    assert msg.status == "scheduled"  # rolled back with the outbox row
    assert not Notification.objects.exists()
    monkeypatch.setattr(notifications, "notification_enqueue_external", real)
    assert communications.communications_send_due() == 1
    assert communications.communications_send_due() == 0
    assert Notification.objects.filter(idempotency_key=msg.idempotency_key).count() == 1


@pytest.mark.django_db
def test_slack_message_is_posted_signed_to_its_webhook(release, release_manager, httpserver):
    from core.notifications import deliver_due_notifications, verify, webhook_secret

    httpserver.expect_oneshot_request("/hook", method="POST").respond_with_data("ok")
    _due_now(
        release,
        release_manager,
        channel="slack",
        audience="internal",
        destination=httpserver.url_for("/hook"),
    )
    communications.communications_send_due()
    assert deliver_due_notifications() == 1
    request, _ = httpserver.log[0]
    assert b"Maintenance tonight" in request.data
    assert verify(
        webhook_secret(),
        request.headers["X-Releasegate-Timestamp"],
        request.data,
        request.headers["X-Releasegate-Signature"],
    )


@pytest.mark.django_db
def test_voided_messages_are_audited(release, release_manager):
    from core.models import AuditEvent

    msg = schedule(release, release_manager, "window_start")
    services.release_cancel(release=release, actor=release_manager, reason="descoped")
    event = AuditEvent.objects.get(action="comms.cancelled")
    assert event.target_id == str(msg.pk) and "cancelled" in event.reason
