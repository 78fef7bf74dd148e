"""GitHub enforcement: custom deployment protection rules answered with the deployment
check's decision, against a stub of GitHub's REST API (pytest-httpserver on 127.0.0.1:18111)
that records the exact requests GitHub documents."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
import time_machine
from django.core.management import call_command
from django.db.models import F
from django.test import Client
from django.utils import timezone
from pytest_httpserver import HTTPServer

from config.celery import app
from core.errors import InvalidInput
from core.models import AuditEvent
from governance.models import FreezeWindow, GatePolicy
from pipelines import scm_api, tasks, verdicts
from pipelines.models import (
    CommitStatus,
    DeploymentCheck,
    DeploymentGateRequest,
    Integration,
    PipelineRun,
)
from pipelines.services import integration_create
from pipelines.services.scm import LEASE, _decide, deployment_gate_answer
from releases import services as release_services
from tests.factories import PipelineRunFactory, ReleaseFactory, force_state, make_ready

from .conftest import CI, make_token, run_body

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).parent / "fixtures"
SECRET = "protection-rule-secret"
TOKEN = "ghs_16C7e42F292c6912E7710c838347Ae178B4a"
SHA = "3f1c0d9e8b7a6f5e4d3c2b1a09f8e7d6c5b4a392"
RUN_ID = "11223344556"
ANSWER_PATH = f"/repos/octo-org/payments-api/actions/runs/{RUN_ID}/deployment_protection_rule"
GITHUB_PORT = 18111


@pytest.fixture(scope="module")
def github_server():
    server = HTTPServer(host="127.0.0.1", port=GITHUB_PORT)
    server.start()
    yield server
    server.clear()
    server.stop()


@pytest.fixture
def github_api(github_server, monkeypatch):
    """GitHub's API: answers every protection-rule review with 204 (as GitHub does)."""
    github_server.clear()
    monkeypatch.setattr(scm_api, "_sleep", lambda seconds: None)
    yield github_server
    github_server.clear()


@pytest.fixture
def queued(monkeypatch):
    """The tasks queued by name (the broker is not needed to see what would run)."""
    sent: list[tuple[str, list]] = []
    monkeypatch.setattr(app, "send_task", lambda name, args: sent.append((name, args)))
    return sent


@pytest.fixture
def integration(service, github_server):
    service.repository_url = "https://github.com/octo-org/payments-api"
    service.save()
    return integration_create(
        actor=None,
        provider="github",
        name="octo-org app",
        service_slugs=["payments-api"],
        secret=SECRET,
        api_url=github_server.url_for("/").rstrip("/"),
        api_token=TOKEN,
        gate_timeout_minutes=60,
    )


@pytest.fixture
def approved_release(service, production):
    now = timezone.now()
    release = ReleaseFactory(
        services=[service],
        version="2.4.0",
        window_start=now - timedelta(hours=1),
        window_end=now + timedelta(hours=4),
    )
    # The run being deployed: CI reported it (this version) for the commit.
    PipelineRunFactory(service=service, external_id=RUN_ID, commit_sha=SHA, version="2.4.0")
    return force_state(release, "approved")


def payload(**overrides) -> dict:
    body = json.loads((FIXTURES / "github_deployment_protection_rule_requested.json").read_text())
    body.update(overrides)
    return body


def deliver(body: dict, *, delivery="dpr-1", secret=SECRET):
    raw = json.dumps(body).encode()
    signature = "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    return Client().post(
        "/api/v1/webhooks/github/",
        raw,
        content_type="application/json",
        HTTP_X_HUB_SIGNATURE_256=signature,
        HTTP_X_GITHUB_EVENT="deployment_protection_rule",
        HTTP_X_GITHUB_DELIVERY=delivery,
    )


def receive(django_capture_on_commit_callbacks, body=None, **kwargs):
    with django_capture_on_commit_callbacks(execute=True):
        response = deliver(body or payload(), **kwargs)
    assert response.status_code == 200, response.content
    return response.json()


def answers(server: HTTPServer) -> list:
    return [r for r, _ in server.log if r.path == ANSWER_PATH]


