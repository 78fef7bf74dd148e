"""Log lines: the request id (accepted or generated, echoed), the acting user or token, JSON
format, no secrets, and the id's way into the Celery tasks a request publishes. The real
worker's side is tests/test_logs_celery.py."""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client

from core import logs
from pipelines.tests.conftest import CI, make_token, open_release, run_body

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def json_lines():
    """Every log record while the test runs, formatted by the JSON formatter the LOGGING
    setting uses with LOG_FORMAT=json (the same filter and fields)."""
    config = logs.logging_config("json", "INFO")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(logs.ContextFilter())
    spec = config["formatters"]["json"]
    handler.setFormatter(logs.JsonFormatter(spec["fmt"], rename_fields=spec["rename_fields"]))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    # With the test settings' text logs the request line is a debug line: let it through.
    requests = logging.getLogger("releasegate.request")
    requests.setLevel(logging.DEBUG)

    def read() -> list[dict]:
        return [json.loads(line) for line in stream.getvalue().splitlines()]

    yield read
    root.removeHandler(handler)
    root.setLevel(level)
    requests.setLevel(logging.NOTSET)


def request_lines(lines: list[dict]) -> list[dict]:
    return [line for line in lines if line["logger"] == "releasegate.request"]


def test_a_sane_request_id_is_kept_and_echoed(json_lines):
    response = Client().get("/healthz/", HTTP_X_REQUEST_ID="trace-0123456789abcdef")
    assert response["X-Request-ID"] == "trace-0123456789abcdef"
    (line,) = request_lines(json_lines())
    assert line["request_id"] == "trace-0123456789abcdef"
    assert (line["method"], line["path"], line["status"]) == ("GET", "/healthz/", 200)
    # A debug line with text logs (the test settings), INFO with JSON (test_metrics_gunicorn).
    assert line["level"] == "DEBUG" and "time" in line and line["duration_ms"] >= 0


@pytest.mark.parametrize(
    "offered",
    ["", "short", "x" * 129, "has space 0123456789", "new\nline-0123456789", "<script>alert(1)"],
)
def test_an_odd_request_id_is_replaced_by_a_new_one(offered, json_lines):
    response = Client().get("/healthz/", HTTP_X_REQUEST_ID=offered)
    generated = response["X-Request-ID"]
    assert generated != offered and len(generated) == 32 and int(generated, 16) >= 0
    assert request_lines(json_lines())[0]["request_id"] == generated


def test_each_request_gets_its_own_id():
    client = Client()
    ids = {client.get("/healthz/")["X-Request-ID"] for _ in range(3)}
    assert len(ids) == 3


def test_a_token_call_logs_the_token_name_and_never_the_token(service, json_lines):
    raw = make_token("ci-payments", [service])
    response = CI(raw).run(run_body(), HTTP_COOKIE="sessionid=cookie-secret-value")
    assert response.status_code == 201
    (line,) = request_lines(json_lines())
    assert line["user"] == "token:ci-payments"
    assert line["path"] == "/api/v1/pipeline-runs/"
    text = json.dumps(json_lines())
    assert raw not in text and "cookie-secret-value" not in text


def test_a_signed_in_person_is_named_and_a_password_is_never_logged(release_manager, json_lines):
    client = Client()
    client.force_login(release_manager)
    assert client.get("/").status_code == 200
    assert request_lines(json_lines())[-1]["user"] == "rita"
    client.logout()
    client.post("/accounts/login/", {"username": "rita", "password": "hunter2-very-secret"})
    assert "hunter2-very-secret" not in json.dumps(json_lines())


def test_an_anonymous_probe_costs_no_query_for_its_user(django_assert_num_queries, json_lines):
    with django_assert_num_queries(0):
        Client().get("/healthz/")
    assert request_lines(json_lines())[0]["user"] == ""


def test_a_token_in_the_url_is_redacted(json_lines):
    token = "rgcal_feed-token-value-0123456789"
    Client().get(f"/dashboards/calendar/feed/{token}.ics")  # unknown: 404, logged all the same
    (line,) = request_lines(json_lines())
    assert token not in json.dumps(line)
    assert line["path"] == "/dashboards/calendar/feed/[redacted].ics"


def test_extra_fields_named_like_secrets_are_redacted(json_lines):
    logging.getLogger("tests").warning(
        "calling out", extra={"password": "p4ss", "api_key": "k3y", "attempt": 2}
    )
    (line,) = json_lines()
    assert line["password"] == line["api_key"] == logs.REDACTED and line["attempt"] == 2


@pytest.mark.django_db(transaction=True)  # on_commit runs when the request's write commits
def test_a_published_task_carries_the_request_id_and_logs_it(settings, service, json_lines):
    """In the web process: the publish puts the id in the message headers. The worker side
    (task_prerun) is exercised with an eager task here and for real in
    tests/test_logs_celery.py."""
    from celery import shared_task
    from celery.signals import before_task_publish

    published: list[dict] = []

    def capture(headers=None, **_):
        published.append(dict(headers))

    before_task_publish.connect(capture, weak=False)
    settings.PIPELINES_GATE_BATCH_SECONDS = 0  # publish on commit, in the request
    open_release(service)  # a run queues gate work only for an open release of its version
    try:
        response = CI(make_token("ci", [service])).run(
            run_body(), HTTP_X_REQUEST_ID="req-from-ci-0001"
        )
    finally:
        before_task_publish.disconnect(capture)
    assert response.status_code == 201
    assert published and published[-1]["request_id"] == "req-from-ci-0001"

    @shared_task(name="tests.logs_task")
    def task():
        logging.getLogger("tests.task").info("inside the task")

    task.apply(headers={"request_id": "req-from-ci-0001"})
    (inside,) = [line for line in json_lines() if line["message"] == "inside the task"]
    assert inside["request_id"] == "req-from-ci-0001"
    assert inside["task_name"] == "tests.logs_task" and inside["task_id"]
    finished = [line for line in json_lines() if line["message"] == "task finished"]
    assert finished[-1]["task_id"] == inside["task_id"] and finished[-1]["state"] == "SUCCESS"


def test_text_format_names_the_request_for_people():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello", None, None)
    record.request_id, record.task_name, record.user = "abc123", "", "rita"
    formatter = logs.TextFormatter(logs.TEXT_FORMAT)
    assert formatter.format(record).endswith("INFO x [abc123 rita] hello")


def _manage_check(**env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_an_unknown_log_format_stops_the_process():
    result = _manage_check(LOG_FORMAT="xml")
    assert result.returncode != 0 and "LOG_FORMAT must be json or text" in result.stderr


def test_production_logs_json_by_default():
    code = "from django.conf import settings; print(settings.LOG_FORMAT)"
    env = {k: v for k, v in os.environ.items() if k not in ("LOG_FORMAT", "DJANGO_SETTINGS_MODULE")}
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env={
            **env,
            "DJANGO_SETTINGS_MODULE": "config.settings.production",
            "DJANGO_SECRET_KEY": "k" * 50,
            "ALLOWED_HOSTS": "releasegate.example.com",
            "AUDIT_CHAIN_KEYS": "k1:" + base64.b64encode(b"x" * 32).decode(),
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.stdout.strip().splitlines()[-1] == "json", result.stderr
