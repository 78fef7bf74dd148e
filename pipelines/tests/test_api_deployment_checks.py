"""POST /api/v1/deployment-checks/ and GET /api/v1/deployment-checks/<id>/."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from core.models import AuditEvent
from pipelines.models import DeploymentCheck
from tests.factories import ReleaseFactory, force_state

from .conftest import CI, make_token

pytestmark = pytest.mark.django_db

URL = "/api/v1/deployment-checks/"


@pytest.fixture
def checker(service):
    """A CD job's token that may ask about payments-api."""
    return CI(make_token("cd-check", [service], scopes=["deployments:check"]))


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


def body(**overrides):
    data = {"service": "payments-api", "version": "2.4.0", "environment": "production"}
    data.update(overrides)
    return data


def test_it_answers_allow_and_records_the_check(checker, production, approved_release):
    response = checker.post(URL, body(commit_sha="3F1C0D9E", external_id="deploy-77"))
    assert response.status_code == 201, response.json()
    answer = response.json()
    assert answer["decision"] == "allow" and answer["blockers"] == []
    assert answer["release"]["id"] == approved_release.pk
    assert answer["release"]["url"].endswith(f"/releases/{approved_release.pk}/")
    assert answer["commit_sha"] == "3f1c0d9e" and answer["external_id"] == "deploy-77"
    check = DeploymentCheck.objects.get(pk=answer["id"])
    assert check.token.name == "cd-check" and check.source == "api"
    event = AuditEvent.objects.get(action="deployment_check.answer")
    assert event.actor_label == "token:cd-check"


def test_it_denies_an_unknown_version_with_the_reason(checker, production, approved_release):
    answer = checker.post(URL, body(version="0.0.1")).json()
    assert answer["decision"] == "deny" and answer["release"] is None
    assert answer["blockers"][0]["code"] == "no_release"


def test_an_unknown_service_is_denied_not_an_error(checker, production):
    response = checker.post(URL, body(service="nobody"))
    assert response.status_code == 201
    assert response.json()["decision"] == "deny"
    assert response.json()["blockers"][0]["code"] == "unknown_service"


def test_wait_carries_resume_at(checker, staging, production, service, approved_release):
    from tests.factories import DeploymentFactory

    staging.soak_minutes = 60
    staging.save()
    finished = timezone.now() - timedelta(minutes=10)
    DeploymentFactory(service=service, environment=staging, version="2.4.0", finished_at=finished)
    answer = checker.post(URL, body()).json()
    assert answer["decision"] == "wait"
    assert answer["blockers"][0]["code"] == "soak"
    assert answer["resume_at"] == (finished + timedelta(minutes=60)).isoformat()


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"version": "2.4.0", "environment": "production"}, "service"),
        ({"service": "payments-api", "environment": "production"}, "version"),
        ({"service": "payments-api", "version": "2.4.0"}, "environment"),
        (body(service="pay ments"), "service"),
        (body(commit_sha="not-a-sha"), "commit_sha"),
        (body(version="x" * 65), "version"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(checker, production, data, field):
    response = checker.post(URL, data)
    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert not DeploymentCheck.objects.exists()


def test_malformed_json_is_a_400(checker, production):
    response = checker.post(URL, b"{not json")
    assert response.status_code == 400
    response = checker.post(URL, b"[1, 2]")
    assert response.status_code == 400


def test_a_token_without_the_scope_or_the_service_is_refused(
    production, service, other_service, approved_release
):
    writer = CI(make_token("cd-writer", [service], scopes=["deployments:write"]))
    response = writer.post(URL, body())
    assert response.status_code == 403
    assert "deployments:check" in response.json()["detail"]
    elsewhere = CI(make_token("cd-other", [other_service], scopes=["deployments:check"]))
    response = elsewhere.post(URL, body())
    assert response.status_code == 403
    assert not DeploymentCheck.objects.exists()


def test_no_token_is_a_401(production):
    response = CI(None).post(URL, body())
    assert response.status_code == 401


def test_a_check_reads_back_for_its_token_and_role_holders(
    checker, production, approved_release, release_manager, other_service
):
    answer = checker.post(URL, body()).json()
    response = checker.client.get(
        f"{URL}{answer['id']}/", HTTP_AUTHORIZATION=f"Bearer {checker.token}"
    )
    assert response.status_code == 200 and response.json() == answer
    client = APIClient()
    client.force_authenticate(release_manager)
    assert client.get(f"{URL}{answer['id']}/").json()["decision"] == "allow"
    stranger = make_token("cd-other", [other_service], scopes=["deployments:check"])
    response = APIClient().get(f"{URL}{answer['id']}/", HTTP_AUTHORIZATION=f"Bearer {stranger}")
    assert response.status_code == 404


def test_the_admin_lists_checks_read_only(client, checker, production, approved_release):
    from tests.factories import UserFactory

    checker.post(URL, body())
    admin = UserFactory(username="ada", is_superuser=True, is_staff=True)
    client.force_login(admin)
    page = client.get("/admin/pipelines/deploymentcheck/")
    assert page.status_code == 200 and "payments-api" in page.content.decode()
    check = DeploymentCheck.objects.get()
    assert client.get(f"/admin/pipelines/deploymentcheck/{check.pk}/change/").status_code == 200
    assert client.get("/admin/pipelines/deploymentcheck/add/").status_code == 403
