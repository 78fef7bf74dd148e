"""The readiness seam: what stands between a release and its next transition.

Transitions that depend on governance (request approval, approve, start deployment, close)
ask ``blockers_for``. The releases app contributes the intrinsic conditions (owner, scope,
window, rollback plan); other apps register providers in their AppConfig.ready() — the
governance app adds gates, sign-offs, CAB decisions and freeze windows. With no provider
registered a transition has "no requirements" beyond the intrinsic ones.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .models import Release


@dataclass(frozen=True)
class Blocker:
    """One unmet requirement, in words a user understands."""

    code: str
    message: str
    who_can_resolve: str = ""
    until: datetime | None = None

    def as_dict(self) -> dict:
        return {
            "code": self.code,
            "message": self.message,
            "who_can_resolve": self.who_can_resolve,
            "until": self.until.isoformat() if self.until else None,
        }


Provider = Callable[["Release", str], Iterable[Blocker]]
_providers: list[Provider] = []

# Transitions whose readiness other apps may restrict.
GOVERNED_TRANSITIONS = frozenset({"request_approval", "approve", "start_deployment", "close"})


def register(provider: Provider) -> Provider:
    """Add a provider (idempotent, so a re-imported module does not register twice)."""
    if provider not in _providers:
        _providers.append(provider)
    return provider


def unregister(provider: Provider) -> None:
    if provider in _providers:
        _providers.remove(provider)


def intrinsic_blockers(release: Release, transition: str) -> list[Blocker]:
    from . import models as m

    if transition == "close":
        from .postrelease.services import close_blockers

        return [
            Blocker(b["code"], b["message"], "the release manager") for b in close_blockers(release)
        ]
    if transition != "plan":
        return []
    found = []
    if not m.has_owner(release):
        found.append(Blocker("no_owner", "An owner (release manager) must be set."))
    if not m.has_scope(release):
        found.append(Blocker("no_scope", "At least one included scope item is needed."))
    if not m.has_window(release):
        found.append(
            Blocker("no_window", "A deployment window with an end after its start is needed.")
        )
    if not m.has_rollback_plan(release):
        found.append(Blocker("no_rollback_plan", "A rollback plan with steps is needed."))
    return found


def blockers_for(release: Release, transition: str) -> list[Blocker]:
    found = intrinsic_blockers(release, transition)
    if transition in GOVERNED_TRANSITIONS:
        for provider in _providers:
            found.extend(provider(release, transition))
    return found


# --- change listeners: invalidation after edits ---------------------------------------------

ChangeListener = Callable[..., None]
_change_listeners: list[ChangeListener] = []


def register_change_listener(listener: ChangeListener) -> ChangeListener:
    """Called inside the edit's transaction as listener(release=, actor=, what=, reason=).

    ``what`` is one of "scope", "rollback_plan", "build" — the governance app uses it to
    reset the sign-offs a change invalidates.
    """
    if listener not in _change_listeners:
        _change_listeners.append(listener)
    return listener


def notify_change(*, release: Release, actor, what: str, reason: str) -> None:
    for listener in _change_listeners:
        listener(release=release, actor=actor, what=what, reason=reason)


# --- transition listeners: work that follows a transition -----------------------------------

TransitionListener = Callable[..., None]
_transition_listeners: list[TransitionListener] = []


def register_transition_listener(listener: TransitionListener) -> TransitionListener:
    """Called inside the transition's transaction, after it is saved and audited, as
    listener(release=, actor=, name=, from_state=). The governance app instantiates gate
    checks on "plan" and opens the change request on "request_approval"."""
    if listener not in _transition_listeners:
        _transition_listeners.append(listener)
    return listener


def notify_transition(*, release: Release, actor, name: str, from_state: str) -> None:
    for listener in _transition_listeners:
        listener(release=release, actor=actor, name=name, from_state=from_state)
