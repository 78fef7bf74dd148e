"""CAB quorum: examples for the wording, properties for the rules."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from governance.domain.quorum import (
    MANDATORY_ROLE_RISKS,
    RISK_LEVELS,
    Decision,
    QuorumPolicy,
    Vote,
    evaluate,
)

SECURITY = "security_lead"
OPS = "ops"
ROLES = (SECURITY, OPS, "qa_lead", "product_owner")

POLICY = QuorumPolicy(
    min_votes=3, approval_share=Decimal("0.66"), mandatory_roles=frozenset({SECURITY})
)


def v(voter: int, choice: str, *roles: str) -> Vote:
    return Vote(voter_id=voter, choice=choice, roles=frozenset(roles))  # type: ignore[arg-type]


# -------------------------------------------------------------------- examples


def test_approved_with_quorum_share_and_mandatory_role() -> None:
    decision = evaluate(
        POLICY, [v(1, "approve", SECURITY), v(2, "approve"), v(3, "reject")], "high"
    )
    assert decision.outcome == "approved"
    assert decision.reasons == [
        "quorum reached: 3 votes cast, 3 required",
        "approval share 66.7% meets 66%",
        "security lead has voted (mandatory for high risk)",
    ]
    assert decision.share == Fraction(2, 3)
    assert decision.is_final


def test_pending_lists_what_is_missing_first() -> None:
    decision = evaluate(POLICY, [v(1, "approve"), v(2, "reject")], "high")
    assert decision.outcome == "pending"
    assert decision.reasons == [
        "2 of 3 required votes cast",
        "approval share 50% below 66%",
        "security lead has not voted (mandatory for high risk)",
    ]
    assert decision.missing_roles == {SECURITY}
    assert not decision.is_final


def test_closing_turns_pending_into_rejected_with_reasons() -> None:
    decision = evaluate(POLICY, [v(1, "approve"), v(2, "reject")], "high", closing=True)
    assert decision.outcome == "rejected"
    assert decision.reasons[0] == "closed by the chair without reaching approval"
    assert "2 of 3 required votes cast" in decision.reasons


def test_reject_from_mandatory_role_vetoes_high_risk() -> None:
    votes = [v(1, "approve"), v(2, "approve"), v(3, "approve"), v(4, "reject", SECURITY)]
    decision = evaluate(POLICY, votes, "critical")
    assert decision.outcome == "rejected"
    assert decision.reasons[0] == "vetoed by security lead"
    assert decision.vetoed_by == {4}


def test_no_veto_and_no_mandatory_roles_for_low_or_medium_risk() -> None:
    votes = [v(1, "approve"), v(2, "approve"), v(3, "approve"), v(4, "reject", SECURITY)]
    for risk in ("low", "medium"):
        decision = evaluate(POLICY, votes, risk)
        assert decision.outcome == "approved"
        assert not any("security lead" in r for r in decision.reasons)


def test_veto_can_be_switched_off() -> None:
    policy = QuorumPolicy(
        min_votes=3, approval_share=0.5, mandatory_roles=frozenset({SECURITY}), veto=False
    )
    votes = [v(1, "approve"), v(2, "approve"), v(3, "reject", SECURITY)]
    assert evaluate(policy, votes, "high").outcome == "approved"


def test_abstentions_count_for_quorum_but_not_for_share() -> None:
    votes = [v(1, "approve"), v(2, "abstain"), v(3, "abstain")]
    decision = evaluate(POLICY, votes, "low")
    assert decision.outcome == "approved"
    assert decision.share == 1
    assert decision.reasons[0] == "quorum reached: 3 votes cast, 3 required (2 abstentions)"


def test_only_abstentions_never_approve() -> None:
    votes = [v(1, "abstain"), v(2, "abstain"), v(3, "abstain")]
    decision = evaluate(POLICY, votes, "low")
    assert decision.outcome == "pending"
    assert decision.share is None
    assert decision.reasons[0].startswith("no approve or reject votes yet")


def test_abstention_from_mandatory_role_does_not_satisfy_it() -> None:
    votes = [v(1, "approve"), v(2, "approve"), v(3, "abstain", SECURITY)]
    decision = evaluate(POLICY, votes, "high")
    assert decision.outcome == "pending"
    assert decision.reasons[0] == (
        "security lead abstained; mandatory for high risk, needs approve or reject"
    )


def test_several_mandatory_roles_and_one_voter_holding_two() -> None:
    policy = QuorumPolicy(
        min_votes=2, approval_share=Decimal("0.5"), mandatory_roles=frozenset({SECURITY, OPS})
    )
    decision = evaluate(policy, [v(1, "approve", SECURITY, OPS), v(2, "reject")], "high")
    assert decision.outcome == "approved"
    decision = evaluate(policy, [v(1, "approve", SECURITY), v(2, "approve")], "high")
    assert decision.outcome == "pending"
    assert decision.reasons[0] == "ops has not voted (mandatory for high risk)"


def test_share_comparison_is_exact() -> None:
    two_thirds = QuorumPolicy(min_votes=3, approval_share=Fraction(2, 3))
    votes = [v(1, "approve"), v(2, "approve"), v(3, "reject")]
    assert evaluate(two_thirds, votes, "low").outcome == "approved"
    assert evaluate(QuorumPolicy(3, Decimal("0.67")), votes, "low").outcome == "pending"


def test_float_share_is_read_as_its_decimal_text() -> None:
    assert QuorumPolicy(min_votes=1, approval_share=0.66).approval_share == Decimal("0.66")  # type: ignore[arg-type]


def test_duplicate_voter_is_an_error() -> None:
    with pytest.raises(ValueError, match="voted more than once"):
        evaluate(POLICY, [v(1, "approve"), v(1, "reject")], "low")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_votes": 0, "approval_share": Decimal("0.5")}, "at least 1"),
        ({"min_votes": 1.5, "approval_share": Decimal("0.5")}, "integer"),
        ({"min_votes": 1, "approval_share": Decimal("0")}, "greater than 0"),
        ({"min_votes": 1, "approval_share": Decimal("1.01")}, "at most 1"),
        ({"min_votes": 1, "approval_share": "lots"}, "not a number"),
        (
            {"min_votes": 1, "approval_share": Decimal("0.5"), "mandatory_roles": frozenset({""})},
            "non-empty",
        ),
    ],
)
def test_invalid_policy(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        QuorumPolicy(**kwargs)  # type: ignore[arg-type]


def test_invalid_vote_and_risk() -> None:
    with pytest.raises(ValueError, match="vote choice"):
        Vote(voter_id=1, choice="maybe")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="risk must be one of"):
        evaluate(POLICY, [], "extreme")


def test_emergency_policy_halves_quorum_keeps_bar() -> None:
    normal = QuorumPolicy(
        min_votes=5, approval_share=Decimal("0.75"), mandatory_roles=frozenset({SECURITY})
    )
    emergency = QuorumPolicy.emergency(normal)
    assert emergency.min_votes == 3
    assert emergency.approval_share == normal.approval_share
    assert emergency.mandatory_roles == normal.mandatory_roles
    assert QuorumPolicy.emergency(QuorumPolicy(1, Decimal("0.5"))).min_votes == 1
    assert QuorumPolicy.emergency(normal, min_votes=2).min_votes == 2


# ------------------------------------------------------------------ properties

choices = st.sampled_from(["approve", "reject", "abstain"])
role_sets = st.frozensets(st.sampled_from(ROLES), max_size=2)
risks = st.sampled_from(RISK_LEVELS)


@st.composite
def ballots(draw: st.DrawFn, max_size: int = 8) -> list[Vote]:
    entries = draw(st.lists(st.tuples(choices, role_sets), max_size=max_size))
    return [Vote(voter_id=i, choice=c, roles=r) for i, (c, r) in enumerate(entries)]  # type: ignore[arg-type]


policies = st.builds(
    QuorumPolicy,
    min_votes=st.integers(min_value=1, max_value=6),
    approval_share=st.sampled_from(
        [Decimal("0.5"), Decimal("0.51"), Decimal("0.66"), Decimal("0.75"), Decimal("1")]
    ),
    mandatory_roles=st.frozensets(st.sampled_from(ROLES), max_size=2),
    veto=st.booleans(),
)


def _vetoed(policy: QuorumPolicy, votes: list[Vote], risk: str) -> bool:
    return (
        policy.veto
        and risk in MANDATORY_ROLE_RISKS
        and any(x.choice == "reject" and x.roles & policy.mandatory_roles for x in votes)
    )


@given(policies, ballots(), risks, st.booleans())
def test_mandatory_reject_is_always_a_veto(
    policy: QuorumPolicy, votes: list[Vote], risk: str, closing: bool
) -> None:
    decision = evaluate(policy, votes, risk, closing)
    if _vetoed(policy, votes, risk):
        assert decision.outcome == "rejected"
        assert decision.reasons[0].startswith("vetoed by ")


@given(policies, ballots(), risks, st.booleans())
def test_never_approved_below_min_votes_share_or_missing_roles(
    policy: QuorumPolicy, votes: list[Vote], risk: str, closing: bool
) -> None:
    decision = evaluate(policy, votes, risk, closing)
    if decision.outcome == "approved":
        assert len(votes) >= policy.min_votes
        approves = sum(x.choice == "approve" for x in votes)
        rejects = sum(x.choice == "reject" for x in votes)
        assert approves * 1 >= policy.approval_share * (approves + rejects)
        assert approves > 0
        if risk in MANDATORY_ROLE_RISKS:
            for role in policy.mandatory_roles:
                assert any(role in x.roles and x.choice != "abstain" for x in votes)


@given(policies, ballots(), risks, st.booleans())
def test_pending_if_and_only_if_open_and_undecided(
    policy: QuorumPolicy, votes: list[Vote], risk: str, closing: bool
) -> None:
    decision = evaluate(policy, votes, risk, closing)
    open_decision = evaluate(policy, votes, risk, closing=False)
    approved = open_decision.outcome == "approved"
    assert (decision.outcome == "pending") == (
        not closing and not approved and not _vetoed(policy, votes, risk)
    )
    # Closing never changes an approval or a veto, it only settles pending items.
    if open_decision.outcome != "pending":
        assert evaluate(policy, votes, risk, closing=True).outcome == open_decision.outcome


@given(policies, ballots(max_size=7), risks, st.booleans(), role_sets)
def test_an_extra_approve_never_hurts(
    policy: QuorumPolicy, votes: list[Vote], risk: str, closing: bool, roles: frozenset[str]
) -> None:
    before = evaluate(policy, votes, risk, closing)
    after = evaluate(
        policy, [*votes, Vote(voter_id="new", choice="approve", roles=roles)], risk, closing
    )
    if before.outcome == "approved":
        assert after.outcome == "approved"
    if before.outcome == "pending":
        assert after.outcome in ("pending", "approved")


@given(policies, ballots(max_size=7), risks)
def test_an_extra_reject_never_approves(policy: QuorumPolicy, votes: list[Vote], risk: str) -> None:
    before = evaluate(policy, votes, risk)
    after = evaluate(policy, [*votes, Vote(voter_id="new", choice="reject")], risk)
    if before.outcome != "approved":
        # A roleless reject can only complete the quorum; it never lifts the share.
        assert after.outcome != "approved" or (len(votes) < policy.min_votes and after.share_met)


@given(policies, ballots(max_size=7), risks)
def test_an_extra_abstention_never_changes_the_share(
    policy: QuorumPolicy, votes: list[Vote], risk: str
) -> None:
    before = evaluate(policy, votes, risk)
    after = evaluate(policy, [*votes, Vote(voter_id="new", choice="abstain")], risk)
    assert after.share == before.share
    assert after.abstains == before.abstains + 1


@given(policies, ballots(), risks, st.booleans(), st.randoms(use_true_random=False))
def test_vote_order_does_not_matter(
    policy: QuorumPolicy, votes: list[Vote], risk: str, closing: bool, rnd: object
) -> None:
    shuffled = list(votes)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    assert evaluate(policy, votes, risk, closing) == evaluate(policy, shuffled, risk, closing)


@given(policies, ballots(), st.sampled_from(["low", "medium"]), st.booleans())
def test_roles_are_irrelevant_below_high_risk(
    policy: QuorumPolicy, votes: list[Vote], risk: str, closing: bool
) -> None:
    stripped = [Vote(voter_id=x.voter_id, choice=x.choice) for x in votes]
    assert evaluate(policy, votes, risk, closing) == evaluate(policy, stripped, risk, closing)


@given(policies, ballots(), risks, st.booleans())
def test_decision_is_always_explained(
    policy: QuorumPolicy, votes: list[Vote], risk: str, closing: bool
) -> None:
    decision = evaluate(policy, votes, risk, closing)
    assert isinstance(decision, Decision)
    assert decision.outcome in ("approved", "rejected", "pending")
    assert decision.reasons and all(isinstance(r, str) and r for r in decision.reasons)
    assert decision.approves + decision.rejects + decision.abstains == len(votes)
