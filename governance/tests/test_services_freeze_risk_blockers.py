"""Freeze windows block production deployments unless an approved exception exists (also
across a DST change); explained risk with overrides; "why is this blocked?"."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
import time_machine
from django.utils import timezone

from core.errors import InvalidInput, PermissionDenied, RequirementsNotMet
from core.models import AuditEvent
from governance import services
from governance.models import RiskAssessment
from governance.readiness import release_blockers
from governance.services.risk import effective_risk_level
from releases import services as release_services
from tests.factories import force_state

pytestmark = pytest.mark.django_db


@pytest.fixture
def weekend_freeze(operations, production):
    """Every Friday 16:00 – Monday 08:00 Europe/Berlin, all services."""
    return services.freeze_window_create(
        actor=operations,
        name="Weekend freeze",
        reason="Nobody on call",
        kind="rrule",
        tz="Europe/Berlin",
        rrule="FREQ=WEEKLY;BYDAY=FR;BYHOUR=16;BYMINUTE=0",
        end_time=time(8, 0),
        end_weekday=0,
        environments=[production],
    )


# Saturday 2026-03-28 12:00 UTC: inside the freeze, the night before Berlin's DST switch.
SATURDAY_BEFORE_DST = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)


def _approved(make_release, **kw):
    return force_state(make_release("in_progress", **kw), "approved")


def test_freeze_describes_itself_in_plain_words(weekend_freeze):
    assert weekend_freeze.description == "Every Friday 16:00–Monday 08:00 Europe/Berlin"
    assert AuditEvent.objects.filter(action="freeze.create").count() == 1


def test_start_deployment_is_refused_during_a_freeze_until_it_ends_across_dst(
    weekend_freeze, make_release, release_manager
):
    with time_machine.travel(SATURDAY_BEFORE_DST, tick=False):
        release = _approved(
            make_release,
            window_start=SATURDAY_BEFORE_DST - timedelta(hours=1),
            window_end=SATURDAY_BEFORE_DST + timedelta(days=3),
        )
        with pytest.raises(RequirementsNotMet) as err:
            release_services.release_start_deployment(release=release, actor=release_manager)
        freeze = next(b for b in err.value.details if b["code"] == "freeze")
        # Monday 08:00 Berlin is 06:00 UTC after the switch to summer time (not 07:00).
        assert freeze["until"] == "2026-03-30T06:00:00+00:00"


def test_an_approved_exception_lets_the_deployment_start(
    weekend_freeze, make_release, release_manager, cab_chair
):
    with time_machine.travel(SATURDAY_BEFORE_DST, tick=False):
        release = _approved(
            make_release,
            window_start=SATURDAY_BEFORE_DST - timedelta(hours=1),
            window_end=SATURDAY_BEFORE_DST + timedelta(days=1),
        )
        exception = services.freeze_exception_request(
            freeze=weekend_freeze,
            release=release,
            actor=release_manager,
            justification="Fix for an outage in progress",
        )
        with pytest.raises(RequirementsNotMet):
            release_services.release_start_deployment(release=release, actor=release_manager)
        with pytest.raises(PermissionDenied):
            services.freeze_exception_approve(exception=exception, actor=release_manager)
        services.freeze_exception_approve(exception=exception, actor=cab_chair, comment="ok")
        release = release_services.release_start_deployment(release=release, actor=release_manager)
        assert release.state == "deploying"
        assert AuditEvent.objects.filter(action="freeze_exception.approve").count() == 1


def test_an_expired_exception_no_longer_counts(
    weekend_freeze, make_release, release_manager, cab_chair
):
    with time_machine.travel(SATURDAY_BEFORE_DST, tick=False):
        release = _approved(
            make_release,
            window_start=SATURDAY_BEFORE_DST - timedelta(hours=1),
            window_end=SATURDAY_BEFORE_DST + timedelta(days=1),
        )
        exception = services.freeze_exception_request(
            freeze=weekend_freeze,
            release=release,
            actor=release_manager,
            justification="Hotfix",
            expires_at=SATURDAY_BEFORE_DST + timedelta(minutes=30),
        )
        services.freeze_exception_approve(exception=exception, actor=cab_chair)
    later = SATURDAY_BEFORE_DST + timedelta(hours=1)
    with time_machine.travel(later, tick=False), pytest.raises(RequirementsNotMet):
        release_services.release_start_deployment(release=release, actor=release_manager)


def test_a_freeze_of_other_services_does_not_block(
    operations, other_service, make_release, release_manager
):
    services.freeze_window_create(
        actor=operations,
        name="Identity freeze",
        kind="once",
        tz="UTC",
        start=timezone.now() - timedelta(hours=1),
        end=timezone.now() + timedelta(hours=1),
        services=[other_service],
    )
    release = _approved(make_release)
    assert (
        release_services.release_start_deployment(release=release, actor=release_manager).state
        == "deploying"
    )


def test_invalid_freeze_rules_are_refused(operations):
    with pytest.raises(InvalidInput):
        services.freeze_window_create(
            actor=operations,
            name="Bad",
            kind="cron",
            tz="UTC",
            cron="nope",
            duration=timedelta(hours=1),
        )  # noqa: E501
    with pytest.raises(PermissionDenied):
        services.freeze_window_create(actor=None, name="x", kind="once", tz="UTC")


def test_start_deployment_waits_for_the_window(make_release, release_manager):
    release = _approved(make_release, window_start=timezone.now() + timedelta(hours=3))
    with pytest.raises(RequirementsNotMet) as err:
        release_services.release_start_deployment(release=release, actor=release_manager)
    assert err.value.details[0]["code"] == "window_not_open"


# --- risk -------------------------------------------------------------------------------------


def test_planning_assesses_risk_with_explained_factors(make_release):
    release = make_release("planned")
    assessment = RiskAssessment.objects.get(release=release)
    names = [f["name"] for f in assessment.factors]
    assert names == [
        "change_size",
        "service_criticality",
        "services_touched",
        "data_migration",
        "off_hours",
        "failure_history",
        "freeze_proximity",
    ]
    assert assessment.score == sum(f["contribution"] for f in assessment.factors)
    criticality = next(f for f in assessment.factors if f["name"] == "service_criticality")
    assert (
        criticality["explanation"]
        == "Service criticality: most critical service payments-api is high → +14"
    )  # noqa: E501


def test_a_data_migration_in_scope_is_detected(make_release, release_manager):
    release = make_release("planned")
    release_services.scope_item_add(
        release=release, actor=release_manager, title="Data migration of ledger"
    )
    assessment = services.risk_assess(release=release, actor=release_manager)
    assert (
        next(f for f in assessment.factors if f["name"] == "data_migration")["contribution"] == 15
    )
    assert AuditEvent.objects.filter(action="risk.assess").count() == 1


def test_risk_override_needs_a_justification_and_is_audited(make_release, release_manager, viewer):
    release = make_release("planned")
    with pytest.raises(InvalidInput):
        services.risk_override(
            release=release, actor=release_manager, level="low", justification=""
        )
    with pytest.raises(PermissionDenied):
        services.risk_override(release=release, actor=viewer, level="low", justification="x")
    services.risk_override(
        release=release, actor=release_manager, level="critical", justification="Touches the ledger"
    )  # noqa: E501
    release.refresh_from_db()
    assert effective_risk_level(release) == "critical" == release.risk_level
    event = AuditEvent.objects.get(action="risk.override")
    assert event.reason == "Touches the ledger" and event.after["level"] == "critical"


def test_a_refused_override_writes_nothing(make_release, release_manager, viewer):
    release = make_release("planned")
    services.risk_assess(release=release, actor=release_manager)
    before = RiskAssessment.objects.get(release=release)
    events = AuditEvent.objects.count()
    with pytest.raises(PermissionDenied):
        services.risk_override(
            release=release, actor=viewer, level="low", justification="looks fine"
        )
    after = RiskAssessment.objects.get(release=release)
    assert (after.assessed_at, after.override_level) == (before.assessed_at, "")
    assert AuditEvent.objects.count() == events


def test_high_risk_selects_the_stricter_policy(make_release, release_manager):
    from governance.models import GatePolicy

    GatePolicy.objects.create(name="Light", requirements=[], priority=0)
    GatePolicy.objects.create(
        name="Strict",
        risk_levels=["high", "critical"],
        priority=10,
        requirements=[{"stage": "pre_approval", "kind": "manual", "role": "security_lead"}],
    )
    release = make_release("planned", risk_level="high")
    assert release.policy_snapshot.policy_name == "Strict"
    assert release.gate_checks.count() == 1


# --- why is this blocked? ---------------------------------------------------------------------


def test_blockers_list_everything_with_who_and_when(policy, weekend_freeze, make_release):
    with time_machine.travel(SATURDAY_BEFORE_DST, tick=False):
        release = make_release("in_progress")
        answer = release_blockers(release)
        assert answer["blocked"]
        (step,) = answer["transitions"]
        assert step["transition"] == "request_approval"
        assert {b["code"] for b in step["blockers"]} == {"gate_pending"}
        assert all(b["who_can_resolve"] for b in step["blockers"])
        assert step["needs_action"] and step["earliest_at"] is None

        approved = force_state(
            make_release(
                "in_progress",
                window_start=SATURDAY_BEFORE_DST + timedelta(hours=2),
                window_end=SATURDAY_BEFORE_DST + timedelta(days=3),
            ),
            "approved",
        )
        approved.gate_checks.filter(stage="pre_deployment").update(status="passed")
        step = release_blockers(approved)["transitions"][0]
        codes = {b["code"] for b in step["blockers"]}
        assert codes == {"window_not_open", "freeze"}
        assert not step["needs_action"]
        assert step["earliest_at"] == "2026-03-30T06:00:00+00:00"


def test_a_ready_release_is_not_blocked(make_release):
    release = force_state(make_release("in_progress"), "approved")
    answer = release_blockers(release)
    assert not answer["blocked"]
    assert answer["transitions"][0]["ready"]
