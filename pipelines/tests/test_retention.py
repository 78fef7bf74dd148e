"""Retention of pipeline runs and webhook deliveries (pipelines.services.retention): the DORA
figures of the metrics page and API are identical before and after pruning, runs a release's
evidence refers to survive, re-runs prune nothing twice, every batch is audited, and the
metrics page costs the same number of queries.

Runs on SQLite and, with DATABASE_URL, on PostgreSQL (the suite is run on both)."""

from __future__ import annotations

import io
import random
from dataclasses import replace
from datetime import UTC, timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from core.models import AuditEvent
from dashboards.models import DeliveryFact
from dashboards.selectors.metrics import (
    INTERVALS,
    METRICS,
    MetricsScope,
    metric_series,
    metrics_page,
)
from dashboards.services import metrics_facts_refresh
from governance.models import GateCheck
from pipelines.models import (
    Incident,
    PipelineCheck,
    PipelineRun,
    PruneBatch,
    RunDaySummary,
    WebhookDelivery,
)
from pipelines.services.retention import RetentionPolicy, pipeline_data_prune
from releases.models import Deployment
from tests.factories import EnvironmentFactory, ReleaseFactory, ServiceFactory

pytestmark = pytest.mark.django_db

DAYS = 200
POLICY = RetentionPolicy(
    runs_keep_days=30,
    runs_keep_per_service=5,
    deliveries_keep_days=7,
    batch_size=50,
    max_batches=1000,
)


def _history(services, production, staging, now) -> None:
    """DAYS days of delivery for each service: versions built by one to three runs (a failed
    attempt, a re-run) days before their deployments to staging and production, failed and
    rolled-back deployments with incidents, and feature-branch runs that never ship."""
    rng = random.Random(17)
    runs, deployments, incidents = [], [], []
    for service in services:
        for day in range(DAYS, 0, -1):
            if rng.random() > 0.5:
                continue
            moment = now - timedelta(days=day, hours=rng.randint(0, 8))
            version = f"{service.pk}.{day}.0"
            built = moment - timedelta(minutes=rng.randint(30, 60 * 24 * 20))
            for attempt in range(1, rng.randint(1, 3) + 1):
                start = built + timedelta(hours=attempt)
                runs.append(
                    PipelineRun(
                        service=service,
                        provider="github_actions",
                        external_id=f"{service.slug}-{day}",
                        attempt=attempt,
                        status=rng.choice(["succeeded", "failed", "succeeded", "cancelled"]),
                        commit_sha=f"{rng.getrandbits(160):040x}",
                        version=version,
                        started_at=start,
                        finished_at=start + timedelta(minutes=9),
                        created_at=start,
                        updated_at=start,
                        gates_pending=False,
                    )
                )
            for n in range(rng.randint(0, 3)):
                start = moment - timedelta(hours=rng.randint(1, 90))
                runs.append(
                    PipelineRun(
                        service=service,
                        provider="gitlab",
                        external_id=f"{service.slug}-{day}-branch-{n}",
                        status="succeeded",
                        version=f"pr-{day}-{n}",
                        started_at=start if n else None,
                        finished_at=start + timedelta(minutes=4),
                        created_at=start,
                        updated_at=start,
                        gates_pending=False,
                    )
                )
            deployments.append(
                Deployment(
                    service=service,
                    environment=staging,
                    version=version,
                    state="succeeded",
                    external_id=f"s-{service.slug}-{day}",
                    started_at=moment - timedelta(hours=6),
                    finished_at=moment - timedelta(hours=5),
                    created_at=moment - timedelta(hours=6),
                )
            )
            roll = rng.random()
            state = "failed" if roll < 0.08 else "rolled_back" if roll < 0.12 else "succeeded"
            deployments.append(
                Deployment(
                    service=service,
                    environment=production,
                    version=version,
                    state=state,
                    external_id=f"p-{service.slug}-{day}",
                    started_at=moment - timedelta(minutes=10),
                    finished_at=moment,
                    created_at=moment - timedelta(minutes=10),
                )
            )
            if state != "failed" and rng.random() < 0.1:
                incidents.append((len(deployments) - 1, rng.randint(5, 300)))
    PipelineRun.objects.bulk_create(runs)
    Deployment.objects.bulk_create(deployments)
    PipelineCheck.objects.bulk_create(
        PipelineCheck(run=run, kind="tests", status="passed", metrics={"passed": 10})
        for run in PipelineRun.objects.filter(provider="github_actions")
    )
    Incident.objects.bulk_create(
        Incident(
            deployment=deployments[i],
            service=deployments[i].service,
            fingerprint=f"fp-{i}",
            status="resolved",
            started_at=deployments[i].finished_at + timedelta(minutes=3),
            resolved_at=deployments[i].finished_at + timedelta(minutes=3 + minutes),
        )
        for i, minutes in incidents
    )


