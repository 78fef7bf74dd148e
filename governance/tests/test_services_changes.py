"""Change requests and the CAB: the state machine as a matrix, votes (one per member,
changeable until the decision, recusal), quorum decisions moving the release, meetings."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import IntegrityError
from django.utils import timezone

from core.errors import InvalidInput, PermissionDenied, TransitionNotAllowed
from core.models import AuditEvent
from core.roles import Role
from governance import services
from governance.models import AgendaItem, ChangeRequest, Recusal, Vote
from tests.factories import UserFactory, force_state

pytestmark = pytest.mark.django_db


def force_cr(cr: ChangeRequest, state: str) -> ChangeRequest:
    ChangeRequest.objects.filter(pk=cr.pk).update(state=state)
    return ChangeRequest.objects.get(pk=cr.pk)


@pytest.fixture
def cr(release_manager):
    now = timezone.now()
    return services.change_request_create(
        actor=release_manager,
        title="Rotate payment keys",
        change_type="normal",
        reason="Key expiry",
        impact="payments-api",
        implementation_plan="Rotate",
        backout_plan="Restore old key",
        test_plan="Smoke",
        window_start=now + timedelta(days=1),
        window_end=now + timedelta(days=1, hours=1),
    )


# --- state machine matrix ---------------------------------------------------------------------

S = [
    "draft",
    "submitted",
    "in_review",
    "approved",
    "rejected",
    "needs_info",
    "implemented",
    "reviewed",
    "closed",
]  # noqa: E501
MATRIX = {
    "submit": (["draft", "needs_info"], "submitted", "release_manager"),
    "request_info": (["in_review"], "needs_info", "cab_chair"),
    "implement": (["approved"], "implemented", "release_manager"),
    "review": (["implemented"], "reviewed", "release_manager"),
    "close": (["reviewed"], "closed", "release_manager"),
    "withdraw": (["draft", "submitted", "in_review", "needs_info"], "closed", "release_manager"),
}


def _call(name, cr, actor):
    fn = {
        "submit": lambda: services.change_request_submit(change_request=cr, actor=actor),
        "request_info": lambda: services.change_request_request_info(
            change_request=cr, actor=actor, comment="Which keys?"
        ),
        "implement": lambda: services.change_request_implement(change_request=cr, actor=actor),
        "review": lambda: services.change_request_review(
            change_request=cr, actor=actor, notes="Went fine"
        ),
        "close": lambda: services.change_request_close(change_request=cr, actor=actor),
        "withdraw": lambda: services.change_request_withdraw(
            change_request=cr, actor=actor, reason="Not needed"
        ),
    }[name]
    return fn()


@pytest.mark.parametrize(
    ("name", "source"), [(n, s) for n, (sources, _, _) in MATRIX.items() for s in sources]
)
def test_allowed_change_request_transitions_write_one_audit_event(name, source, cr, request):
    cr = force_cr(cr, source)
    actor = request.getfixturevalue(MATRIX[name][2])
    before = AuditEvent.objects.count()
    result = _call(name, cr, actor)
    assert result.state == MATRIX[name][1]
    events = list(AuditEvent.objects.order_by("id")[before:])
    assert [(e.action, e.from_state, e.to_state) for e in events] == [
        (f"change_request.{name}", source, MATRIX[name][1])
    ]


@pytest.mark.parametrize(
    ("name", "source"),
    [(n, s) for n, (sources, _, _) in MATRIX.items() for s in S if s not in sources],
)
def test_other_change_request_sources_are_refused(name, source, cr, request):
    cr = force_cr(cr, source)
    before = AuditEvent.objects.count()
    with pytest.raises(TransitionNotAllowed):
        _call(name, cr, request.getfixturevalue(MATRIX[name][2]))
    assert AuditEvent.objects.count() == before


@pytest.mark.parametrize("name", list(MATRIX))
@pytest.mark.parametrize("persona", ["viewer", "outsider", "cab_member"])
def test_change_request_transitions_need_permission(name, persona, cr, request):
    cr = force_cr(cr, MATRIX[name][0][0])
    with pytest.raises(PermissionDenied):
        _call(name, cr, request.getfixturevalue(persona))


def test_submit_needs_the_plans(release_manager):
    cr = services.change_request_create(actor=release_manager, title="Thin")
    with pytest.raises(InvalidInput) as err:
        services.change_request_submit(change_request=cr, actor=release_manager)
    assert {"reason", "implementation_plan", "backout_plan", "window_start"} <= set(
        err.value.details
    )


def test_a_standard_change_is_pre_approved(release_manager, cr):
    ChangeRequest.objects.filter(pk=cr.pk).update(change_type="standard")
    cr = services.change_request_submit(change_request=cr, actor=release_manager)
    assert cr.state == "approved"


def test_an_emergency_change_gets_a_review_deadline_and_shows_overdue(release_manager, cr):
    ChangeRequest.objects.filter(pk=cr.pk).update(change_type="emergency")
    cr = force_cr(cr, "approved")
    cr = services.change_request_implement(change_request=cr, actor=release_manager)
    assert cr.review_due_at == cr.implemented_at + timedelta(hours=72)
    assert not cr.review_overdue
    ChangeRequest.objects.filter(pk=cr.pk).update(review_due_at=timezone.now() - timedelta(hours=1))
    assert ChangeRequest.objects.get(pk=cr.pk).review_overdue


# --- votes ------------------------------------------------------------------------------------


@pytest.fixture
def submitted(cr, release_manager, quorum_policy):
    return services.change_request_submit(change_request=cr, actor=release_manager)


def test_a_vote_can_change_until_the_decision(submitted, cab_member):
    services.vote_cast(change_request=submitted, actor=cab_member, choice="reject", comment="risky")
    services.vote_cast(change_request=submitted, actor=cab_member, choice="abstain")
    assert Vote.objects.get().choice == "abstain"
    assert list(
        AuditEvent.objects.filter(action__startswith="vote.").values_list("action", flat=True)
    ) == ["vote.cast", "vote.change"]


def test_quorum_approves_and_further_votes_are_refused(submitted, cab_member, cab_chair):
    services.vote_cast(change_request=submitted, actor=cab_member, choice="approve")
    assert ChangeRequest.objects.get(pk=submitted.pk).state == "submitted"
    services.vote_cast(change_request=submitted, actor=cab_chair, choice="approve")
    cr = ChangeRequest.objects.get(pk=submitted.pk)
    assert cr.state == "approved"
    assert any("quorum reached" in r for r in cr.decision_reasons)
    with pytest.raises(TransitionNotAllowed):
        services.vote_cast(change_request=cr, actor=cab_member, choice="reject", comment="late")


def test_one_vote_per_member_is_a_database_constraint(submitted, cab_member):
    Vote.objects.create(change_request=submitted, voter=cab_member, choice="approve")
    with pytest.raises(IntegrityError):
        Vote.objects.create(change_request=submitted, voter=cab_member, choice="reject")


def test_requester_and_release_owner_cannot_vote_and_recusal_is_recorded(
    submitted, release_manager
):
    release_manager.groups.add(*UserFactory(roles=[Role.CAB_MEMBER]).groups.all())
    release_manager._releasegate_roles = None
    with pytest.raises(PermissionDenied, match="Separation of duties"):
        services.vote_cast(change_request=submitted, actor=release_manager, choice="approve")
    assert Recusal.objects.filter(change_request=submitted, user=release_manager).exists()


@pytest.mark.parametrize("persona", ["viewer", "outsider", "qa_lead"])
def test_non_members_cannot_vote(submitted, persona, request):
    with pytest.raises(PermissionDenied):
        services.vote_cast(
            change_request=submitted, actor=request.getfixturevalue(persona), choice="approve"
        )


def test_a_reject_needs_a_comment(submitted, cab_member):
    with pytest.raises(InvalidInput):
        services.vote_cast(change_request=submitted, actor=cab_member, choice="reject")


# --- release integration ----------------------------------------------------------------------


def _awaiting(make_release, policy):
    policy.requirements = []
    policy.save()
    release = make_release("in_progress")
    from releases import services as release_services

    return release_services.release_request_approval(release=release, actor=release.owner)


def test_cab_approval_approves_the_waiting_release(
    policy, quorum_policy, make_release, cab_member, cab_chair
):
    release = _awaiting(make_release, policy)
    cr = release.change_requests.get()
    services.vote_cast(change_request=cr, actor=cab_member, choice="approve")
    services.vote_cast(change_request=cr, actor=cab_chair, choice="approve")
    release.refresh_from_db()
    assert release.state == "approved"
    assert "CAB approved" in AuditEvent.objects.get(action="release.approve").reason


def test_a_chair_closing_a_short_item_rejects_and_sends_the_release_back(
    policy, quorum_policy, make_release, cab_member, cab_chair
):
    release = _awaiting(make_release, policy)
    cr = release.change_requests.get()
    meeting = services.meeting_create(
        actor=cab_chair, title="Weekly CAB", scheduled_at=timezone.now() + timedelta(hours=1)
    )
    items = services.meeting_build_agenda(meeting=meeting, actor=cab_chair)
    assert [i.change_request_id for i in items] == [cr.pk]
    assert ChangeRequest.objects.get(pk=cr.pk).state == "in_review"
    services.vote_cast(change_request=cr, actor=cab_member, choice="approve")
    item = services.agenda_item_close(item=items[0], actor=cab_chair)
    assert item.outcome == "rejected"
    release.refresh_from_db()
    assert release.state == "in_progress"
    assert ChangeRequest.objects.get(pk=cr.pk).state == "rejected"


def test_a_veto_from_a_mandatory_role_is_final_at_closing(
    quorum_policy, cr, release_manager, cab_member, cab_chair
):
    ChangeRequest.objects.filter(pk=cr.pk).update(risk_level="high")
    cr = services.change_request_submit(change_request=cr, actor=release_manager)
    security_cab = UserFactory(username="sec", roles=[Role.SECURITY_LEAD, Role.CAB_MEMBER])
    services.vote_cast(change_request=cr, actor=cab_member, choice="approve")
    services.vote_cast(
        change_request=cr, actor=security_cab, choice="reject", comment="no pen test"
    )
    services.vote_cast(change_request=cr, actor=cab_chair, choice="approve")
    assert ChangeRequest.objects.get(pk=cr.pk).state == "submitted"  # vetoed, chair records it
    meeting = services.meeting_create(
        actor=cab_chair, title="CAB", scheduled_at=timezone.now() + timedelta(hours=1)
    )
    item = services.agenda_item_add(meeting=meeting, change_request=cr, actor=cab_chair)
    assert services.agenda_item_close(item=item, actor=cab_chair).outcome == "rejected"
    assert "vetoed by security lead" in ChangeRequest.objects.get(pk=cr.pk).decision_reasons[0]


def test_agenda_reorder_and_meeting_close(quorum_policy, release_manager, cab_chair):
    now = timezone.now()
    crs = []
    for n in range(3):
        c = services.change_request_create(
            actor=release_manager,
            title=f"Change {n}",
            reason="r",
            implementation_plan="i",
            backout_plan="b",
            window_start=now + timedelta(days=1, hours=n),
            window_end=now + timedelta(days=1, hours=n + 1),
        )
        crs.append(services.change_request_submit(change_request=c, actor=release_manager))
    meeting = services.meeting_create(
        actor=cab_chair, title="CAB", scheduled_at=now + timedelta(hours=2)
    )
    items = services.meeting_build_agenda(meeting=meeting, actor=cab_chair)
    services.agenda_item_move(item=items[2], actor=cab_chair, position=1)
    order = list(
        AgendaItem.objects.filter(meeting=meeting).values_list("change_request_id", flat=True)
    )
    assert order == [crs[2].pk, crs[0].pk, crs[1].pk]
    services.meeting_close(meeting=meeting, actor=cab_chair)
    assert set(AgendaItem.objects.values_list("outcome", flat=True)) == {"rejected"}


def test_only_the_chair_runs_meetings(cab_member):
    with pytest.raises(PermissionDenied):
        services.meeting_create(actor=cab_member, title="x", scheduled_at=timezone.now())


def test_agenda_only_takes_changes_due_before_the_next_meeting(
    quorum_policy, release_manager, cab_chair
):
    now = timezone.now()

    def submit(title, days):
        c = services.change_request_create(
            actor=release_manager,
            title=title,
            reason="r",
            implementation_plan="i",
            backout_plan="b",
            window_start=now + timedelta(days=days),
            window_end=now + timedelta(days=days, hours=1),
        )
        return services.change_request_submit(change_request=c, actor=release_manager)

    soon, later = submit("Soon", 2), submit("Later", 10)
    this = services.meeting_create(actor=cab_chair, title="A", scheduled_at=now + timedelta(days=1))
    services.meeting_create(actor=cab_chair, title="B", scheduled_at=now + timedelta(days=8))
    items = services.meeting_build_agenda(meeting=this, actor=cab_chair)
    assert [i.change_request_id for i in items] == [soon.pk]
    assert later.state == "submitted"


def test_release_deployed_implements_its_approved_change(policy, make_release, release_manager):
    from releases import services as release_services

    release = make_release("in_progress")
    cr = services.change_request_create(
        actor=release_manager,
        title="x",
        release=release,
        reason="r",
        implementation_plan="i",
        backout_plan="b",
    )
    force_cr(cr, "approved")
    release = force_state(release, "deploying")
    release_services.release_mark_deployed(release=release, actor=release_manager)
    assert ChangeRequest.objects.get(pk=cr.pk).state == "implemented"


def test_a_scope_change_after_cab_approval_sends_the_change_back_to_the_cab(
    policy, quorum_policy, make_release, release_manager, cab_member, cab_chair
):
    from releases import services as release_services

    release = _awaiting(make_release, policy)
    cr = release.change_requests.get()
    services.vote_cast(change_request=cr, actor=cab_member, choice="approve")
    services.vote_cast(change_request=cr, actor=cab_chair, choice="approve")
    release.refresh_from_db()
    assert release.state == "approved"
    release_services.scope_item_add(release=release, actor=release_manager, title="Late extra")
    cr.refresh_from_db()
    assert cr.state == "needs_info" and not cr.votes.exists()
    event = AuditEvent.objects.get(action="change_request.withdraw_approval")
    assert len(event.before["votes"]) == 2 and "added" in event.reason
    # Asking for approval again resubmits it; the CAB votes again.
    release.refresh_from_db()
    release = release_services.release_request_approval(release=release, actor=release_manager)
    cr.refresh_from_db()
    assert cr.state == "submitted"


def test_cancelling_the_release_withdraws_its_open_change_request(
    policy, quorum_policy, make_release, release_manager
):
    from releases import services as release_services

    release = _awaiting(make_release, policy)
    release_services.release_cancel(release=release, actor=release_manager, reason="Descoped")
    cr = release.change_requests.get()
    assert cr.state == "closed"
    assert "cancelled" in AuditEvent.objects.get(action="change_request.withdraw").reason


@pytest.fixture
def transition_spy():
    """A transition listener registered for one test: records what every transition told it."""
    from releases import readiness

    calls = []

    def spy(*, release, actor, name, from_state):
        calls.append((release.pk, name, from_state, release.state, getattr(actor, "pk", None)))

    readiness.register_transition_listener(spy)
    yield calls
    readiness._transition_listeners.remove(spy)


def test_a_cab_decision_moves_the_release_through_the_same_door_as_a_person(
    policy, quorum_policy, make_release, cab_member, cab_chair, transition_spy
):
    release = _awaiting(make_release, policy)
    # The user transition (request approval) ran the listeners ...
    assert transition_spy[-1] == (
        release.pk,
        "request_approval",
        "in_progress",
        "awaiting_approval",
        release.owner.pk,
    )
    cr = release.change_requests.get()
    services.vote_cast(change_request=cr, actor=cab_member, choice="approve")
    services.vote_cast(change_request=cr, actor=cab_chair, choice="approve")
    # ... and so did the system transition the chair's vote decided, with the same audit shape.
    assert transition_spy[-1] == (
        release.pk,
        "approve",
        "awaiting_approval",
        "approved",
        cab_chair.pk,
    )
    events = AuditEvent.objects.filter(action__in=["release.request_approval", "release.approve"])
    assert [(e.from_state, e.to_state) for e in events.order_by("id")] == [
        ("in_progress", "awaiting_approval"),
        ("awaiting_approval", "approved"),
    ]


def test_a_cab_rejection_sends_the_release_back_through_the_door(
    policy, quorum_policy, make_release, cab_member, cab_chair, transition_spy
):
    release = _awaiting(make_release, policy)
    meeting = services.meeting_create(
        actor=cab_chair, title="CAB", scheduled_at=timezone.now() + timedelta(hours=1)
    )
    (item,) = services.meeting_build_agenda(meeting=meeting, actor=cab_chair)
    assert services.agenda_item_close(item=item, actor=cab_chair).outcome == "rejected"
    assert transition_spy[-1] == (
        release.pk,
        "request_changes",
        "awaiting_approval",
        "in_progress",
        cab_chair.pk,
    )
