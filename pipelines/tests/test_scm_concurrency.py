"""Held deployments on PostgreSQL under concurrency: GitHub delivering the same protection
rule many times at once records one request, and workers racing on it answer it once
(stub of GitHub's API on 127.0.0.1:18113)."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from pytest_httpserver import HTTPServer

from config.celery import app
from pipelines import scm_api
from pipelines.models import DeploymentCheck, DeploymentGateRequest
from pipelines.services import integration_create
from pipelines.services.scm import deployment_gate_answer
from tests.factories import PipelineRunFactory, ReleaseFactory, force_state

from .test_scm_github import ANSWER_PATH, RUN_ID, SECRET, SHA, TOKEN, deliver, payload

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def github_api(monkeypatch):
    server = HTTPServer(host="127.0.0.1", port=18113)
    server.start()
    monkeypatch.setattr(scm_api, "_sleep", lambda seconds: None)
    server.expect_request(ANSWER_PATH, method="POST").respond_with_data("", status=204)
    yield server
    server.clear()
    server.stop()


def run_at_once(n: int, target) -> list:
    barrier = threading.Barrier(n)
    results: list = []
    lock = threading.Lock()

    def worker(index: int):
        barrier.wait()
        try:
            outcome = target(index)
        except Exception as exc:  # surfaced by the assertions on the results
            outcome = repr(exc)
        finally:
            connection.close()
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_concurrent_deliveries_and_workers_answer_once(
    require_postgres, service, production, github_api, monkeypatch
):
    queued: list = []
    monkeypatch.setattr(app, "send_task", lambda name, args: queued.append((name, args)))
    service.repository_url = "https://github.com/octo-org/payments-api"
    service.save()
    integration_create(
        actor=None,
        provider="github",
        name="octo-org app",
        service_slugs=["payments-api"],
        secret=SECRET,
        api_url=github_api.url_for("/").rstrip("/"),
        api_token=TOKEN,
    )
    now = timezone.now()
    release = ReleaseFactory(
        services=[service],
        version="2.4.0",
        window_start=now - timedelta(hours=1),
        window_end=now + timedelta(hours=4),
    )
    force_state(release, "approved")
    PipelineRunFactory(service=service, external_id=RUN_ID, commit_sha=SHA, version="2.4.0")

    statuses = run_at_once(10, lambda i: deliver(payload(), delivery=f"dpr-{i}").status_code)
    assert statuses == [200] * 10
    request = DeploymentGateRequest.objects.get()
    assert queued == [("pipelines.answer_deployment_gate", [request.pk])]

    outcomes = run_at_once(8, lambda i: deployment_gate_answer(request.pk))
    assert sorted(outcomes) == ["answered"] + ["skipped"] * 7
    assert len([r for r, _ in github_api.log if r.path == ANSWER_PATH]) == 1
    assert DeploymentCheck.objects.count() == 1
    request.refresh_from_db()
    assert request.state == "answered" and request.answer == "approved"
