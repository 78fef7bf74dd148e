"""Every write that matters in the releases app: one function per use case.

Each service: opens a transaction, re-fetches the row with select_for_update, checks the
actor's permission and the transition's conditions (raising a DomainError a user can read),
changes the data, and writes one audit event in the same transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.forms.models import model_to_dict
from django_fsm import ConcurrentTransition, can_proceed

from core.audit import audit_record
from core.errors import InvalidInput, PermissionDenied, RequirementsNotMet, TransitionNotAllowed
from core.roles import Role, has_role
from core.sso import mapped_values

from . import readiness
from .choices import TERMINAL_STATES, ReleaseState, ReleaseType, RiskLevel, ScopeKind, ScopeStatus
from .models import Release, ReleaseRisk, RollbackPlan, ScopeItem, Service, Team
from .rules import user_team_ids

# Transitions that need the actor to say why.
REASON_REQUIRED = {"request_changes", "reopen", "roll_back", "cancel"}

TRANSITION_LABELS = {
    "plan": "Plan",
    "start_work": "Start work",
    "request_approval": "Request approval",
    "request_changes": "Request changes",
    "approve": "Approve",
    "reopen": "Reopen for changes",
    "start_deployment": "Start deployment",
    "mark_deployed": "Mark deployed",
    "roll_back": "Roll back",
    "close": "Close",
    "cancel": "Cancel",
}

EDITABLE_FIELDS = (
    "name",
    "version",
    "release_type",
    "risk_level",
    "owner",
    "product_owner",
    "window_start",
    "window_end",
    "code_freeze_at",
    "target_date",
    "description",
    "release_notes",
)


def _lock(release: Release | int) -> Release:
    pk = release.pk if isinstance(release, Release) else release
    return Release.objects.select_for_update().get(pk=pk)


def _require(actor, perm: str, release: Release | None = None, message: str = "") -> None:
    if not actor.has_perm(perm, release):
        raise PermissionDenied(message or "You do not have permission to do this.")


def _require_editable(release: Release) -> None:
    if release.state in TERMINAL_STATES:
        raise TransitionNotAllowed(
            f"A {release.get_state_display().lower()} release can no longer be edited."
        )


def _snapshot(release: Release) -> dict[str, Any]:
    data = model_to_dict(release, fields=EDITABLE_FIELDS)
    data["services"] = sorted(release.services.values_list("slug", flat=True))
    return data


# --- transitions ------------------------------------------------------------------------------


def release_transition(
    *, release: Release | int, actor, name: str, reason: str = "", system: bool = False
) -> Release:
    """The one door for every change of a release's state, whoever asks.

    A person (the release page, the API) or the system (a CAB decision, a gate invalidation,
    an approval withdrawn by a changed build or scope) goes through the same steps, in one
    transaction: lock the row, check the FSM source state, ask the readiness registry for
    blockers, transition, save, write one ``release.<name>`` audit event, run the transition
    listeners. ``system=True`` is for consequences of a decision another service has already
    authorised (the chair's CAB decision, a new build): it skips only the release-manager
    permission check, never the state check, the readiness check or the audit.

    When ``release`` is an instance, it is refreshed afterwards so a caller holding it (a
    listener inside the same transaction) sees the new state.
    """
    reason = (reason or "").strip()
    if name in REASON_REQUIRED and not reason:
        raise InvalidInput(f"A reason is required to {TRANSITION_LABELS[name].lower()}.")
    try:
        with transaction.atomic():
            locked = _lock(release)
            if not system:
                _require(
                    actor,
                    "releases.transition_release",
                    locked,
                    "Only a release manager of the owning team can move this release.",
                )
            method = getattr(locked, name)
            if not can_proceed(method, check_conditions=False):
                raise TransitionNotAllowed(
                    f"Cannot {TRANSITION_LABELS[name].lower()}: the release is "
                    f"{locked.get_state_display().lower()}."
                )
            blockers = readiness.blockers_for(locked, name)
            if blockers:
                raise RequirementsNotMet(
                    f"Cannot {TRANSITION_LABELS[name].lower()}. "
                    + readiness.blockers_text(blockers),
                    details=[b.as_dict() for b in blockers],
                )
            from_state = locked.state
            method()
            locked.save()
            audit_record(
                actor=actor,
                action=f"release.{name}",
                target=locked,
                release=locked,
                from_state=from_state,
                to_state=locked.state,
                reason=reason,
            )
            readiness.notify_transition(
                release=locked, actor=actor, name=name, from_state=from_state
            )
    except ConcurrentTransition:
        # Someone else moved the release between our read and our write.
        raise TransitionNotAllowed(
            "The release was changed by someone else at the same time; reload and try again."
        ) from None
    if isinstance(release, Release) and release is not locked:
        release.refresh_from_db()
    return locked


def release_plan(*, release: Release | int, actor, reason: str = "") -> Release:
    """draft → planned. Needs an owner, included scope, a window and a rollback plan."""
    return release_transition(release=release, actor=actor, name="plan", reason=reason)


def release_start_work(*, release: Release | int, actor, reason: str = "") -> Release:
    """planned → in_progress."""
    return release_transition(release=release, actor=actor, name="start_work", reason=reason)


def release_request_approval(*, release: Release | int, actor, reason: str = "") -> Release:
    """in_progress → awaiting_approval. Governance: pre-approval gates passed or waived."""
    return release_transition(release=release, actor=actor, name="request_approval", reason=reason)


def release_request_changes(*, release: Release | int, actor, reason: str) -> Release:
    """awaiting_approval → in_progress, with a reason."""
    return release_transition(release=release, actor=actor, name="request_changes", reason=reason)


def release_approve(*, release: Release | int, actor, reason: str = "") -> Release:
    """awaiting_approval → approved. Governance: sign-offs given, change request approved."""
    return release_transition(release=release, actor=actor, name="approve", reason=reason)


def release_reopen(*, release: Release | int, actor, reason: str) -> Release:
    """approved → in_progress (for example, scope changed after approval)."""
    return release_transition(release=release, actor=actor, name="reopen", reason=reason)


def release_start_deployment(*, release: Release | int, actor, reason: str = "") -> Release:
    """approved → deploying. Governance: inside the window, outside freezes (or excepted)."""
    return release_transition(release=release, actor=actor, name="start_deployment", reason=reason)


def release_mark_deployed(*, release: Release | int, actor, reason: str = "") -> Release:
    """deploying → deployed."""
    return release_transition(release=release, actor=actor, name="mark_deployed", reason=reason)


def release_roll_back(*, release: Release | int, actor, reason: str) -> Release:
    """deploying | deployed → rolled_back, with a reason."""
    return release_transition(release=release, actor=actor, name="roll_back", reason=reason)


def release_close(*, release: Release | int, actor, reason: str = "") -> Release:
    """deployed → closed. Governance: post-deployment gates and retrospective."""
    return release_transition(release=release, actor=actor, name="close", reason=reason)


def release_cancel(*, release: Release | int, actor, reason: str) -> Release:
    """Any state before deploying → cancelled, with a reason."""
    return release_transition(release=release, actor=actor, name="cancel", reason=reason)


TRANSITION_SERVICES = {
    "plan": release_plan,
    "start_work": release_start_work,
    "request_approval": release_request_approval,
    "request_changes": release_request_changes,
    "approve": release_approve,
    "reopen": release_reopen,
    "start_deployment": release_start_deployment,
    "mark_deployed": release_mark_deployed,
    "roll_back": release_roll_back,
    "close": release_close,
    "cancel": release_cancel,
}


def available_transitions(*, release: Release, actor) -> list[str]:
    """Transitions this actor may press now (state allows it and permission holds).

    The model's own conditions count (so "Plan" appears once owner, scope, window and
    rollback plan are there); governance blockers are not evaluated here: the button is
    offered and a refusal lists what is missing, which beats a silently absent button.
    """
    if not actor.has_perm("releases.transition_release", release):
        return []
    return [t.name for t in release.get_available_state_transitions()]


# --- edits ------------------------------------------------------------------------------------


def _check_services_allowed(actor, services: Iterable[Service]) -> None:
    if actor.has_perm("releases.add_release") and has_role(actor, Role.ADMINISTRATOR):
        return
    teams = user_team_ids(actor)
    foreign = [s.name for s in services if s.team_id not in teams]
    if foreign:
        raise PermissionDenied(
            "You can only manage releases of services your team owns (not: "
            + ", ".join(sorted(foreign))
            + ")."
        )


def _validate_window(window_start: datetime | None, window_end: datetime | None) -> None:
    if window_start and window_end and window_end <= window_start:
        raise InvalidInput(
            "The deployment window must end after it starts.",
            details={"window_end": ["Must be after the window start."]},
        )


def release_create(
    *,
    actor,
    name: str,
    version: str,
    services: Iterable[Service],
    release_type: str = ReleaseType.MINOR,
    risk_level: str = RiskLevel.LOW,
    owner=None,
    product_owner=None,
    window_start: datetime | None = None,
    window_end: datetime | None = None,
    code_freeze_at: datetime | None = None,
    target_date: date | None = None,
    description: str = "",
    release_notes: str = "",
) -> Release:
    """Create a draft release. Release managers for their team's services; administrators."""
    services = list(services)
    _require(actor, "releases.add_release", message="Only release managers can create releases.")
    if not services:
        raise InvalidInput(
            "A release needs at least one service.", details={"services": ["Required."]}
        )
    _check_services_allowed(actor, services)
    _validate_window(window_start, window_end)
    with transaction.atomic():
        release = Release.objects.create(
            name=name,
            version=version,
            release_type=release_type,
            risk_level=risk_level,
            owner=owner if owner is not None else actor,
            product_owner=product_owner,
            window_start=window_start,
            window_end=window_end,
            code_freeze_at=code_freeze_at,
            target_date=target_date,
            description=description,
            release_notes=release_notes,
            created_by=actor,
        )
        release.services.set(services)
        audit_record(
            actor=actor,
            action="release.create",
            target=release,
            release=release,
            to_state=release.state,
            after=_snapshot(release),
        )
    return release


