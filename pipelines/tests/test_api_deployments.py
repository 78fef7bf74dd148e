"""POST /api/v1/deployments/: CD reports drive the deployment and release state machines."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from core.models import AuditEvent
from pipelines.authentication import TokenPrincipal
from pipelines.models import ApiToken
from releases import readiness
from releases.models import Deployment, Release
from tests.factories import ReleaseFactory, force_state

from .conftest import CI, make_token

pytestmark = pytest.mark.django_db


@pytest.fixture
def approved_release(service):
    now = timezone.now()
    release = ReleaseFactory(
        services=[service],
        version="2.4.0",
        window_start=now - timedelta(hours=1),
        window_end=now + timedelta(hours=2),
    )
    return force_state(release, "approved")


def deployment_body(**overrides) -> dict:
    body = {
        "service": "payments-api",
        "environment": "production",
        "version": "2.4.0",
        "status": "in_progress",
        "provider": "argo-cd",
        "external_id": "deploy-77",
        "url": "https://cd.example/deploy/77",
        "started_at": "2026-11-20T11:00:00Z",
    }
    body.update(overrides)
    return body


def release_state(release) -> str:
    return Release.objects.get(pk=release.pk).state


def test_a_production_deployment_moves_the_approved_release_to_deploying(
    ci, production, approved_release
):
    response = ci.deployment(deployment_body())
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "in_progress" and body["release"] == approved_release.pk
    assert body["release_state"] == "deploying"
    assert release_state(approved_release) == "deploying"
    deployment = Deployment.objects.get()
    assert deployment.started_at.isoformat() == "2026-11-20T11:00:00+00:00"
    transition = AuditEvent.objects.get(action="release.start_deployment")
    assert transition.actor_label == "token:ci-payments"


def test_success_marks_the_release_deployed_and_a_replay_changes_nothing(
    ci, production, approved_release
):
    ci.deployment(deployment_body())
    done = deployment_body(status="succeeded", finished_at="2026-11-20T11:05:00Z")
    response = ci.deployment(done)
    assert response.status_code == 200
    assert response.json()["status"] == "succeeded" and response.json()["changed"] is True
    assert release_state(approved_release) == "deployed"
    events = AuditEvent.objects.count()
    replay = ci.deployment(done)
    assert replay.status_code == 200 and replay.json()["changed"] is False
    assert AuditEvent.objects.count() == events


def test_a_direct_success_goes_through_deploying_to_deployed(ci, production, approved_release):
    assert ci.deployment(deployment_body(status="succeeded")).status_code == 201
    assert release_state(approved_release) == "deployed"
    assert Deployment.objects.get().finished_at is not None


def test_a_late_in_progress_keeps_the_deployment_finished(ci, production, approved_release):
    ci.deployment(deployment_body(status="succeeded"))
    response = ci.deployment(deployment_body(status="in_progress"))
    assert response.status_code == 200
    assert Deployment.objects.get().state == "succeeded"


def test_failed_after_succeeded_is_a_409(ci, production, approved_release):
    ci.deployment(deployment_body(status="succeeded"))
    response = ci.deployment(deployment_body(status="failed"))
    assert response.status_code == 409
    assert Deployment.objects.get().state == "succeeded"


def test_a_rollback_rolls_the_release_back(ci, production, approved_release):
    ci.deployment(deployment_body(status="succeeded"))
    response = ci.deployment(deployment_body(status="rolled_back"))
    assert response.status_code == 200
    assert Deployment.objects.get().state == "rolled_back"
    assert release_state(approved_release) == "rolled_back"


def test_a_staging_deployment_does_not_move_the_release(ci, staging, approved_release):
    response = ci.deployment(deployment_body(environment="staging", status="succeeded"))
    assert response.status_code == 201
    assert response.json()["release"] == approved_release.pk
    assert release_state(approved_release) == "approved"


def test_a_deployment_without_a_release_is_recorded(ci, production, service):
    response = ci.deployment(deployment_body(version="9.9.9"))
    assert response.status_code == 201 and response.json()["release"] is None


def test_a_governance_refusal_is_a_409_but_the_deployment_is_recorded(
    ci, production, approved_release
):
    def freeze(release, transition):
        if transition == "start_deployment":
            return [readiness.Blocker("freeze", "Production is frozen for Black Friday.")]
        return []

    readiness.register(freeze)
    try:
        response = ci.deployment(deployment_body())
    finally:
        readiness.unregister(freeze)
    assert response.status_code == 409
    body = response.json()
    assert "frozen" in body["detail"] and body["blockers"][0]["code"] == "freeze"
    assert body["deployment"]["status"] == "in_progress"
    assert Deployment.objects.get().state == "in_progress"
    assert release_state(approved_release) == "approved"
    refused = AuditEvent.objects.get(action="deployment.release_refused")
    assert "frozen" in refused.reason


def test_the_same_external_id_for_another_version_is_a_409(ci, production, approved_release):
    ci.deployment(deployment_body())
    assert ci.deployment(deployment_body(version="2.5.0")).status_code == 409


def test_an_unknown_environment_is_a_400(ci, service):
    response = ci.deployment(deployment_body(environment="moon"))
    assert response.status_code == 400 and "environment" in response.json()["errors"]
    assert not Deployment.objects.exists()


def test_a_token_without_the_deployments_scope_is_a_403(service, production):
    runs_only = CI(make_token("ci-runs", [service], scopes=["runs:write"]))
    assert runs_only.deployment(deployment_body()).status_code == 403
    assert not Deployment.objects.exists()


def test_a_plain_token_still_cannot_transition_releases(ci, approved_release):
    principal = TokenPrincipal(ApiToken.objects.get(name="ci-payments"))
    assert not principal.has_perm("releases.transition_release", approved_release)


@pytest.mark.parametrize(
    "overrides", [{"status": "done"}, {"version": ""}, {"external_id": 5}, {"url": "ftp://x"}]
)
def test_bad_deployment_input_is_a_400(ci, production, overrides):
    assert ci.deployment(deployment_body(**overrides)).status_code == 400
    assert not Deployment.objects.exists()


def test_a_deployment_answer_names_what_it_did_not_store(ci, production):
    first = ci.deployment(deployment_body(status="succeeded", colour="blue"))
    assert first.status_code == 201
    assert [i["field"] for i in first.json()["ignored"]] == ["colour"]
    late = ci.deployment(deployment_body(url="https://cd.example/other"))
    assert late.status_code == 200
    assert {i["field"] for i in late.json()["ignored"]} == {"status", "url"}
    assert Deployment.objects.get().state == "succeeded"


# --- the rollout: strategy and canary stages ---------------------------------------------------


def test_the_strategy_and_canary_stages_are_recorded(ci, production, approved_release):
    response = ci.deployment(deployment_body(strategy="canary", canary_stages=[5, 25.5, 100]))
    assert response.status_code == 201, response.json()
    assert response.json()["strategy"] == "canary"
    assert response.json()["canary_stages"] == [5, 25.5, 100]
    deployment = Deployment.objects.get()
    assert deployment.strategy == "canary" and deployment.canary_stages == [5, 25.5, 100]
    read = ci.client.get(
        f"/api/v1/deployments/{deployment.pk}/", HTTP_AUTHORIZATION=f"Bearer {ci.token}"
    )
    assert read.json()["strategy"] == "canary" and read.json()["canary_stages"] == [5, 25.5, 100]


def test_without_a_strategy_it_is_all_at_once_and_a_later_report_fills_it(
    ci, production, approved_release
):
    ci.deployment(deployment_body())
    assert Deployment.objects.get().strategy == "all_at_once"
    response = ci.deployment(deployment_body(status="succeeded", strategy="blue_green"))
    assert response.status_code == 200 and response.json()["strategy"] == "blue_green"
    # Once recorded, a rollout is kept; the answer says so.
    response = ci.deployment(deployment_body(status="succeeded", strategy="rolling"))
    assert response.json()["strategy"] == "blue_green"
    assert "strategy" in [i["field"] for i in response.json()["ignored"]]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"strategy": "big_bang"}, "Must be one of"),
        ({"strategy": 3}, "Must be a string"),
        ({"strategy": "rolling", "canary_stages": [10, 100]}, "Only a canary"),
        ({"strategy": "canary", "canary_stages": "5,25"}, "Must be a list"),
        ({"strategy": "canary", "canary_stages": [25, 5]}, "must rise"),
        ({"strategy": "canary", "canary_stages": [0, 50]}, "above 0"),
        ({"strategy": "canary", "canary_stages": [50, 150]}, "at most 100"),
        ({"strategy": "canary", "canary_stages": ["5"]}, "a number"),
        ({"strategy": "canary", "canary_stages": [True]}, "a number"),
        ({"strategy": "canary", "canary_stages": list(range(1, 23))}, "At most 20"),
    ],
)
def test_a_bad_rollout_is_a_400_naming_the_field(ci, production, approved_release, extra, message):
    response = ci.deployment(deployment_body(**extra))
    assert response.status_code == 400
    field = "canary_stages" if "canary_stages" in extra else "strategy"
    assert message in " ".join(response.json()["errors"][field])
    assert not Deployment.objects.exists()