def assert_github_request(request, *, state: str) -> dict:
    """The request GitHub documents for reviewing a custom deployment protection rule."""
    assert request.method == "POST"
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["Accept"] == "application/vnd.github+json"
    assert request.headers["X-GitHub-Api-Version"] == "2022-11-28"
    assert request.headers["Content-Type"] == "application/json"
    body = json.loads(request.get_data())
    assert set(body) == {"environment_name", "state", "comment"}
    assert body["environment_name"] == "production" and body["state"] == state
    return body


def respond(server: HTTPServer, status: int = 204):
    server.expect_request(ANSWER_PATH, method="POST").respond_with_data("", status=status)


# --- round trips ------------------------------------------------------------------------------


def test_an_allowed_deployment_is_approved_with_a_link_to_the_release(
    github_api, integration, approved_release, queued, django_capture_on_commit_callbacks
):
    respond(github_api)
    body = receive(django_capture_on_commit_callbacks)
    request = DeploymentGateRequest.objects.get()
    assert body == {
        "detail": "Recorded: Releasegate answers through the API once it has decided.",
        "duplicate": False,
        "gate_request": request.pk,
    }
    assert queued == [("pipelines.answer_deployment_gate", [request.pk])]

    assert tasks.answer_deployment_gate(request.pk) == "answered"

    (sent,) = answers(github_api)
    answer = assert_github_request(sent, state="approved")
    link = "http://localhost:8000" + approved_release.get_absolute_url()
    assert answer["comment"] == f"Releasegate allows payments-api 2.4.0 to production. {link}"
    request.refresh_from_db()
    assert request.state == "answered" and request.answer == "approved"
    assert request.version == "2.4.0" and request.release == approved_release
    check = DeploymentCheck.objects.get()
    assert check.source == "github" and check.decision == "allow" and check.commit_sha == SHA
    actions = list(AuditEvent.objects.values_list("action", flat=True).order_by("id"))
    assert actions[-4:] == [
        "deployment_gate.request",
        "deployment_check.answer",
        "deployment_gate.decide",
        "deployment_gate.answer",
    ]
    # Answered: later runs (a redelivered task, the sweep) send nothing more.
    assert tasks.answer_deployment_gate(request.pk) == "skipped"
    assert tasks.scm_sweep() == 0
    assert len(answers(github_api)) == 1


def test_a_denied_deployment_is_rejected_with_the_blockers(
    github_api, integration, service, production, queued, django_capture_on_commit_callbacks
):
    release = ReleaseFactory(services=[service], version="2.4.0")
    force_state(release, "in_progress")
    PipelineRunFactory(service=service, external_id=RUN_ID, commit_sha=SHA, version="2.4.0")
    respond(github_api)
    receive(django_capture_on_commit_callbacks)
    request = DeploymentGateRequest.objects.get()

    assert deployment_gate_answer(request.pk) == "answered"

    (sent,) = answers(github_api)
    answer = assert_github_request(sent, state="rejected")
    assert answer["comment"].startswith("Releasegate denies payments-api 2.4.0 to production: ")
    assert "must be approved before it deploys to production" in answer["comment"]
    assert answer["comment"].endswith(release.get_absolute_url())
    assert DeploymentCheck.objects.get().decision == "deny"


def test_a_wait_is_answered_once_the_freeze_ends(
    github_api,
    integration,
    approved_release,
    production,
    queued,
    django_capture_on_commit_callbacks,
):
    now = timezone.now()
    end = (now + timedelta(minutes=20)).replace(microsecond=0)
    freeze = FreezeWindow.objects.create(name="Peak", start=now - timedelta(hours=1), end=end)
    freeze.environments.add(production)
    respond(github_api)
    receive(django_capture_on_commit_callbacks)
    request = DeploymentGateRequest.objects.get()

    assert deployment_gate_answer(request.pk) == "waiting"
    request.refresh_from_db()
    assert request.answer == "" and request.last_decision == "wait"
    assert now < request.next_attempt_at <= now + timedelta(seconds=31)  # asked again soon
    assert answers(github_api) == []
    assert tasks.scm_sweep() == 0  # not due yet

    with time_machine.travel(end + timedelta(seconds=5)):
        assert tasks.scm_sweep() == 1

    (sent,) = answers(github_api)
    assert_github_request(sent, state="approved")
    request.refresh_from_db()
    assert request.state == "answered" and request.evaluations == 2
    assert list(DeploymentCheck.objects.order_by("id").values_list("decision", flat=True)) == [
        "wait",
        "allow",
    ]