@pytest.fixture
def now():
    return timezone.now()


@pytest.fixture
def history(team, other_team, now):
    production = EnvironmentFactory(name="production", is_production=True, order=10)
    staging = EnvironmentFactory(name="staging", order=5)
    services = [
        ServiceFactory(name="payments-api", slug="payments-api", team=team),
        ServiceFactory(name="ledger", slug="ledger", team=team),
        ServiceFactory(name="search", slug="search", team=other_team),
    ]
    _history(services, production, staging, now)
    return services


def _scopes(services, now):
    end = timezone.localdate(now)
    start = end - timedelta(days=DAYS + 5)
    yield MetricsScope(start, end)
    yield MetricsScope(start, end, service=services[0].slug)
    yield MetricsScope(start, end, team=services[2].team.slug)
    yield MetricsScope(end - timedelta(days=20), end)  # a period the rewindow rebuilds


def _figures(services, now) -> dict:
    """Every figure the metrics page and the DORA API show, after a full rebuild of the
    facts (so lead times are computed afresh from the runs and the summaries)."""
    metrics_facts_refresh(full=True)
    out: dict = {
        "lead_per_deployment": dict(
            DeliveryFact.objects.values_list("deployment_id", "lead_seconds")
        )
    }
    for scope in _scopes(services, now):
        for metric in METRICS:
            for interval in INTERVALS:
                out[(scope, metric, interval)] = metric_series(metric, scope, interval)
        for by in ("service", "team"):
            page = metrics_page(scope, "weekly", list(METRICS), by=by)
            out[(scope, "page", by)] = repr((page.summary, page.trends, page.groups))
    return out


def _api_figures(client, services, now) -> dict:
    out = {}
    end = timezone.localdate(now)
    for metric in METRICS:
        for interval in ("daily", "monthly", "all"):  # the API's intervals
            response = client.get(
                "/api/v1/metrics/dora",
                {
                    "metric": metric,
                    "start_date": (end - timedelta(days=DAYS + 5)).isoformat(),
                    "end_date": end.isoformat(),
                    "interval": interval,
                },
            )
            assert response.status_code == 200, response.content
            out[(metric, interval)] = response.json()
    return out


def _metrics_page_queries(client) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/dashboards/metrics/")
    assert response.status_code == 200
    return len(queries)


def test_dora_figures_are_identical_before_and_after_pruning(client, viewer, history, now):
    client.force_login(viewer)
    runs_before = PipelineRun.objects.count()
    before = _figures(history, now)
    api_before = _api_figures(client, history, now)
    page_queries_before = _metrics_page_queries(client)
    assert sum(1 for v in before["lead_per_deployment"].values() if v is not None) > 100

    report = pipeline_data_prune(policy=POLICY, now=now)

    assert report.runs > runs_before // 2, "the policy should prune most of the history"
    assert PipelineRun.objects.count() == runs_before - report.runs
    assert RunDaySummary.objects.exists()
    assert _figures(history, now) == before
    assert _api_figures(client, history, now) == api_before
    assert _metrics_page_queries(client) == page_queries_before

    # The summaries are what holds the figures: without them lead times move.
    RunDaySummary.objects.all().delete()
    assert _figures(history, now)["lead_per_deployment"] != before["lead_per_deployment"]


def _expected_summaries(rows, remaining: set[int]) -> dict:
    """What the summary table should hold for the runs that are gone, computed apart."""
    out: dict = {}
    for pk, service_id, version, created_at, status, started_at in rows:
        if pk in remaining:
            continue
        key = (service_id, version, created_at.astimezone(UTC).date())
        runs, ok, first = out.get(key, (0, 0, None))
        if started_at is not None and (first is None or started_at < first):
            first = started_at
        out[key] = (runs + 1, ok + (status == "succeeded"), first)
    return out


def _summaries() -> dict:
    return {
        (s.service_id, s.version, s.day): (s.runs, s.succeeded, s.first_started_at)
        for s in RunDaySummary.objects.all()
    }


