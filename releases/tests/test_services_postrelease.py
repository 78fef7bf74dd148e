"""Post-release: validation, retrospective, action items, impact, release notes."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from core.errors import Conflict, PermissionDenied, RequirementsNotMet, TransitionNotAllowed
from core.models import AuditEvent
from releases import selectors, services
from releases.choices import ReleaseState
from releases.postrelease import services as postrelease
from tests.factories import ReleaseFactory, force_state, make_ready


@pytest.fixture
def deployed(service, release_manager):
    release = make_ready(ReleaseFactory(services=[service], owner=release_manager))
    return force_state(release, ReleaseState.DEPLOYED)


def _retro(release, actor):
    return postrelease.retrospective_record(
        release=release,
        actor=actor,
        went_well="Canary caught nothing",
        went_badly="Rollback rehearsal was late",
        to_change="Rehearse rollback a week earlier",
        lessons_learned="Rehearse rollbacks early; flaky smoke test on checkout",
        runbook_links=["https://wiki.example/runbooks/payments"],
    )


@pytest.mark.django_db
def test_close_is_refused_while_validation_steps_are_open(deployed, release_manager):
    postrelease.validation_items_ensure_defaults(release=deployed, actor=release_manager)
    with pytest.raises(RequirementsNotMet) as err:
        services.release_close(release=deployed, actor=release_manager)
    assert err.value.details[0]["code"] == "validation_pending"
    for item in deployed.validation_items.all():
        postrelease.validation_item_complete(item=item, actor=release_manager)
    assert services.release_close(release=deployed, actor=release_manager).state == "closed"


@pytest.mark.django_db
@pytest.mark.parametrize("risk", ["medium", "high", "critical"])
def test_close_needs_a_retrospective_from_medium_risk(deployed, release_manager, risk):
    type(deployed).objects.filter(pk=deployed.pk).update(risk_level=risk)
    with pytest.raises(RequirementsNotMet) as err:
        services.release_close(release=deployed, actor=release_manager)
    assert [b["code"] for b in err.value.details] == ["retrospective_missing"]
    _retro(deployed, release_manager)
    assert services.release_close(release=deployed, actor=release_manager).state == "closed"


@pytest.mark.django_db
def test_low_risk_closes_without_a_retrospective(deployed, release_manager):
    assert services.release_close(release=deployed, actor=release_manager).state == "closed"


def _assess(release, *, computed: str, override: str = "", by=None):
    from governance.models import RiskAssessment

    return RiskAssessment.objects.create(
        release=release,
        score=50,
        computed_level=computed,
        override_level=override,
        override_justification="Reviewed with the CAB." if override else "",
        overridden_by=by,
    )


@pytest.mark.django_db
def test_the_governing_risk_decides_the_retrospective_not_the_declared_one(
    deployed, release_manager
):
    # Declared low, assessed high: the retrospective is owed.
    _assess(deployed, computed="high")
    with pytest.raises(RequirementsNotMet) as err:
        services.release_close(release=deployed, actor=release_manager)
    assert err.value.details[0]["message"] == (
        "A retrospective is required for high risk releases."
    )


@pytest.mark.django_db
def test_a_justified_override_to_low_closes_without_a_retrospective(
    deployed, release_manager, cab_chair
):
    type(deployed).objects.filter(pk=deployed.pk).update(risk_level="medium")
    deployed.refresh_from_db()
    _assess(deployed, computed="high", override="low", by=cab_chair)
    assert services.release_close(release=deployed, actor=release_manager).state == "closed"


@pytest.mark.django_db
def test_retrospective_only_after_deployment_and_by_its_managers(service, release_manager, viewer):
    release = make_ready(ReleaseFactory(services=[service], owner=release_manager))
    with pytest.raises(TransitionNotAllowed):
        _retro(release, release_manager)
    release = force_state(release, ReleaseState.DEPLOYED)
    with pytest.raises(PermissionDenied):
        _retro(release, viewer)
    _retro(release, release_manager)
    assert AuditEvent.objects.filter(action="retrospective.record").count() == 1


@pytest.mark.django_db
def test_action_items_overdue_are_flagged_and_closed_ones_leave_the_list(
    deployed, release_manager, viewer, team
):
    _retro(deployed, release_manager)
    today = date(2026, 11, 26)
    late = postrelease.action_item_add(
        release=deployed,
        actor=release_manager,
        title="Fix flaky smoke test",
        owner=release_manager,
        due_date=today - timedelta(days=1),
    )
    due_today = postrelease.action_item_add(
        release=deployed,
        actor=release_manager,
        title="Rehearse rollback",
        owner=release_manager,
        due_date=today,
    )
    items = list(selectors.open_action_items(viewer=viewer, team_slug=team.slug, today=today))
    assert [(i.pk, i.is_overdue) for i in items] == [(late.pk, True), (due_today.pk, False)]
    assert items[0].release == deployed
    postrelease.action_item_set_status(item=late, actor=release_manager, status="done")
    remaining = selectors.open_action_items(viewer=viewer, today=today)
    assert [i.pk for i in remaining] == [due_today.pk]


@pytest.mark.django_db
def test_published_notes_do_not_change_when_scope_changes_later(service, release_manager):
    release = make_ready(ReleaseFactory(services=[service], owner=release_manager))
    notes = postrelease.release_notes_save(
        release=release, actor=release_manager, audience="customer"
    )
    assert "Checkout redesign" in notes.body and "## New features" in notes.body
    postrelease.release_notes_publish(notes=notes, actor=release_manager)
    services.scope_item_add(release=release, actor=release_manager, title="Late addition")
    notes.refresh_from_db()
    assert "Late addition" not in notes.body
    with pytest.raises(Conflict):
        postrelease.release_notes_save(
            release=release, actor=release_manager, audience="customer", body="rewritten"
        )
    internal = postrelease.release_notes_save(
        release=release, actor=release_manager, audience="internal"
    )
    assert "Late addition" in internal.body


@pytest.mark.django_db
def test_customer_notes_leave_out_chores(service, release_manager):
    release = make_ready(ReleaseFactory(services=[service], owner=release_manager))
    services.scope_item_add(release=release, actor=release_manager, title="Bump deps", kind="chore")
    text = postrelease.release_notes_draft_text(release=release, audience="customer")
    assert "Bump deps" not in text
    assert "Bump deps" in postrelease.release_notes_draft_text(release=release, audience="internal")


@pytest.mark.django_db
def test_lessons_learned_search_finds_past_retrospectives(
    deployed, release_manager, viewer, outsider
):
    _retro(deployed, release_manager)
    found = selectors.lessons_learned_search(viewer=viewer, query="flaky checkout")
    assert [r.release_id for r in found] == [deployed.pk]
    assert list(selectors.lessons_learned_search(viewer=viewer, query="kubernetes")) == []
    assert list(selectors.lessons_learned_search(viewer=outsider, query="flaky")) == []


@pytest.mark.django_db
def test_impact_assessment_is_recorded_and_audited(deployed, release_manager):
    impact = postrelease.impact_assessment_record(
        release=deployed,
        actor=release_manager,
        expected_outcome="Checkout conversion +2%",
        observed_outcome="+1.4% after a week",
        customer_impact="minor",
    )
    assert impact.customer_impact == "minor"
    assert AuditEvent.objects.filter(action="impact.record").count() == 1