def test_a_wait_past_the_timeout_is_rejected_fail_closed(
    github_api,
    integration,
    approved_release,
    production,
    queued,
    django_capture_on_commit_callbacks,
):
    now = timezone.now()
    freeze = FreezeWindow.objects.create(
        name="Peak", start=now - timedelta(hours=1), end=now + timedelta(minutes=50)
    )
    freeze.environments.add(production)
    respond(github_api)
    receive(django_capture_on_commit_callbacks)
    request = DeploymentGateRequest.objects.get()
    assert deployment_gate_answer(request.pk) == "waiting"
    # The freeze is extended: the wait now lasts beyond the gate's 60 minutes.
    FreezeWindow.objects.filter(pk=freeze.pk).update(end=now + timedelta(hours=3))

    with time_machine.travel(now + timedelta(minutes=61)):
        assert tasks.scm_sweep() == 1

    (sent,) = answers(github_api)
    answer = assert_github_request(sent, state="rejected")
    assert "past the gate's timeout of 60 minute(s) (fail closed)" in answer["comment"]
    request.refresh_from_db()
    assert request.state == "answered" and request.answer == "rejected"


def test_a_wait_that_cannot_end_before_the_timeout_is_rejected_at_once(
    github_api,
    integration,
    approved_release,
    production,
    queued,
    django_capture_on_commit_callbacks,
):
    now = timezone.now()
    freeze = FreezeWindow.objects.create(
        name="Peak", start=now - timedelta(hours=1), end=now + timedelta(hours=2)
    )
    freeze.environments.add(production)
    respond(github_api)
    receive(django_capture_on_commit_callbacks)
    assert deployment_gate_answer(DeploymentGateRequest.objects.get().pk) == "answered"
    (sent,) = answers(github_api)
    assert "fail closed" in assert_github_request(sent, state="rejected")["comment"]


# --- duplicates, crashes, retries -------------------------------------------------------------


def test_a_duplicate_delivery_is_answered_once(
    github_api, integration, approved_release, queued, django_capture_on_commit_callbacks
):
    respond(github_api)
    first = receive(django_capture_on_commit_callbacks)
    again = receive(django_capture_on_commit_callbacks)  # GitHub redelivers the same id
    other = receive(django_capture_on_commit_callbacks, delivery="dpr-2")  # same run and env
    assert again["duplicate"] is True and other["duplicate"] is True
    assert other["gate_request"] == first["gate_request"]
    assert len(queued) == 1 and DeploymentGateRequest.objects.count() == 1

    request_id = first["gate_request"]
    assert deployment_gate_answer(request_id) == "answered"
    assert deployment_gate_answer(request_id) == "skipped"
    assert tasks.scm_sweep() == 0
    assert len(answers(github_api)) == 1


def test_a_worker_killed_after_its_claim_is_replaced_when_the_lease_ends(
    github_api, integration, approved_release, queued, django_capture_on_commit_callbacks
):
    respond(github_api)
    receive(django_capture_on_commit_callbacks)
    request = DeploymentGateRequest.objects.get()
    now = timezone.now()
    # A worker claims the row and is killed before it decides: only its lease remains.
    claimed = DeploymentGateRequest.objects.filter(
        pk=request.pk, next_attempt_at=request.next_attempt_at
    ).update(next_attempt_at=now + LEASE)
    assert claimed == 1
    assert deployment_gate_answer(request.pk) == "skipped"  # the redelivered task waits
    assert answers(github_api) == []

    with time_machine.travel(now + LEASE + timedelta(seconds=1)):
        assert tasks.scm_sweep() == 1
        assert tasks.scm_sweep() == 0
    assert len(answers(github_api)) == 1


