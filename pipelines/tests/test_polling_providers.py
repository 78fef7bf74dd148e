"""Pollers against pytest-httpserver stubs answering the providers' documented shapes:
runs land through the one upsert service (no duplicates with webhooks or a second poll),
and every kind of failure is recorded as health, never raised."""

from __future__ import annotations

import time
from datetime import timedelta

import httpx
import pytest
from django.utils import timezone
from werkzeug import Response

from pipelines.adapters import parse_workflow_run
from pipelines.models import IntegrationPollState, PipelineRun
from pipelines.polling import http as poll_http
from pipelines.polling.sweep import claim_due, poll_due, poll_states
from pipelines.services import pipeline_run_upsert

from .worker_support import (
    github_run,
    github_runs_page,
    gitlab_detail,
    gitlab_list_item,
    jenkins_build,
    jenkins_job,
    polled_integration,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_backoff_sleep(monkeypatch):
    """Retries in these tests wait for nothing (the waits asked for are asserted instead)."""
    slept: list[float] = []
    monkeypatch.setattr(poll_http, "_sleep", slept.append)
    return slept


def _state(pk: int) -> IntegrationPollState:
    return IntegrationPollState.objects.get(pk=pk)


def test_github_runs_are_upserted_and_waiting_means_approval_pending(httpserver, service):
    state = polled_integration(service, "github", httpserver.url_for(""), "octo-org/payments-api")
    done = github_run()
    waiting = github_run(id=999, status="waiting", conclusion=None, updated_at=None)
    httpserver.expect_request(
        "/repos/octo-org/payments-api/actions/runs", method="GET"
    ).respond_with_json(github_runs_page(done, waiting))

    poll_due()

    runs = {r.external_id: r for r in PipelineRun.objects.filter(service=service)}
    assert set(runs) == {"11223344556", "999"}
    assert runs["11223344556"].status == "succeeded"
    assert runs["999"].waiting_approval is True and runs["999"].status == "queued"
    # The stub server is shared by the session: look at this poll's request only.
    request = next(r for r, _ in httpserver.log if r.path.endswith("/actions/runs"))
    assert request.args.get("created", "").startswith(">="), request.url
    state = _state(state.pk)
    assert state.consecutive_failures == 0 and state.last_success_at is not None
    assert state.next_poll_at > timezone.now()
    assert state.cursor  # the next poll asks from the oldest unfinished run on


def test_poll_and_webhook_together_never_duplicate(httpserver, service):
    """The webhook delivers the run, then the poller sees it again (and again)."""
    state = polled_integration(service, "github", httpserver.url_for(""), "octo-org/payments-api")
    run = github_run()
    pipeline_run_upsert(
        actor=None, service=service, event=parse_workflow_run({"workflow_run": run})
    )
    httpserver.expect_request("/repos/octo-org/payments-api/actions/runs").respond_with_json(
        github_runs_page(run)
    )
    poll_due()
    IntegrationPollState.objects.filter(pk=state.pk).update(next_poll_at=timezone.now())
    poll_due()
    assert PipelineRun.objects.filter(service=service).count() == 1
    assert len(httpserver.log) == 2


def test_gitlab_list_then_detail_for_start_finish_and_duration(httpserver, service):
    polled_integration(service, "gitlab", httpserver.url_for(""), "acme/shop", token="glpat-x")
    base = "/api/v4/projects/acme/shop/pipelines"  # sent as acme%2Fshop; the stub decodes
    httpserver.expect_request(base).respond_with_json(
        [gitlab_list_item(1501), gitlab_list_item(1502, "running")]
    )
    httpserver.expect_request(f"{base}/1501").respond_with_json(gitlab_detail(1501))
    httpserver.expect_request(f"{base}/1502").respond_with_json(gitlab_detail(1502, "running"))

    poll_due()

    runs = {r.external_id: r for r in PipelineRun.objects.filter(provider="gitlab")}
    assert runs["1501"].status == "succeeded"
    assert runs["1501"].started_at.isoformat().startswith("2026-11-20T10:00:30")
    assert runs["1501"].finished_at.isoformat().startswith("2026-11-20T10:06:30")
    assert runs["1502"].status == "running"
    first = httpserver.log[0][0]
    assert "updated_after" in first.args and first.headers["PRIVATE-TOKEN"] == "glpat-x"


def test_jenkins_tree_query_and_epoch_millis(httpserver, service, monkeypatch):
    monkeypatch.setenv("JENKINS_TEST_TOKEN", "jenkins-secret")
    polled_integration(
        service,
        "jenkins",
        httpserver.url_for(""),
        "payments/deploy",
        username="ci",
        token_env="JENKINS_TEST_TOKEN",
    )
    httpserver.expect_request("/job/payments/job/deploy/api/json").respond_with_json(
        jenkins_job(jenkins_build(42, building=True), jenkins_build(41, "UNSTABLE"))
    )
    poll_due()
    runs = {r.external_id: r for r in PipelineRun.objects.filter(provider="jenkins")}
    assert runs["payments/deploy#42"].status == "running"
    assert runs["payments/deploy#41"].status == "failed"  # UNSTABLE: tests failed
    assert runs["payments/deploy#41"].version == "2.4.0"
    started, finished = (
        runs["payments/deploy#41"].started_at,
        runs["payments/deploy#41"].finished_at,
    )
    assert finished - started == timedelta(minutes=7)
    request = httpserver.log[0][0]
    assert request.args["tree"].startswith("builds[number,result,building,timestamp")
    assert request.authorization.username == "ci"  # basic auth from the environment
    assert request.authorization.password == "jenkins-secret"


def test_500_three_times_is_one_failure_after_three_attempts(httpserver, service):
    state = polled_integration(service, "github", httpserver.url_for(""), "o/r")
    httpserver.expect_request("/repos/o/r/actions/runs").respond_with_data("oops", status=500)
    outcomes = poll_due()
    assert outcomes[0].stats.attempts == 3
    assert len(httpserver.log) == 3
    state = _state(state.pk)
    assert state.consecutive_failures == 1
    assert "HTTP 500" in state.last_error
    assert state.next_poll_at > timezone.now()


def test_429_with_retry_after_is_honoured_then_succeeds(httpserver, service, _no_backoff_sleep):
    polled_integration(service, "github", httpserver.url_for(""), "o/r")
    httpserver.expect_ordered_request("/repos/o/r/actions/runs").respond_with_data(
        "slow down", status=429, headers={"Retry-After": "7"}
    )
    httpserver.expect_ordered_request("/repos/o/r/actions/runs").respond_with_json(
        github_runs_page(github_run())
    )
    outcomes = poll_due()
    assert outcomes[0].error is None
    assert _no_backoff_sleep == [7.0]
    assert PipelineRun.objects.count() == 1


def test_long_retry_after_is_carried_to_the_next_poll(httpserver, service, _no_backoff_sleep):
    state = polled_integration(service, "github", httpserver.url_for(""), "o/r")
    httpserver.expect_request("/repos/o/r/actions/runs").respond_with_data(
        "", status=429, headers={"Retry-After": "600"}
    )
    poll_due()
    state = _state(state.pk)
    assert len(httpserver.log) == 1 and _no_backoff_sleep == []
    assert state.next_poll_at >= timezone.now() + timedelta(seconds=590)
    assert "429" in state.last_error


def test_timeout_is_an_error_not_a_hang(httpserver, service):
    state = polled_integration(service, "github", httpserver.url_for(""), "o/r")

    served = []

    def slow(request):
        time.sleep(1.0)
        served.append(1)
        return Response("{}", content_type="application/json")

    httpserver.expect_request("/repos/o/r/actions/runs").respond_with_handler(slow)
    started = time.monotonic()
    with httpx.Client(timeout=httpx.Timeout(0.2)) as client:
        outcomes = poll_states(claim_due(), client=client)
    assert time.monotonic() - started < 6
    assert "Timeout" in _state(state.pk).last_error
    # Let the stub answer every attempt before the next test uses the shared server.
    deadline = time.monotonic() + 10
    while len(served) < outcomes[0].stats.attempts and time.monotonic() < deadline:
        time.sleep(0.1)


def test_garbage_body_is_recorded_as_malformed_json(httpserver, service):
    state = polled_integration(service, "gitlab", httpserver.url_for(""), "acme/shop")
    httpserver.expect_request("/api/v4/projects/acme/shop/pipelines").respond_with_data(
        "<html>502 Bad Gateway</html>", content_type="text/html"
    )
    poll_due()
    state = _state(state.pk)
    assert state.consecutive_failures == 1
    assert "Malformed JSON" in state.last_error


def test_20_mb_body_is_refused_without_reading_it_all(httpserver, service):
    state = polled_integration(service, "jenkins", httpserver.url_for(""), "big")
    sent = {"bytes": 0}

    def huge(request):
        def chunks():  # chunked, no Content-Length: the reader must stop by itself
            yield b'{"builds": ['
            for _ in range(20 * 1024):
                sent["bytes"] += 1024
                yield b'{"number": 1, "x": "' + b"a" * 1000 + b'"},'
            yield b"]}"

        return Response(chunks(), content_type="application/json")

    httpserver.expect_request("/job/big/api/json").respond_with_handler(huge)
    poll_due()
    state = _state(state.pk)
    assert "too large" in state.last_error
    assert state.consecutive_failures == 1


def test_declared_20_mb_body_is_refused_from_the_header(httpserver, service):
    state = polled_integration(service, "github", httpserver.url_for(""), "o/r")
    httpserver.expect_request("/repos/o/r/actions/runs").respond_with_data(
        b"x" * (20 * 1024 * 1024), content_type="application/json"
    )
    poll_due()
    assert "20971520 bytes declared" in _state(state.pk).last_error


def test_one_malformed_run_does_not_lose_the_others(httpserver, service):
    state = polled_integration(service, "github", httpserver.url_for(""), "o/r")
    bad = github_run(id=5, status="exploded")
    httpserver.expect_request("/repos/o/r/actions/runs").respond_with_json(
        github_runs_page(bad, github_run())
    )
    poll_due()
    state = _state(state.pk)
    assert PipelineRun.objects.count() == 1
    assert state.consecutive_failures == 0 and "run 5" in state.last_error


def test_failures_back_off_and_success_resets(httpserver, service):
    state = polled_integration(
        service, "github", httpserver.url_for(""), "o/r", interval_seconds=60
    )
    httpserver.expect_ordered_request("/repos/o/r/actions/runs").respond_with_data("", status=503)
    httpserver.expect_ordered_request("/repos/o/r/actions/runs").respond_with_data("", status=503)
    httpserver.expect_ordered_request("/repos/o/r/actions/runs").respond_with_data("", status=503)
    httpserver.expect_ordered_request("/repos/o/r/actions/runs").respond_with_json(
        github_runs_page()
    )
    poll_due()
    assert _state(state.pk).consecutive_failures == 1
    IntegrationPollState.objects.filter(pk=state.pk).update(next_poll_at=timezone.now())
    poll_due()
    state = _state(state.pk)
    assert state.consecutive_failures == 0 and state.last_success_at is not None
    assert "503" in state.last_error  # the last error stays visible with its time


def test_claim_is_won_once(service):
    polled_integration(service, "github", "http://127.0.0.1:9", "o/r")
    assert len(claim_due()) == 1
    assert claim_due() == []


def test_disabled_integrations_are_not_polled(httpserver, service):
    polled_integration(service, "github", httpserver.url_for(""), "o/r", enabled=False)
    assert poll_due() == []
    assert httpserver.log == []


def test_retry_after_http_date():
    now = time.time()
    header = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(now + 30))
    assert 28 <= poll_http.parse_retry_after(header, now=now) <= 31
    assert poll_http.parse_retry_after("soon") is None
