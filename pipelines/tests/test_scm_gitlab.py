"""GitLab enforcement: deployments blocked on a protected environment answered through the
deployment approvals API, and gate results as commit statuses, against a stub of GitLab's
REST API (pytest-httpserver on 127.0.0.1:18112) that records the exact requests GitLab
documents."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from django.db.models import F
from django.test import Client
from django.utils import timezone
from pytest_httpserver import HTTPServer

from config.celery import app
from governance.models import FreezeWindow, GatePolicy
from pipelines import scm_api, tasks, verdicts
from pipelines.models import CommitStatus, DeploymentCheck, DeploymentGateRequest, PipelineRun
from pipelines.services import integration_create
from pipelines.services.scm import deployment_gate_answer
from releases import services as release_services
from tests.factories import PipelineRunFactory, ReleaseFactory, force_state, make_ready

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).parent / "fixtures"
HOOK_TOKEN = "gitlab-hook-token"
API_TOKEN = "glpat-Xq3vZ8kP2mN7rT1wY5bC"
SHA = "3f1c0d9e8b7a6f5e4d3c2b1a09f8e7d6c5b4a392"
APPROVAL_PATH = "/api/v4/projects/4211/deployments/7712/approval"
# GitLab's :id is the project id or its URL-encoded path; werkzeug decodes %2F in the path it
# matches on, so the raw request line is asserted separately.
STATUS_PATH = f"/api/v4/projects/octo-org/payments-api/statuses/{SHA}"
RAW_STATUS_PATH = f"/api/v4/projects/octo-org%2Fpayments-api/statuses/{SHA}"
GITLAB_PORT = 18112


@pytest.fixture(scope="module")
def gitlab_server():
    server = HTTPServer(host="127.0.0.1", port=GITLAB_PORT)
    server.start()
    yield server
    server.clear()
    server.stop()


@pytest.fixture
def gitlab_api(gitlab_server, monkeypatch):
    gitlab_server.clear()
    monkeypatch.setattr(scm_api, "_sleep", lambda seconds: None)
    yield gitlab_server
    gitlab_server.clear()


@pytest.fixture
def queued(monkeypatch):
    sent: list[tuple[str, list]] = []
    monkeypatch.setattr(app, "send_task", lambda name, args: sent.append((name, args)))
    return sent


@pytest.fixture
def integration(service, gitlab_server):
    service.repository_url = "https://gitlab.example.com/octo-org/payments-api"
    service.save()
    return integration_create(
        actor=None,
        provider="gitlab",
        name="gitlab.example.com",
        service_slugs=["payments-api"],
        secret=HOOK_TOKEN,
        api_url=gitlab_server.url_for("/api/v4"),
        api_token=API_TOKEN,
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
    PipelineRunFactory(
        service=service, provider="gitlab", external_id="987654", commit_sha=SHA, version="2.4.0"
    )
    return force_state(release, "approved")


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def post_gitlab(body: dict, *, event: str, uuid: str, token: str = HOOK_TOKEN):
    return Client().post(
        "/api/v1/webhooks/gitlab/",
        json.dumps(body),
        content_type="application/json",
        HTTP_X_GITLAB_TOKEN=token,
        HTTP_X_GITLAB_EVENT=event,
        HTTP_X_GITLAB_EVENT_UUID=uuid,
    )


def blocked(django_capture_on_commit_callbacks, body=None, *, uuid="dep-1") -> dict:
    with django_capture_on_commit_callbacks(execute=True):
        response = post_gitlab(
            body or fixture("gitlab_deployment_blocked"), event="Deployment Hook", uuid=uuid
        )
    assert response.status_code == 200, response.content
    return response.json()


def approvals(server: HTTPServer) -> list[dict]:
    """The approval requests, each checked against GitLab's documented shape."""
    found = []
    for request, _ in server.log:
        if request.path != APPROVAL_PATH:
            continue
        assert request.method == "POST"
        assert request.headers["PRIVATE-TOKEN"] == API_TOKEN
        assert request.headers["Content-Type"] == "application/json"
        body = json.loads(request.get_data())
        assert set(body) == {"status", "comment"}
        found.append(body)
    return found