def release_update(
    *, release: Release | int, actor, changes: dict[str, Any], reason: str = ""
) -> Release:
    """Edit a release's fields (and services). Records before/after of what changed."""
    unknown = set(changes) - set(EDITABLE_FIELDS) - {"services"}
    if unknown:
        raise InvalidInput(f"These fields cannot be edited: {', '.join(sorted(unknown))}.")
    with transaction.atomic():
        release = _lock(release)
        _require(actor, "releases.change_release", release)
        _require_editable(release)
        before = _snapshot(release)
        services = changes.pop("services", None)
        for field, value in changes.items():
            setattr(release, field, value)
        _validate_window(release.window_start, release.window_end)
        if services is not None:
            services = list(services)
            if not services:
                raise InvalidInput(
                    "A release needs at least one service.", details={"services": ["Required."]}
                )
            _check_services_allowed(actor, services)
        release.save(update_fields=[*changes.keys(), "updated_at"])
        if services is not None:
            release.services.set(services)
            release._team_ids = None
        after = _snapshot(release)
        diff_before = {k: v for k, v in before.items() if after.get(k) != v}
        diff_after = {k: after[k] for k in diff_before}
        if diff_before:
            audit_record(
                actor=actor,
                action="release.update",
                target=release,
                release=release,
                reason=reason,
                before=diff_before,
                after=diff_after,
            )
            if "window_start" in diff_before or "window_end" in diff_before:
                readiness.notify_change(
                    release=release, actor=actor, what="window", reason="Window changed."
                )
    return release


