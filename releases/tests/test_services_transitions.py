"""Every release transition as a matrix: allowed sources succeed, other sources are refused,
a user without permission is refused, and exactly one audit event is written."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from core.errors import InvalidInput, PermissionDenied, RequirementsNotMet, TransitionNotAllowed
from core.models import AuditEvent
from releases import readiness, services
from releases.choices import ReleaseState
from tests.factories import ReleaseFactory, force_state, make_ready

S = ReleaseState
# transition name -> (allowed sources, target)
MATRIX = {
    "plan": ([S.DRAFT], S.PLANNED),
    "start_work": ([S.PLANNED], S.IN_PROGRESS),
    "request_approval": ([S.IN_PROGRESS], S.AWAITING_APPROVAL),
    "request_changes": ([S.AWAITING_APPROVAL], S.IN_PROGRESS),
    "approve": ([S.AWAITING_APPROVAL], S.APPROVED),
    "reopen": ([S.APPROVED], S.IN_PROGRESS),
    "start_deployment": ([S.APPROVED], S.DEPLOYING),
    "mark_deployed": ([S.DEPLOYING], S.DEPLOYED),
    "roll_back": ([S.DEPLOYING, S.DEPLOYED], S.ROLLED_BACK),
    "close": ([S.DEPLOYED], S.CLOSED),
    "cancel": ([S.DRAFT, S.PLANNED, S.IN_PROGRESS, S.AWAITING_APPROVAL, S.APPROVED], S.CANCELLED),
}
CASES_ALLOWED = [(name, src) for name, (sources, _) in MATRIX.items() for src in sources]
CASES_REFUSED = [
    (name, src) for name, (sources, _) in MATRIX.items() for src in S.values if src not in sources
]


@pytest.fixture
def release(service, release_manager):
    # The window is open now: governance refuses to start a deployment outside it.
    window_start = timezone.now() - timedelta(hours=1)
    return make_ready(
        ReleaseFactory(services=[service], owner=release_manager, window_start=window_start)
    )


def _call(name, release, actor):
    return services.TRANSITION_SERVICES[name](release=release, actor=actor, reason="because")


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "source"), CASES_ALLOWED)
def test_allowed_source_moves_to_target_with_one_audit_event(
    name, source, release, release_manager
):
    release = force_state(release, source)
    result = _call(name, release, release_manager)
    assert result.state == MATRIX[name][1]
    events = list(AuditEvent.objects.filter(release_id=release.pk))
    assert len(events) == 1
    event = events[0]
    assert (event.action, event.from_state, event.to_state) == (
        f"release.{name}",
        source,
        MATRIX[name][1],
    )
    assert event.actor == release_manager
    assert event.reason == "because"


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "source"), CASES_REFUSED)
def test_other_sources_are_refused_and_write_nothing(name, source, release, release_manager):
    release = force_state(release, source)
    with pytest.raises(TransitionNotAllowed):
        _call(name, release, release_manager)
    release.refresh_from_db()
    assert release.state == source
    assert not AuditEvent.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("name", list(MATRIX))
@pytest.mark.parametrize("persona", ["viewer", "other_release_manager", "outsider", "qa_lead"])
def test_users_without_permission_are_refused(name, persona, release, request):
    actor = request.getfixturevalue(persona)
    release = force_state(release, MATRIX[name][0][0])
    with pytest.raises(PermissionDenied):
        _call(name, release, actor)
    assert not AuditEvent.objects.exists()


@pytest.mark.django_db
def test_administrator_may_transition_any_release(release, administrator):
    assert services.release_plan(release=release, actor=administrator).state == S.PLANNED


@pytest.mark.django_db
def test_plan_explains_every_missing_requirement(service, release_manager):
    release = ReleaseFactory(services=[service], owner=release_manager, window_end=None)
    with pytest.raises(RequirementsNotMet) as err:
        services.release_plan(release=release, actor=release_manager)
    codes = {b["code"] for b in err.value.details}
    assert codes == {"no_scope", "no_window", "no_rollback_plan"}
    assert not AuditEvent.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("name", sorted(services.REASON_REQUIRED))
def test_transitions_that_need_a_reason_refuse_a_blank_one(name, release, release_manager):
    release = force_state(release, MATRIX[name][0][0])
    with pytest.raises(InvalidInput):
        services.TRANSITION_SERVICES[name](release=release, actor=release_manager, reason="  ")


@pytest.mark.django_db
def test_readiness_seam_reports_no_requirements_until_a_provider_registers(
    release, release_manager
):
    release = force_state(release, S.IN_PROGRESS)
    assert readiness.blockers_for(release, "request_approval") == []

    def provider(rel, transition):
        return [readiness.Blocker("gate_pending", "Security scan pending.", "security lead")]

    readiness.register(provider)
    try:
        with pytest.raises(RequirementsNotMet) as err:
            services.release_request_approval(release=release, actor=release_manager)
        assert err.value.details[0]["code"] == "gate_pending"
    finally:
        readiness.unregister(provider)
    assert services.release_request_approval(release=release, actor=release_manager).state == (
        S.AWAITING_APPROVAL
    )


@pytest.mark.django_db
def test_scope_change_after_approval_sends_the_release_back(release, release_manager):
    release = force_state(release, S.APPROVED)
    services.scope_item_add(release=release, actor=release_manager, title="Late fix", kind="fix")
    release.refresh_from_db()
    assert release.state == S.IN_PROGRESS
    reopen = AuditEvent.objects.get(action="release.reopen")
    assert "Scope changed after approval" in reopen.reason