def respond(server: HTTPServer):
    server.expect_request(APPROVAL_PATH, method="POST").respond_with_json(
        {"status": "approved", "user": {"username": "releasegate"}}, status=201
    )


def test_an_allowed_blocked_deployment_is_approved(
    gitlab_api, integration, approved_release, queued, django_capture_on_commit_callbacks
):
    respond(gitlab_api)
    body = blocked(django_capture_on_commit_callbacks)
    request = DeploymentGateRequest.objects.get()
    assert body["gate_request"] == request.pk and body["duplicate"] is False
    assert (request.kind, request.project_id, request.external_id) == (
        "gitlab_approval",
        "4211",
        "7712",
    )
    assert request.sha == SHA and request.version == "2.4.0"
    assert queued == [("pipelines.answer_deployment_gate", [request.pk])]

    assert tasks.answer_deployment_gate(request.pk) == "answered"

    link = "http://localhost:8000" + approved_release.get_absolute_url()
    assert approvals(gitlab_api) == [
        {
            "status": "approved",
            "comment": f"Releasegate allows payments-api 2.4.0 to production. {link}",
        }
    ]
    check = DeploymentCheck.objects.get()
    assert check.source == "gitlab" and check.decision == "allow"
    assert check.external_id == "gitlab:7712"


def test_a_denied_blocked_deployment_is_rejected(
    gitlab_api, integration, service, production, queued, django_capture_on_commit_callbacks
):
    force_state(ReleaseFactory(services=[service], version="2.4.0"), "awaiting_approval")
    respond(gitlab_api)
    blocked(django_capture_on_commit_callbacks)
    assert deployment_gate_answer(DeploymentGateRequest.objects.get().pk) == "answered"
    (answer,) = approvals(gitlab_api)
    assert answer["status"] == "rejected"
    assert "must be approved before it deploys to production" in answer["comment"]


def test_a_wait_is_approved_when_the_freeze_ends_and_a_longer_one_times_out(
    gitlab_api,
    integration,
    approved_release,
    production,
    queued,
    django_capture_on_commit_callbacks,
):
    now = timezone.now()
    end = (now + timedelta(minutes=10)).replace(microsecond=0)
    freeze = FreezeWindow.objects.create(name="Peak", start=now - timedelta(hours=1), end=end)
    freeze.environments.add(production)
    respond(gitlab_api)
    blocked(django_capture_on_commit_callbacks)
    first = DeploymentGateRequest.objects.get()
    assert deployment_gate_answer(first.pk) == "waiting" and approvals(gitlab_api) == []
    with time_machine.travel(end + timedelta(seconds=5)):
        assert tasks.scm_sweep() == 1
    assert [a["status"] for a in approvals(gitlab_api)] == ["approved"]

    # Another deployment, held while a freeze is extended past the gate's timeout.
    body = fixture("gitlab_deployment_blocked")
    body["deployment_id"] = 7713
    gitlab_api.expect_request(
        "/api/v4/projects/4211/deployments/7713/approval", method="POST"
    ).respond_with_json({}, status=201)
    FreezeWindow.objects.filter(pk=freeze.pk).update(end=now + timedelta(minutes=40))
    blocked(django_capture_on_commit_callbacks, body, uuid="dep-2")
    second = DeploymentGateRequest.objects.get(external_id="7713")
    assert deployment_gate_answer(second.pk) == "waiting"
    FreezeWindow.objects.filter(pk=freeze.pk).update(end=now + timedelta(hours=5))
    with time_machine.travel(now + timedelta(minutes=61)):
        assert tasks.scm_sweep() == 1
    (sent,) = [r for r, _ in gitlab_api.log if r.path.endswith("/7713/approval")]
    answer = json.loads(sent.get_data())
    assert answer["status"] == "rejected" and "fail closed" in answer["comment"]


