"""Gate checks: instantiation at planning, manual sign-offs and waivers, automated results
from CI (the one seam pipelines calls), and invalidation when the release changes."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction
from django_fsm import ConcurrentTransition, can_proceed

from core.audit import audit_record
from core.errors import InvalidInput, NotFound, PermissionDenied, TransitionNotAllowed
from core.roles import has_role, role_people, role_person
from releases import services as release_services
from releases.choices import TERMINAL_STATES, ReleaseState
from releases.models import Deployment, Release

from .. import gate_listeners
from ..choices import GateKind, GateStatus
from ..models import GateCheck, GatePolicy, PolicySnapshot
from ._common import (
    lock_release,
    refuse_own_release,
    require_live,
    require_manager,
    require_person,
    require_text,
)
from .changes import change_requests_withdraw_approval
from .risk import effective_risk_level, risk_assess

GATE_STATUS_WORDS = {
    GateStatus.PASSED: "signed off",
    GateStatus.FAILED: "rejected",
    GateStatus.WAIVED: "waived",
    GateStatus.PENDING: "pending",
}


def _lock_gate(gate: GateCheck | int) -> GateCheck:
    pk = gate.pk if isinstance(gate, GateCheck) else gate
    try:
        # Lock the gate row only (the release is read): lock order stays release → gate.
        return (
            GateCheck.objects.select_for_update(of=("self",)).select_related("release").get(pk=pk)
        )
    except GateCheck.DoesNotExist:
        raise NotFound("No such gate check.") from None


def _already_decided(gate: GateCheck) -> TransitionNotAllowed:
    who = gate.decided_by.get_username() if gate.decided_by_id else "an automated check"
    when = f" at {gate.decided_at:%Y-%m-%d %H:%M} UTC" if gate.decided_at else ""
    return TransitionNotAllowed(
        f"“{gate.label}” is already {GATE_STATUS_WORDS[gate.status]} by {who}{when}."
    )


def _audit_gate(gate: GateCheck, *, actor, action: str, from_state: str, reason: str = ""):
    audit_record(
        actor=actor,
        action=action,
        target=gate,
        release=gate.release,
        from_state=from_state,
        to_state=gate.status,
        reason=reason,
        after={"key": gate.key, "label": gate.label, "detail": gate.detail}
        if gate.detail
        else None,
    )
    # Every recorded change of a gate (result, sign-off, waiver, reset) passes here.
    gate_listeners.notify(gate)


# --- instantiation ----------------------------------------------------------------------------


def select_policy(*, release_type: str, risk_level: str) -> GatePolicy | None:
    """The active policy with the highest priority that matches the type and risk."""
    for policy in GatePolicy.objects.filter(is_active=True).order_by("-priority", "id"):
        if policy.matches(release_type=release_type, risk_level=risk_level):
            return policy
    return None


def gates_instantiate(*, release: Release, actor=None) -> PolicySnapshot:
    """Snapshot the matching gate policy onto a release being planned: one GateCheck per
    requirement, plus a PolicySnapshot saying which policy version applies.

    Called by the transition listener inside release_plan's transaction (the release row is
    locked); the plan's own audit event records the decision, so nothing is audited here.
    Idempotent: an existing snapshot is returned unchanged.
    """
    existing = PolicySnapshot.objects.filter(release=release).first()
    if existing:
        return existing
    risk_assess(release=release, actor=actor, audit=False)
    risk = effective_risk_level(release)
    policy = select_policy(release_type=release.release_type, risk_level=risk)
    snapshot = PolicySnapshot.objects.create(
        release=release,
        policy=policy,
        policy_name=policy.name if policy else "",
        policy_version=policy.version if policy else None,
        risk_level=risk,
        change_request=policy.change_request if policy else "",
        requirements=list(policy.requirements) if policy else [],
        promotion_path=list(policy.promotion_path or []) if policy else [],
    )
    GateCheck.objects.bulk_create(
        [
            GateCheck(
                release=release,
                policy=policy,
                policy_name=snapshot.policy_name,
                policy_version=snapshot.policy_version or 0,
                key=req["key"],
                position=position,
                stage=req["stage"],
                kind=req["kind"],
                label=req["label"],
                role=req.get("role") or "",
                threshold=req.get("threshold"),
                requirement=req,
            )
            for position, req in enumerate(snapshot.requirements)
        ]
    )
    return snapshot


# --- manual decisions -------------------------------------------------------------------------


def may_waive(actor, gate: GateCheck) -> bool:
    """Whether the actor holds a role that may waive this gate (the rule gate_waive
    enforces; pages ask it before offering "Waive")."""
    return has_role(actor, *gate.waivable_by)


def _manual_guard(gate: GateCheck, actor, verb: str) -> None:
    require_person(actor)
    if not gate.is_manual:
        raise InvalidInput(
            f"“{gate.label}” is an automated check: its result comes from CI, not a sign-off."
        )
    if not has_role(actor, gate.role):
        raise PermissionDenied(f"Only {role_person(gate.role)} can {verb} “{gate.label}”.")
    refuse_own_release(actor, gate.release, f"{verb} its gates")
    require_live(gate.release)


def _decide(gate: GateCheck, method, *, actor, comment: str, action: str) -> GateCheck:
    if not can_proceed(method):
        raise _already_decided(gate)
    from_state = gate.status
    method()
    gate.decided_by = actor
    gate.comment = comment
    gate.detail = ""
    try:
        gate.save()
    except ConcurrentTransition:
        raise TransitionNotAllowed(
            f"“{gate.label}” was decided by someone else at the same time; reload."
        ) from None
    _audit_gate(gate, actor=actor, action=action, from_state=from_state, reason=comment)
    return gate


def gate_sign_off(*, gate: GateCheck | int, actor, comment: str = "") -> GateCheck:
    """pending → passed: a manual sign-off by a user holding the gate's role.

    Permissions: holders of the gate's role, except the release owner (separation of
    duties). Two approvers at once: the row lock serialises them; the second is refused
    with who signed first. Side effects: one audit event ``gate.sign_off``.
    """
    with transaction.atomic():
        gate = _lock_gate(gate)
        _manual_guard(gate, actor, "sign off")
        return _decide(
            gate, gate.pass_, actor=actor, comment=comment.strip(), action="gate.sign_off"
        )


def gate_reject(*, gate: GateCheck | int, actor, comment: str) -> GateCheck:
    """pending → failed: the role holder refuses to sign off, saying why (required).

    Permissions as gate_sign_off. Side effects: one audit event ``gate.reject``.
    """
    comment = require_text(comment, "A comment explaining the rejection")
    with transaction.atomic():
        gate = _lock_gate(gate)
        _manual_guard(gate, actor, "reject")
        return _decide(gate, gate.fail, actor=actor, comment=comment, action="gate.reject")


def gate_waive(*, gate: GateCheck | int, actor, justification: str) -> GateCheck:
    """pending | failed → waived, with a mandatory justification.

    Permissions: a role listed in the requirement's ``waivable_by`` (default CAB chair and
    administrator), never the release owner. Side effects: one audit event ``gate.waive``.
    """
    justification = require_text(justification, "A justification", "justification")
    with transaction.atomic():
        gate = _lock_gate(gate)
        require_person(actor)
        if not may_waive(actor, gate):
            allowed = role_people(gate.waivable_by)
            raise PermissionDenied(f"“{gate.label}” can be waived only by {allowed}.")
        refuse_own_release(actor, gate.release, "waive its gates")
        require_live(gate.release)
        return _decide(gate, gate.waive, actor=actor, comment=justification, action="gate.waive")


def gate_reset(*, gate: GateCheck | int, actor, reason: str) -> GateCheck:
    """failed | passed | waived → pending: re-run a failed check or withdraw a decision.

    Permissions: release managers of the release. Side effects: ``gate.reset`` audit event.
    """
    reason = require_text(reason, "A reason", "reason")
    with transaction.atomic():
        gate = _lock_gate(gate)
        require_manager(actor, gate.release)
        require_live(gate.release)
        if not can_proceed(gate.reset):
            raise TransitionNotAllowed(f"“{gate.label}” is already pending.")
        from_state = gate.status
        gate.reset()
        gate.comment = ""
        gate.save()
        _audit_gate(gate, actor=actor, action="gate.reset", from_state=from_state, reason=reason)
        return gate


# --- automated results ------------------------------------------------------------------------


def gate_record_result(
    *,
    gate: GateCheck | int,
    status: str,
    actor=None,
    run_id: int | None = None,
    commit_sha: str = "",
    detail: str = "",
) -> GateCheck:
    """Record an automated check's result (passed or failed): the one seam pipelines calls.

    Pipelines decides what a run means for a gate (pipelines/verdicts.py) and passes the
    deciding run's id and commit here; governance keeps the gate's lifecycle and its audit.

    Idempotent: the same result again changes nothing and writes nothing. A result different
    from the current one moves the gate (through pending when needed) and writes one audit
    event ``gate.result``. Waived gates keep their waiver. Manual gates are refused.
    Permissions: internal (called by services and workers; the actor is the token or None).
    """
    if status not in (GateStatus.PASSED, GateStatus.FAILED):
        raise InvalidInput("An automated result is passed or failed.")
    with transaction.atomic():
        gate = _lock_gate(gate)
        if gate.is_manual:
            raise InvalidInput(f"“{gate.label}” is a manual sign-off, not an automated check.")
        if gate.status == GateStatus.WAIVED or gate.release.state in TERMINAL_STATES:
            return gate
        same_run = run_id is None or gate.run_id == run_id
        if gate.status == status and same_run and gate.detail == detail[:500]:
            return gate
        from_state = gate.status
        if gate.status != GateStatus.PENDING and gate.status != status:
            gate.reset()
        if gate.status == GateStatus.PENDING:
            (gate.pass_ if status == GateStatus.PASSED else gate.fail)()
        if run_id is not None:
            gate.run_id = run_id
            gate.commit_sha = commit_sha
        gate.detail = detail[:500]
        gate.decided_by = None
        gate.save()
        if from_state != gate.status:
            _audit_gate(
                gate, actor=actor, action="gate.result", from_state=from_state, reason=detail
            )
        return gate


def gates_evaluate_for_release(*, release: Release | int, actor=None) -> int:
    """Evaluate the gates whose evidence lives in the release itself: rollback rehearsed
    (the rollback plan's rehearsal date) and staging validated (a succeeded deployment of
    the release to a non-production environment). Returns how many gates changed."""
    with transaction.atomic():
        release = lock_release(release)
        if release.state in TERMINAL_STATES:
            return 0
        changed = 0
        for gate in release.gate_checks.filter(
            kind__in=[GateKind.ROLLBACK_REHEARSED, GateKind.STAGING_VALIDATED]
        ):
            result = _release_result(gate, release)
            if result is None:
                continue
            before = gate.status
            updated = gate_record_result(gate=gate, status=result[0], actor=actor, detail=result[1])
            changed += int(updated.status != before)
        return changed


def _release_result(gate: GateCheck, release: Release) -> tuple[str, str] | None:
    if gate.kind == GateKind.ROLLBACK_REHEARSED:
        plan = getattr(release, "rollback_plan", None)
        if plan and plan.rehearsed_at:
            return GateStatus.PASSED, f"rehearsed {plan.rehearsed_at:%Y-%m-%d}"
        return None
    deployment = (
        Deployment.objects.filter(release=release, environment__is_production=False)
        .exclude(state="pending")
        .exclude(state="in_progress")
        .order_by("-finished_at", "-id")
        .first()
    )
    if deployment is None:
        return None
    if deployment.state == "succeeded":
        return GateStatus.PASSED, f"deployed to {deployment.environment} and succeeded"
    return GateStatus.FAILED, f"deployment to {deployment.environment} {deployment.state}"


# --- invalidation -----------------------------------------------------------------------------


def gates_invalidate(*, release: Release, actor, what: str, reason: str) -> int:
    """Reset the decided gates that a change of ``what`` (scope, rollback_plan, build,
    window) invalidates, each with a ``gate.invalidate`` audit event saying why; and withdraw
    the release's approval (approved → in_progress) when its evidence changed.

    Runs inside the caller's transaction with the release locked (the change listener of
    releases.readiness, or pipelines.verdicts.gates_evaluate_for_run). Scope changes after
    approval are sent back by the releases app itself, so they are not reopened here.
    """
    affected = [
        g
        for g in release.gate_checks.select_for_update().exclude(status=GateStatus.PENDING)
        if what in g.invalidated_by
    ]
    for gate in affected:
        from_state = gate.status
        gate.release = release
        gate.reset()
        gate.comment = ""
        gate.save()
        _audit_gate(
            gate,
            actor=actor,
            action="gate.invalidate",
            from_state=from_state,
            reason=f"Invalidated: {reason}",
        )
    if what in ("scope", "build", "rollback_plan"):
        change_requests_withdraw_approval(release=release, actor=actor, reason=reason)
    if (
        release.state == ReleaseState.APPROVED
        and what in ("build", "rollback_plan")
        or (release.state == ReleaseState.APPROVED and affected and what == "window")
    ):
        release_services.release_transition(
            release=release,
            actor=actor,
            name="reopen",
            reason=f"Approval withdrawn: {reason}",
            system=True,
        )
    return len(affected)


def on_release_change(*, release: Release, actor, what: str, reason: str) -> None:
    """releases.readiness change listener: invalidate, then re-read release evidence."""
    gates_invalidate(release=release, actor=actor, what=what, reason=reason)
    if what == "rollback_plan":
        for gate in release.gate_checks.filter(kind=GateKind.ROLLBACK_REHEARSED):
            result = _release_result(gate, release)
            if result:
                gate_record_result(gate=gate, status=result[0], actor=actor, detail=result[1])


def pending_manual_gates(gates: Iterable[GateCheck]) -> list[GateCheck]:
    return [g for g in gates if g.is_manual and not g.is_done]


__all__ = [
    "gate_record_result",
    "gate_reject",
    "gate_reset",
    "gate_sign_off",
    "gate_waive",
    "gates_evaluate_for_release",
    "gates_instantiate",
    "gates_invalidate",
    "on_release_change",
    "select_policy",
]
