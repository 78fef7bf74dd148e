"""Property: casting any sequence of votes through the service ends exactly where the pure
quorum rule says — one vote per member (the last one), approved from the first moment the
rule approves, and every vote after the decision refused."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.errors import TransitionNotAllowed
from core.models import AuditEvent
from core.roles import Role
from governance import services
from governance.domain import quorum
from governance.models import ChangeRequest, QuorumPolicyRecord, Vote
from governance.selectors import quorum_policy_for
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

MEMBERS = 6
votes_strategy = st.lists(
    st.tuples(
        st.integers(0, MEMBERS - 1),
        st.sampled_from(["approve", "reject", "abstain"]),
    ),
    max_size=14,
)


@pytest.fixture
def board(release_manager):
    QuorumPolicyRecord.objects.create(
        change_type="normal", min_votes=3, approval_share="0.6", mandatory_roles=["security_lead"]
    )
    members = [UserFactory(username=f"m{i}", roles=[Role.CAB_MEMBER]) for i in range(MEMBERS - 1)]
    members.append(UserFactory(username="msec", roles=[Role.CAB_MEMBER, Role.SECURITY_LEAD]))
    return release_manager, members


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(sequence=votes_strategy, risk=st.sampled_from(["low", "medium", "high", "critical"]))
def test_service_follows_the_quorum_rule(board, sequence, risk):
    requester, members = board
    now = timezone.now()
    cr = services.change_request_create(
        actor=requester,
        title="Property",
        risk_level=risk,
        reason="r",
        implementation_plan="i",
        backout_plan="b",
        window_start=now + timedelta(days=1),
        window_end=now + timedelta(days=1, hours=1),
    )
    cr = services.change_request_submit(change_request=cr, actor=requester)
    policy = quorum_policy_for(cr)
    expected: dict[int, str] = {}
    decided = False
    for index, choice in sequence:
        member = members[index]
        if decided:
            with pytest.raises(TransitionNotAllowed):
                services.vote_cast(change_request=cr, actor=member, choice=choice, comment="c")
            continue
        services.vote_cast(change_request=cr, actor=member, choice=choice, comment="c")
        expected[member.pk] = choice
        ballot = [
            quorum.Vote(voter_id=pk, choice=c, roles=frozenset(_roles(members, pk)))
            for pk, c in expected.items()
        ]
        decided = quorum.evaluate(policy, ballot, risk).outcome == "approved"

    cr = ChangeRequest.objects.get(pk=cr.pk)
    assert (cr.state == "approved") == decided
    stored = dict(Vote.objects.filter(change_request=cr).values_list("voter_id", "choice"))
    assert stored == expected
    approvals = AuditEvent.objects.filter(action="change_request.approve", target_id=str(cr.pk))
    assert approvals.count() == (1 if decided else 0)


def _roles(members, pk) -> set[str]:
    member = next(m for m in members if m.pk == pk)
    return {Role.CAB_MEMBER.value} | (
        {Role.SECURITY_LEAD.value} if member.username == "msec" else set()
    )