def _scope_changed(release: Release, actor, description: str) -> None:
    """A scope change after approval sends the release back for re-approval."""
    readiness.notify_change(release=release, actor=actor, what="scope", reason=description)
    if release.state == ReleaseState.APPROVED:
        release_transition(
            release=release,
            actor=actor,
            name="reopen",
            reason=f"Scope changed after approval: {description}",
            system=True,
        )


def _scope_guard(release: Release, actor) -> None:
    _require(actor, "releases.change_release", release)
    _require_editable(release)
    if release.state in (ReleaseState.DEPLOYING, ReleaseState.DEPLOYED):
        raise TransitionNotAllowed("Scope cannot change once deployment has started.")


def scope_item_add(
    *,
    release: Release | int,
    actor,
    title: str,
    kind: str = ScopeKind.FEATURE,
    external_key: str = "",
    url: str = "",
    status: str = ScopeStatus.INCLUDED,
) -> ScopeItem:
    """Add a scope item. After code freeze it is flagged in the audit reason; after approval
    it sends the release back to in progress."""
    if not title.strip():
        raise InvalidInput("A scope item needs a title.", details={"title": ["Required."]})
    with transaction.atomic():
        release = _lock(release)
        _scope_guard(release, actor)
        item = ScopeItem.objects.create(
            release=release,
            title=title.strip(),
            kind=kind,
            external_key=external_key.strip(),
            url=url,
            status=status,
        )
        audit_record(
            actor=actor,
            action="scope.add",
            target=item,
            release=release,
            reason=_after_freeze_note(release),
            after=model_to_dict(item, fields=["kind", "external_key", "title", "url", "status"]),
        )
        _scope_changed(release, actor, f"added {item}")
    return item