RUN_FIELDS = ("pk", "service_id", "version", "created_at", "status", "started_at")


def test_summaries_count_every_pruned_run_once(history, now):
    rows = list(PipelineRun.objects.values_list(*RUN_FIELDS))
    report = pipeline_data_prune(policy=POLICY, now=now)
    remaining = set(PipelineRun.objects.values_list("pk", flat=True))
    assert report.runs == len(rows) - len(remaining)
    assert _summaries() == _expected_summaries(rows, remaining)
    assert sum(RunDaySummary.objects.values_list("runs", flat=True)) == report.runs


def test_small_batches_and_interrupted_passes_give_the_same_summaries(history, now):
    rows = list(PipelineRun.objects.values_list(*RUN_FIELDS))
    small = replace(POLICY, batch_size=7, max_batches=3)
    passes = 0
    while True:
        report = pipeline_data_prune(policy=small, now=now)
        passes += 1
        if report.batches == 0:
            break
        assert passes < 1000
    assert passes > 3
    remaining = set(PipelineRun.objects.values_list("pk", flat=True))
    assert _summaries() == _expected_summaries(rows, remaining)
    assert pipeline_data_prune(policy=POLICY, now=now).runs == 0


def test_re_running_prunes_nothing_twice(history, now):
    first = pipeline_data_prune(policy=POLICY, now=now)
    assert first.runs and first.batches
    summaries = sorted(RunDaySummary.objects.values_list("service_id", "version", "day", "runs"))
    events = AuditEvent.objects.count()
    second = pipeline_data_prune(policy=POLICY, now=now)
    assert (second.runs, second.deliveries, second.batches) == (0, 0, 0)
    assert sorted(RunDaySummary.objects.values_list("service_id", "version", "day", "runs")) == (
        summaries
    )
    assert AuditEvent.objects.count() == events


def test_every_batch_is_one_audit_event(history, now):
    report = pipeline_data_prune(policy=replace(POLICY, batch_size=40), now=now)
    events = AuditEvent.objects.filter(action="pipeline_data.pruned")
    assert report.batches == events.count() == PruneBatch.objects.count() > 1
    event = events.order_by("id").first()
    assert event.actor_label == "system"
    assert event.after["runs_deleted"] == PruneBatch.objects.order_by("id").first().runs_deleted
    assert sum(b.runs_deleted for b in PruneBatch.objects.all()) == report.runs


def test_runs_a_release_refers_to_survive(history, now, production):
    service = history[0]
    old = now - timedelta(days=150)

    def old_run(external_id, **fields):
        return PipelineRun.objects.create(
            service=service,
            provider="jenkins",
            external_id=external_id,
            status="succeeded",
            started_at=old,
            created_at=old,
            updated_at=old,
            gates_pending=False,
            **fields,
        )

    release = ReleaseFactory(version="7.0.0", services=[service])
    of_release_version = old_run("rel-version", version="7.0.0")
    deciding = old_run("decided-gate", version="7.0.0-rc1")
    same_commit = old_run("same-commit", version="7.0.0-rc2", commit_sha="c0ffee" * 6)
    pending = old_run("gates-pending", version="x")
    PipelineRun.objects.filter(pk=pending.pk).update(gates_pending=True)
    common = {"policy_name": "p", "policy_version": 1, "stage": "pre_approval", "requirement": {}}
    GateCheck.objects.create(
        release=release, key="ci", kind="ci_green", label="CI", run=deciding, **common
    )
    GateCheck.objects.create(
        release=release,
        key="tests",
        kind="tests_passed",
        label="Tests",
        commit_sha="c0ffee" * 6,
        **common,
    )
    unrelated = old_run("unrelated", version="0.0.1")

    pipeline_data_prune(policy=POLICY, now=now)

    kept = set(PipelineRun.objects.values_list("pk", flat=True))
    assert {of_release_version.pk, deciding.pk, same_commit.pk, pending.pk} <= kept
    assert unrelated.pk not in kept
    assert GateCheck.objects.get(key="ci").run_id == deciding.pk


