"""Helpers shared by the governance services: permission checks in words a user reads."""

from __future__ import annotations

from core.errors import InvalidInput, PermissionDenied, TransitionNotAllowed
from core.roles import Role, has_role
from releases.choices import TERMINAL_STATES
from releases.models import Release


def is_person(actor) -> bool:
    return bool(actor and getattr(actor, "is_authenticated", False)) and not getattr(
        actor, "is_machine", False
    )


def require_person(actor) -> None:
    if not is_person(actor):
        raise PermissionDenied("Only a signed-in person can do this.")


def require_text(value: str, what: str, field: str = "comment") -> str:
    value = (value or "").strip()
    if not value:
        raise InvalidInput(f"{what} is required.", details={field: ["Required."]})
    return value


def refuse_own_release(actor, release: Release, verb: str) -> None:
    """Separation of duties: nobody approves, waives or votes on a release they own.
    ``verb`` completes "you cannot …" (e.g. "sign off its gates")."""
    if release is not None and release.owner_id is not None and release.owner_id == actor.pk:
        raise PermissionDenied(f"Separation of duties: you own {release}, so you cannot {verb}.")


def require_manager(actor, release: Release, message: str = "") -> None:
    if not actor.has_perm("releases.transition_release", release):
        raise PermissionDenied(message or "Only a release manager of the owning team can do this.")


def is_live(release: Release) -> bool:
    """Whether the release's governance may still change (not closed, cancelled or rolled
    back); pages ask it before offering gate and risk actions."""
    return release.state not in TERMINAL_STATES


def require_live(release: Release) -> None:
    if not is_live(release):
        raise TransitionNotAllowed(
            f"The release is {release.get_state_display().lower()}; its governance is final."
        )


def is_chair(actor) -> bool:
    return has_role(actor, Role.CAB_CHAIR, Role.ADMINISTRATOR)


def lock_release(release: Release | int) -> Release:
    pk = release.pk if isinstance(release, Release) else release
    return Release.objects.select_for_update().get(pk=pk)