def scope_item_update(*, item: ScopeItem | int, actor, changes: dict[str, Any]) -> ScopeItem:
    """Edit a scope item (including deferring it)."""
    allowed = {"kind", "external_key", "title", "url", "status"}
    if set(changes) - allowed:
        raise InvalidInput(f"These fields cannot be edited: {', '.join(set(changes) - allowed)}.")
    with transaction.atomic():
        item = ScopeItem.objects.select_related("release").get(
            pk=item.pk if isinstance(item, ScopeItem) else item
        )
        release = _lock(item.release_id)
        _scope_guard(release, actor)
        before = model_to_dict(item, fields=list(changes))
        for field, value in changes.items():
            setattr(item, field, value)
        item.save(update_fields=list(changes))
        audit_record(
            actor=actor,
            action="scope.update",
            target=item,
            release=release,
            reason=_after_freeze_note(release),
            before=before,
            after=model_to_dict(item, fields=list(changes)),
        )
        _scope_changed(release, actor, f"changed {item}")
    return item


def scope_item_remove(*, item: ScopeItem | int, actor, reason: str = "") -> None:
    with transaction.atomic():
        item = ScopeItem.objects.get(pk=item.pk if isinstance(item, ScopeItem) else item)
        release = _lock(item.release_id)
        _scope_guard(release, actor)
        snapshot = model_to_dict(item, fields=["kind", "external_key", "title", "url", "status"])
        audit_record(
            actor=actor,
            action="scope.remove",
            target=item,
            release=release,
            reason=reason or _after_freeze_note(release),
            before=snapshot,
        )
        description = f"removed {item}"
        item.delete()
        _scope_changed(release, actor, description)


def _after_freeze_note(release: Release) -> str:
    from django.utils import timezone

    if release.code_freeze_at and timezone.now() >= release.code_freeze_at:
        return "Scope change after code freeze."
    return ""


def risk_add(
    *,
    release: Release | int,
    actor,
    description: str,
    likelihood: str = "medium",
    impact: str = "medium",
    mitigation: str = "",
    owner=None,
) -> ReleaseRisk:
    """Add an entry to the release's risk register."""
    if not description.strip():
        raise InvalidInput("A risk needs a description.", details={"description": ["Required."]})
    with transaction.atomic():
        release = _lock(release)
        _require(actor, "releases.change_release", release)
        _require_editable(release)
        risk = ReleaseRisk.objects.create(
            release=release,
            description=description.strip(),
            likelihood=likelihood,
            impact=impact,
            mitigation=mitigation,
            owner=owner,
        )
        audit_record(
            actor=actor,
            action="risk.add",
            target=risk,
            release=release,
            after=model_to_dict(risk, fields=["description", "likelihood", "impact", "mitigation"]),
        )
    return risk


