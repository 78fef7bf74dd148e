"""Break-glass: a role-bound override of a freeze for a rollback or a hotfix, with a reason and
an expiry, shown wherever the freeze is, and a post-implementation review that blocks closing
until someone other than the requester approves it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from core.errors import (
    Conflict,
    InvalidInput,
    PermissionDenied,
    RequirementsNotMet,
    TransitionNotAllowed,
)
from core.models import AuditEvent
from governance import services
from governance.models import BreakGlass
from governance.readiness import release_blockers
from releases import readiness
from releases import services as release_services
from tests.factories import EnvironmentFactory, force_state

pytestmark = pytest.mark.django_db

REASON = "Roll back 2.4.0: checkout 500s for 12% of EU customers"


@pytest.fixture
def freeze(operations, production):
    """A one-off freeze of every service in production, in force now for a day."""
    now = timezone.now()
    return services.freeze_window_create(
        actor=operations,
        name="Year-end freeze",
        reason="Peak trading",
        kind="once",
        tz="UTC",
        start=now - timedelta(hours=1),
        end=now + timedelta(days=1),
        environments=[production],
    )


@pytest.fixture
def approved(make_release):
    return force_state(make_release("in_progress"), "approved")


def _break(release, actor, **kw):
    kw.setdefault("kind", "rollback")
    kw.setdefault("reason", REASON)
    kw.setdefault("expires_at", timezone.now() + timedelta(hours=2))
    return services.break_glass_create(release=release, actor=actor, **kw)


def _codes(release, transition):
    return [b.code for b in readiness.blockers_for(release, transition)]


def test_it_lifts_the_freeze_on_the_transition_the_page_and_the_board(
    freeze, approved, release_manager
):
    assert _codes(approved, "start_deployment") == ["freeze"]
    glass = _break(approved, release_manager)
    assert _codes(approved, "start_deployment") == []
    board = readiness.blockers_bulk([approved], {approved.pk: "start_deployment"})
    assert board[approved.pk] == []
    page = release_blockers(approved)
    assert page["blocked"] is False
    (note,) = page["break_glass"]
    assert note["id"] == glass.pk and note["active"] and note["lifts"] == ["Year-end freeze"]
    assert "rita" in note["message"] and REASON in note["message"]
    release = release_services.release_start_deployment(release=approved, actor=release_manager)
    assert release.state == "deploying"
    event = AuditEvent.objects.get(action="break_glass.create")
    assert event.release_id == approved.pk and event.reason == REASON


def test_the_freeze_blocks_again_after_the_expiry_and_the_sweep_records_it(
    freeze, approved, release_manager, time_machine
):
    now = timezone.now()
    time_machine.move_to(now, tick=False)
    glass = _break(approved, release_manager, expires_at=now + timedelta(minutes=30))
    assert _codes(approved, "start_deployment") == []
    time_machine.move_to(now + timedelta(minutes=31), tick=False)
    assert _codes(approved, "start_deployment") == ["freeze"]
    assert services.break_glass_expire_due() == 1
    assert services.break_glass_expire_due() == 0  # safe to run twice
    glass.refresh_from_db()
    assert glass.state == "expired" and glass.ended_at == glass.expires_at
    assert AuditEvent.objects.filter(action="break_glass.expire").count() == 1


def test_a_revoked_break_glass_lifts_nothing(freeze, approved, release_manager, administrator):
    glass = _break(approved, release_manager)
    with pytest.raises(InvalidInput):
        services.break_glass_revoke(glass=glass, actor=administrator, reason=" ")
    services.break_glass_revoke(glass=glass, actor=administrator, reason="Fixed forward")
    assert _codes(approved, "start_deployment") == ["freeze"]
    with pytest.raises(TransitionNotAllowed):
        services.break_glass_revoke(glass=glass, actor=administrator, reason="again")
    assert AuditEvent.objects.filter(action="break_glass.revoke").count() == 1


@pytest.mark.parametrize("persona", ["qa_lead", "viewer", "cab_chair", "operations"])
def test_a_role_not_bound_to_break_glass_is_refused_and_nothing_is_written(
    freeze, approved, request, persona
):
    actor = request.getfixturevalue(persona)
    with pytest.raises(PermissionDenied, match="release manager or an administrator"):
        _break(approved, actor)
    assert not BreakGlass.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="break_glass").exists()


def test_the_roles_come_from_the_setting(freeze, approved, operations, settings):
    settings.BREAK_GLASS_ROLES = ["operations"]
    assert _break(approved, operations).requested_by == operations


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("reason", "   ", "at least 20 characters"),
        ("reason", "rollback", "at least 20 characters"),
        ("expires_at", None, "Required"),
        ("expires_at", "past", "in the future"),
        ("expires_at", "too-far", "At most 4 hours"),
        ("kind", "feature", "rollback or hotfix"),
    ],
)
def test_bad_input_is_refused_by_field(approved, release_manager, field, value, message):
    now = timezone.now()
    value = {"past": now - timedelta(minutes=1), "too-far": now + timedelta(hours=5)}.get(
        value, value
    )
    with pytest.raises(InvalidInput) as refused:
        _break(approved, release_manager, **{field: value})
    assert message in refused.value.details[field][0]
    assert not BreakGlass.objects.exists()


def test_only_a_production_environment_and_a_live_release(
    approved, release_manager, staging, make_release
):
    with pytest.raises(InvalidInput) as refused:
        _break(approved, release_manager, environment=staging)
    assert "environment" in refused.value.details
    closed = force_state(make_release("in_progress"), "closed")
    with pytest.raises(TransitionNotAllowed):
        _break(closed, release_manager)


def test_a_second_one_while_the_first_is_active_is_a_conflict(approved, release_manager):
    _break(approved, release_manager)
    with pytest.raises(Conflict):
        _break(approved, release_manager, kind="hotfix")
    assert BreakGlass.objects.count() == 1


def test_an_environment_bound_break_glass_lifts_the_freeze_only_there(
    operations, approved, release_manager, production
):
    other = EnvironmentFactory(name="production-us", slug="production-us", is_production=True)
    now = timezone.now()
    services.freeze_window_create(
        actor=operations,
        name="US freeze",
        kind="once",
        tz="UTC",
        start=now - timedelta(hours=1),
        end=now + timedelta(hours=3),
        environments=[other],
    )
    _break(approved, release_manager, environment=production)
    # The freeze covers only production-us: a break-glass for production does not lift it.
    assert _codes(approved, "start_deployment") == ["freeze"]


def test_closing_waits_for_the_review_approved_by_someone_else(
    approved, release_manager, administrator, cab_chair
):
    glass = _break(approved, release_manager)
    deployed = force_state(approved, "deployed")
    services.risk_override(
        release=deployed, actor=administrator, level="low", justification="Routine rollback."
    )
    assert "break_glass_review" in _codes(deployed, "close")
    with pytest.raises(RequirementsNotMet) as refused:
        release_services.release_close(release=deployed, actor=release_manager)
    assert "post-implementation review" in refused.value.message
    # Separation of duties: the requester cannot approve their own review.
    with pytest.raises(PermissionDenied, match="Separation of duties"):
        services.break_glass_review_approve(glass=glass, actor=release_manager, note="All fine")
    with pytest.raises(InvalidInput):
        services.break_glass_review_approve(glass=glass, actor=cab_chair, note="")
    services.break_glass_review_approve(
        glass=glass, actor=cab_chair, note="Rollback was right; root cause PAY-88 fixed forward."
    )
    with pytest.raises(TransitionNotAllowed):
        services.break_glass_review_approve(glass=glass, actor=administrator, note="again")
    assert "break_glass_review" not in _codes(deployed, "close")
    assert release_services.release_close(release=deployed, actor=release_manager).state == (
        "closed"
    )
    event = AuditEvent.objects.get(action="break_glass.review_approve")
    assert event.actor_id == cab_chair.pk and event.release_id == deployed.pk


def test_the_beat_task_expires_what_is_due(approved, release_manager, time_machine):
    from governance.tasks import expire_break_glass

    now = timezone.now()
    time_machine.move_to(now, tick=False)
    _break(approved, release_manager, expires_at=now + timedelta(minutes=5))
    assert expire_break_glass() == 0
    time_machine.move_to(now + timedelta(minutes=6), tick=False)
    assert expire_break_glass() == 1
    assert BreakGlass.objects.get().state == "expired"


def test_the_evidence_pack_records_the_break_glass_and_its_review(
    approved, release_manager, cab_chair, viewer
):
    from releases import evidence

    glass = _break(approved, release_manager)
    services.break_glass_review_approve(glass=glass, actor=cab_chair, note="Reviewed at eCAB.")
    pack = evidence.evidence_pack_capture(release=approved, actor=viewer, trigger="on_demand")
    (entry,) = pack.snapshot["break_glass"]
    assert entry["reason"] == REASON and entry["requested_by"] == "rita"
    assert entry["review_state"] == "approved" and entry["reviewed_by"] == "chris"