def test_a_worker_killed_between_deciding_and_sending_sends_the_same_answer_once(
    github_api, integration, approved_release, queued, django_capture_on_commit_callbacks
):
    respond(github_api)
    receive(django_capture_on_commit_callbacks)
    request = DeploymentGateRequest.objects.get()
    now = timezone.now()
    decided = _decide(request.pk, now)  # committed, then the worker dies before the POST
    assert decided.answer == "approved" and decided.next_attempt_at == now + LEASE
    # Meanwhile the release is no longer approved: the answer already given stands.
    force_state(approved_release, "in_progress")

    with time_machine.travel(now + LEASE + timedelta(seconds=1)):
        assert tasks.scm_sweep() == 1
    (sent,) = answers(github_api)
    assert_github_request(sent, state="approved")
    assert DeploymentCheck.objects.count() == 1  # not decided twice


def test_a_failing_github_is_retried_with_backoff(
    github_api, integration, approved_release, queued, django_capture_on_commit_callbacks
):
    github_api.expect_ordered_request(ANSWER_PATH, method="POST").respond_with_data("", 502)
    github_api.expect_ordered_request(ANSWER_PATH, method="POST").respond_with_data("", 503)
    github_api.expect_ordered_request(ANSWER_PATH, method="POST").respond_with_data("", 502)
    receive(django_capture_on_commit_callbacks)
    request = DeploymentGateRequest.objects.get()
    now = timezone.now()

    assert deployment_gate_answer(request.pk) == "retrying"  # three attempts in the call
    request.refresh_from_db()
    assert request.state == "pending" and request.send_attempts == 1
    assert request.last_error.startswith("HTTP 502")
    assert request.next_attempt_at > now
    assert len(answers(github_api)) == 3

    respond(github_api)
    with time_machine.travel(now + timedelta(minutes=11)):
        assert tasks.scm_sweep() == 1
    request.refresh_from_db()
    assert request.state == "answered" and request.send_attempts == 2
    assert len(answers(github_api)) == 4


def test_a_refused_answer_is_recorded_as_failed_not_retried(
    github_api, integration, approved_release, queued, django_capture_on_commit_callbacks
):
    github_api.expect_request(ANSWER_PATH, method="POST").respond_with_json(
        {"message": "Resource not accessible by integration"}, status=403
    )
    receive(django_capture_on_commit_callbacks)
    request = DeploymentGateRequest.objects.get()
    assert deployment_gate_answer(request.pk) == "failed"
    request.refresh_from_db()
    assert request.state == "failed" and "Resource not accessible" in request.last_error
    assert TOKEN not in request.last_error
    assert len(answers(github_api)) == 1


# --- input ------------------------------------------------------------------------------------


def test_a_bad_signature_records_nothing(github_api, integration, approved_release):
    response = deliver(payload(), secret="not-the-secret")
    assert response.status_code == 401
    assert not DeploymentGateRequest.objects.exists()


def test_a_malformed_protection_rule_is_a_400(github_api, integration):
    response = deliver(payload(deployment_callback_url="https://api.github.com/elsewhere"))
    assert response.status_code == 400
    assert "deployment_callback_url" in json.dumps(response.json())
    assert not DeploymentGateRequest.objects.exists()


def test_an_unmapped_repository_is_rejected_not_left_waiting(
    github_api,
    integration,
    other_service,
    approved_release,
    queued,
    django_capture_on_commit_callbacks,
):
    integration.services.add(other_service)  # two services: the repository must map
    body = payload()
    body["repository"]["full_name"] = "octo-org/unknown-repo"
    github_api.expect_request(
        "/repos/octo-org/unknown-repo/actions/runs/11223344556/deployment_protection_rule",
        method="POST",
    ).respond_with_data("", 204)
    receive(django_capture_on_commit_callbacks, body)
    assert deployment_gate_answer(DeploymentGateRequest.objects.get().pk) == "answered"
    (sent,) = list(github_api.log)
    assert json.loads(sent[0].get_data())["state"] == "rejected"
    assert "octo-org/unknown-repo" in json.loads(sent[0].get_data())["comment"]


