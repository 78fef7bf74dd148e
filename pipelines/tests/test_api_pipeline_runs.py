"""POST /api/v1/pipeline-runs/: the contract of docs/ingestion.md, idempotency, ordering and
artefacts."""

from __future__ import annotations

from unittest import mock

import pytest

from core.models import AuditEvent
from pipelines.models import Artefact, PipelineCheck, PipelineRun

from .conftest import CI, make_token, run_body

pytestmark = pytest.mark.django_db

DIGEST_A = "sha256:" + "ab" * 32
DIGEST_B = "sha256:" + "cd" * 32


def audit_count(action_prefix: str = "pipeline_run") -> int:
    return AuditEvent.objects.filter(action__startswith=action_prefix).count()


def test_it_creates_a_run_with_its_checks_and_artefacts(ci, service):
    response = ci.run(run_body())
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["created"] is True and body["changed"] is True
    assert body["status"] == "succeeded" and body["service"] == "payments-api"
    run = PipelineRun.objects.get()
    assert (run.provider, run.external_id, run.attempt) == ("github_actions", "9001", 1)
    assert run.service == service and run.version == "2.4.0"
    assert run.finished_at.isoformat() == "2026-11-20T10:07:12+00:00"
    checks = {c.kind: c for c in PipelineCheck.objects.all()}
    assert checks["tests"].metrics == {"passed": 812, "failed": 0, "skipped": 4}
    assert checks["coverage"].metrics == {"percent": 87.5}
    artefact = Artefact.objects.get()
    assert (artefact.version, artefact.digest, artefact.first_run) == ("2.4.0", DIGEST_A, run)
    # A first report is a fact with its provenance on the row, not an audit event.
    assert run.reported_by_token.name == "ci-payments"
    assert not AuditEvent.objects.filter(action__startswith="pipeline_run").exists()


def test_the_same_body_again_changes_nothing(ci):
    assert ci.run(run_body()).status_code == 201
    run = PipelineRun.objects.get()
    events = AuditEvent.objects.count()
    response = ci.run(run_body())
    assert response.status_code == 200
    assert response.json()["changed"] is False and response.json()["created"] is False
    assert AuditEvent.objects.count() == events
    assert PipelineRun.objects.get().updated_at == run.updated_at
    assert PipelineCheck.objects.count() == 3 and Artefact.objects.count() == 1


def test_an_update_returns_200_and_is_audited(ci):
    ci.run(run_body(status="running", finished_at=None, checks=[], artefacts=[]))
    response = ci.run(run_body())
    assert response.status_code == 200
    assert response.json()["changed"] is True and response.json()["status"] == "succeeded"
    event = AuditEvent.objects.get(action="pipeline_run.status")
    assert (event.from_state, event.to_state) == ("running", "succeeded")
    assert PipelineCheck.objects.count() == 3


def test_a_finished_run_never_goes_back_to_running(ci):
    ci.run(run_body(status="failed"))
    response = ci.run(run_body(status="running", finished_at=None, checks=[]))
    assert response.status_code == 200
    assert response.json()["status"] == "failed"
    run = PipelineRun.objects.get()
    assert run.status == "failed" and run.finished_at is not None


def test_a_late_start_only_fills_in_what_is_missing(ci):
    ci.run(run_body(url="", started_at=None, checks=[{"kind": "tests", "status": "failed"}]))
    late = run_body(
        status="running",
        finished_at=None,
        url="https://ci.example/run/9001",
        checks=[{"kind": "tests", "status": "running"}],
    )
    response = ci.run(late)
    assert response.status_code == 200
    run = PipelineRun.objects.get()
    assert run.status == "succeeded"
    assert run.url == "https://ci.example/run/9001"
    assert run.started_at.isoformat() == "2026-11-20T10:00:00+00:00"
    assert PipelineCheck.objects.get(kind="tests").status == "failed"
    event = AuditEvent.objects.get(action="pipeline_run.update")
    assert "Out-of-order" in event.reason
    # The same late event again: nothing more to fill in.
    events = AuditEvent.objects.count()
    assert ci.run(late).json()["changed"] is False
    assert AuditEvent.objects.count() == events


def test_a_queued_event_after_running_keeps_it_running(ci):
    ci.run(run_body(status="running", finished_at=None))
    ci.run(run_body(status="queued", finished_at=None))
    assert PipelineRun.objects.get().status == "running"


def test_each_attempt_is_its_own_run(ci):
    ci.run(run_body(status="failed"))
    assert ci.run(run_body(attempt=2, status="succeeded")).status_code == 201
    assert PipelineRun.objects.count() == 2


def test_the_same_artefact_twice_is_one_record(ci):
    ci.run(run_body())
    ci.run(run_body(external_id="9002"))
    assert Artefact.objects.count() == 1


def test_a_changed_digest_for_a_version_is_refused_and_audited(ci):
    ci.run(run_body())
    tampered = run_body(external_id="9002")
    tampered["artefacts"][0]["digest"] = DIGEST_B
    response = ci.run(tampered)
    assert response.status_code == 409
    assert "immutable" in response.json()["detail"]
    assert response.json()["code"] == "conflict"
    assert not PipelineRun.objects.filter(external_id="9002").exists()
    assert Artefact.objects.get().digest == DIGEST_A
    event = AuditEvent.objects.get(action="artefact.digest_mismatch")
    assert event.after["digest"] == DIGEST_B and event.before["digest"] == DIGEST_A


def test_a_run_id_of_another_service_is_refused(ci, other_service):
    ci.run(run_body())
    other = CI(make_token("ci-identity", [other_service]))
    response = other.run(run_body(service="identity-api"))
    assert response.status_code == 409
    assert PipelineRun.objects.get().service.slug == "payments-api"


