"""What a person may do to a release now: the one answer every page reads.

``release_actions`` lists the transitions the viewer may press (their permission and the
state machine's own conditions: ``services.available_transitions``), each with the
blockers the readiness check of ``services.release_transition`` would raise. A blocked
action is shown disabled with what blocks it, never offered and then refused. The release
page's buttons and the board's "Move to…" menu come from here, and the API's
``available_transitions`` lists the same names (a test holds them equal for every seeded
release and demo user); the service checks everything again when the button is pressed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from . import readiness
from .models import Release
from .services import REASON_REQUIRED, TRANSITION_LABELS, available_transitions

# Moves that end or undo work: styled as dangerous, listed last.
DANGER_TRANSITIONS = frozenset({"cancel", "roll_back"})


@dataclass(frozen=True)
class Action:
    name: str
    label: str
    target: str  # the state it leads to
    reason_required: bool
    danger: bool
    blockers: tuple[readiness.Blocker, ...] = ()

    @property
    def enabled(self) -> bool:
        """May be pressed now: nothing blocks it."""
        return not self.blockers


def release_actions(
    *,
    release: Release,
    actor,
    names: Iterable[str] | None = None,
    blockers: Callable[[Release, str], list[readiness.Blocker]] = readiness.blockers_for,
) -> list[Action]:
    """The transitions ``actor`` may see on ``release``, in the model's order with the
    dangerous ones last, each with what blocks it now. ``names`` is for a caller that read
    ``available_transitions`` in bulk (the board, without a query per card)."""
    names = available_transitions(release=release, actor=actor) if names is None else names
    targets = {t.name: t.target for t in release.get_all_state_transitions()}
    return [
        Action(
            name=name,
            label=TRANSITION_LABELS.get(name, name),
            target=targets.get(name, ""),
            reason_required=name in REASON_REQUIRED,
            danger=name in DANGER_TRANSITIONS,
            blockers=tuple(blockers(release, name)),
        )
        for name in sorted(names, key=lambda n: n in DANGER_TRANSITIONS)
    ]


def enabled_actions(*, release: Release, actor) -> list[str]:
    """The names of the transitions ``actor`` may press on ``release`` now."""
    return [a.name for a in release_actions(release=release, actor=actor) if a.enabled]
