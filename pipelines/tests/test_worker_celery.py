"""A real Celery worker process (``celery -A config worker --pool=solo``) on Redis, against
the pytest database: a task queued on commit runs there and its effect is committed."""

from __future__ import annotations

import pytest
from django.db import transaction

from core.models import Notification, NotificationAttempt, NotificationPreference
from core.notifications import notification_enqueue

from .worker_support import WorkerProcess, redis_url_or_skip, use_broker, wait_for

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def broker():
    url = redis_url_or_skip()
    use_broker(url)
    from config.celery import app

    app.control.purge()  # nothing left over from another run reaches this test's worker
    return url


@pytest.fixture
def worker(broker, tmp_path):
    process = WorkerProcess(broker, tmp_path / "worker.log").start()
    yield process
    process.stop()


def test_task_queued_on_commit_runs_in_a_real_worker(worker, release_manager, httpserver):
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    NotificationPreference.objects.create(
        user=release_manager,
        channels={"decision_made": ["slack"]},
        slack_webhook_url=httpserver.url_for("/hook"),
    )
    with transaction.atomic():
        (row,) = notification_enqueue(
            event="decision_made",
            recipients=[release_manager],
            subject="CR-12 approved",
            idempotency_key="decision:12",
        )
        # Not queued yet: the transaction could still roll back.
        assert Notification.objects.get(pk=row.pk).status == "pending"

    def delivered():
        return Notification.objects.filter(pk=row.pk, status="delivered").exists()

    try:
        wait_for(delivered, timeout=60, what="the worker to deliver the notification")
    except BaseException:
        print(worker.log())
        raise
    assert len(httpserver.log) == 1
    assert NotificationAttempt.objects.filter(notification=row, ok=True).count() == 1
    assert "pipelines.deliver_notification" in worker.log()
