"""Concurrency on PostgreSQL: many identical posts at once are one run."""

from __future__ import annotations

import json
import threading

import pytest
from django.db import connection
from django.test import Client

from core.models import AuditEvent
from pipelines.models import Artefact, PipelineCheck, PipelineRun

from .conftest import make_token, run_body

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def post_concurrently(path: str, body: bytes, headers: dict, n: int = 50) -> list:
    barrier = threading.Barrier(n)
    statuses: list = []
    lock = threading.Lock()

    def worker():
        client = Client()
        barrier.wait()
        try:
            response = client.generic(
                "POST", path, body, content_type="application/json", **headers
            )
            with lock:
                statuses.append(response.status_code)
        except Exception as exc:  # surfaced by the assertion on the statuses
            with lock:
                statuses.append(repr(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return statuses


def test_fifty_concurrent_identical_posts_make_one_run(require_postgres, service, settings):
    settings.INGEST_RATE_LIMIT = 0
    token = make_token("ci-concurrent", [service])
    statuses = post_concurrently(
        "/api/v1/pipeline-runs/",
        json.dumps(run_body()).encode(),
        {"HTTP_AUTHORIZATION": f"Bearer {token}"},
    )
    assert sorted(map(str, statuses)) == ["200"] * 49 + ["201"]
    assert PipelineRun.objects.count() == 1
    assert PipelineCheck.objects.count() == 3
    assert Artefact.objects.count() == 1
    assert not AuditEvent.objects.filter(action__startswith="pipeline_run").exists()


def test_concurrent_start_and_completion_keep_the_run_finished(require_postgres, service, settings):
    settings.INGEST_RATE_LIMIT = 0
    token = make_token("ci-race", [service])
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    finished = json.dumps(run_body()).encode()
    running = json.dumps(run_body(status="running", finished_at=None)).encode()
    results: list = []

    def send(body):
        results.extend(post_concurrently("/api/v1/pipeline-runs/", body, headers, n=10))

    threads = [threading.Thread(target=send, args=(b,)) for b in (running, finished)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(code in (200, 201) for code in results)
    run = PipelineRun.objects.get()
    assert run.status == "succeeded" and run.finished_at is not None


def test_fifty_concurrent_deliveries_of_one_github_webhook_make_one_run(
    require_postgres, service, settings
):
    import hashlib
    import hmac
    from pathlib import Path

    from pipelines.models import WebhookDelivery
    from pipelines.services import integration_create

    integration_create(
        actor=None, provider="github", name="gh", service_slugs=[service.slug], secret="s3"
    )
    body = (Path(__file__).parent / "fixtures" / "github_workflow_run_completed.json").read_bytes()
    signature = "sha256=" + hmac.new(b"s3", body, hashlib.sha256).hexdigest()
    statuses = post_concurrently(
        "/api/v1/webhooks/github/",
        body,
        {
            "HTTP_X_HUB_SIGNATURE_256": signature,
            "HTTP_X_GITHUB_EVENT": "workflow_run",
            "HTTP_X_GITHUB_DELIVERY": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
        },
    )
    assert statuses == [200] * 50
    assert PipelineRun.objects.count() == 1
    assert WebhookDelivery.objects.count() == 1
    assert PipelineRun.objects.get().reported_by_integration.name == "gh"