def test_a_duplicate_deployment_hook_is_answered_once(
    gitlab_api, integration, approved_release, queued, django_capture_on_commit_callbacks
):
    respond(gitlab_api)
    first = blocked(django_capture_on_commit_callbacks)
    assert blocked(django_capture_on_commit_callbacks)["duplicate"] is True
    assert blocked(django_capture_on_commit_callbacks, uuid="dep-other")["duplicate"] is True
    assert deployment_gate_answer(first["gate_request"]) == "answered"
    assert deployment_gate_answer(first["gate_request"]) == "skipped"
    assert tasks.scm_sweep() == 0
    assert len(approvals(gitlab_api)) == 1


def test_other_deployment_statuses_and_a_wrong_token_record_nothing(gitlab_api, integration):
    body = fixture("gitlab_deployment_blocked")
    body["status"] = "running"
    response = post_gitlab(body, event="Deployment Hook", uuid="d-1")
    assert response.status_code == 200 and response.json()["detail"].startswith("Ignored")
    response = post_gitlab(
        fixture("gitlab_deployment_blocked"), event="Deployment Hook", uuid="d-2", token="nope"
    )
    assert response.status_code == 401
    assert not DeploymentGateRequest.objects.exists()


# --- commit statuses --------------------------------------------------------------------------


def test_gate_results_are_published_as_gitlab_commit_statuses(
    gitlab_api, integration, service, release_manager, queued, django_capture_on_commit_callbacks
):
    GatePolicy.objects.create(
        name="CI",
        priority=1,
        requirements=[
            {"stage": "pre_approval", "kind": "ci_green"},
            {"stage": "pre_approval", "kind": "tests_passed"},
        ],
    )
    release = make_ready(ReleaseFactory(services=[service], owner=release_manager, version="2.4.0"))
    release = release_services.release_plan(release=release, actor=release_manager)
    gitlab_api.expect_request(STATUS_PATH, method="POST").respond_with_json({"id": 1}, 201)
    # GitLab reports the pipeline through its webhook (VERSION 2.4.0, commit SHA).
    response = post_gitlab(fixture("gitlab_pipeline_success"), event="Pipeline Hook", uuid="p-1")
    assert response.status_code == 200, response.content
    run = PipelineRun.objects.get(provider="gitlab")
    assert run.reported_by_integration == integration

    with django_capture_on_commit_callbacks(execute=True):
        verdicts.gates_evaluate_for_run(run_id=run.pk)
    assert tasks.publish_commit_statuses(release.pk) == 2

    link = "http://localhost:8000" + release.get_absolute_url()
    gates = {g.kind: g for g in release.gate_checks.all()}
    sent = [r for r, _ in gitlab_api.log if r.path == STATUS_PATH]
    for request in sent:
        assert request.method == "POST"
        assert request.headers["PRIVATE-TOKEN"] == API_TOKEN
        assert request.environ["REQUEST_URI"] == RAW_STATUS_PATH
    bodies = sorted((json.loads(r.get_data()) for r in sent), key=lambda b: b["name"])
    ci, tests = gates["ci_green"], gates["tests_passed"]
    assert bodies == sorted(
        [
            {
                "state": "success",
                "name": f"releasegate/{ci.key}",
                "target_url": link,
                "description": f"{ci.label}: passed (CI run 987654 succeeded)",
            },
            {
                "state": "pending",
                "name": f"releasegate/{tests.key}",
                "target_url": link,
                "description": f"{tests.label}: pending",
            },
        ],
        key=lambda b: b["name"],
    )
    assert CommitStatus.objects.filter(published_hash=F("desired_hash")).count() == 2
    assert tasks.publish_commit_statuses(release.pk) == 0  # idempotent
