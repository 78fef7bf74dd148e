"""Celery set-up of the workers: tasks registered by name with bounded, jittered retries and
time limits; beat fan-out entries in the database; robust enqueue after commit with a
durable marker when the broker is down."""

from __future__ import annotations

import pytest
from django.db import transaction
from django_celery_beat.models import PeriodicTask

from config.celery import app
from core.backoff import backoff_seconds
from pipelines import queueing
from pipelines.models import TaskOutbox

pytestmark = pytest.mark.django_db

BEAT = {
    "pipelines.poll_due_integrations",
    "pipelines.verify_running_deployments",
    "pipelines.deliver_due_notifications",
}


def test_beat_fan_out_entries_are_in_the_database():
    tasks = dict(PeriodicTask.objects.filter(task__in=BEAT).values_list("task", "enabled"))
    assert tasks == dict.fromkeys(BEAT, True)  # a few entries, none per polled system
    assert all(t.interval is not None for t in PeriodicTask.objects.filter(task__in=BEAT))


def test_tasks_are_registered_with_limits_and_bounded_jittered_retries():
    import pipelines.tasks  # noqa: F401 - what autodiscovery imports

    for name in BEAT | {"pipelines.deliver_notification", "pipelines.call_rollback_webhook"}:
        task = app.tasks[name]
        assert task.time_limit and task.soft_time_limit < task.time_limit
    deliver = app.tasks["pipelines.deliver_notification"]
    assert deliver.acks_late and deliver.reject_on_worker_lost
    assert deliver.max_retries == 5 and deliver.retry_jitter and deliver.retry_backoff


def test_settings_are_safe_for_late_acks():
    from django.conf import settings

    assert settings.CELERY_TASK_ACKS_LATE and settings.CELERY_TASK_REJECT_ON_WORKER_LOST
    assert settings.CELERY_WORKER_PREFETCH_MULTIPLIER == 1
    assert settings.CELERY_TASK_SERIALIZER == "json"


def test_backoff_has_full_jitter_and_a_cap():
    draws = [backoff_seconds(3, base=5, cap=30) for _ in range(200)]
    assert all(0 <= d <= 30 for d in draws)
    assert min(draws) < 5 < max(draws)  # spread over the whole window, not a fixed delay
    assert all(backoff_seconds(50, base=5, cap=60) <= 60 for _ in range(50))


def test_enqueue_waits_for_commit_and_never_raises(monkeypatch, django_capture_on_commit_callbacks):
    sent = []

    def broken(name, args):
        sent.append(name)
        raise ConnectionError("Error 111 connecting to 127.0.0.1:1. Connection refused.")

    monkeypatch.setattr(app, "send_task", broken)
    with django_capture_on_commit_callbacks(execute=True) as callbacks, transaction.atomic():
        queueing.enqueue_on_commit("pipelines.deliver_notification", 7)
        assert sent == []  # nothing leaves before commit
    assert len(callbacks) == 1 and sent == ["pipelines.deliver_notification"]
    marker = TaskOutbox.objects.get()
    assert marker.args == [7] and "Connection refused" in marker.error


def test_rolled_back_work_is_never_queued(django_capture_on_commit_callbacks):
    with (
        django_capture_on_commit_callbacks() as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        queueing.enqueue_on_commit("pipelines.deliver_notification", 7)
        raise RuntimeError
    assert callbacks == []


def test_the_sweep_resends_markers_once(monkeypatch):
    TaskOutbox.objects.create(task_name="pipelines.deliver_notification", args=[1])
    TaskOutbox.objects.create(task_name="pipelines.deliver_notification", args=[2])
    sent = []
    monkeypatch.setattr(app, "send_task", lambda name, args: sent.append((name, args)))
    assert queueing.requeue_task_outbox() == 2
    assert queueing.requeue_task_outbox() == 0
    assert sorted(a for _, a in sent) == [[1], [2]]
    assert not TaskOutbox.objects.exists()


def test_beat_tasks_run_as_thin_wrappers(monkeypatch):
    """Each beat task only calls its service (run eagerly here, no broker)."""
    from pipelines import tasks

    monkeypatch.setattr(app, "send_task", lambda *a, **k: None)
    assert tasks.poll_due_integrations.apply().get() == 0
    assert tasks.verify_running_deployments.apply().get() == 0
    assert tasks.deliver_due_notifications.apply().get() == 0
    assert tasks.deliver_notification.apply(args=[123456]).get() == "skipped"
    assert tasks.poll_integration.apply(args=[123456]).get() == "skipped"


def test_admin_pages_of_the_workers(client, service):
    from django.contrib.auth import get_user_model

    from .worker_support import polled_integration

    admin = get_user_model().objects.create_superuser("root", "root@example.test", "pw")
    polled_integration(service, "jenkins", "https://jenkins.example.com", "deploy")
    client.force_login(admin)
    for path in (
        "/admin/pipelines/integrationpollstate/",
        "/admin/pipelines/verificationspec/add/",
        "/admin/core/notification/",
        "/admin/pipelines/rollbackpolicy/add/",
        "/admin/django_celery_beat/periodictask/",
    ):
        assert client.get(path).status_code == 200, path


def test_integrations_page(client, release_manager, service, outsider):
    from .worker_support import polled_integration

    state = polled_integration(service, "github", "https://api.github.com", "octo/shop")
    state.last_error = "HTTP 500 from api.github.com"
    state.consecutive_failures = 2
    state.save()
    client.force_login(release_manager)
    html = client.get("/pipelines/integrations/").content.decode()
    assert "octo/shop" in html and "HTTP 500 from api.github.com" in html and "failing" in html
    client.force_login(outsider)
    assert client.get("/pipelines/integrations/").status_code == 403
