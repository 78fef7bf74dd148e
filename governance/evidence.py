"""Governance's sections of a release's evidence pack (``releases.evidence``): its risk
assessment, gates, change requests with their votes, freeze exceptions and break-glass
overrides with their reviews. Registered in GovernanceConfig.ready(), at the positions the
pack has always listed them."""

from __future__ import annotations

from releases import evidence
from releases.evidence import iso, person
from releases.models import Release

from .choices import ChangeState, ChangeType, ExceptionState, GateStage, GateStatus, VoteChoice
from .models import BreakGlass, ChangeRequest, FreezeException, GateCheck, RiskAssessment


def risk_assessment(release: Release) -> dict | None:
    risk = RiskAssessment.objects.filter(release=release).first()
    if risk is None:
        return None
    return {
        "score": risk.score,
        "computed_level": risk.computed_level,
        "factors": risk.factors,
        "override_level": risk.override_level,
        "override_justification": risk.override_justification,
        "overridden_by": person(risk.overridden_by),
    }


def gates(release: Release) -> list[dict]:
    checks = GateCheck.objects.filter(release=release).select_related("decided_by", "run")
    return [
        {
            "stage": g.stage,
            "kind": g.kind,
            "label": g.label,
            "role": g.role,
            "status": g.status,
            "policy": f"{g.policy_name} v{g.policy_version}",
            "decided_by": person(g.decided_by),
            "decided_at": iso(g.decided_at),
            "comment": g.comment,
            "detail": g.detail,
            "run": None
            if g.run is None
            else {
                "provider": g.run.provider,
                "external_id": g.run.external_id,
                "attempt": g.run.attempt,
                "status": g.run.status,
                "commit_sha": g.run.commit_sha,
                "url": g.run.url,
            },
        }
        for g in checks
    ]


def change_requests(release: Release) -> list[dict]:
    requests = (
        ChangeRequest.objects.filter(release=release)
        .select_related("requested_by", "decided_by")
        .prefetch_related("votes__voter")
    )
    return [
        {
            "number": cr.number,
            "title": cr.title,
            "type": cr.change_type,
            "state": cr.state,
            "requested_by": person(cr.requested_by),
            "decided_by": person(cr.decided_by),
            "decided_at": iso(cr.decided_at),
            "decision_reasons": cr.decision_reasons,
            "votes": [
                {
                    "voter": person(v.voter),
                    "choice": v.choice,
                    "comment": v.comment,
                    "at": iso(v.updated_at),
                }
                for v in cr.votes.all()
            ],
        }
        for cr in requests
    ]


def freeze_exceptions(release: Release) -> list[dict]:
    exceptions = FreezeException.objects.filter(release=release).select_related(
        "freeze", "requested_by", "approver"
    )
    return [
        {
            "freeze": e.freeze.name,
            "justification": e.justification,
            "state": e.state,
            "requested_by": person(e.requested_by),
            "approver": person(e.approver),
            "expires_at": iso(e.expires_at),
        }
        for e in exceptions
    ]


def break_glass(release: Release) -> list[dict]:
    glasses = BreakGlass.objects.filter(release=release).select_related(
        "environment", "requested_by", "ended_by", "reviewed_by"
    )
    return [
        {
            "kind": g.kind,
            "environment": g.environment.slug if g.environment_id else None,
            "reason": g.reason,
            "requested_by": person(g.requested_by),
            "created_at": iso(g.created_at),
            "expires_at": iso(g.expires_at),
            "state": g.state,
            "ended_at": iso(g.ended_at),
            "ended_by": person(g.ended_by),
            "end_reason": g.end_reason,
            "review_state": g.review_state,
            "reviewed_by": person(g.reviewed_by),
            "reviewed_at": iso(g.reviewed_at),
            "review_note": g.review_note,
        }
        for g in glasses.order_by("created_at", "id")
    ]


def register() -> None:
    for kind, choices in (
        ("gate_stage", GateStage),
        ("gate_status", GateStatus),
        ("change_type", ChangeType),
        ("change_state", ChangeState),
        ("vote_choice", VoteChoice),
        ("exception_state", ExceptionState),
    ):
        evidence.register_labels(kind, choices)
    evidence.register_section("risk_assessment", risk_assessment, position=40)
    evidence.register_section("gates", gates, position=60)
    evidence.register_section("change_requests", change_requests, position=70)
    evidence.register_section("freeze_exceptions", freeze_exceptions, position=80)
    evidence.register_section("break_glass", break_glass, position=85)
