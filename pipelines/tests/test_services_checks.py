"""evaluate_deployment_check: the one answer at the deploy boundary."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from core.errors import PermissionDenied
from core.models import AuditEvent
from governance.models import FreezeWindow
from pipelines.authentication import TokenPrincipal
from pipelines.models import ApiToken, DeploymentCheck, VerificationRun, VerificationSpec
from pipelines.services.checks import evaluate_deployment_check
from releases.models import Deployment
from tests.factories import DeploymentFactory, ReleaseFactory, force_state

from .conftest import make_token

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


def check(**kwargs):
    args = {"service": "payments-api", "version": "2.4.0", "environment": "production"}
    args.update(kwargs)
    return evaluate_deployment_check(**args)


def succeed_in(service, environment, *, minutes_ago=60, version="2.4.0"):
    finished = timezone.now() - timedelta(minutes=minutes_ago)
    return DeploymentFactory(
        service=service,
        environment=environment,
        version=version,
        state="succeeded",
        started_at=finished - timedelta(minutes=5),
        finished_at=finished,
    )


def test_an_approved_release_with_nothing_blocking_is_allowed(production, approved_release):
    result = check()
    assert result.decision == "allow" and result.blockers == []
    assert result.release == approved_release and result.resume_at is None
    stored = DeploymentCheck.objects.get()
    assert stored == result.check and stored.decision == "allow"
    assert stored.release == approved_release and stored.source == "api"
    event = AuditEvent.objects.get(action="deployment_check.answer")
    assert event.release_id == approved_release.pk and event.to_state == "allow"


def test_an_unknown_service_or_environment_is_denied_with_a_reason(production, service):
    result = check(service="no-such-service")
    assert result.decision == "deny"
    assert [b.code for b in result.blockers] == ["unknown_service"]
    assert "no-such-service" in result.blockers[0].message
    result = check(environment="moon")
    assert [b.code for b in result.blockers] == ["unknown_environment"]
    assert DeploymentCheck.objects.count() == 2


def test_a_version_no_release_carries_is_denied(production, approved_release):
    result = check(version="9.9.9")
    assert result.decision == "deny" and result.release is None
    assert [b.code for b in result.blockers] == ["no_release"]


def test_a_release_not_yet_approved_is_denied_for_production(production, service):
    release = ReleaseFactory(services=[service], version="2.4.0")
    force_state(release, "in_progress")
    result = check()
    assert result.decision == "deny"
    assert result.blockers[0].code == "not_approved"


def test_a_freeze_alone_means_wait_until_it_ends(production, approved_release):
    now = timezone.now()
    end = (now + timedelta(minutes=30)).replace(microsecond=0)
    freeze = FreezeWindow.objects.create(name="Peak", start=now - timedelta(hours=1), end=end)
    freeze.environments.add(production)
    result = check()
    assert result.decision == "wait"
    assert [b.code for b in result.blockers] == ["freeze"]
    assert result.resume_at == end
    assert DeploymentCheck.objects.get().resume_at == end


def test_an_internal_error_fails_closed(production, approved_release, monkeypatch):
    from pipelines.services import checks

    def boom(*args, **kwargs):
        raise RuntimeError("database on fire")

    monkeypatch.setattr(checks, "deployment_blockers", boom)
    result = check()
    assert result.decision == "deny"
    assert [b.code for b in result.blockers] == ["internal_error"]
    assert DeploymentCheck.objects.get().decision == "deny"


def test_a_token_needs_the_check_scope_and_the_service(production, approved_release, service):
    raw = make_token("writer", [service], scopes=["deployments:write"])
    token = ApiToken.objects.get(name="writer")
    with pytest.raises(PermissionDenied):
        check(actor=TokenPrincipal(token))
    make_token("checker-elsewhere", [], scopes=["deployments:check"])
    other = ApiToken.objects.get(name="checker-elsewhere")
    with pytest.raises(PermissionDenied):
        check(actor=TokenPrincipal(other))
    make_token("checker", [service], scopes=["deployments:check"])
    good = ApiToken.objects.get(name="checker")
    result = check(actor=TokenPrincipal(good))
    assert result.decision == "allow" and result.check.token_id == good.pk
    assert raw and DeploymentCheck.objects.count() == 1


# --- ordered promotion and soak ---------------------------------------------------------------


def test_production_is_refused_before_staging_succeeds(staging, production, approved_release):
    result = check()
    assert result.decision == "deny"
    (blocker,) = result.blockers
    assert blocker.code == "promotion" and "staging" in blocker.message


def test_soak_counts_from_verification_and_resume_at_is_its_end(
    staging, production, service, approved_release
):
    staging.soak_minutes = 120
    staging.save()
    deployment = succeed_in(service, staging, minutes_ago=100)
    spec = VerificationSpec.objects.create(
        service=service, environment=staging, prometheus_url="http://127.0.0.1:9/"
    )
    verified = timezone.now() - timedelta(minutes=30)
    VerificationRun.objects.create(
        deployment=deployment,
        spec=spec,
        status="passed",
        started_at=verified - timedelta(minutes=10),
        ends_at=verified,
        finished_at=verified,
    )
    result = check()
    assert result.decision == "wait"
    (blocker,) = result.blockers
    assert blocker.code == "soak" and "staging" in blocker.message
    assert result.resume_at == verified + timedelta(minutes=120)
    # Once the soak is over the answer is allow.
    result = evaluate_deployment_check(
        service="payments-api", version="2.4.0", environment="production"
    )
    assert result.decision == "wait"
    VerificationRun.objects.filter(deployment=deployment).update(
        finished_at=timezone.now() - timedelta(minutes=121)
    )
    assert check().decision == "allow"


def test_a_failed_verification_denies_promotion(staging, production, service, approved_release):
    deployment = succeed_in(service, staging)
    spec = VerificationSpec.objects.create(
        service=service, environment=staging, prometheus_url="http://127.0.0.1:9/"
    )
    VerificationRun.objects.create(
        deployment=deployment, spec=spec, status="failed", ends_at=timezone.now()
    )
    result = check()
    assert result.decision == "deny"
    assert [b.code for b in result.blockers] == ["verification_failed"]


def test_staging_itself_needs_dev_first_and_nothing_else(service, staging, production):
    from tests.factories import EnvironmentFactory

    dev = EnvironmentFactory(name="dev", slug="dev", order=1)
    release = ReleaseFactory(services=[service], version="2.4.0")
    force_state(release, "in_progress")
    result = check(environment="staging")
    assert result.decision == "deny"
    assert [b.code for b in result.blockers] == ["promotion"]
    assert "dev" in result.blockers[0].message
    succeed_in(service, dev)
    assert check(environment="staging").decision == "allow"
    assert Deployment.objects.count() == 1


def test_the_policy_promotion_path_skips_environments_it_does_not_name(
    service, staging, production
):
    from governance.models import PolicySnapshot
    from tests.factories import EnvironmentFactory

    EnvironmentFactory(name="dev", slug="dev", order=1)
    now = timezone.now()
    release = ReleaseFactory(
        services=[service],
        version="2.4.0",
        window_start=now - timedelta(hours=1),
        window_end=now + timedelta(hours=2),
    )
    release = force_state(release, "approved")
    PolicySnapshot.objects.create(
        release=release, risk_level="low", promotion_path=["staging", "production"]
    )
    result = check()
    assert [b.code for b in result.blockers] == ["promotion"]
    succeed_in(service, staging)
    assert check().decision == "allow"


def test_a_commit_ci_did_not_build_for_the_version_is_denied(production, approved_release, service):
    from pipelines.models import PipelineRun

    PipelineRun.objects.create(
        service=service,
        provider="github_actions",
        external_id="9001",
        status="succeeded",
        version="2.4.0",
        commit_sha="3f1c0d9e8b7a6f5e4d3c2b1a09f8e7d6c5b4a392",
    )
    assert check(commit_sha="3f1c0d9e").decision == "allow"  # a short SHA of the built one
    result = check(commit_sha="deadbeef00")
    assert result.decision == "deny"
    (blocker,) = result.blockers
    assert blocker.code == "commit_mismatch" and "3f1c0d9e8b" in blocker.message


def test_a_database_error_inside_a_transaction_still_fails_closed(
    production, approved_release, monkeypatch
):
    from django.db import connection, transaction

    from pipelines.services import checks

    def broken_query(*args, **kwargs):
        with connection.cursor() as cursor:
            cursor.execute("SELECT * FROM no_such_table_at_all")

    monkeypatch.setattr(checks, "deployment_blockers", broken_query)
    with transaction.atomic():
        result = check()
        assert result.decision == "deny"
        assert [b.code for b in result.blockers] == ["internal_error"]
        assert DeploymentCheck.objects.filter(pk=result.check.pk).exists()
