"""Fixtures of the dashboards tests: a small portfolio that can be grown, so a test can render
a page at two data sizes and compare query counts."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from releases.choices import ReleaseState
from releases.models import Deployment, Release


def grow(*, services: list, environments: list, owner, per_state: int, start: datetime) -> None:
    """Add ``per_state`` releases in every board state, windows spread over the coming and
    past weeks (two per day), with deployments to every environment and a shared-service
    overlap on each day, so conflicts exist at every size. Bulk inserts: fast."""
    states = [
        ReleaseState.DRAFT,
        ReleaseState.PLANNED,
        ReleaseState.IN_PROGRESS,
        ReleaseState.AWAITING_APPROVAL,
        ReleaseState.APPROVED,
        ReleaseState.DEPLOYING,
        ReleaseState.DEPLOYED,
        ReleaseState.CLOSED,
    ]
    base = Release.objects.count()
    releases = []
    for i in range(per_state * len(states)):
        n = base + i
        window = start + timedelta(hours=12 * i)
        releases.append(
            Release(
                name=f"Release {n}",
                version=f"2.{n}.0",
                state=states[i % len(states)],
                owner=owner,
                window_start=window,
                window_end=window + timedelta(hours=13),  # overlaps the next one
                target_date=(window + timedelta(days=1)).date(),
            )
        )
    created = Release.objects.bulk_create(releases)
    link = Release.services.through
    link.objects.bulk_create(
        link(release_id=r.pk, service_id=services[k % len(services)].pk)
        for k, r in enumerate(created)
    )
    Deployment.objects.bulk_create(
        Deployment(
            release=r,
            service=services[k % len(services)],
            environment=env,
            version=r.version,
            state="pending",
        )
        for k, r in enumerate(created)
        for env in environments
    )


@pytest.fixture
def portfolio(service, other_service, production, staging, release_manager):
    def add(per_state: int) -> None:
        grow(
            services=[service, other_service],
            environments=[production, staging],
            owner=release_manager,
            per_state=per_state,
            start=timezone.now() - timedelta(days=3),
        )

    return add


def grow_governed(*, services: list, staging, owner, rounds: int) -> list[Release]:
    """``rounds`` times, a release in every state with something of every kind of blocker
    readiness knows — or without it: gates pending, failed, rejected and done; change requests
    in each state, on a meeting's agenda or not; freezes in force on one service, on all or
    only outside production, one with an exception; releases deploying the same services;
    validation steps, retrospectives and assessed risk before closing. Returns them all."""
    from governance.models import (
        AgendaItem,
        CABMeeting,
        ChangeRequest,
        FreezeException,
        FreezeWindow,
        GateCheck,
        PolicySnapshot,
        RiskAssessment,
    )
    from releases.models import Retrospective, RollbackPlan, ScopeItem, ValidationItem

    now = timezone.now()
    if not FreezeWindow.objects.exists():
        hour = timedelta(hours=1)
        on_one = FreezeWindow.objects.create(
            name="Payments freeze", kind="once", start=now - hour, end=now + 30 * hour
        )
        on_one.services.set(services[:1])
        FreezeWindow.objects.create(
            name="Company freeze", reason="Audit.", kind="once", start=now - hour, end=now + hour
        )
        staging_only = FreezeWindow.objects.create(
            name="Staging freeze", kind="once", start=now - hour, end=now + hour
        )
        staging_only.environments.set([staging])
        CABMeeting.objects.create(title="Next CAB", scheduled_at=now + timedelta(days=3))
    meeting = CABMeeting.objects.order_by("scheduled_at").first()
    user = owner
    created = []
    states = ["draft", "planned", "in_progress", "awaiting_approval", "approved"]
    states += ["deploying", "deployed"]
    base = Release.objects.count()
    for r in range(rounds):
        for k, state in enumerate(states):
            n = base + r * len(states) + k
            variant = (r + k) % 4
            start = now + timedelta(hours=(n % 5) - 2)
            release = Release.objects.create(
                name=f"Governed {n}",
                version=f"3.{n}.0",
                state=state,
                owner=owner if variant else None,
                risk_level=["low", "medium", "high", "low"][variant],
                window_start=start if variant != 3 else None,
                window_end=start + timedelta(hours=1) if variant != 3 else None,
            )
            release.services.set(services[variant % 2 :] if variant < 3 else services)
            if variant in (1, 2):
                ScopeItem.objects.create(release=release, title="Scope", external_key=f"S-{n}")
            if variant in (1, 3):
                RollbackPlan.objects.create(release=release, steps="Redeploy." if variant else "")
            for stage, position in (("pre_approval", 1), ("pre_deployment", 2)):
                for kind, role, status in (
                    ("ci_green", "", ["pending", "failed", "passed", "waived"][variant]),
                    ("manual", "security_lead", ["pending", "failed", "failed", "passed"][variant]),
                ):
                    GateCheck.objects.create(
                        release=release,
                        policy_name="Standard",
                        policy_version=1,
                        key=f"{stage}-{kind}",
                        stage=stage,
                        kind=kind,
                        role=role,
                        label=f"{stage} {kind} gate",
                        position=position,
                        status=status,
                        detail="red" if variant == 1 else "",
                        comment="Pen test open." if status == "failed" else "",
                        requirement={"waivable_by": ["qa_lead"]} if variant == 2 else {},
                    )
            GateCheck.objects.create(
                release=release,
                policy_name="Standard",
                policy_version=1,
                key="smoke",
                stage="post_deployment",
                kind="ci_green",
                label="Smoke gate",
                requirement={},
                status="passed" if variant == 3 else "pending",
            )
            if variant != 0:
                PolicySnapshot.objects.create(
                    release=release,
                    risk_level="low",
                    change_request=["", "normal", "standard"][variant - 1],
                )
            if state == "awaiting_approval" or variant == 2:
                requests = [["submitted"], ["rejected", "draft"], ["needs_info"], []]
                requests[2] = ["needs_info"] if r < 2 else ["rejected", "approved"]
                for j, cr_state in enumerate(requests[variant]):
                    cr = ChangeRequest.objects.create(
                        number=10_000 + 10 * n + j,
                        title=f"CR {n}.{j}",
                        release=release,
                        requested_by=user,
                    )
                    ChangeRequest.objects.filter(pk=cr.pk).update(
                        state=cr_state, created_at=now - timedelta(hours=5 - j)
                    )
                    if cr_state == "submitted" and r % 2:
                        AgendaItem.objects.create(meeting=meeting, change_request=cr)
            if state == "approved" and variant == 1:
                FreezeException.objects.create(
                    freeze=FreezeWindow.objects.get(name="Payments freeze"),
                    release=release,
                    justification="Agreed.",
                    state="approved",
                    requested_by=user,
                    expires_at=now + timedelta(days=1),
                )
            if state == "deployed":
                ValidationItem.objects.create(release=release, title=f"Smoke {n}")
                if variant % 2:
                    ValidationItem.objects.filter(release=release).update(done_at=now)
                if variant == 2:
                    Retrospective.objects.create(release=release, recorded_by=user)
                if variant in (0, 2):
                    RiskAssessment.objects.create(
                        release=release,
                        score=50,
                        computed_level="high" if variant == 0 else "low",
                        override_level="medium" if variant == 2 else "",
                    )
            created.append(release)
    return created


@pytest.fixture
def governed(service, other_service, production, staging, release_manager):
    def add(rounds: int) -> list[Release]:
        return grow_governed(
            services=[service, other_service],
            staging=staging,
            owner=release_manager,
            rounds=rounds,
        )

    return add
