"""Demo governance: gate policies, quorum, a weekly freeze and CAB meetings, and a resolver
that satisfies each governed transition of the demo portfolio the way people would — CI
posts green runs, quinn/sam/omar/paula sign off, carla/chris (and sam for high risk) vote
in a CAB meeting, chris approves freeze exceptions — all through the services.

``demo.seed`` calls ``ensure_reference_data`` after the demo users exist, ``resolve``
(through ``demo.lifecycle``) before each governed transition, and ``after_seed`` once the
portfolio is built.
"""

from __future__ import annotations

import hashlib
from datetime import time, timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from governance import services
from governance.choices import VOTING_STATES, ChangeState, GateStatus, MeetingState
from governance.models import (
    CABMeeting,
    ChangeRequest,
    FreezeWindow,
    GateCheck,
    GatePolicy,
    PolicySnapshot,
    QuorumPolicyRecord,
)
from governance.readiness import freeze_blockers
from pipelines import promotion, verdicts
from pipelines.models import CheckKind, PipelineCheck, PipelineRun
from releases.choices import DeploymentState
from releases.models import Deployment, Environment, Release

SIGNERS = {
    "qa_lead": "quinn",
    "security_lead": "sam",
    "operations": "omar",
    "product_owner": "paula",
    "cab_chair": "chris",
}
CI = [
    {"stage": "pre_approval", "kind": "ci_green"},
    {"stage": "pre_approval", "kind": "tests_passed"},
    {"stage": "pre_approval", "kind": "no_critical_vulns"},
]


def _signoff(role: str, stage: str = "pre_approval") -> dict:
    return {"stage": stage, "kind": "manual", "role": role}


POLICIES = [
    (
        "Hotfix and emergency",
        30,
        {"release_types": ["hotfix", "emergency"], "change_request": "emergency"},
        [*CI, _signoff("operations"), _signoff("operations", "post_deployment")],
        "Lighter gates for urgent fixes; an emergency CAB decides and a review follows.",
    ),
    (
        "Critical risk",
        20,
        {"risk_levels": ["critical"], "change_request": "normal"},
        [
            *CI,
            {"stage": "pre_approval", "kind": "coverage_min", "threshold": 80},
            {"stage": "pre_approval", "kind": "performance_passed"},
            _signoff("security_lead"),
            _signoff("qa_lead"),
            _signoff("product_owner"),
            {"stage": "pre_deployment", "kind": "staging_validated"},
            {"stage": "pre_deployment", "kind": "rollback_rehearsed"},
            _signoff("operations", "pre_deployment"),
            _signoff("operations", "post_deployment"),
        ],
        "Everything, twice checked: security, QA, product and operations sign-offs.",
    ),
    (
        "High risk",
        15,
        {"risk_levels": ["high"], "change_request": "normal"},
        [
            *CI,
            {"stage": "pre_approval", "kind": "coverage_min", "threshold": 75},
            _signoff("security_lead"),
            _signoff("qa_lead"),
            {"stage": "pre_deployment", "kind": "staging_validated"},
            {"stage": "pre_deployment", "kind": "rollback_rehearsed"},
            _signoff("operations", "post_deployment"),
        ],
        "CAB decision, security and QA sign-offs, rehearsed rollback.",
    ),
    (
        "Medium risk",
        10,
        {"risk_levels": ["medium"], "change_request": "normal"},
        [
            *CI,
            {"stage": "pre_approval", "kind": "coverage_min", "threshold": 70},
            _signoff("qa_lead"),
            {"stage": "pre_deployment", "kind": "staging_validated"},
        ],
        "CI evidence, a QA sign-off and a CAB decision.",
    ),
    (
        "Low risk (standard change)",
        5,
        {"risk_levels": ["low"], "change_request": "standard"},
        [*CI],
        "Pre-approved standard change: green CI is enough.",
    ),
]


def _user(username: str):
    return get_user_model().objects.get(username=username)


