"""Races on PostgreSQL: votes on one change request, two approvers on one gate."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from django.utils import timezone

from core.errors import DomainError, TransitionNotAllowed
from core.models import AuditEvent
from core.roles import Role
from governance import services
from governance.models import ChangeRequest, GateCheck, QuorumPolicyRecord, Vote
from tests.concurrency import race
from tests.factories import UserFactory


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_twenty_threads_voting_end_with_one_vote_per_member_and_one_decision(
    require_postgres, release_manager
):
    QuorumPolicyRecord.objects.create(change_type="normal", min_votes=8, approval_share="0.6")
    now = timezone.now()
    cr = services.change_request_create(
        actor=release_manager,
        title="Race",
        reason="r",
        implementation_plan="i",
        backout_plan="b",
        window_start=now + timedelta(days=1),
        window_end=now + timedelta(days=1, hours=1),
    )
    cr = services.change_request_submit(change_request=cr, actor=release_manager)
    # 10 members, 2 threads each: every member casts and then changes (or races itself).
    members = [UserFactory(username=f"cab{i}", roles=[Role.CAB_MEMBER]) for i in range(10)]

    def vote(i: int):
        member = members[i % 10]
        rng = random.Random(i)
        outcomes = []
        for _ in range(3):
            choice = rng.choice(["approve", "approve", "abstain", "reject"])
            try:
                services.vote_cast(
                    change_request=cr.pk, actor=member, choice=choice, comment="because"
                )
                outcomes.append(choice)
            except TransitionNotAllowed as exc:
                outcomes.append(exc)
        return outcomes

    results = race(20, vote)
    assert not [r for r in results if isinstance(r, Exception)]
    cr.refresh_from_db()
    votes = list(Vote.objects.filter(change_request=cr))
    assert len({v.voter_id for v in votes}) == len(votes) <= 10
    decisions = AuditEvent.objects.filter(
        action__in=["change_request.approve", "change_request.reject"], target_id=str(cr.pk)
    )
    if cr.state == "approved":
        assert decisions.count() == 1
        # Nobody voted after the decision: every later attempt was refused.
        last_vote = max(v.updated_at for v in votes)
        assert last_vote <= cr.decided_at
    else:
        assert cr.state == "submitted" and decisions.count() == 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_twenty_threads_reach_exactly_one_approval(require_postgres, release_manager):
    QuorumPolicyRecord.objects.create(change_type="normal", min_votes=5, approval_share="0.5")
    now = timezone.now()
    cr = services.change_request_create(
        actor=release_manager,
        title="Race",
        reason="r",
        implementation_plan="i",
        backout_plan="b",
        window_start=now + timedelta(days=1),
        window_end=now + timedelta(days=1, hours=1),
    )
    cr = services.change_request_submit(change_request=cr, actor=release_manager)
    members = [UserFactory(username=f"m{i}", roles=[Role.CAB_MEMBER]) for i in range(20)]

    def vote(i: int):
        try:
            return services.vote_cast(change_request=cr.pk, actor=members[i], choice="approve")
        except DomainError as exc:
            return exc

    results = race(20, vote)
    accepted = [r for r in results if isinstance(r, Vote)]
    refused = [r for r in results if isinstance(r, TransitionNotAllowed)]
    assert len(accepted) == 5 and len(refused) == 15
    assert ChangeRequest.objects.get(pk=cr.pk).state == "approved"
    assert Vote.objects.filter(change_request=cr).count() == 5
    assert AuditEvent.objects.filter(action="change_request.approve").count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_approvers_signing_one_gate_give_one_sign_off_and_one_refusal(
    require_postgres, policy, make_release
):
    release = make_release("in_progress")
    gate = release.gate_checks.get(role="security_lead")
    approvers = [UserFactory(username=f"sec{i}", roles=[Role.SECURITY_LEAD]) for i in range(2)]

    def sign(i: int):
        try:
            return services.gate_sign_off(gate=gate.pk, actor=approvers[i], comment="ok")
        except DomainError as exc:
            return exc

    results = race(2, sign)
    assert sum(isinstance(r, GateCheck) for r in results) == 1
    (refusal,) = [r for r in results if isinstance(r, DomainError)]
    assert isinstance(refusal, TransitionNotAllowed)
    assert "already signed off by sec" in refusal.message
    assert AuditEvent.objects.filter(action="gate.sign_off").count() == 1
