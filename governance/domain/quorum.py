"""CAB quorum: does a set of votes approve a change request, and why (not)?

The Change Advisory Board decides by vote.  This module turns a policy and the
current votes into a :class:`Decision` with an outcome and plain-language reasons,
so the CAB workbench can show members what is still missing and the chair can
record a decision that explains itself in the audit trail.  It is pure: callers
load votes from the database (one per member, enforced there) and choose the policy.

Rules (in this order)
=====================

1. **Veto.**  For ``high``/``critical`` risk, a ``reject`` from a voter who holds one
   of the policy's mandatory roles vetoes the change (when ``policy.veto`` is on):
   the outcome is ``rejected`` immediately, whatever the other votes say.  Votes can
   still change until the chair records the decision, so a withdrawn reject lifts
   the veto on the next evaluation.
2. **Quorum.**  At least ``min_votes`` votes must be cast.  *Abstentions count
   towards the quorum*: an abstaining member took part in the meeting, and not
   counting them would let a board that mostly abstains stall forever.
3. **Approval share** = approves / (approves + rejects).  *Abstentions are left out
   of the denominator*: an abstention is "no opinion", not a soft reject.  With no
   approve or reject at all the share is undefined and the threshold is not met.
   The comparison is exact (fractions), so 2 of 3 meets a 2/3 threshold.
4. **Mandatory roles** (``high``/``critical`` risk only): every mandatory role needs
   an approve or reject from someone holding it; an abstention does not satisfy it,
   because the point of a mandatory role is that its expert has taken a position.

The outcome is ``approved`` when 2–4 hold and there is no veto.  Otherwise it is
``rejected`` on a veto or when ``closing`` (the chair closes the item, so whatever
is still missing becomes a rejection), and ``pending`` while the item is open.

Emergency changes use a smaller board; :meth:`QuorumPolicy.emergency` derives that
policy from the normal one, but callers may equally store a separate policy.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Literal

__all__ = [
    "CHOICES",
    "MANDATORY_ROLE_RISKS",
    "RISK_LEVELS",
    "Choice",
    "Decision",
    "Outcome",
    "QuorumPolicy",
    "Vote",
    "evaluate",
    "role_label",
]

Choice = Literal["approve", "reject", "abstain"]
Outcome = Literal["approved", "rejected", "pending"]
CHOICES: tuple[str, ...] = ("approve", "reject", "abstain")
RISK_LEVELS: tuple[str, ...] = ("low", "medium", "high", "critical")
#: Risk levels for which mandatory roles (and their veto) apply.
MANDATORY_ROLE_RISKS: frozenset[str] = frozenset({"high", "critical"})


def role_label(role: str) -> str:
    """Human words for a role code: ``"security_lead"`` → ``"security lead"``."""
    return role.replace("_", " ").replace("-", " ").strip()


def _as_share(value: Decimal | Fraction | float | int | str) -> Decimal | Fraction:
    """Decimals and fractions are kept exact (a two-thirds majority is ``Fraction(2, 3)``)."""
    if isinstance(value, Decimal | Fraction):
        return value
    try:
        # str() first so that 0.66 becomes Decimal("0.66"), not its binary expansion.
        return Decimal(str(value))
    except InvalidOperation as exc:
        raise ValueError(f"approval share {value!r} is not a number") from exc


def _percent(value: Fraction | Decimal) -> str:
    """50% / 66.7%: whole numbers stay whole, others get one decimal."""
    pct = Fraction(value) * 100
    if pct.denominator == 1:
        return f"{pct.numerator}%"
    return f"{float(pct):.1f}%"


@dataclass(frozen=True)
class QuorumPolicy:
    """How many votes, what share of approvals, and whose votes a CAB item needs.

    ``approval_share`` is a number in (0, 1], kept exact: a ``Decimal`` (as stored in
    the database) or a ``Fraction`` for thirds; floats are converted through their
    decimal text so ``0.66`` means exactly 66%.  ``mandatory_roles`` only apply to
    high and critical risk; ``veto`` makes a reject from such a role final.
    """

    min_votes: int
    approval_share: Decimal | Fraction
    mandatory_roles: frozenset[str] = frozenset()
    veto: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.min_votes, bool) or not isinstance(self.min_votes, int):
            raise ValueError("min_votes must be an integer")
        if self.min_votes < 1:
            raise ValueError("min_votes must be at least 1")
        share = _as_share(self.approval_share)
        if not 0 < share <= 1:
            raise ValueError("approval_share must be greater than 0 and at most 1")
        object.__setattr__(self, "approval_share", share)
        roles = frozenset(self.mandatory_roles)
        if any(not isinstance(r, str) or not r.strip() for r in roles):
            raise ValueError("mandatory roles must be non-empty strings")
        object.__setattr__(self, "mandatory_roles", roles)

    @classmethod
    def emergency(cls, default: QuorumPolicy, *, min_votes: int | None = None) -> QuorumPolicy:
        """The emergency-CAB variant of ``default``: same bar, fewer people.

        An emergency CAB convenes at short notice, so the quorum is halved (rounded
        up, at least 1) unless ``min_votes`` says otherwise.  The approval share and
        the mandatory roles stay: urgency is not a reason to skip the security lead
        on a high-risk change, and the post-implementation review catches the rest.
        """
        votes = min_votes if min_votes is not None else max(1, math.ceil(default.min_votes / 2))
        return replace(default, min_votes=votes)


@dataclass(frozen=True)
class Vote:
    """One member's current vote; ``roles`` are the roles the voter holds."""

    voter_id: Hashable
    choice: Choice
    roles: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if self.choice not in CHOICES:
            raise ValueError(f"vote choice must be one of {', '.join(CHOICES)}")
        object.__setattr__(self, "roles", frozenset(self.roles))