def ensure_reference_data() -> None:
    """Gate policies, quorum policies and the weekly production freeze (idempotent)."""
    for name, priority, selection, requirements, description in POLICIES:
        GatePolicy.objects.get_or_create(
            name=name,
            defaults={
                "priority": priority,
                "requirements": requirements,
                "description": description,
                **selection,
            },
        )
    QuorumPolicyRecord.objects.get_or_create(
        change_type="normal",
        defaults={"min_votes": 2, "approval_share": "0.66", "mandatory_roles": ["security_lead"]},
    )
    QuorumPolicyRecord.objects.get_or_create(
        change_type="emergency",
        defaults={"min_votes": 1, "approval_share": "0.5", "mandatory_roles": ["security_lead"]},
    )
    if not FreezeWindow.objects.filter(name="Weekend production freeze").exists():
        services.freeze_window_create(
            actor=_user("omar"),
            name="Weekend production freeze",
            reason="Thin on-call cover at weekends: no production deployments.",
            kind="rrule",
            tz="Europe/Berlin",
            rrule="FREQ=WEEKLY;BYDAY=FR;BYHOUR=16;BYMINUTE=0",
            end_time=time(8, 0),
            end_weekday=0,
            environments=list(Environment.objects.filter(is_production=True)),
        )


def _commit(release: Release, service_slug: str) -> str:
    return hashlib.sha1(f"{release.pk}-{release.version}-{service_slug}".encode()).hexdigest()


def _post_green_runs(release: Release) -> None:
    """What CI would post: one green run per service of the release's version."""
    for service in release.services.all():
        run, created = PipelineRun.objects.get_or_create(
            provider="github_actions",
            external_id=f"demo-{release.pk}-{service.slug}",
            attempt=1,
            defaults={
                "service": service,
                "status": "succeeded",
                "commit_sha": _commit(release, service.slug),
                "ref": "refs/heads/main",
                "version": release.version,
                "started_at": timezone.now() - timedelta(minutes=9),
                "finished_at": timezone.now() - timedelta(minutes=1),
            },
        )
        if created:
            for kind, metrics in [
                (CheckKind.TESTS, {"passed": 640 + release.pk % 200, "failed": 0, "skipped": 3}),
                (CheckKind.SECURITY_SCAN, {"critical": 0, "high": release.pk % 2}),
                (CheckKind.COVERAGE, {"percent": 82.0 + release.pk % 9}),
                (CheckKind.PERFORMANCE, {"p95_ms": 180}),
            ]:
                PipelineCheck.objects.create(run=run, kind=kind, status="passed", metrics=metrics)
        verdicts.gates_evaluate_for_run(run_id=run.pk)


def _evidence_gates(release: Release, stage: str) -> None:
    """Automated gates whose evidence comes from outside CI in the demo."""
    details = {
        "staging_validated": "staging smoke and regression suites passed",
        "rollback_rehearsed": "rollback rehearsed on the staging copy",
    }
    for gate in release.gate_checks.filter(stage=stage).exclude(kind="manual"):
        if gate.status != GateStatus.PASSED and gate.status != GateStatus.WAIVED:
            services.gate_record_result(
                gate=gate, status="passed", detail=details.get(gate.kind, "passed in CI")
            )


def _sign(release: Release, stage: str) -> None:
    for gate in GateCheck.objects.filter(release=release, stage=stage, kind="manual"):
        if gate.status == GateStatus.PENDING and gate.role in SIGNERS:
            services.gate_sign_off(
                gate=gate, actor=_user(SIGNERS[gate.role]), comment="Reviewed the evidence; fine."
            )


def _meeting_now(kind: str) -> CABMeeting:
    now = timezone.now()
    meeting = (
        CABMeeting.objects.filter(
            kind=kind, scheduled_at__gte=now - timedelta(days=3), scheduled_at__lte=now
        )
        .order_by("-scheduled_at")
        .first()
    )
    if meeting is None:
        meeting = services.meeting_create(
            actor=_user("chris"),
            title=("Emergency CAB" if kind == "emergency" else "Weekly CAB") + f" {now:%d %b}",
            kind=kind,
            scheduled_at=now - timedelta(minutes=30),
            backdated=True,
        )
    return meeting