def test_the_newest_runs_of_each_service_are_kept_whatever_their_age(service, now):
    for n in range(12):
        at = now - timedelta(days=400 + n)
        PipelineRun.objects.create(
            service=service,
            provider="github_actions",
            external_id=f"r{n}",
            status="succeeded",
            version=f"0.{n}",
            started_at=at,
            created_at=at,
            updated_at=at,
            gates_pending=False,
        )
    pipeline_data_prune(policy=POLICY, now=now)
    assert sorted(PipelineRun.objects.values_list("external_id", flat=True)) == sorted(
        f"r{n}" for n in range(5)
    )
    # Per service only: the days rule alone prunes all of them.
    pipeline_data_prune(policy=replace(POLICY, runs_keep_per_service=0), now=now)
    assert not PipelineRun.objects.exists()


def test_with_both_run_rules_off_no_run_is_pruned(history, now):
    before = PipelineRun.objects.count()
    report = pipeline_data_prune(
        policy=replace(POLICY, runs_keep_days=0, runs_keep_per_service=0), now=now
    )
    assert report.runs == 0 and PipelineRun.objects.count() == before


def test_old_webhook_deliveries_go_unless_their_run_is_evidence(service, now):
    release = ReleaseFactory(version="3.0.0", services=[service])
    evidence_run = PipelineRun.objects.create(
        service=service,
        provider="github_actions",
        external_id="e1",
        status="succeeded",
        version=release.version,
        gates_pending=False,
    )
    plain_run = PipelineRun.objects.create(
        service=service,
        provider="github_actions",
        external_id="p1",
        status="succeeded",
        version="3.0.1-dev",
        gates_pending=False,
    )
    for n, (age, run) in enumerate(
        [(30, evidence_run), (30, plain_run), (30, None), (2, None), (2, plain_run)]
    ):
        WebhookDelivery.objects.create(
            provider="github",
            delivery_id=f"d{n}",
            run=run,
            received_at=now - timedelta(days=age),
        )
    report = pipeline_data_prune(policy=POLICY, now=now)
    assert report.deliveries == 2
    assert sorted(WebhookDelivery.objects.values_list("delivery_id", flat=True)) == [
        "d0",
        "d3",
        "d4",
    ]


def test_dry_run_counts_and_changes_nothing(history, now, settings):
    settings.PIPELINE_RUNS_KEEP_DAYS = POLICY.runs_keep_days
    settings.PIPELINE_RUNS_KEEP_PER_SERVICE = POLICY.runs_keep_per_service
    before = PipelineRun.objects.count()
    out = io.StringIO()
    call_command("prune_pipeline_data", "--dry-run", stdout=out)
    assert PipelineRun.objects.count() == before
    assert not PruneBatch.objects.exists() and not RunDaySummary.objects.exists()
    text = out.getvalue()
    dry = pipeline_data_prune(dry_run=True)
    assert f"Would delete {dry.runs} runs" in text and "payments-api:" in text

    out = io.StringIO()
    call_command("prune_pipeline_data", stdout=out)
    assert f"Deleted {dry.runs} runs" in out.getvalue()
    assert PipelineRun.objects.count() == before - dry.runs


def test_the_command_refuses_a_bad_batch_count():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="at least 1"):
        call_command("prune_pipeline_data", "--max-batches", "0")


def test_the_beat_entry_exists():
    from django_celery_beat.models import PeriodicTask

    task = PeriodicTask.objects.get(task="pipelines.prune_pipeline_data")
    assert task.enabled and task.interval.every == 30


def test_bad_retention_settings_fail_at_start_up(monkeypatch):
    import importlib

    from django.core.exceptions import ImproperlyConfigured

    import config.settings.base as base

    monkeypatch.setenv("PIPELINE_RUNS_KEEP_DAYS", "-3")
    with pytest.raises(ImproperlyConfigured, match="PIPELINE_RUNS_KEEP_DAYS"):
        importlib.reload(base)
    monkeypatch.delenv("PIPELINE_RUNS_KEEP_DAYS")
    importlib.reload(base)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_pruners_at_once_count_every_run_once(history, now):
    import threading

    rows = list(PipelineRun.objects.values_list(*RUN_FIELDS))
    barrier = threading.Barrier(2)
    reports = []
    errors = []

    def prune():
        try:
            barrier.wait(10)
            reports.append(pipeline_data_prune(policy=replace(POLICY, batch_size=20), now=now))
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=prune) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors
    remaining = set(PipelineRun.objects.values_list("pk", flat=True))
    assert sum(r.runs for r in reports) == len(rows) - len(remaining) > 0
    assert _summaries() == _expected_summaries(rows, remaining)
