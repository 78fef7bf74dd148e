"""The readiness seam: what stands between a release and its next transition.

Transitions that depend on governance (request approval, approve, start deployment, close)
ask ``blockers_for``. The releases app contributes the intrinsic conditions (owner, scope,
window, rollback plan; validation and retrospective before closing); other apps register
providers in their AppConfig.ready() — the governance app adds gates, sign-offs, CAB
decisions and freeze windows. With no provider registered a transition has "no
requirements" beyond the intrinsic ones.

Every rule is written once, for many releases: ``blockers_bulk`` reads the facts of all the
releases it is given in a fixed number of queries, then applies the same pure rule to each;
``blockers_for`` is that with one release. A page listing releases (the board) asks once for
all of them; a service refusing one transition asks for one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from . import models as m
from .choices import ScopeStatus
from .models import Release, Retrospective, ScopeItem, ValidationItem
from .postrelease.services import close_blockers_from
from .risk import governing_level, with_risk

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


def blockers_text(blockers: Iterable[Blocker]) -> str:
    """The blockers as one paragraph: each message is a sentence (a full stop added where
    one is missing), separated by a space — never "….; …"."""
    sentences = []
    for blocker in blockers:
        message = blocker.message.strip()
        sentences.append(message if message.endswith((".", "!", "?")) else f"{message}.")
    return " ".join(sentences)


class BulkProvider(Protocol):
    """A provider that answers for many releases at once: ``transitions`` maps a release id
    to the transition asked about (releases absent from it are not asked about); the answer
    maps each asked release id to its blockers. It reads in a fixed number of queries,
    whatever the number of releases."""

    def blockers_bulk(
        self, releases: Sequence[Release], transitions: Mapping[int, str]
    ) -> dict[int, list[Blocker]]: ...


# A plain provider answers for one release: provider(release, transition).
Provider = Callable[["Release", str], Iterable[Blocker]]
_providers: list[BulkProvider | Provider] = []

# Transitions whose readiness other apps may restrict.
GOVERNED_TRANSITIONS = frozenset({"request_approval", "approve", "start_deployment", "close"})


def register(provider: BulkProvider | Provider) -> BulkProvider | Provider:
    """Add a provider: an object with ``blockers_bulk`` (see ``BulkProvider``), or a plain
    function of one release, asked release by release (idempotent, so a re-imported module
    does not register twice)."""
    if provider not in _providers:
        _providers.append(provider)
    return provider


def unregister(provider: BulkProvider | Provider) -> None:
    if provider in _providers:
        _providers.remove(provider)


def _ask(
    provider: BulkProvider | Provider, releases: Sequence[Release], transitions: Mapping[int, str]
) -> dict[int, list[Blocker]]:
    if hasattr(provider, "blockers_bulk"):
        return provider.blockers_bulk(releases, transitions)
    return {r.pk: list(provider(r, transitions[r.pk])) for r in releases if r.pk in transitions}


# --- intrinsic conditions ---------------------------------------------------------------------


@dataclass(frozen=True)
class IntrinsicFacts:
    """What the intrinsic rules read of a release beyond its own row: for "plan", whether
    it has included scope and its rollback plan's steps; for "close", the titles of the
    validation steps not done, the governing risk level and whether a retrospective exists.
    Only the facts of the transition asked about are read; the others keep their defaults."""

    has_scope: bool = False
    rollback_steps: str = ""
    pending_validation: tuple[str, ...] = ()
    risk: str = ""
    has_retrospective: bool = False

    @property
    def has_rollback_plan(self) -> bool:
        return bool(self.rollback_steps.strip())


def intrinsic_facts(
    releases: Sequence[Release], transitions: Mapping[int, str]
) -> dict[int, IntrinsicFacts]:
    """The intrinsic facts of every release asked about "plan" or "close", in at most three
    queries (none when no release is): included scope, the validation steps not done, and
    one read of the releases' rollback plans, risk assessments and retrospectives."""
    from django.db.models import Exists, F, OuterRef

    planned = [r.pk for r in releases if transitions.get(r.pk) == "plan"]
    closing = [r.pk for r in releases if transitions.get(r.pk) == "close"]
    facts: dict[int, dict] = {pk: {} for pk in (*planned, *closing)}
    if not facts:
        return {}
    planned_ids = set(planned)
    # One read of the releases: the rollback plan's steps, whether a retrospective exists,
    # and what the risk seam reads for the governing level (releases.risk).
    rows = with_risk(Release.objects.filter(pk__in=list(facts)), lean=True).annotate(
        steps=F("rollback_plan__steps"),
        retro=Exists(Retrospective.objects.filter(release_id=OuterRef("pk"))),
    )
    for row in rows.order_by():
        if row.pk in planned_ids:
            facts[row.pk]["rollback_steps"] = row.steps or ""
        else:
            facts[row.pk]["risk"] = governing_level(row)
            facts[row.pk]["has_retrospective"] = row.retro
    if planned:
        for pk in (
            ScopeItem.objects.filter(release_id__in=planned, status=ScopeStatus.INCLUDED)
            .order_by()
            .values_list("release_id", flat=True)
            .distinct()
        ):
            facts[pk]["has_scope"] = True
    if closing:
        pending: dict[int, list[str]] = {}
        for pk, title in (
            ValidationItem.objects.filter(release_id__in=closing, done_at__isnull=True)
            .order_by("id")
            .values_list("release_id", "title")
        ):
            pending.setdefault(pk, []).append(title)
        for pk in closing:
            facts[pk]["pending_validation"] = tuple(pending.get(pk, ()))
    return {pk: IntrinsicFacts(**values) for pk, values in facts.items()}