def _cab(release: Release) -> None:
    cr = (
        ChangeRequest.objects.filter(release=release, state__in=VOTING_STATES)
        .order_by("-id")
        .first()
    )
    if cr is None:
        return
    kind = "emergency" if cr.change_type == "emergency" else "regular"
    meeting = _meeting_now(kind)
    services.agenda_item_add(meeting=meeting, change_request=cr, actor=_user("chris"))
    voters = ["carla", "chris"]
    if cr.risk_level in ("high", "critical"):
        voters.append("sam")
    for username in voters:
        cr.refresh_from_db()
        if cr.state not in VOTING_STATES:
            break
        services.vote_cast(
            change_request=cr,
            actor=_user(username),
            choice="approve",
            comment="Plan, backout and evidence look right.",
        )


def _freeze(release: Release) -> None:
    for blocker in freeze_blockers(release, timezone.now()):
        window = FreezeWindow.objects.get(name__in=[blocker.message.split("“")[1].split("”")[0]])
        exception = services.freeze_exception_request(
            freeze=window,
            release=release,
            actor=release.owner,
            justification="Window agreed with operations; on-call engineer booked.",
        )
        services.freeze_exception_approve(
            exception=exception, actor=_user("chris"), comment="On-call confirmed."
        )


def _promote(release: Release) -> None:
    """What CD would report before production: each service of the release deployed, and
    verified, in every environment its promotion path puts before production, long enough
    ago for their soak time (written directly, like the CI runs above)."""
    now = timezone.now()
    for environment in promotion.environments_before(release):
        finished = now - timedelta(minutes=environment.soak_minutes + 30)
        for service in release.services.all():
            Deployment.objects.get_or_create(
                provider="demo-promotion",
                external_id=f"demo-{release.pk}-{service.slug}-{environment.slug}",
                defaults={
                    "release": release,
                    "service": service,
                    "environment": environment,
                    "version": release.version,
                    "state": DeploymentState.SUCCEEDED,
                    "started_at": finished - timedelta(minutes=8),
                    "finished_at": finished,
                    "created_at": finished - timedelta(minutes=8),
                },
            )


def _review_changes(release: Release) -> None:
    for cr in ChangeRequest.objects.filter(release=release, state=ChangeState.IMPLEMENTED):
        services.change_request_review(
            change_request=cr,
            actor=release.owner,
            notes="Deployed in the window; no incident; monitoring stayed green.",
        )
        services.change_request_close(change_request=cr, actor=release.owner)


def resolve(release: Release, transition: str) -> None:
    """Satisfy governance before ``transition`` of ``release``, as its people would."""
    release = Release.objects.get(pk=release.pk)
    with transaction.atomic():
        if not PolicySnapshot.objects.filter(release=release).exists():
            services.gates_instantiate(
                release=Release.objects.select_for_update().get(pk=release.pk)
            )
    if transition == "request_approval":
        _post_green_runs(release)
        _evidence_gates(release, "pre_approval")
    elif transition == "approve":
        # The CAB votes first; the sign-offs follow, then the release manager approves.
        _cab(release)
        _sign(release, "pre_approval")
        _promote(release)  # staging (and before it) ahead of approval, as teams do
    elif transition == "start_deployment":
        _evidence_gates(release, "pre_deployment")
        _sign(release, "pre_deployment")
        _freeze(release)
        _promote(release)
    elif transition == "close":
        _evidence_gates(release, "post_deployment")
        _sign(release, "post_deployment")
        _review_changes(release)


def after_seed() -> None:
    """Close past meetings; schedule the next weekly CAB with its agenda built."""
    now = timezone.now()
    chris = _user("chris")
    for meeting in CABMeeting.objects.filter(state=MeetingState.SCHEDULED, scheduled_at__lt=now):
        services.meeting_close(meeting=meeting, actor=chris)
    days = (1 - now.weekday()) % 7 or 7  # next Tuesday
    when = (now + timedelta(days=days)).replace(hour=10, minute=0, second=0, microsecond=0)
    meeting = CABMeeting.objects.filter(state=MeetingState.SCHEDULED, scheduled_at=when).first()
    if meeting is None:
        meeting = services.meeting_create(
            actor=chris, title=f"Weekly CAB {when:%d %b}", scheduled_at=when
        )
        services.meeting_create(
            actor=chris,
            title=f"Weekly CAB {when + timedelta(days=7):%d %b}",
            scheduled_at=when + timedelta(days=7),
        )
    services.meeting_build_agenda(meeting=meeting, actor=chris)
