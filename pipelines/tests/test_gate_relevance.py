"""Gate work only for runs that can decide a gate: the ingest write itself decides whether a run
concerns an open release (SQL on PostgreSQL, one query elsewhere), and a run that does not is
stored but never queued for the worker."""

from __future__ import annotations

from contextlib import contextmanager
from unittest import mock

import pytest

from governance.models import GateCheck
from pipelines.models import PipelineRun
from pipelines.verdicts import releases_for_run

from .conftest import open_release, run_body

pytestmark = pytest.mark.django_db


@pytest.fixture
def queued(django_capture_on_commit_callbacks):
    """Patches the task's publication and runs the after-commit callbacks as a commit would."""

    @contextmanager
    def capture():
        with (
            mock.patch("pipelines.tasks.evaluate_gates_for_runs.delay") as delay,
            django_capture_on_commit_callbacks(execute=True),
        ):
            yield delay

    return capture


def test_a_run_matching_no_open_release_queues_no_gate_work(ci, service, queued):
    open_release(service, version="9.9.9")  # another version: not this run's
    with queued() as delay:
        response = ci.run(run_body())
        assert response.status_code == 201
        # A later change of the same run (it finished) is no more relevant.
        ci.run(run_body(external_id="77", status="running"))
        ci.run(run_body(external_id="77", status="failed"))
    delay.assert_not_called()
    assert not PipelineRun.objects.filter(gates_pending=True).exists()
    assert PipelineRun.objects.count() == 2  # stored all the same


def test_a_run_of_an_open_release_is_queued(ci, release_of_run, queued):
    with queued() as delay:
        ci.run(run_body())
    run = PipelineRun.objects.get()
    assert run.gates_pending is True
    delay.assert_called_once_with([run.pk])


@pytest.mark.parametrize(
    ("state", "version", "commit_seen", "relevant"),
    [
        ("planned", "2.4.0", False, True),
        ("awaiting_approval", "2.4.0", False, True),
        ("draft", "2.4.0", False, False),  # drafts have no gates yet
        ("closed", "2.4.0", False, False),
        ("cancelled", "2.4.0", False, False),
        ("planned", "3.0.0", True, True),  # another version, but a commit its gates saw
        ("planned", "3.0.0", False, False),
        ("closed", "3.0.0", True, False),
    ],
)
def test_the_write_decides_as_the_worker_would(
    ci, service, other_service, queued, state, version, commit_seen, relevant
):
    release = open_release(service, version=version, state=state)
    open_release(other_service, version="2.4.0")  # same version, another service: irrelevant
    if commit_seen:
        GateCheck.objects.create(
            release=release,
            policy_name="standard",
            policy_version=1,
            key="tests",
            stage="pre_approval",
            kind="tests_passed",
            label="Tests passed",
            requirement={},
            commit_sha=run_body()["commit_sha"],
        )
    with queued() as delay:
        assert ci.run(run_body()).status_code == 201
    run = PipelineRun.objects.get()
    assert run.gates_pending is relevant
    assert bool(releases_for_run(run)) is relevant  # the worker's own choice of releases
    assert delay.called is relevant


def test_a_correction_that_makes_a_run_relevant_queues_it(ci, service, queued):
    open_release(service, version="2.5.0")
    with queued() as delay:
        ci.run(run_body(status="running", version=""))
        delay.assert_not_called()
        ci.run(run_body(status="succeeded", version="2.5.0"))
    run = PipelineRun.objects.get()
    assert run.version == "2.5.0" and run.gates_pending is True
    delay.assert_called_once_with([run.pk])