def intrinsic_rule(release: Release, transition: str, facts: IntrinsicFacts) -> list[Blocker]:
    """The intrinsic blockers of one release from its row and its facts (no query)."""
    if transition == "close":
        return [
            Blocker(b["code"], b["message"], "the release manager")
            for b in close_blockers_from(
                pending=list(facts.pending_validation),
                risk=facts.risk,
                has_retrospective=facts.has_retrospective,
            )
        ]
    if transition != "plan":
        return []
    found = []
    if not m.has_owner(release):
        found.append(Blocker("no_owner", "An owner (release manager) must be set."))
    if not facts.has_scope:
        found.append(Blocker("no_scope", "At least one included scope item is needed."))
    if not m.has_window(release):
        found.append(
            Blocker("no_window", "A deployment window with an end after its start is needed.")
        )
    if not facts.has_rollback_plan:
        found.append(Blocker("no_rollback_plan", "A rollback plan with steps is needed."))
    return found


def intrinsic_blockers(release: Release, transition: str) -> list[Blocker]:
    facts = intrinsic_facts([release], {release.pk: transition})
    return intrinsic_rule(release, transition, facts.get(release.pk, IntrinsicFacts()))


# --- all the rules ----------------------------------------------------------------------------


def blockers_bulk(
    releases: Sequence[Release],
    transitions: Mapping[int, str],
    *,
    intrinsic: Mapping[int, IntrinsicFacts] | None = None,
) -> dict[int, list[Blocker]]:
    """The blockers of each release's transition (``transitions``: release id → name; a
    release absent from it gets none): the intrinsic ones first, then each provider's, in
    the order they registered — what ``blockers_for`` says of each, in a number of queries
    that does not grow with the releases (for the bulk providers; a plain one is asked
    release by release). ``intrinsic`` passes facts the caller already read with
    ``intrinsic_facts`` (the board reads them for its moves too)."""
    asked = [r for r in releases if r.pk in transitions]
    if intrinsic is None:
        intrinsic = intrinsic_facts(asked, transitions)
    found = {
        r.pk: intrinsic_rule(r, transitions[r.pk], intrinsic.get(r.pk, IntrinsicFacts()))
        for r in asked
    }
    governed = {pk: name for pk, name in transitions.items() if name in GOVERNED_TRANSITIONS}
    governed_releases = [r for r in asked if r.pk in governed]
    if governed_releases:
        for provider in _providers:
            for pk, blockers in _ask(provider, governed_releases, governed).items():
                found[pk].extend(blockers)
    return found


def blockers_for(release: Release, transition: str) -> list[Blocker]:
    return blockers_bulk([release], {release.pk: transition})[release.pk]


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