def test_other_actions_are_acknowledged(github_api, integration):
    response = deliver(payload(action="completed"))
    assert response.status_code == 200 and response.json()["detail"].startswith("Ignored")
    assert not DeploymentGateRequest.objects.exists()


def test_create_integration_takes_the_api_url_and_token_and_never_shows_the_token(service):
    out = StringIO()
    call_command(
        "create_integration",
        "--provider=github",
        "--name=ghes",
        "--service=payments-api",
        "--secret=hook-secret",
        "--api-url=https://github.example.com/api/v3",
        f"--api-token={TOKEN}",
        "--gate-timeout=90",
        stdout=out,
    )
    integration = Integration.objects.get(name="ghes")
    assert integration.api_base_url == "https://github.example.com/api/v3"
    assert integration.api_token == TOKEN and integration.gate_timeout_minutes == 90
    assert TOKEN not in out.getvalue() and "ghs_…" in out.getvalue()
    trail = json.dumps(list(AuditEvent.objects.values_list("after", "before", "reason")))
    assert TOKEN not in trail and "ghs_" in trail

    call_command("create_integration", "--provider=github", "--name=ghes", "--api-token=new-tok")
    integration.refresh_from_db()
    assert integration.api_token == "new-tok"
    assert integration.api_base_url == "https://github.example.com/api/v3"
    assert Integration.objects.get(name="ghes").api_token_hint == "new-"


def test_the_default_api_urls_are_the_clouds(service):
    gh = integration_create(
        actor=None, provider="github", name="gh", service_slugs=["payments-api"], secret="s"
    )
    gl = integration_create(
        actor=None, provider="gitlab", name="gl", service_slugs=["payments-api"], secret="s"
    )
    assert gh.api_base_url == "https://api.github.com"
    assert gl.api_base_url == "https://gitlab.com/api/v4"


# --- commit statuses --------------------------------------------------------------------------

STATUS_PATH = f"/repos/octo-org/payments-api/statuses/{SHA}"


@pytest.fixture
def gated_release(service, release_manager):
    GatePolicy.objects.create(
        name="CI",
        priority=1,
        requirements=[
            {"stage": "pre_approval", "kind": "ci_green"},
            {"stage": "pre_approval", "kind": "tests_passed"},
            {"stage": "pre_approval", "kind": "coverage_min", "threshold": 90},
        ],
    )
    release = make_ready(ReleaseFactory(services=[service], owner=release_manager, version="2.4.0"))
    return release_services.release_plan(release=release, actor=release_manager)


def statuses(server: HTTPServer) -> list[dict]:
    sent = [r for r, _ in server.log if r.path == STATUS_PATH]
    for request in sent:
        assert request.method == "POST"
        assert request.headers["Authorization"] == f"Bearer {TOKEN}"
        assert request.headers["Accept"] == "application/vnd.github+json"
        assert request.headers["X-GitHub-Api-Version"] == "2022-11-28"
    return [json.loads(r.get_data()) for r in sent]