def test_gates_are_re_evaluated_after_commit(
    ci, release_of_run, django_capture_on_commit_callbacks
):
    with mock.patch("pipelines.tasks.evaluate_gates_for_runs.delay") as delay:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            ci.run(run_body())
        delay.assert_not_called()
        assert PipelineRun.objects.get().gates_pending is True
        for callback in callbacks:
            callback()
    delay.assert_called_once_with([PipelineRun.objects.get().pk])


def test_the_task_evaluates_and_clears_the_flag(ci, release_of_run):
    from pipelines.tasks import evaluate_gates_for_runs

    ci.run(run_body())
    run = PipelineRun.objects.get()
    with mock.patch("pipelines.verdicts.gates_evaluate_for_run", return_value=2) as evaluate:
        assert evaluate_gates_for_runs.run([run.pk]) == 2
        assert evaluate_gates_for_runs.run([run.pk]) == 0  # flag cleared: nothing to do
    evaluate.assert_called_once_with(run_id=run.pk)
    assert PipelineRun.objects.get().gates_pending is False


def test_the_sweep_picks_up_runs_left_pending(ci, release_of_run):
    from datetime import timedelta

    from django.utils import timezone

    from pipelines.tasks import evaluate_pending_gates

    ci.run(run_body())
    PipelineRun.objects.update(updated_at=timezone.now() - timedelta(minutes=5))
    with mock.patch("pipelines.verdicts.gates_evaluate_for_run", return_value=1) as evaluate:
        evaluate_pending_gates.run()
    evaluate.assert_called_once()
    assert PipelineRun.objects.get().gates_pending is False


def test_an_old_run_left_pending_is_found_by_the_daily_sweep(ci, release_of_run):
    from datetime import timedelta

    from django.utils import timezone

    from pipelines.tasks import evaluate_pending_gates

    ci.run(run_body())
    long_ago = timezone.now() - timedelta(days=3)
    PipelineRun.objects.update(created_at=long_ago, updated_at=long_ago)
    with mock.patch("pipelines.verdicts.gates_evaluate_for_run", return_value=1) as evaluate:
        evaluate_pending_gates.run()  # the minute sweep: recent runs only
        evaluate.assert_not_called()
        evaluate_pending_gates.run(horizon_hours=0)  # the daily one: all runs
    evaluate.assert_called_once()
    assert PipelineRun.objects.get().gates_pending is False


@pytest.mark.postgres
def test_clearing_the_flag_is_a_hot_update(require_postgres):
    """No index holds gates_pending, and the runs table leaves room for the new row version."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename = %s",
            [PipelineRun._meta.db_table],
        )
        assert not [d for d in (row[0] for row in cursor.fetchall()) if "gates_pending" in d]
        cursor.execute(
            "SELECT reloptions FROM pg_class WHERE relname = %s", [PipelineRun._meta.db_table]
        )
        assert "fillfactor=90" in cursor.fetchone()[0]


def test_the_dispatcher_batches_runs_in_the_background(settings):
    import threading

    from pipelines.gate_dispatch import GateDispatcher

    settings.PIPELINES_GATE_BATCH_SECONDS = 0.05
    published = threading.Event()
    batches = []
    with mock.patch("pipelines.tasks.evaluate_gates_for_runs.delay") as delay:
        delay.side_effect = lambda ids: (batches.append(ids), published.set())
        dispatcher = GateDispatcher()
        dispatcher.add(3)
        dispatcher.add(1)
        assert published.wait(5)
    assert batches == [[1, 3]]


def test_a_broken_broker_does_not_fail_an_accepted_post(ci, django_capture_on_commit_callbacks):
    with (
        mock.patch("pipelines.tasks.evaluate_gates_for_runs.delay", side_effect=OSError),
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert ci.run(run_body()).status_code == 201
    assert PipelineRun.objects.count() == 1


def test_a_replay_does_not_re_evaluate_gates(ci, django_capture_on_commit_callbacks):
    ci.run(run_body())
    with django_capture_on_commit_callbacks() as callbacks:
        ci.run(run_body())
    assert callbacks == []


# --- what an answer acknowledges it did not store ---------------------------------------------


def ignored(response) -> dict[str, str]:
    assert response.status_code in (200, 201), response.json()
    return {i["field"]: i["reason"] for i in response.json()["ignored"]}


def test_unknown_fields_are_named_not_silently_dropped(ci):
    body = run_body(artifacts=[{"name": "img"}])  # misspelt: not the contract's artefacts
    body["artefacts"][0]["tag"] = "latest"
    named = ignored(ci.run(body))
    assert set(named) == {"artifacts", "artefacts[0].tag"}
    assert "Unknown field" in named["artifacts"]


def test_a_late_report_names_what_it_did_not_change(ci):
    ci.run(run_body())
    late = run_body(
        status="running",
        finished_at=None,
        started_at="2026-11-20T09:59:00Z",
        checks=[{"kind": "tests", "status": "running"}],
    )
    named = ignored(ci.run(late))
    assert set(named) == {"status", "started_at", "checks[tests]"}
    assert "Out-of-order" in named["status"] and "Times, once known" in named["started_at"]
    # The same late report again is answered alike.
    assert set(ignored(ci.run(late))) == set(named)


def test_a_finish_time_for_a_running_run_is_named(ci):
    response = ci.run(run_body(status="running"))
    assert "Kept only once the run is finished" in ignored(response)["finished_at"]
    assert PipelineRun.objects.get().finished_at is None


def test_a_complete_report_ignores_nothing(ci):
    assert ignored(ci.run(run_body())) == {}
    assert ignored(ci.run(run_body())) == {}
