"""/metrics: who may read it, what it says (HTTP and business metrics), and what a scrape
costs. The multiprocess aggregation under gunicorn is tests/test_metrics_gunicorn.py."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.test import Client, override_settings
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from core import metrics
from core.models import Notification
from governance.models import GatePolicy
from pipelines import verdicts
from pipelines.models import PipelineRun
from pipelines.tests.conftest import CI, make_token, run_body
from releases import services as release_services
from tests.factories import ReleaseFactory, make_ready

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "metrics-token-0123456789abcdef"


def scrape(client=None, **headers) -> dict[str, float]:
    """/metrics as {'name{label="value",…}': value}, with the token."""
    metrics.gauges.invalidate()
    client = client or Client()
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}", **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    return parse(response.content.decode())


def parse(text: str) -> dict[str, float]:
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}"] = sample.value
    return samples


def value(samples: dict[str, float], name: str, **labels) -> float:
    key = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return samples.get(f"{name}{{{key}}}", 0.0)


# --- access ---------------------------------------------------------------------------------


@override_settings(METRICS_TOKEN="", METRICS_ALLOWED_NETWORKS=[])
def test_it_is_off_without_a_token_or_networks():
    response = Client().get("/metrics")
    assert response.status_code == 404


@override_settings(METRICS_TOKEN=TOKEN, METRICS_ALLOWED_NETWORKS=[])
@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer ", f"Basic {TOKEN}", "Bearer wrong-token-0123456789", TOKEN],
)
def test_it_refuses_a_missing_or_wrong_token_with_401(authorization):
    headers = {} if authorization is None else {"HTTP_AUTHORIZATION": authorization}
    response = Client().get("/metrics", **headers)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert TOKEN not in response.content.decode()


@override_settings(METRICS_TOKEN=TOKEN, METRICS_ALLOWED_NETWORKS=[])
def test_the_right_token_reads_it():
    response = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    assert b"django_http_requests_before_middlewares_total" in response.content
    assert response["Cache-Control"].startswith("max-age=0")


@override_settings(METRICS_TOKEN="", METRICS_ALLOWED_NETWORKS=["10.0.0.0/8", "fd00::/8"])
@pytest.mark.parametrize(
    "address, status",
    [
        ("10.1.2.3", 200),
        ("fd00::1", 200),
        ("::ffff:10.1.2.3", 200),
        ("127.0.0.1", 403),
        ("192.168.1.1", 403),
        ("", 403),
        ("not-an-address", 403),
    ],
)
def test_an_allowed_network_reads_it_without_a_token(address, status):
    assert Client(REMOTE_ADDR=address).get("/metrics").status_code == status


@override_settings(METRICS_TOKEN=TOKEN, METRICS_ALLOWED_NETWORKS=["10.0.0.0/8"])
def test_with_both_set_a_scrape_needs_both():
    inside, outside = Client(REMOTE_ADDR="10.0.0.7"), Client(REMOTE_ADDR="192.168.0.7")
    assert inside.get("/metrics").status_code == 401
    assert outside.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 403
    assert inside.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 200


@override_settings(
    METRICS_TOKEN=TOKEN, ALLOWED_HOSTS=["releasegate.example.com"], SECURE_SSL_REDIRECT=True
)
def test_prometheus_scrapes_a_pod_by_its_address_over_plain_http():
    client = Client(HTTP_HOST="10.1.2.3:8000")
    assert client.get("/healthz/").status_code in (301, 400)  # the rest of the app: no
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200 and b"releasegate_releases" in response.content
    assert client.get("/metrics").status_code == 401  # still behind the token


@override_settings(METRICS_TOKEN=TOKEN)
def test_it_answers_get_only():
    response = Client().post("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 405


def test_a_short_token_stops_the_process():
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={
            **os.environ,
            "METRICS_TOKEN": "short",
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "METRICS_TOKEN must be at least 16 characters" in result.stderr


# --- what it says ---------------------------------------------------------------------------


@override_settings(METRICS_TOKEN=TOKEN)
def test_http_metrics_count_requests_by_view_and_status():
    before = scrape()
    client = Client()
    for _ in range(3):
        assert client.get("/healthz/").status_code == 200
    after = scrape()
    key = {"method": "GET", "status": "200", "view": "healthz"}
    name = "django_http_responses_total_by_status_view_method_total"
    assert value(after, name, **key) - value(before, name, **key) == 3


@override_settings(METRICS_TOKEN=TOKEN)
def test_runs_ingested_are_counted_by_provider_status_and_outcome(service, other_service):
    ci = CI(make_token("ci-payments", [service]))
    name = "releasegate_runs_ingested_total"
    created = {"provider": "github_actions", "status": "succeeded", "outcome": "created"}
    unchanged = {**created, "outcome": "unchanged"}
    refused = {**created, "outcome": "refused"}
    before = scrape()
    assert ci.run(run_body()).status_code == 201
    assert ci.run(run_body()).status_code == 200  # the same report again
    # The same run id reported for another service: refused by the service (409).
    other = make_token("ci-identity", [other_service])
    assert ci.run(run_body(service="identity-api"), token=other).status_code == 409
    after = scrape()
    assert value(after, name, **created) - value(before, name, **created) == 1
    assert value(after, name, **unchanged) - value(before, name, **unchanged) == 1
    assert value(after, name, **refused) - value(before, name, **refused) == 1


@override_settings(METRICS_TOKEN=TOKEN)
def test_gate_verdicts_and_their_latency_from_the_ci_report(service, release_manager):
    GatePolicy.objects.create(
        name="CI", requirements=[{"stage": "pre_approval", "kind": "ci_green"}], priority=1
    )
    release = make_ready(ReleaseFactory(services=[service], owner=release_manager))
    release = release_services.release_plan(release=release, actor=release_manager)
    ci = CI(make_token("ci-payments", [service]))
    assert ci.run(run_body(version=release.version)).status_code == 201
    run = PipelineRun.objects.get()
    # The report arrived 42 s before the worker got to it.
    PipelineRun.objects.filter(pk=run.pk).update(updated_at=timezone.now() - timedelta(seconds=42))
    before = scrape()
    assert verdicts.gates_evaluate_for_run(run_id=run.pk) == 1
    assert verdicts.gates_evaluate_for_run(run_id=run.pk) == 0  # again: decides nothing new
    after = scrape()

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    evaluations = "releasegate_gate_evaluations_total"
    assert delta(evaluations, kind="ci_green", verdict="passed", changed="true") == 1
    assert delta(evaluations, kind="ci_green", verdict="passed", changed="false") == 1
    latency = "releasegate_gate_verdict_latency_seconds"
    assert delta(f"{latency}_count", kind="ci_green") == 1
    assert 42 <= delta(f"{latency}_sum", kind="ci_green") < 60
    assert delta(f"{latency}_bucket", kind="ci_green", le="30.0") == 0
    assert delta(f"{latency}_bucket", kind="ci_green", le="60.0") == 1
    assert value(after, "releasegate_releases", state="planned") >= 1


@override_settings(METRICS_TOKEN=TOKEN)
def test_gauges_read_the_database_at_scrape_time(service, release_manager):
    ReleaseFactory(services=[service], owner=release_manager)
    old = timezone.now() - timedelta(minutes=10)
    for i, status in enumerate(["pending", "pending", "sending", "dead", "delivered"]):
        Notification.objects.create(
            recipient=release_manager,
            event="deployment_failed",
            channel="email",
            idempotency_key=f"k{i}",
            subject="s",
            status=status,
            created_at=old if i == 0 else timezone.now(),
        )
    samples = scrape()
    assert value(samples, "releasegate_releases", state="draft") == 1
    assert value(samples, "releasegate_releases", state="closed") == 0
    assert value(samples, "releasegate_notification_outbox", status="pending") == 2
    assert value(samples, "releasegate_notification_outbox", status="sending") == 1
    assert value(samples, "releasegate_notification_outbox", status="dead") == 1
    assert 600 <= value(samples, "releasegate_notification_outbox_oldest_age_seconds") < 700
    assert value(samples, "releasegate_freeze_exceptions", state="requested") == 0
    assert value(samples, "releasegate_poller_integrations", health="all") == 0
    for provider in ("celery", "governance", "outbox", "pipelines", "releases"):
        assert value(samples, "releasegate_metrics_provider_up", provider=provider) == 1
    # The embedded broker is a folder; its queue is counted from it.
    assert 'releasegate_celery_queue_length{queue="celery"}' in samples


@override_settings(METRICS_TOKEN=TOKEN, METRICS_GAUGES_CACHE_SECONDS=60)
def test_gauges_are_cached_and_cost_a_bounded_number_of_queries(
    service, release_manager, django_assert_max_num_queries
):
    metrics.gauges.invalidate()
    client = Client()
    headers = {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}
    with django_assert_max_num_queries(6):
        assert client.get("/metrics", **headers).status_code == 200
    for _ in range(5):
        ReleaseFactory(services=[service], owner=release_manager)
    with django_assert_max_num_queries(0):  # cached: no query at all
        body = client.get("/metrics", **headers).content.decode()
    assert value(parse(body), "releasegate_releases", state="draft") == 0
    metrics.gauges.invalidate()
    with django_assert_max_num_queries(6):  # the same count with more rows
        body = client.get("/metrics", **headers).content.decode()
    assert value(parse(body), "releasegate_releases", state="draft") == 5


@override_settings(METRICS_TOKEN=TOKEN)
def test_a_failing_provider_is_reported_not_fatal(monkeypatch):
    def broken():
        raise RuntimeError("boom")

    monkeypatch.setitem(metrics._providers, "broken", broken)
    samples = scrape()
    assert value(samples, "releasegate_metrics_provider_up", provider="broken") == 0
    assert value(samples, "releasegate_metrics_provider_up", provider="releases") == 1


def test_task_failures_and_retries_are_counted():
    from celery import shared_task

    @shared_task(name="tests.metrics_fails")
    def fails():
        raise ValueError("no")

    name = "releasegate_celery_task_failures_total"
    before = parse(metrics.exposition().decode())
    fails.apply()
    after = parse(metrics.exposition().decode())
    assert (
        value(after, name, task="tests.metrics_fails")
        - value(before, name, task="tests.metrics_fails")
        == 1
    )


OBSERVABILITY_MIDDLEWARE = {
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "core.logs.RequestLogMiddleware",
    "config.metrics.MetricsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
}


def test_metrics_and_logs_add_no_query_to_a_ci_report(service, settings):
    """The ingest path costs the same queries with the metrics and log middlewares as
    without them (first report of a run, then the same report again)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    ci = CI(make_token("ci-payments", [service]))
    ci.run(run_body(external_id="warm-up"))  # token cached, like a busy CI token

    def queries(external_id: str) -> list[int]:
        counts = []
        for _ in range(2):  # created, then unchanged
            with CaptureQueriesContext(connection) as captured:
                assert ci.run(run_body(external_id=external_id)).status_code in (200, 201)
            counts.append(len(captured))
        return counts

    with_them = queries("1")
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if m not in OBSERVABILITY_MIDDLEWARE]
    assert queries("2") == with_them
