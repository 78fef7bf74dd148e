"""Fault tests of the workers, each bounded in time:

- a worker killed with SIGKILL in the middle of a task: nothing half-applied, and the task
  completes exactly once when the message is redelivered (acks_late + reject_on_worker_lost
  + an idempotent, claiming task; Redis redelivers unacked messages after the visibility
  timeout, shortened here through CELERY_VISIBILITY_TIMEOUT);
- Redis down (the app pointed at a port where nothing listens — the shared Redis is never
  stopped): REST ingestion still accepts runs, the outbox keeps the notification and a
  durable marker of the lost enqueue, and delivers once Redis is back;
- two beat schedulers firing the same sweep at once do not poll an integration twice.
"""

from __future__ import annotations

import json
import re
import threading
import time

import pytest
from django.db import connection, transaction
from werkzeug import Response

from core.models import Notification, NotificationAttempt, NotificationPreference
from core.notifications import notification_enqueue
from pipelines.models import TaskOutbox
from pipelines.polling.sweep import poll_due
from pipelines.queueing import requeue_task_outbox
from pipelines.services import api_token_create
from pipelines.tests.worker_support import (
    WorkerProcess,
    free_port,
    github_runs_page,
    polled_integration,
    redis_url_or_skip,
    use_broker,
    wait_for,
)

pytestmark = [
    pytest.mark.faults,
    pytest.mark.services,
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def broker():
    url = redis_url_or_skip()
    use_broker(url)
    from config.celery import app

    app.control.purge()
    yield url
    use_broker(url)


def _slack_to(user, url: str) -> None:
    NotificationPreference.objects.create(
        user=user, channels={"deployment_failed": ["slack"]}, slack_webhook_url=url
    )


def _enqueue(user, key: str) -> Notification:
    with transaction.atomic():
        (row,) = notification_enqueue(
            event="deployment_failed",
            recipients=[user],
            subject="Deployment failed: payments-api 2.4.0 → production",
            idempotency_key=key,
        )
    return row


def test_sigkill_mid_task_then_redelivery_completes_exactly_once(
    broker, release_manager, httpserver, tmp_path
):
    arrived = threading.Event()
    release = threading.Event()
    keys: list[str] = []

    def hook(request):
        keys.append(request.headers["X-Releasegate-Idempotency-Key"])
        if len(keys) == 1:
            arrived.set()  # the first worker is now in the middle of the task…
            release.wait(20)  # …and dies before it hears back
        return Response("ok")

    httpserver.expect_request("/hook", method="POST").respond_with_handler(hook)
    _slack_to(release_manager, httpserver.url_for("/hook"))
    env = {
        "CELERY_VISIBILITY_TIMEOUT": "4",
        "NOTIFICATION_SEND_LEASE_SECONDS": "3",
        "NOTIFICATION_WEBHOOK_TIMEOUT": "30",
    }
    first = WorkerProcess(broker, tmp_path / "first.log", **env).start()
    second = None
    try:
        row = _enqueue(release_manager, "deployment_failed:sigkill")
        assert arrived.wait(60), first.log()
        first.kill()  # SIGKILL: no warm shutdown, no ack
        release.set()
        row.refresh_from_db()
        # Nothing half-applied: the claim (sending, leased) is all the dead worker left.
        assert row.status == "sending" and row.attempts == 1
        assert not NotificationAttempt.objects.filter(notification=row).exists()

        second = WorkerProcess(broker, tmp_path / "second.log", **env).start()
        wait_for(
            lambda: Notification.objects.filter(pk=row.pk, status="delivered").exists(),
            timeout=150,  # visibility timeout + worker start-up, with margin for a busy machine
            what="the redelivered task",
        )
        time.sleep(5)  # a second redelivery, if there were one, would show by now
    except BaseException:
        print(first.log(), second.log() if second else "")
        raise
    finally:
        release.set()
        first.kill()
        if second:
            second.stop()
    row.refresh_from_db()
    assert row.attempts == 2
    assert NotificationAttempt.objects.filter(notification=row, ok=True).count() == 1
    # At least once on the wire, with one idempotency key the receiver deduplicates on.
    assert len(keys) == 2 and len(set(keys)) == 1


def test_redis_down_ingestion_accepts_runs_and_outbox_delivers_once_back(
    broker, service, release_manager, httpserver, tmp_path, client
):
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    _slack_to(release_manager, httpserver.url_for("/hook"))
    _, raw = api_token_create(actor=None, name="ci-faults", service_slugs=[service.slug])

    use_broker(f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    started = time.monotonic()
    response = client.post(
        "/api/v1/pipeline-runs/",
        data=json.dumps(
            {
                "service": service.slug,
                "provider": "github_actions",
                "external_id": "4242",
                "attempt": 1,
                "status": "succeeded",
                "commit_sha": "3f1c0d9e8b7a6f5e4d3c2b1a09f8e7d6c5b4a392",
                "version": "2.4.0",
            }
        ),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {raw}",
    )
    assert response.status_code in (200, 201), response.content
    assert time.monotonic() - started < 15
    from pipelines.models import PipelineRun

    assert PipelineRun.objects.filter(external_id="4242").exists()

    row = _enqueue(release_manager, "deployment_failed:redis-down")
    row.refresh_from_db()
    assert row.status == "pending"
    marker = TaskOutbox.objects.get(task_name="pipelines.deliver_notification")
    assert marker.args == [row.pk]

    use_broker(broker)  # Redis is back
    worker = WorkerProcess(broker, tmp_path / "worker.log").start()
    try:
        assert requeue_task_outbox() >= 1  # what the beat sweep does every 30 s
        wait_for(
            lambda: Notification.objects.filter(pk=row.pk, status="delivered").exists(),
            timeout=150,  # visibility timeout + worker start-up, with margin for a busy machine
            what="delivery after Redis came back",
        )
    except BaseException:
        print(worker.log())
        raise
    finally:
        worker.stop()
    assert len(httpserver.log) == 1
    assert not TaskOutbox.objects.filter(task_name="pipelines.deliver_notification").exists()


def test_two_beat_schedulers_do_not_poll_twice(service, httpserver):
    hits: dict[str, int] = {}
    lock = threading.Lock()

    def runs(request):
        with lock:
            hits[request.path] = hits.get(request.path, 0) + 1
        time.sleep(0.05)
        return Response(json.dumps(github_runs_page()), content_type="application/json")

    for n in range(20):
        polled_integration(service, "github", httpserver.url_for(""), f"acme/repo{n}")
    httpserver.expect_request(re.compile(r"/repos/acme/repo\d+/actions/runs")).respond_with_handler(
        runs
    )

    barrier = threading.Barrier(2)
    polled: list[int] = []

    def scheduler():
        try:
            barrier.wait(10)
            polled.append(len(poll_due()))
        finally:
            connection.close()

    threads = [threading.Thread(target=scheduler) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sum(polled) == 20
    assert len(hits) == 20 and set(hits.values()) == {1}
