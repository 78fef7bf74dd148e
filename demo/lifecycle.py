"""How the demo drives one release through its lifecycle.

Two rules make the demo trustworthy:

- Every lifecycle step goes through the services, as a person would drive it, so the
  audit trail, the readiness checks and whatever hangs off the transitions (gate checks,
  change requests, notifications, evidence packs) are all genuine. State is never written
  directly.
- Each step happens at its historical moment: the clock is moved with ``time-machine``
  while the step runs, so audit timestamps, ``planned_at``, ``deployed_at`` … look real.

Before each governed transition (``request_approval``, ``approve``, ``start_deployment``,
``close``) ``demo.governance.resolve`` satisfies the other apps' requirements at the same
simulated moment (green CI, sign-offs, CAB votes, freeze exceptions). A requirement it
leaves unmet refuses the transition, and the seed stops with the blockers in the message.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import time_machine

from core.errors import RequirementsNotMet
from releases import communications, readiness, services
from releases.models import Service
from releases.postrelease import services as postrelease

from . import governance as demo_governance
from .catalogue import KEY_PREFIX
from .portfolio import (
    CANCEL_REASONS,
    LESSONS,
    PRE_DEPLOY_STEPS,
    RISKS,
    ROLLBACK_REASONS,
    ROLLBACK_STEPS,
    SCOPE_TITLES,
    DemoRelease,
    window,
)
from .users import TEAM_OWNER


def _moments(start: datetime, end: datetime, count: int) -> list[datetime]:
    """``count`` moments spread evenly after ``start`` and before ``end``."""
    if count == 0:
        return []
    step = (end - start) / (count + 1)
    moments = []
    for i in range(count):
        moment = (start + step * (i + 1)).replace(second=0, microsecond=0)
        # People press buttons in office hours; keep the night-time ones only when moving
        # them would cross ``end`` (e.g. today, before the office opened).
        office = moment.replace(hour=9 + moment.hour % 8)
        moments.append(office if start < office < end else moment)
    return sorted(moments)


class DemoBlocked(RuntimeError):
    """A governed transition stayed blocked: ``demo.governance.resolve`` does not satisfy
    some requirement."""


def _transition(release, name: str, actor, when: datetime, reason: str = ""):
    with time_machine.travel(when, tick=False):
        if name in readiness.GOVERNED_TRANSITIONS:
            demo_governance.resolve(release, name)
        try:
            return services.TRANSITION_SERVICES[name](release=release, actor=actor, reason=reason)
        except RequirementsNotMet as error:
            raise DemoBlocked(
                f"Demo release {release} could not {name} at {when:%Y-%m-%d %H:%M}: "
                f"{error.message} (teach demo.governance.resolve to satisfy it)"
            ) from error


def build_release(spec: DemoRelease, *, version: str, users: dict, now: datetime, rng) -> None:
    """Create the release of ``spec`` and drive it to ``spec.state``, each step at its
    moment relative to ``now``; ``rng`` picks its scope, risks and timings."""
    team = Service.objects.get(slug=spec.services[0]).team.slug
    owner = users[TEAM_OWNER[team]]
    window_start, window_end = window(spec, now)
    in_past = window_start < now
    # The release is created three to five weeks before its window, but never in the future.
    created = min(window_start - timedelta(days=rng.randint(21, 35)), now - timedelta(days=2))
    created = created.replace(hour=9, minute=rng.choice([5, 15, 30, 45]), second=0, microsecond=0)
    # Work before deployment happens before the window (or before now, for later windows).
    horizon = min(window_start - timedelta(hours=3), now - timedelta(hours=1))
    services_qs = list(Service.objects.filter(slug__in=spec.services))
    scope_pool = SCOPE_TITLES[team]

    with time_machine.travel(created, tick=False):
        release = services.release_create(
            actor=owner,
            name=spec.name,
            version=version,
            services=services_qs,
            release_type=spec.release_type,
            risk_level=spec.risk,
            owner=owner,
            product_owner=users["paula"],
            window_start=window_start,
            window_end=window_end,
            code_freeze_at=(window_start - timedelta(days=3)).replace(hour=12),
            target_date=window_start.date(),
            description=f"{spec.name} for {', '.join(spec.services)}.",
            release_notes=_notes(spec, version),
        )
    cancel_after = spec.extra.get("cancel_after")
    if spec.state == "draft" or cancel_after == "draft":
        # Drafts are still being put together: some scope, no rollback plan yet.
        with time_machine.travel(created + timedelta(hours=2), tick=False):
            kind, title = rng.choice(scope_pool)
            services.scope_item_add(
                release=release,
                actor=owner,
                kind=kind,
                title=title,
                external_key=f"{KEY_PREFIX[team]}-{rng.randint(100, 999)}",
            )
        if cancel_after == "draft":
            _transition(release, "cancel", owner, horizon, CANCEL_REASONS["draft"])
        return

    # Scope, risks and the rollback plan, in the first hours after creation.
    with time_machine.travel(created + timedelta(hours=1), tick=False):
        items = []
        for kind, title in rng.sample(scope_pool, rng.randint(2, 5)):
            key = f"{KEY_PREFIX[team]}-{rng.randint(100, 999)}"
            items.append(
                services.scope_item_add(
                    release=release,
                    actor=owner,
                    kind=kind,
                    title=title,
                    external_key=key,
                    url=f"https://tracker.example.com/browse/{key}",
                )
            )
    with time_machine.travel(created + timedelta(hours=2), tick=False):
        risks = []
        for description, likelihood, impact, mitigation, risk_owner in rng.sample(
            RISKS, {"low": 0, "medium": 1, "high": 2, "critical": 3}[spec.risk]
        ):
            risks.append(
                services.risk_add(
                    release=release,
                    actor=owner,
                    description=description,
                    likelihood=likelihood,
                    impact=impact,
                    mitigation=mitigation,
                    owner=users[risk_owner],
                )
            )
    with time_machine.travel(created + timedelta(hours=3), tick=False):
        rehearsed = spec.risk in ("high", "critical") and (in_past or rng.random() < 0.5)
        services.rollback_plan_set(
            release=release,
            actor=owner,
            steps=ROLLBACK_STEPS.format(services=", ".join(spec.services)),
            rehearsed_at=created + timedelta(hours=3) if rehearsed else None,
            evidence_url=f"https://wiki.example.com/rollback/{release.pk}" if rehearsed else "",
        )

    if not in_past and not cancel_after and spec.state in ("planned", "in_progress", "approved"):
        _plan_communications(release, owner, created + timedelta(hours=3, minutes=30))

    target = cancel_after or (spec.state if spec.state in PRE_DEPLOY_STEPS else "approved")
    steps = list(PRE_DEPLOY_STEPS[target])
    if spec.changes_requested and "approve" in steps:
        i = steps.index("approve")
        steps[i:i] = ["request_changes", "request_approval"]
    moments = _moments(
        created + timedelta(hours=4), horizon, len(steps) + (1 if cancel_after else 0)
    )
    for name, when in zip(steps, moments, strict=False):
        reason = ""
        if name == "request_changes":
            reason = "Load-test results missing for the new endpoints; please attach them."
        if name == "start_work" and len(items) > 2 and rng.random() < 0.4:
            # Something always slips: defer the last item before work starts.
            with time_machine.travel(when - timedelta(minutes=30), tick=False):
                services.scope_item_update(
                    item=items[-1], actor=owner, changes={"status": "deferred"}
                )
        _transition(release, name, owner, when, reason)
    if cancel_after:
        _transition(release, "cancel", owner, moments[-1], CANCEL_REASONS[cancel_after])
        return
    if spec.state in PRE_DEPLOY_STEPS:
        return

    # Deployment, inside the window.
    _transition(release, "start_deployment", owner, window_start + timedelta(minutes=5))
    if spec.state == "deploying":
        return
    if spec.state == "rolled_back" and not spec.extra.get("deployed_first"):
        reason = ROLLBACK_REASONS[len(spec.name) % len(ROLLBACK_REASONS)]
        _transition(release, "roll_back", owner, window_start + timedelta(minutes=50), reason)
        return
    _transition(release, "mark_deployed", owner, window_start + timedelta(minutes=45))
    if spec.state == "rolled_back":
        reason = ROLLBACK_REASONS[2]
        _transition(release, "roll_back", owner, window_start + timedelta(hours=16), reason)
        return
    # After deployment the team works through the validation checklist, and for closed
    # releases records the retrospective (required to close risk ≥ medium).
    _post_release(release, owner, window_start + timedelta(hours=1), closing=spec.state == "closed")
    if spec.state == "closed":
        closed_at = window_end + timedelta(days=2, hours=1)
        with time_machine.travel(closed_at - timedelta(hours=1), tick=False):
            for risk in risks:
                services.risk_update(risk=risk, actor=owner, changes={"status": "closed"})
        _transition(release, "close", owner, closed_at)


def _post_release(release, owner, when: datetime, *, closing: bool) -> None:
    """Validation steps after deployment (all of them when the release will close, the
    first one otherwise) and, before closing, the retrospective."""
    with time_machine.travel(when, tick=False):
        items = postrelease.validation_items_ensure_defaults(release=release, actor=owner)
    for offset, item in enumerate(items if closing else items[:1], start=1):
        if item.is_done:
            continue
        with time_machine.travel(when + timedelta(minutes=20 * offset), tick=False):
            postrelease.validation_item_complete(item=item, actor=owner, note="Checked.")
    with time_machine.travel(when + timedelta(hours=2), tick=False):
        notes = postrelease.release_notes_save(release=release, actor=owner, audience="customer")
        postrelease.release_notes_publish(notes=notes, actor=owner)
    if closing:
        lesson = LESSONS[release.pk % len(LESSONS)]
        with time_machine.travel(when + timedelta(days=1), tick=False):
            postrelease.retrospective_record(
                release=release,
                actor=owner,
                went_well="Smooth switch-over; dashboards stayed green.",
                went_badly="The change window started 15 minutes late.",
                to_change="Book the window with operations a week earlier.",
                lessons_learned=lesson,
                runbook_links=[f"https://wiki.example.com/runbooks/{release.pk}"],
            )
            # One action closed, one still open (overdue for the older releases).
            done = postrelease.action_item_add(
                release=release,
                actor=owner,
                title="Book change windows with operations a week ahead",
                owner=owner,
                due_date=(when + timedelta(days=8)).date(),
            )
            postrelease.action_item_add(
                release=release,
                actor=owner,
                title=f"Automate the check that slipped: {lesson.split(';')[0].lower()}",
                owner=owner,
                due_date=(when + timedelta(days=21)).date(),
            )
            postrelease.impact_assessment_record(
                release=release,
                actor=owner,
                expected_outcome="No customer-visible change in error rate; faster checkout.",
                observed_outcome="Error rate flat; p95 latency 8% lower over the first week.",
                customer_impact="none",
            )
        with time_machine.travel(when + timedelta(days=1, hours=3), tick=False):
            postrelease.action_item_set_status(item=done, actor=owner, status="done")


def _plan_communications(release, owner, when: datetime) -> None:
    """Upcoming releases tell support a day ahead and customers when the window opens."""
    with time_machine.travel(when, tick=False):
        communications.communication_schedule(
            release=release,
            actor=owner,
            audience="support",
            channel="email",
            destination="support@example.com",
            trigger="before_window",
            offset_hours=24,
            subject=f"Tomorrow: {release}",
            message="A release is planned for tomorrow's window; the release page has the notes.",
        )
        communications.communication_schedule(
            release=release,
            actor=owner,
            audience="customers",
            channel="email",
            destination="status-updates@example.com",
            trigger="completed",
            subject=f"{release} is live",
            message="The release is complete. Thank you for your patience.",
        )


def _notes(spec: DemoRelease, version: str) -> str:
    return (
        f"## {spec.name} {version}\n\n"
        f"Ships to **{', '.join(spec.services)}**.\n\n"
        "### Highlights\n\n"
        "- See the scope below for every change and its ticket.\n"
        "- No action is needed from API clients.\n\n"
        "| Area | Change |\n|---|---|\n"
        f"| {spec.services[0]} | {spec.release_type.title()} release |\n"
    )
