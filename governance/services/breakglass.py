"""Break-glass: override a freeze for one release's rollback or hotfix, and the
post-implementation review it owes. Whether a break-glass lifts a freeze is read by
governance.readiness (the same rule for the page, the board, the transition and the deployment
check); here are the writes, all audited."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from core.audit import audit_record
from core.errors import Conflict, InvalidInput, PermissionDenied, TransitionNotAllowed
from core.roles import has_role, role_people
from releases.models import Environment, Release

from ..choices import BreakGlassKind, BreakGlassReview, BreakGlassState
from ..models import BreakGlass
from ._common import lock_release, require_live, require_person


def break_glass_roles() -> tuple[str, ...]:
    """The roles that may break the glass (setting ``BREAK_GLASS_ROLES``)."""
    return tuple(settings.BREAK_GLASS_ROLES)


def may_break_glass(actor) -> bool:
    return has_role(actor, *break_glass_roles())


def may_review_break_glass(actor, glass: BreakGlass) -> bool:
    """Who approves the review: a holder of a break-glass role or the CAB chair, never the
    person who broke the glass (separation of duties)."""
    return (
        glass.review_state == BreakGlassReview.PENDING
        and actor.pk != glass.requested_by_id
        and has_role(actor, *break_glass_roles(), "cab_chair")
    )


def _snapshot(glass: BreakGlass) -> dict:
    return {
        "kind": glass.kind,
        "environment": glass.environment.slug if glass.environment_id else None,
        "expires_at": glass.expires_at.isoformat(),
        "state": glass.state,
        "review_state": glass.review_state,
    }


def _expire_locked(glass: BreakGlass, at: datetime) -> None:
    """active → expired for a row the caller holds locked, with its audit event."""
    glass.expire()
    glass.save(update_fields=["state", "ended_at"])
    audit_record(
        actor=None,
        action="break_glass.expire",
        target=glass,
        release=glass.release,
        from_state=BreakGlassState.ACTIVE,
        to_state=BreakGlassState.EXPIRED,
        reason=f"Expired at {glass.expires_at:%Y-%m-%d %H:%M} UTC.",
    )


def _validate(reason: str, expires_at: datetime | None, kind: str, now: datetime) -> str:
    errors: dict[str, list[str]] = {}
    reason = (reason or "").strip()
    minimum = settings.BREAK_GLASS_MIN_REASON_LENGTH
    if len(reason) < minimum:
        errors["reason"] = [f"Say why the freeze must be broken, in at least {minimum} characters."]
    if kind not in BreakGlassKind.values:
        errors["kind"] = ["Choose rollback or hotfix."]
    max_hours = settings.BREAK_GLASS_MAX_HOURS
    if expires_at is None:
        errors["expires_at"] = ["Required."]
    elif expires_at <= now:
        errors["expires_at"] = ["Must be in the future."]
    elif expires_at > now + timedelta(hours=max_hours):
        errors["expires_at"] = [f"At most {max_hours} hours from now."]
    if errors:
        first = next(iter(errors.values()))[0]
        raise InvalidInput(f"Invalid break-glass: {first}", details=errors)
    return reason


def break_glass_create(
    *,
    release: Release | int,
    actor,
    kind: str,
    reason: str,
    expires_at: datetime | None,
    environment: Environment | None = None,
) -> BreakGlass:
    """Override the freeze for one release's rollback or hotfix (in ``environment`` only when
    given, a production environment), until ``expires_at`` (in the future, at most
    ``BREAK_GLASS_MAX_HOURS`` ahead), with a reason of at least
    ``BREAK_GLASS_MIN_REASON_LENGTH`` characters. Opens the post-implementation review that
    blocks closing the release until someone else approves it.

    Permissions: a person holding one of ``BREAK_GLASS_ROLES`` (default release managers and
    administrators). The release must be live. One active break-glass per release: a second
    while one is active is a 409 (two clicks create one). An expired one still marked active
    is expired first (audited). Side effects: ``break_glass.create``."""
    now = timezone.now()
    require_person(actor)
    if not may_break_glass(actor):
        raise PermissionDenied(
            f"Only {role_people(break_glass_roles())} can break the glass on a freeze."
        )
    reason = _validate(reason, expires_at, kind, now)
    if environment is not None and not environment.is_production:
        raise InvalidInput(
            f"{environment.name} is not a production environment; freezes apply to production.",
            details={"environment": ["Choose a production environment, or none."]},
        )
    try:
        with transaction.atomic():
            release = lock_release(release)
            require_live(release)
            current = (
                BreakGlass.objects.select_for_update()
                .filter(release=release, state=BreakGlassState.ACTIVE)
                .first()
            )
            if current is not None and not current.is_active_at(now):
                current.release = release
                _expire_locked(current, now)
                current = None
            if current is not None:
                raise Conflict(
                    f"A break-glass for {release} is already active until "
                    f"{current.expires_at:%Y-%m-%d %H:%M} UTC (by "
                    f"{current.requested_by.get_username()}); revoke it to open another.",
                    details={"release": ["Already has an active break-glass."]},
                )
            glass = BreakGlass.objects.create(
                release=release,
                environment=environment,
                kind=kind,
                reason=reason,
                expires_at=expires_at,
                requested_by=actor,
            )
            audit_record(
                actor=actor,
                action="break_glass.create",
                target=glass,
                release=release,
                to_state=glass.state,
                reason=reason,
                after=_snapshot(glass),
            )
    except IntegrityError:
        # The partial unique index caught a concurrent create the lock did not serialise
        # (SQLite has no row locks): the other one won.
        raise Conflict(
            "A break-glass for this release was opened at the same moment; reload.",
            details={"release": ["Already has an active break-glass."]},
        ) from None
    return glass


def _lock(glass: BreakGlass | int) -> BreakGlass:
    pk = glass.pk if isinstance(glass, BreakGlass) else glass
    return (
        BreakGlass.objects.select_for_update(of=("self",))
        .select_related("release", "environment")
        .get(pk=pk)
    )


def break_glass_revoke(*, glass: BreakGlass | int, actor, reason: str) -> BreakGlass:
    """active → revoked before its expiry, with a reason: the freeze applies again at once.
    The review stays owed. Permissions: the requester or a holder of a break-glass role.
    Side effects: ``break_glass.revoke``."""
    require_person(actor)
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput("A reason is required.", details={"reason": ["Required."]})
    with transaction.atomic():
        glass = _lock(glass)
        if not (actor.pk == glass.requested_by_id or may_break_glass(actor)):
            raise PermissionDenied(
                f"Only the requester or {role_people(break_glass_roles())} can revoke it."
            )
        if glass.state != BreakGlassState.ACTIVE or not glass.is_active_at(timezone.now()):
            raise TransitionNotAllowed("The break-glass is no longer active.")
        glass.revoke(by=actor, reason=reason)
        glass.save(update_fields=["state", "ended_at", "ended_by", "end_reason"])
        audit_record(
            actor=actor,
            action="break_glass.revoke",
            target=glass,
            release=glass.release,
            from_state=BreakGlassState.ACTIVE,
            to_state=glass.state,
            reason=reason,
        )
    return glass


def break_glass_review_approve(*, glass: BreakGlass | int, actor, note: str) -> BreakGlass:
    """Approve the post-implementation review of a break-glass, with a note (required): the
    release may close again. Permissions: a holder of a break-glass role or the CAB chair,
    not the requester (separation of duties). Side effects: ``break_glass.review_approve``."""
    require_person(actor)
    note = (note or "").strip()
    if not note:
        raise InvalidInput(
            "A review note is required: what happened and what follows.",
            details={"note": ["Required."]},
        )
    with transaction.atomic():
        glass = _lock(glass)
        if actor.pk == glass.requested_by_id:
            raise PermissionDenied(
                "Separation of duties: you broke the glass, so someone else must approve its "
                "review."
            )
        if not has_role(actor, *break_glass_roles(), "cab_chair"):
            raise PermissionDenied(
                f"Only {role_people((*break_glass_roles(), 'cab_chair'))} can approve a "
                "break-glass review."
            )
        if glass.review_state != BreakGlassReview.PENDING:
            raise TransitionNotAllowed(
                f"The review was already approved by {glass.reviewed_by.get_username()}."
            )
        glass.approve_review(by=actor, note=note)
        glass.save(update_fields=["review_state", "reviewed_by", "reviewed_at", "review_note"])
        audit_record(
            actor=actor,
            action="break_glass.review_approve",
            target=glass,
            release=glass.release,
            from_state=BreakGlassReview.PENDING,
            to_state=BreakGlassReview.APPROVED,
            reason=note,
        )
    return glass


def break_glass_expire_due(*, now: datetime | None = None) -> int:
    """Beat sweep: mark every break-glass past its expiry expired, one audit event each.
    Readiness already ignores them from ``expires_at`` on; this records the end. Safe to run
    twice or in parallel: each row is claimed under its lock and re-checked."""
    now = now or timezone.now()
    done = 0
    due = BreakGlass.objects.filter(state=BreakGlassState.ACTIVE, expires_at__lte=now)
    for pk in due.values_list("pk", flat=True)[:500]:
        with transaction.atomic():
            glass = (
                BreakGlass.objects.select_for_update()
                .filter(pk=pk, state=BreakGlassState.ACTIVE, expires_at__lte=now)
                .select_related("release")
                .first()
            )
            if glass is None:
                continue
            _expire_locked(glass, now)
            done += 1
    return done
