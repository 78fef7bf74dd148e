"""What governance requires before a release's transitions, and "why is this blocked?".

Registered with releases.readiness in GovernanceConfig.ready():

- request_approval: every automated gate of the pre-approval stage passed or waived.
- approve: every pre-approval gate, including the manual sign-offs the approvers give from
  their inbox while the release awaits approval, and the change request approved when the
  policy asks for one.
- start_deployment: every pre-deployment gate; inside the deployment window; no freeze
  covering the release's services in production (unless an approved exception); no other
  release of the same services deploying.
- close: every post-deployment gate.

Providers only read; they never write.
"""

from __future__ import annotations

from datetime import datetime

from django.db.models import Q
from django.utils import timezone

from releases.choices import ReleaseState
from releases.models import Release
from releases.readiness import GOVERNED_TRANSITIONS, Blocker, blockers_for
from releases.roles import Role

from .choices import CHANGE_APPROVED_STATES, GATE_DONE, ChangeState, GateStage, GateStatus
from .domain import freeze as freeze_domain
from .models import CABMeeting, FreezeException, FreezeWindow, GateCheck

STAGE_FOR = {
    "request_approval": GateStage.PRE_APPROVAL,
    "approve": GateStage.PRE_APPROVAL,
    "start_deployment": GateStage.PRE_DEPLOYMENT,
    "close": GateStage.POST_DEPLOYMENT,
}


def _role_words(roles) -> str:
    return " or ".join(Role(r).label.lower() for r in roles if r in Role.values) or "nobody"


def _gate_blocker(gate: GateCheck) -> Blocker:
    if gate.is_manual:
        if gate.status == GateStatus.FAILED:
            return Blocker(
                "signoff_rejected",
                f"{gate.label} was rejected: {gate.comment}",
                f"release manager (re-open it) or {_role_words(gate.waivable_by)} (waive)",
            )
        return Blocker(
            "signoff_missing",
            f"{gate.label} is missing.",
            f"a {Role(gate.role).label.lower()} (not the release owner)",
        )
    if gate.status == GateStatus.FAILED:
        return Blocker(
            "gate_failed",
            f"{gate.label} failed" + (f": {gate.detail}" if gate.detail else "."),
            f"CI (a new passing run) or {_role_words(gate.waivable_by)} (waive)",
        )
    return Blocker(
        "gate_pending",
        f"{gate.label} has no result yet.",
        "CI (a pipeline run of this version)",
    )


def gate_blockers(release: Release, transition: str, gates=None) -> list[Blocker]:
    stage = STAGE_FOR[transition]
    gates = list(release.gate_checks.all()) if gates is None else gates
    relevant = [g for g in gates if g.stage == stage and g.status not in GATE_DONE]
    if transition == "request_approval":
        relevant = [g for g in relevant if not g.is_manual]
    return [_gate_blocker(g) for g in relevant]


def change_request_blockers(release: Release) -> list[Blocker]:
    snapshot = getattr(release, "policy_snapshot", None)
    needed = snapshot.change_request if snapshot else ""
    crs = list(release.change_requests.all())
    current = next((c for c in crs if c.state in CHANGE_APPROVED_STATES), None)
    if current is not None:
        return []
    live = next((c for c in crs if c.state not in (ChangeState.REJECTED, ChangeState.CLOSED)), None)
    if live is None:
        if not needed:
            return []
        return [
            Blocker(
                "change_request_missing",
                f"A {needed} change request is required; it opens when approval is requested.",
                "release manager",
            )
        ]
    if live.state in (ChangeState.DRAFT, ChangeState.NEEDS_INFO):
        return [
            Blocker(
                "change_request_not_submitted",
                f"CR-{live.number} is {live.get_state_display().lower()}; submit it to the CAB.",
                "release manager",
            )
        ]
    meeting = (
        CABMeeting.objects.filter(items__change_request=live, state="scheduled")
        .order_by("scheduled_at")
        .first()
    ) or CABMeeting.objects.filter(state="scheduled", scheduled_at__gte=timezone.now()).order_by(
        "scheduled_at"
    ).first()
    where = f"; next CAB meeting {meeting.scheduled_at:%Y-%m-%d %H:%M} UTC" if meeting else ""
    return [
        Blocker(
            "cab_pending",
            f"CR-{live.number} awaits the CAB decision{where}.",
            "CAB members (vote), CAB chair (decide)",
            until=meeting.scheduled_at if meeting else None,
        )
    ]