def evaluate(run, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        verdicts.gates_evaluate_for_run(run_id=run.pk)


def test_gate_results_are_published_as_one_commit_status_per_gate(
    github_api, integration, gated_release, queued, django_capture_on_commit_callbacks
):
    github_api.expect_request(STATUS_PATH, method="POST").respond_with_json({"id": 1}, 201)
    assert CI(make_token("ci", [gated_release.services.get()])).run(run_body()).status_code == 201
    run = PipelineRun.objects.get(external_id="9001")
    queued.clear()

    evaluate(run, django_capture_on_commit_callbacks)
    # One per gate changed (the task is idempotent: the later ones find nothing to send).
    assert {(name, tuple(args)) for name, args in queued} == {
        ("pipelines.publish_commit_statuses", (gated_release.pk,))
    }
    assert tasks.publish_commit_statuses(gated_release.pk) == 3

    link = "http://localhost:8000" + gated_release.get_absolute_url()
    gates = {g.kind: g for g in gated_release.gate_checks.all()}
    by_context = {s["context"]: s for s in statuses(github_api)}
    assert by_context == {
        f"releasegate/{gates['ci_green'].key}": {
            "state": "success",
            "target_url": link,
            "description": f"{gates['ci_green'].label}: passed (CI run 9001 succeeded)",
            "context": f"releasegate/{gates['ci_green'].key}",
        },
        f"releasegate/{gates['tests_passed'].key}": {
            "state": "success",
            "target_url": link,
            "description": f"{gates['tests_passed'].label}: passed (812 passed, 0 failed)",
            "context": f"releasegate/{gates['tests_passed'].key}",
        },
        f"releasegate/{gates['coverage_min'].key}": {
            "state": "failure",
            "target_url": link,
            "description": f"{gates['coverage_min'].label}: failed (coverage 87.5% (needs ≥ 90%))",
            "context": f"releasegate/{gates['coverage_min'].key}",
        },
    }
    assert CommitStatus.objects.filter(published_hash=F("desired_hash")).count() == 3

    # The same results again publish nothing; the sweep finds nothing due.
    evaluate(run, django_capture_on_commit_callbacks)
    assert tasks.publish_commit_statuses(gated_release.pk) == 0
    assert tasks.scm_sweep() == 0
    assert len(statuses(github_api)) == 3

    # A new build of the same commit with enough coverage: the changed statuses are sent.
    better = run_body(external_id="9002")
    better["checks"][2]["percent"] = 95.0
    assert CI(make_token("ci-2", [gated_release.services.get()])).run(better).status_code == 201
    evaluate(PipelineRun.objects.get(external_id="9002"), django_capture_on_commit_callbacks)
    assert tasks.publish_commit_statuses(gated_release.pk) == 2  # ci_green names run 9002
    latest = {s["context"]: s["state"] for s in statuses(github_api)[3:]}
    assert latest == {
        f"releasegate/{gates['ci_green'].key}": "success",
        f"releasegate/{gates['coverage_min'].key}": "success",
    }


def test_a_status_github_refuses_for_now_is_retried_by_the_sweep(
    github_api, integration, gated_release, queued, django_capture_on_commit_callbacks
):
    github_api.expect_ordered_request(STATUS_PATH, method="POST").respond_with_data("", 500)
    github_api.expect_ordered_request(STATUS_PATH, method="POST").respond_with_data("", 500)
    github_api.expect_ordered_request(STATUS_PATH, method="POST").respond_with_data("", 500)
    github_api.expect_request(STATUS_PATH, method="POST").respond_with_json({"id": 1}, 201)
    body = run_body()
    body["checks"] = []
    CI(make_token("ci", [gated_release.services.get()])).run(body)
    evaluate(PipelineRun.objects.get(external_id="9001"), django_capture_on_commit_callbacks)
    now = timezone.now()
    # Three statuses (one per gate, two of them pending); the first send fails three times.
    assert tasks.publish_commit_statuses(gated_release.pk) == 2
    failed = CommitStatus.objects.exclude(published_hash=F("desired_hash")).get()
    assert failed.last_error == "HTTP 500 from 127.0.0.1" and failed.next_attempt_at > now
    with time_machine.travel(now + timedelta(minutes=11)):
        assert tasks.scm_sweep() == 1
    assert CommitStatus.objects.filter(published_hash=F("desired_hash")).count() == 3
    assert sorted(s["state"] for s in statuses(github_api)[-3:]) == [
        "pending",
        "pending",
        "success",
    ]


def test_no_status_without_an_api_token(
    github_api, service, gated_release, queued, django_capture_on_commit_callbacks
):
    integration_create(
        actor=None,
        provider="github",
        name="hooks only",
        service_slugs=["payments-api"],
        secret=SECRET,
    )
    CI(make_token("ci", [service])).run(run_body())
    queued.clear()
    evaluate(PipelineRun.objects.get(external_id="9001"), django_capture_on_commit_callbacks)
    assert queued == []  # nothing can publish: no task per gate change
    assert tasks.publish_commit_statuses(gated_release.pk) == 0
    assert not CommitStatus.objects.exists() and list(github_api.log) == []


# --- GitHub App authentication ----------------------------------------------------------------


@pytest.fixture(scope="module")
def app_key():
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return key, pem


def test_a_github_app_mints_an_installation_token_and_answers_with_it(
    github_api, service, approved_release, app_key, queued, django_capture_on_commit_callbacks
):
    import jwt

    key, pem = app_key
    scm_api.forget_installation_tokens()
    service.repository_url = "https://github.com/octo-org/payments-api"
    service.save()
    integration_create(
        actor=None,
        provider="github",
        name="octo-org app",
        service_slugs=["payments-api"],
        secret=SECRET,
        api_url=github_api.url_for("/").rstrip("/"),
        github_app=("123456", pem, ""),
    )
    expires = (timezone.now() + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    github_api.expect_request(
        "/app/installations/44556677/access_tokens", method="POST"
    ).respond_with_json({"token": "ghs_minted", "expires_at": expires}, status=201)
    respond(github_api)
    receive(django_capture_on_commit_callbacks)
    request = DeploymentGateRequest.objects.get()
    assert request.installation_id == "44556677"  # the delivery's installation.id

    assert deployment_gate_answer(request.pk) == "answered"

    (mint,) = [r for r, _ in github_api.log if r.path.endswith("/access_tokens")]
    assert mint.method == "POST"
    assert mint.headers["Accept"] == "application/vnd.github+json"
    assert mint.headers["X-GitHub-Api-Version"] == "2022-11-28"
    credential = mint.headers["Authorization"].removeprefix("Bearer ")
    claims = jwt.decode(credential, key.public_key(), algorithms=["RS256"])
    assert claims["iss"] == "123456" and claims["exp"] - claims["iat"] == 600
    (sent,) = answers(github_api)
    assert sent.headers["Authorization"] == "Bearer ghs_minted"
    assert json.loads(sent.get_data())["state"] == "approved"

    # Another held deployment within the hour: the installation token is reused.
    other = "/repos/octo-org/payments-api/actions/runs/999/deployment_protection_rule"
    github_api.expect_request(other, method="POST").respond_with_data("", 204)
    body = payload(deployment_callback_url=f"https://api.github.com{other}")
    receive(django_capture_on_commit_callbacks, body, delivery="dpr-9")
    assert deployment_gate_answer(DeploymentGateRequest.objects.get(external_id="999").pk) == (
        "answered"
    )
    assert len([r for r, _ in github_api.log if r.path.endswith("/access_tokens")]) == 1
    (second,) = [r for r, _ in github_api.log if r.path == other]
    assert second.headers["Authorization"] == "Bearer ghs_minted"
    trail = json.dumps(list(AuditEvent.objects.values_list("after", "before", "reason")))
    assert "PRIVATE KEY" not in trail and "ghs_minted" not in trail


def test_a_github_app_key_that_cannot_sign_is_refused(service):
    with pytest.raises(InvalidInput):
        integration_create(
            actor=None,
            provider="github",
            name="bad app",
            service_slugs=["payments-api"],
            secret=SECRET,
            github_app=("123456", "not a key", ""),
        )


def test_the_sweep_is_a_beat_entry_and_the_tasks_are_bounded():
    from django_celery_beat.models import PeriodicTask

    entry = PeriodicTask.objects.get(task="pipelines.scm_sweep")
    assert entry.enabled and entry.interval.every == 15 and entry.interval.period == "seconds"
    for name in (
        "pipelines.scm_sweep",
        "pipelines.answer_deployment_gate",
        "pipelines.publish_commit_statuses",
    ):
        task = app.tasks[name]
        assert task.soft_time_limit < task.time_limit
    answer = app.tasks["pipelines.answer_deployment_gate"]
    assert answer.acks_late and answer.reject_on_worker_lost
    # The lease outlives the task's hard limit: a live worker never loses its claim.
    assert LEASE.total_seconds() > answer.time_limit
