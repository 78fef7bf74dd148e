"""Ordered promotion and soak time as readiness: the release transition, the CD report, the
release page and the board refuse production until the version has succeeded, verified and
soaked in the environments before it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from core.errors import RequirementsNotMet
from governance.models import GatePolicy, PolicySnapshot
from governance.readiness import release_blockers
from pipelines.promotion import promotion_blockers, promotion_blockers_bulk
from releases import readiness
from releases import services as release_services
from releases.models import Deployment
from tests.factories import (
    DeploymentFactory,
    EnvironmentFactory,
    ReleaseFactory,
    force_state,
    make_ready,
)

from .conftest import CI, make_token

pytestmark = pytest.mark.django_db


@pytest.fixture
def approved(service, release_manager):
    now = timezone.now()
    release = ReleaseFactory(
        services=[service],
        owner=release_manager,
        version="2.4.0",
        window_start=now - timedelta(hours=1),
        window_end=now + timedelta(hours=2),
    )
    return force_state(release, "approved")


def test_start_deployment_is_refused_before_staging_succeeds(
    approved, staging, production, release_manager, service
):
    with pytest.raises(RequirementsNotMet) as refused:
        release_services.release_start_deployment(release=approved, actor=release_manager)
    assert "has not yet succeeded in staging" in refused.value.message
    DeploymentFactory(
        service=service,
        environment=staging,
        version="2.4.0",
        finished_at=timezone.now() - timedelta(minutes=5),
    )
    release = release_services.release_start_deployment(release=approved, actor=release_manager)
    assert release.state == "deploying"


def test_the_page_and_the_board_name_the_environment_and_the_soak_end(
    approved, staging, production, service
):
    staging.soak_minutes = 45
    staging.save()
    finished = timezone.now() - timedelta(minutes=15)
    DeploymentFactory(service=service, environment=staging, version="2.4.0", finished_at=finished)
    (transition,) = release_blockers(approved)["transitions"]
    (blocker,) = transition["blockers"]
    assert blocker["code"] == "soak" and "staging" in blocker["message"]
    assert blocker["until"] == (finished + timedelta(minutes=45)).isoformat()
    assert transition["earliest_at"] == blocker["until"] and not transition["needs_action"]
    board = readiness.blockers_bulk([approved], {approved.pk: "start_deployment"})
    assert [b.code for b in board[approved.pk]] == ["soak"]


def test_a_production_report_before_staging_is_recorded_and_answered_409(
    approved, staging, production, service
):
    ci = CI(make_token("cd", [service], scopes=["deployments:write"]))
    response = ci.deployment(
        {
            "service": "payments-api",
            "environment": "production",
            "version": "2.4.0",
            "status": "in_progress",
            "provider": "argo-cd",
            "external_id": "prod-1",
        }
    )
    assert response.status_code == 409
    assert any(b["code"] == "promotion" for b in response.json()["blockers"])
    assert Deployment.objects.get().environment == production


def test_a_rolled_back_or_failed_staging_deployment_does_not_count(
    approved, staging, production, service
):
    DeploymentFactory(service=service, environment=staging, version="2.4.0", state="failed")
    DeploymentFactory(service=service, environment=staging, version="2.4.0", state="rolled_back")
    DeploymentFactory(service=service, environment=staging, version="2.3.0")
    assert [b.code for b in promotion_blockers(approved)] == ["promotion"]


def test_every_service_of_the_release_is_promoted(
    approved, staging, production, service, other_service
):
    approved.services.add(other_service)
    DeploymentFactory(service=service, environment=staging, version="2.4.0")
    (blocker,) = promotion_blockers(approved)
    assert blocker.message.startswith("identity-api 2.4.0 has not yet succeeded in staging")


def test_the_policy_path_is_validated_and_snapshotted_at_planning(
    service, release_manager, staging, production
):
    dev = EnvironmentFactory(name="dev", slug="dev", order=1)
    policy = GatePolicy(name="Path", requirements=[], promotion_path=["staging", "moon"])
    with pytest.raises(ValidationError, match="moon"):
        policy.full_clean()
    policy.promotion_path = ["staging", "staging"]
    with pytest.raises(ValidationError, match="twice"):
        policy.full_clean()
    policy.promotion_path = ["staging", "production"]
    policy.full_clean()
    policy.save()
    release = make_ready(ReleaseFactory(services=[service], owner=release_manager))
    release = release_services.release_plan(release=release, actor=release_manager)
    assert PolicySnapshot.objects.get(release=release).promotion_path == ["staging", "production"]
    # A later change of the path does not move the planned release; dev is not on its path.
    policy.promotion_path = ["dev", "staging", "production"]
    policy.save()
    assert policy.version == 2
    assert [b.message.split(" has")[0] for b in promotion_blockers(release)] == [
        "payments-api " + release.version
    ]
    assert "staging" in promotion_blockers(release)[0].message
    assert dev.slug not in promotion_blockers(release)[0].message


def test_many_releases_in_a_fixed_number_of_queries(
    service, staging, production, django_assert_max_num_queries
):
    releases = [
        force_state(ReleaseFactory(services=[service], version=f"3.{n}.0"), "approved")
        for n in range(8)
    ]
    for release in releases[:4]:
        DeploymentFactory(service=service, environment=staging, version=release.version)
    with django_assert_max_num_queries(5):
        found = promotion_blockers_bulk(releases)
    assert [bool(found[r.pk]) for r in releases] == [False] * 4 + [True] * 4