def active_freezes(release: Release, at: datetime) -> list[tuple[FreezeWindow, datetime]]:
    """Freezes covering the release's services in production at ``at``, with their end
    (following back-to-back occurrences)."""
    service_ids = [s.pk for s in release.services.all()]
    windows = (
        FreezeWindow.objects.filter(is_active=True)
        .filter(Q(services__isnull=True) | Q(services__in=service_ids))
        .filter(Q(environments__isnull=True) | Q(environments__is_production=True))
        .distinct()
    )
    found = []
    for window in windows:
        try:
            rule = window.rule()
        except freeze_domain.FreezeRuleError:
            continue
        end = freeze_domain.next_end_after(rule, at)
        if end is not None:
            found.append((window, end))
    return found


def freeze_blockers(release: Release, at: datetime) -> list[Blocker]:
    found = []
    for window, end in active_freezes(release, at):
        excepted = any(
            e.is_valid_at(at)
            for e in FreezeException.objects.filter(release=release, freeze=window)
        )
        if excepted:
            continue
        found.append(
            Blocker(
                "freeze",
                f"Freeze “{window.name}” ({window.description}) is in force until "
                f"{end:%Y-%m-%d %H:%M} UTC" + (f": {window.reason}" if window.reason else "."),
                "wait for the freeze to end, or the CAB chair / operations (approve an exception)",
                until=end,
            )
        )
    return found


def window_blockers(release: Release, at: datetime) -> list[Blocker]:
    if not (release.window_start and release.window_end):
        return [Blocker("no_window", "No deployment window is set.", "release manager")]
    if at < release.window_start:
        return [
            Blocker(
                "window_not_open",
                f"The deployment window opens at {release.window_start:%Y-%m-%d %H:%M} UTC.",
                "wait, or a release manager (move the window)",
                until=release.window_start,
            )
        ]
    if at >= release.window_end:
        return [
            Blocker(
                "window_closed",
                f"The deployment window closed at {release.window_end:%Y-%m-%d %H:%M} UTC.",
                "release manager (schedule a new window)",
            )
        ]
    return []


def conflict_blockers(release: Release) -> list[Blocker]:
    others = (
        Release.objects.filter(services__in=release.services.all(), state=ReleaseState.DEPLOYING)
        .exclude(pk=release.pk)
        .distinct()
    )
    return [
        Blocker(
            "conflict",
            f"{other} is deploying the same service right now.",
            "wait for it to finish",
        )
        for other in others
    ]


def governance_blockers(release: Release, transition: str) -> list[Blocker]:
    """The releases.readiness provider."""
    if transition not in GOVERNED_TRANSITIONS:
        return []
    now = timezone.now()
    found = gate_blockers(release, transition)
    if transition == "approve":
        found += change_request_blockers(release)
    if transition == "start_deployment":
        found += window_blockers(release, now)
        found += freeze_blockers(release, now)
        found += conflict_blockers(release)
    return found


# --- why is this blocked? ---------------------------------------------------------------------

NEXT_TRANSITIONS = {
    ReleaseState.DRAFT: ["plan"],
    ReleaseState.PLANNED: ["start_work"],
    ReleaseState.IN_PROGRESS: ["request_approval"],
    ReleaseState.AWAITING_APPROVAL: ["approve"],
    ReleaseState.APPROVED: ["start_deployment"],
    ReleaseState.DEPLOYING: ["mark_deployed"],
    ReleaseState.DEPLOYED: ["close"],
}


def release_blockers(release: Release, *, at: datetime | None = None) -> dict:
    """Every unmet requirement of the release's next forward transition(s), with who can
    resolve each and the earliest time it could proceed.

    ``earliest_at`` is when the release could move if nobody needs to act (now when nothing
    blocks; the latest time-bound blocker otherwise); ``needs_action`` says whether some
    blocker needs a person rather than time. For an approved release the window and freeze
    are also checked at the window's opening, so "earliest" accounts for a freeze then.
    """
    now = at or timezone.now()
    result = []
    for name in NEXT_TRANSITIONS.get(release.state, []):
        found = list(blockers_for(release, name))
        if name == "start_deployment" and release.window_start and now < release.window_start:
            # A freeze in force when the window opens pushes the earliest time further.
            found += [b for b in freeze_blockers(release, release.window_start) if b not in found]
        timed = [b.until for b in found if b.until is not None]
        needs_action = any(b.until is None for b in found)
        earliest = max(timed) if timed else (None if needs_action else now)
        result.append(
            {
                "transition": name,
                "ready": not found,
                "blockers": [b.as_dict() for b in found],
                "needs_action": needs_action,
                "earliest_at": earliest.isoformat() if earliest else None,
            }
        )
    return {
        "release": release.pk,
        "state": release.state,
        "checked_at": now.isoformat(),
        "transitions": result,
        "blocked": any(not t["ready"] for t in result),
    }