@dataclass(frozen=True)
class Decision:
    """The outcome of :func:`evaluate` and the plain-language reasons behind it.

    ``reasons`` lists every rule that was checked, unmet ones first, so the same
    list explains an approval, a rejection and what a pending item still needs.
    """

    outcome: Outcome
    reasons: list[str]
    approves: int = 0
    rejects: int = 0
    abstains: int = 0
    share: Fraction | None = None
    quorum_met: bool = False
    share_met: bool = False
    missing_roles: frozenset[str] = frozenset()
    vetoed_by: frozenset[Hashable] = frozenset()

    @property
    def is_final(self) -> bool:
        """Whether the chair could record this outcome now."""
        return self.outcome != "pending"


def evaluate(
    policy: QuorumPolicy, votes: Iterable[Vote], risk: str, closing: bool = False
) -> Decision:
    """Evaluate the current ``votes`` on an item of the given ``risk`` level.

    ``closing=True`` means the chair is closing the item: an outcome that would be
    ``pending`` becomes ``rejected``.  Raises :class:`ValueError` for an unknown risk
    level or a voter who appears twice (the database allows one vote per member, so
    a duplicate means the caller built the list wrongly).
    """
    if risk not in RISK_LEVELS:
        raise ValueError(f"risk must be one of {', '.join(RISK_LEVELS)}, not {risk!r}")
    ballot = list(votes)
    dupes = [v for v, n in Counter(vote.voter_id for vote in ballot).items() if n > 1]
    if dupes:
        raise ValueError(f"voter(s) {', '.join(map(str, dupes))} voted more than once")

    counts = Counter(vote.choice for vote in ballot)
    approves, rejects, abstains = counts["approve"], counts["reject"], counts["abstain"]
    cast = len(ballot)
    mandatory = policy.mandatory_roles if risk in MANDATORY_ROLE_RISKS else frozenset()

    # 1. Veto
    vetoers = [v for v in ballot if v.choice == "reject" and v.roles & mandatory]
    vetoed = policy.veto and bool(vetoers)

    # 2. Quorum (abstentions count)
    quorum_met = cast >= policy.min_votes
    abstain_note = f" ({abstains} abstention{'s' if abstains != 1 else ''})" if abstains else ""
    if quorum_met:
        quorum_reason = f"quorum reached: {cast} votes cast, {policy.min_votes} required"
    else:
        quorum_reason = f"{cast} of {policy.min_votes} required votes cast"
    quorum_reason += abstain_note

    # 3. Approval share (abstentions excluded from the denominator)
    decisive = approves + rejects
    threshold = Fraction(policy.approval_share)
    share = Fraction(approves, decisive) if decisive else None
    share_met = share is not None and share >= threshold
    if share is None:
        share_reason = (
            f"no approve or reject votes yet; approval share of {_percent(threshold)} "
            "needed (abstentions do not count towards the share)"
        )
    elif share_met:
        share_reason = f"approval share {_percent(share)} meets {_percent(threshold)}"
    else:
        share_reason = f"approval share {_percent(share)} below {_percent(threshold)}"

    # 4. Mandatory roles need a non-abstain vote
    positions = [v for v in ballot if v.choice != "abstain"]
    missing = frozenset(r for r in mandatory if not any(r in v.roles for v in positions))
    role_reasons: list[tuple[bool, str]] = []
    for role in sorted(mandatory):
        label = role_label(role)
        if role not in missing:
            role_reasons.append((True, f"{label} has voted (mandatory for {risk} risk)"))
        elif any(role in v.roles for v in ballot):
            role_reasons.append(
                (False, f"{label} abstained; mandatory for {risk} risk, needs approve or reject")
            )
        else:
            role_reasons.append((False, f"{label} has not voted (mandatory for {risk} risk)"))

    checks: list[tuple[bool, str]] = [
        (quorum_met, quorum_reason),
        (share_met, share_reason),
        *role_reasons,
    ]
    reasons = [text for ok, text in checks if not ok] + [text for ok, text in checks if ok]
    if vetoed:
        veto_roles = sorted({r for v in vetoers for r in v.roles & mandatory})
        reasons.insert(0, "vetoed by " + ", ".join(role_label(r) for r in veto_roles))

    approved = quorum_met and share_met and not missing and not vetoed
    outcome: Outcome
    if approved:
        outcome = "approved"
    elif vetoed or closing:
        outcome = "rejected"
        if closing and not vetoed:
            reasons.insert(0, "closed by the chair without reaching approval")
    else:
        outcome = "pending"

    return Decision(
        outcome=outcome,
        reasons=reasons,
        approves=approves,
        rejects=rejects,
        abstains=abstains,
        share=share,
        quorum_met=quorum_met,
        share_met=share_met,
        missing_roles=missing,
        vetoed_by=frozenset(v.voter_id for v in vetoers) if vetoed else frozenset(),
    )
