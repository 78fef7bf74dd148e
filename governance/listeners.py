"""Hooks into the releases app's seams (registered in GovernanceConfig.ready())."""

from __future__ import annotations

from releases.models import Release

from . import notify
from .choices import ChangeState
from .services import (
    change_request_implement,
    change_request_open_for_release,
    change_request_withdraw,
)
from .services.gates import gates_evaluate_for_release, gates_instantiate, on_release_change


def on_release_transition(*, release: Release, actor, name: str, from_state: str) -> None:
    """Runs inside the transition's transaction, the release row locked.

    plan → snapshot the gate policy into gate checks (and assess risk); start_work →
    read the release's own evidence (rollback rehearsal, staging); request_approval → open
    the change request the policy asks for; mark_deployed → the approved change request is
    implemented; cancel → open change requests are withdrawn.
    """
    if name == "plan":
        gates_instantiate(release=release, actor=actor)
    elif name in ("start_work", "mark_deployed"):
        gates_evaluate_for_release(release=release, actor=actor)
    if name == "request_approval":
        snapshot = getattr(release, "policy_snapshot", None)
        if snapshot is not None and snapshot.change_request:
            change_request_open_for_release(
                release=release, actor=actor, change_type=snapshot.change_request
            )
        # Sign-offs are given while the release awaits approval: tell who can give them.
        notify.gates_waiting(release=release)
    elif name == "cancel":
        open_states = [
            ChangeState.DRAFT,
            ChangeState.SUBMITTED,
            ChangeState.IN_REVIEW,
            ChangeState.NEEDS_INFO,
        ]
        for cr in release.change_requests.filter(state__in=open_states):
            change_request_withdraw(
                change_request=cr, actor=actor, reason=f"{release} was cancelled."
            )
    elif name == "mark_deployed":
        for cr in release.change_requests.filter(state=ChangeState.APPROVED):
            change_request_implement(change_request=cr, actor=actor, note=f"{release} deployed.")


__all__ = ["on_release_change", "on_release_transition"]
