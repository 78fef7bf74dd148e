"""One request's id in the web's log line and in the log lines of the Celery task it enqueued,
with a real worker (``celery -A config worker``, LOG_FORMAT=json) on the real Redis broker
(REDIS_URL) and the test's PostgreSQL database. Skipped without them unless
REQUIRE_SERVICES=1."""

from __future__ import annotations

import json

import pytest

from core.tests.test_logs import json_lines, request_lines  # noqa: F401 (a fixture)
from pipelines.tests.conftest import CI, make_token, open_release, run_body
from pipelines.tests.worker_support import (
    WorkerProcess,
    redis_url_or_skip,
    use_broker,
    wait_for,
)

pytestmark = [pytest.mark.services, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def broker():
    url = redis_url_or_skip()
    use_broker(url)
    from config.celery import app

    app.control.purge()
    yield url
    use_broker(url)


def _json_lines(text: str) -> list[dict]:
    lines = []
    for raw in text.splitlines():
        if raw.startswith("{"):
            try:
                lines.append(json.loads(raw))
            except ValueError:
                continue
    return lines


def test_the_request_id_reaches_the_task_log_lines(
    broker,
    service,
    settings,
    tmp_path,
    json_lines,  # noqa: F811
):
    settings.PIPELINES_GATE_BATCH_SECONDS = 0  # the request publishes the task itself
    open_release(service)  # gate work is queued only for a run of an open release
    log_path = tmp_path / "worker.log"
    worker = WorkerProcess(broker, log_path, LOG_FORMAT="json").start()
    try:
        response = CI(make_token("ci-payments", [service])).run(
            run_body(), HTTP_X_REQUEST_ID="ci-job-4711-attempt-1"
        )
        assert response.status_code == 201, response.content
        assert response["X-Request-ID"] == "ci-job-4711-attempt-1"
        (web,) = request_lines(json_lines())
        assert web["request_id"] == "ci-job-4711-attempt-1"
        assert web["user"] == "token:ci-payments"

        def task_lines():
            return [
                line
                for line in _json_lines(log_path.read_text(errors="replace"))
                if line.get("task_name") == "pipelines.evaluate_gates_for_runs"
            ]

        wait_for(
            lambda: any(line["message"] == "task finished" for line in task_lines()),
            timeout=60,
            what=f"the task's log lines; worker log:\n{worker.log()}",
        )
    finally:
        worker.stop()
    lines = task_lines()
    assert {line["message"] for line in lines} >= {"task started", "task finished"}
    for line in lines:
        assert line["request_id"] == "ci-job-4711-attempt-1", line
        assert line["task_id"] and line["logger"] in {"releasegate.task", "celery.app.trace"}
    assert len({line["task_id"] for line in lines}) == 1
    finished = next(line for line in lines if line["message"] == "task finished")
    assert finished["state"] == "SUCCESS"