def risk_update(*, risk: ReleaseRisk | int, actor, changes: dict[str, Any]) -> ReleaseRisk:
    allowed = {"description", "likelihood", "impact", "mitigation", "owner", "status"}
    if set(changes) - allowed:
        raise InvalidInput(f"These fields cannot be edited: {', '.join(set(changes) - allowed)}.")
    with transaction.atomic():
        risk = ReleaseRisk.objects.get(pk=risk.pk if isinstance(risk, ReleaseRisk) else risk)
        release = _lock(risk.release_id)
        _require(actor, "releases.change_release", release)
        before = model_to_dict(risk, fields=list(changes))
        for field, value in changes.items():
            setattr(risk, field, value)
        risk.save(update_fields=list(changes))
        audit_record(
            actor=actor,
            action="risk.update",
            target=risk,
            release=release,
            before=before,
            after=model_to_dict(risk, fields=list(changes)),
        )
    return risk


def rollback_plan_set(
    *,
    release: Release | int,
    actor,
    steps: str,
    rehearsed_at: datetime | None = None,
    evidence_url: str = "",
) -> RollbackPlan:
    """Create or change the rollback plan. A changed plan invalidates dependent sign-offs."""
    if not steps.strip():
        raise InvalidInput("A rollback plan needs steps.", details={"steps": ["Required."]})
    with transaction.atomic():
        release = _lock(release)
        _require(actor, "releases.change_release", release)
        _require_editable(release)
        plan = RollbackPlan.objects.filter(release=release).first()
        fields = ["steps", "rehearsed_at", "evidence_url"]
        before = model_to_dict(plan, fields=fields) if plan else None
        if plan is None:
            plan = RollbackPlan(release=release)
        plan.steps, plan.rehearsed_at, plan.evidence_url = steps.strip(), rehearsed_at, evidence_url
        plan.save()
        after = model_to_dict(plan, fields=fields)
        if before == after:
            return plan
        audit_record(
            actor=actor,
            action="rollback_plan.set",
            target=plan,
            release=release,
            before=before,
            after=after,
        )
        if before is not None:
            readiness.notify_change(
                release=release, actor=actor, what="rollback_plan", reason="Rollback plan changed."
            )
    return plan


logger = logging.getLogger(__name__)


def team_memberships_sync(*, user, groups: Iterable[str]) -> dict[str, tuple[list, list]]:
    """Single sign-on: make the user a member of exactly the teams ``OIDC_GROUP_TEAM_MAP``
    gives their IdP groups, among the teams that map names. Teams the map never names stay
    as the admin set them.

    Permissions: none to check (the IdP is the authority; core.sso.sso_login_sync calls it
    inside its transaction, which writes the one audit event). Returns the change, if any.
    """
    team_map = settings.OIDC_GROUP_TEAM_MAP
    if not team_map:
        return {}
    managed = mapped_values(team_map, team_map.keys())
    wanted = mapped_values(team_map, groups)
    teams = {team.slug: team for team in Team.objects.filter(slug__in=managed)}
    if missing := managed - teams.keys():
        logger.warning("OIDC_GROUP_TEAM_MAP names teams that do not exist: %s", sorted(missing))
    current = set(user.teams.filter(slug__in=managed).values_list("slug", flat=True))
    wanted &= teams.keys()
    if wanted == current:
        return {}
    user.teams.add(*(teams[slug] for slug in wanted - current))
    user.teams.remove(*(teams[slug] for slug in current - wanted))
    return {"teams": (sorted(current), sorted(wanted))}
