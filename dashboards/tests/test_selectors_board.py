"""The board computes moves and blockers for all its cards at once; these tests hold them
equal to what the releases services and the readiness providers say for one release."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from dashboards.selectors import board
from governance.choices import GATE_DONE
from governance.models import FreezeWindow, GateCheck
from releases import readiness
from releases.services import available_transitions
from tests.factories import ReleaseFactory, force_state, make_ready

STATES = [
    "draft",
    "planned",
    "in_progress",
    "awaiting_approval",
    "approved",
    "deploying",
    "deployed",
]


def _board_card(viewer, release):
    columns = board.board_columns(viewer=viewer, filters=board.BoardFilters())
    return next(c for col in columns for c in col.cards if c.release.pk == release.pk)


def _gate(release, key: str, stage: str, kind: str = "ci_green", role: str = "") -> None:
    GateCheck.objects.create(
        release=release,
        policy_name="Standard",
        policy_version=1,
        key=key,
        stage=stage,
        kind=kind,
        role=role,
        label=f"{key} gate",
        requirement={"key": key},
    )


@pytest.mark.django_db
@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("ready", [True, False])
def test_moves_and_blockers_match_the_services(state, ready, service, release_manager):
    release = ReleaseFactory(
        services=[service],
        owner=release_manager,
        window_start=timezone.now() + timedelta(days=2),
    )
    if ready:
        make_ready(release)
    release = force_state(release, state)
    _gate(release, "ci", "pre_approval")
    _gate(release, "security", "pre_approval", kind="manual", role="security_lead")
    _gate(release, "staging", "pre_deployment", kind="staging_validated")
    _gate(release, "smoke", "post_deployment", kind="staging_validated")
    FreezeWindow.objects.create(
        name="Incident freeze",
        reason="Stabilising after an outage.",
        kind="once",
        start=timezone.now() - timedelta(hours=1),
        end=timezone.now() + timedelta(days=1),
    )
    other = force_state(ReleaseFactory(services=[service]), "deploying")
    assert other.state == "deploying"

    card = _board_card(release_manager, release)
    fresh = type(release).objects.get(pk=release.pk)
    assert card.moves == available_transitions(release=fresh, actor=release_manager)
    expected = [b.message for b in readiness.blockers_for(fresh, card.next_transition)]
    assert [card.top_blocker, card.blocker_count] == [
        expected[0] if expected else "",
        len(expected),
    ]
    gates = GateCheck.objects.filter(release=release)
    assert (card.gates_done, card.gates_total) == (
        gates.filter(status__in=list(GATE_DONE)).count(),
        gates.count(),
    )


@pytest.mark.django_db
def test_gate_progress_counts_done_gates(service, release_manager):
    release = force_state(make_ready(ReleaseFactory(services=[service])), "in_progress")
    _gate(release, "ci", "pre_approval")
    _gate(release, "staging", "pre_deployment", kind="staging_validated")
    _gate(release, "smoke", "post_deployment", kind="staging_validated")
    GateCheck.objects.filter(release=release, key="ci").update(status="passed")
    GateCheck.objects.filter(release=release, key="staging").update(status="waived")
    card = _board_card(release_manager, release)
    assert (card.gates_done, card.gates_total, card.gates_text) == (2, 3, "2/3")


@pytest.mark.django_db
def test_columns_are_capped_and_counted(viewer, portfolio):
    portfolio(per_state=15)
    columns = {
        c.state: c
        for c in board.board_columns(viewer=viewer, filters=board.BoardFilters(), per_column=10)
    }
    assert columns["draft"].total == 15
    assert len(columns["draft"].cards) == 10
    assert columns["draft"].hidden == 5


@pytest.mark.django_db
def test_card_strings_match_the_template_filters_they_replace(service, release_manager):
    from django.utils import formats

    release_manager.first_name, release_manager.last_name = "Rita", "Ramos"
    release_manager.save()
    dated = ReleaseFactory(services=[service], owner=release_manager)
    dated.target_date = timezone.localdate() + timedelta(days=40)
    dated.save()
    windowed = ReleaseFactory(
        services=[service], owner=None, window_start=timezone.now() + timedelta(days=9)
    )
    windowed.target_date = None
    windowed.save()
    dated_card = _board_card(release_manager, dated)
    windowed_card = _board_card(release_manager, windowed)
    assert dated_card.owner_name == "Rita Ramos"
    assert windowed_card.owner_name == "—"
    assert dated_card.target_text == formats.date_format(dated.target_date, "j M")
    assert windowed_card.target_text == formats.date_format(
        timezone.localtime(windowed.window_start), "j M H:i"
    )
    assert dated_card.service_names == [service.name]


@pytest.mark.django_db
def test_blockers_from_gate_and_change_request_rows_match_readiness(service, release_manager):
    """The board asks readiness for all its cards at once: failed automated and rejected
    manual gates (detail, comment, who may waive) and change requests in each state give
    the messages readiness gives for each release alone."""
    from governance.models import AgendaItem, CABMeeting, ChangeRequest

    now = timezone.now()
    meeting = CABMeeting.objects.create(title="Weekly CAB", scheduled_at=now + timedelta(days=2))
    CABMeeting.objects.create(title="Sooner CAB", scheduled_at=now + timedelta(days=1))
    releases = []
    for number, cr_state in enumerate(["", "draft", "needs_info", "submitted", "approved"], 1):
        release = make_ready(ReleaseFactory(services=[service], owner=release_manager))
        release = force_state(release, "awaiting_approval")
        _gate(release, "ci", "pre_approval")
        _gate(release, "lint", "pre_approval")
        _gate(release, "security", "pre_approval", kind="manual", role="security_lead")
        GateCheck.objects.filter(release=release, key="ci").update(
            status="failed", detail=f"run {number} red", requirement={"waivable_by": ["qa_lead"]}
        )
        GateCheck.objects.filter(release=release, key="security").update(
            status="failed", comment="Pen test open."
        )
        if cr_state:
            for k, state in enumerate(["rejected", cr_state]):  # the newest one counts
                cr = ChangeRequest.objects.create(
                    number=100 * number + k,
                    title=f"CR {number}.{k}",
                    release=release,
                    requested_by=release_manager,
                )
                ChangeRequest.objects.filter(pk=cr.pk).update(
                    state=state, created_at=now - timedelta(hours=2 - k)
                )
            if cr_state == "submitted" and number % 2 == 0:
                AgendaItem.objects.create(meeting=meeting, change_request=cr)
        releases.append(release)

    columns = board.board_columns(viewer=release_manager, filters=board.BoardFilters())
    cards = {c.release.pk: c for col in columns for c in col.cards}
    for release in releases:
        card = cards[release.pk]
        fresh = type(release).objects.get(pk=release.pk)
        expected = [b.message for b in readiness.blockers_for(fresh, "approve")]
        assert [card.top_blocker, card.blocker_count] == [expected[0], len(expected)]


@pytest.mark.django_db
@pytest.mark.parametrize("declared", ["low", "medium"])
@pytest.mark.parametrize("computed", [None, "high"])
@pytest.mark.parametrize("steps_done", [False, True])
@pytest.mark.parametrize("retrospective", [False, True])
def test_a_deployed_card_says_what_closing_waits_for(
    declared, computed, steps_done, retrospective, service, release_manager
):
    from governance.models import RiskAssessment
    from releases.postrelease import services as postrelease

    release = force_state(
        make_ready(ReleaseFactory(services=[service], owner=release_manager)), "deployed"
    )
    type(release).objects.filter(pk=release.pk).update(risk_level=declared)
    postrelease.validation_items_ensure_defaults(release=release, actor=release_manager)
    if steps_done:
        for item in release.validation_items.all():
            postrelease.validation_item_complete(item=item, actor=release_manager)
    if computed:
        RiskAssessment.objects.create(release=release, score=60, computed_level=computed)
    if retrospective:
        postrelease.retrospective_record(
            release=release,
            actor=release_manager,
            went_well="Calm",
            went_badly="Nothing",
            to_change="Nothing",
            lessons_learned="Keep canaries",
            runbook_links=[],
        )

    card = _board_card(release_manager, release)
    fresh = type(release).objects.get(pk=release.pk)
    expected = [b.message for b in readiness.blockers_for(fresh, "close")]
    assert card.next_transition == "close"
    assert [card.top_blocker, card.blocker_count] == [
        expected[0] if expected else "",
        len(expected),
    ]
    # The same card from the move form's read (a refused move redraws it).
    again = board.card_for(board.board_release(viewer=release_manager, pk=release.pk))
    assert [again.top_blocker, again.blocker_count] == [card.top_blocker, card.blocker_count]


@pytest.mark.django_db
def test_every_card_says_what_readiness_says_of_its_release(governed, release_manager):
    """Over releases with every kind of blocker (and without), in every state: each card's
    top blocker and count are what ``readiness.blockers_for`` gives for that release alone,
    and asking for all the cards at once gives each card's whole list."""
    created = governed(rounds=4)
    columns = board.board_columns(
        viewer=release_manager, filters=board.BoardFilters(), per_column=100
    )
    cards = {c.release.pk: c for col in columns for c in col.cards}
    assert set(cards) >= {r.pk for r in created}
    transitions = {
        pk: board.NEXT_TRANSITION[card.release.state]
        for pk, card in cards.items()
        if card.release.state in board.NEXT_TRANSITION
    }
    bulk = readiness.blockers_bulk([c.release for c in cards.values()], transitions)
    seen: set[str] = set()
    for pk, card in cards.items():
        fresh = type(created[0]).objects.get(pk=pk)
        expected = readiness.blockers_for(fresh, transitions[pk]) if pk in transitions else []
        messages = [b.message for b in expected]
        assert [card.top_blocker, card.blocker_count] == [
            messages[0] if messages else "",
            len(messages),
        ], fresh
        assert bulk.get(pk, []) == expected, fresh
        seen |= {b.code for b in expected}
    # The seed reaches every rule (so the comparison above covers them all).
    assert seen >= {
        "no_owner",
        "no_scope",
        "no_window",
        "no_rollback_plan",
        "gate_pending",
        "gate_failed",
        "signoff_missing",
        "signoff_rejected",
        "change_request_missing",
        "change_request_not_submitted",
        "cab_pending",
        "window_not_open",
        "window_closed",
        "freeze",
        "conflict",
        "validation_pending",
        "retrospective_missing",
    }


@pytest.mark.django_db
def test_asking_for_many_releases_costs_the_queries_of_one(governed):
    """``readiness.blockers_bulk`` reads in a fixed number of queries, whatever the number
    of releases (the board asks it once for all its cards)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def ask() -> int:
        releases = list(type(created[0]).objects.filter(state__in=list(board.NEXT_TRANSITION)))
        transitions = {r.pk: board.NEXT_TRANSITION[r.state] for r in releases}
        with CaptureQueriesContext(connection) as ctx:
            readiness.blockers_bulk(releases, transitions)
        return len(ctx.captured_queries)

    created = governed(rounds=2)
    few = ask()
    governed(rounds=6)
    assert ask() == few
