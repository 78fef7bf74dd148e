"""What governance requires before a release's transitions, and "why is this blocked?".

Registered with releases.readiness in GovernanceConfig.ready():

- request_approval: every automated gate of the pre-approval stage passed or waived.
- approve: every pre-approval gate, including the manual sign-offs the approvers give from
  their inbox while the release awaits approval, and the change request approved when the
  policy asks for one.
- start_deployment: every pre-deployment gate; inside the deployment window; no freeze
  covering the release's services in production (unless an approved exception or an active
  break-glass); no other release of the same services deploying.
- close: every post-deployment gate, and the post-implementation review of every
  break-glass approved.

Providers only read; they never write. Each rule is written once, for many releases: the
provider reads the facts of all the releases it is asked about in a fixed number of
queries (``governance_facts``, ``freeze_facts``), then applies the same rule to each
(``governance_rule``); one release is a list of one. The board asks for all its cards at
once, a transition for its release alone.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db.models import OuterRef, Prefetch, Q, Subquery
from django.utils import timezone

from core.roles import role_people, role_person
from releases.choices import ReleaseState
from releases.models import Release, Service
from releases.readiness import GOVERNED_TRANSITIONS, Blocker, blockers_for

from .choices import (
    CHANGE_APPROVED_STATES,
    GATE_DONE,
    BreakGlassReview,
    BreakGlassState,
    ChangeState,
    GateStage,
    GateStatus,
)
from .domain import freeze as freeze_domain
from .models import (
    BreakGlass,
    CABMeeting,
    ChangeRequest,
    FreezeException,
    FreezeWindow,
    GateCheck,
    PolicySnapshot,
)

STAGE_FOR = {
    "request_approval": GateStage.PRE_APPROVAL,
    "approve": GateStage.PRE_APPROVAL,
    "start_deployment": GateStage.PRE_DEPLOYMENT,
    "close": GateStage.POST_DEPLOYMENT,
}


# What the gate rule reads of a gate (``requirement`` for who may waive).
GATE_FIELDS = (
    "id",
    "release_id",
    "position",
    "stage",
    "kind",
    "label",
    "role",
    "status",
    "comment",
    "detail",
    "requirement",
)


class GateRow:
    """A gate as the gate rule reads it (``GATE_FIELDS`` and GateCheck's own two properties
    it asks for), built from a values row: a model instance cost more per gate, and a
    board reads about as many gates as cards."""

    __slots__ = GATE_FIELDS
    is_manual = property(GateCheck.is_manual.fget, doc="GateCheck.is_manual")
    waivable_by = property(GateCheck.waivable_by.fget, doc="GateCheck.waivable_by")

    def __init__(self, row: tuple[Any, ...]) -> None:
        for name, value in zip(GATE_FIELDS, row, strict=True):
            setattr(self, name, value)


def _gate_blocker(gate: GateCheck | GateRow) -> Blocker:
    if gate.is_manual:
        if gate.status == GateStatus.FAILED:
            return Blocker(
                "signoff_rejected",
                f"{gate.label} was rejected: {gate.comment}",
                f"a release manager (re-open it) or {role_people(gate.waivable_by)} (waive)",
            )
        return Blocker(
            "signoff_missing",
            f"{gate.label} is missing.",
            f"{role_person(gate.role)} (not the release owner)",
        )
    if gate.status == GateStatus.FAILED:
        return Blocker(
            "gate_failed",
            f"{gate.label} failed" + (f": {gate.detail}" if gate.detail else "."),
            f"CI (a new passing run) or {role_people(gate.waivable_by)} (waive)",
        )
    return Blocker(
        "gate_pending",
        f"{gate.label} has no result yet.",
        "CI (a pipeline run of this version)",
    )


@dataclass(frozen=True)
class ChangeRequestRow:
    """A change request as the approve rule reads it: ``meeting_at`` is when the first
    scheduled CAB meeting with it on the agenda takes place (None when none does)."""

    number: int
    state: str
    meeting_at: datetime | None


@dataclass
class GovernanceFacts:
    """What the rules read of one release beyond its row, for the transition asked about:
    its gates not yet done of that transition's stage (by position), the change request its
    policy asks for and its change requests (newest first) for "approve", and for
    "start_deployment" its services and the other releases deploying one of them."""

    gates: list[GateRow] = field(default_factory=list)
    change_request_needed: str = ""
    change_requests: list[ChangeRequestRow] = field(default_factory=list)
    service_ids: frozenset[int] = frozenset()
    conflicts: list[str] = field(default_factory=list)  # "name version", releases' order
    reviews: list[GlassRow] = field(default_factory=list)  # break-glass reviews owed (close)


@dataclass(frozen=True)
class GlassRow:
    """A break-glass as the freeze rule and the pages read it."""

    id: int
    release_id: int
    environment_id: int | None
    environment: str  # its name, "" for every production environment
    kind: str
    reason: str
    expires_at: datetime
    requested_by: str
    state: str = BreakGlassState.ACTIVE
    review_state: str = BreakGlassReview.PENDING
    created_at: datetime | None = None
    ended_at: datetime | None = None

    def active_at(self, at: datetime) -> bool:
        """In force at ``at``: opened by then, not past its expiry, not ended (revoked or
        expired) by then — the same answer now and when a recorded check is read back."""
        return (
            (self.created_at is None or self.created_at <= at)
            and at < self.expires_at
            and (self.ended_at is None or at < self.ended_at)
        )

    @property
    def where(self) -> str:
        return f"in {self.environment}" if self.environment else "in production"

    def covers(self, window_environments: frozenset[int], environment_id: int | None) -> bool:
        """Whether it lifts a freeze covering ``window_environments`` (none = every
        production environment) for a deployment to ``environment_id`` (None: the release as
        a whole — its page, board card and transition)."""
        if self.environment_id is None:
            return (
                environment_id is None
                or not window_environments
                or (environment_id in window_environments)
            )
        if environment_id is not None and environment_id != self.environment_id:
            return False
        return not window_environments or self.environment_id in window_environments


GLASS_FIELDS = (
    "id",
    "release_id",
    "environment_id",
    "environment__name",
    "kind",
    "reason",
    "expires_at",
    "requested_by__username",
    "state",
    "review_state",
    "created_at",
    "ended_at",
)


def _glass_rows(queryset) -> list[GlassRow]:
    rows = queryset.order_by("-created_at", "-id").values_list(*GLASS_FIELDS)
    return [
        GlassRow(
            id=row[0],
            release_id=row[1],
            environment_id=row[2],
            environment=row[3] or "",
            kind=row[4],
            reason=row[5],
            expires_at=row[6],
            requested_by=row[7],
            state=row[8],
            review_state=row[9],
            created_at=row[10],
            ended_at=row[11],
        )
        for row in rows
    ]


def _in_force_at(at: datetime) -> Q:
    """Opened by ``at``, not past its expiry, not revoked or expired by then (an expired or
    revoked one has ``ended_at``), so a recorded check reads back as it was answered."""
    return Q(created_at__lte=at, expires_at__gt=at) & (
        Q(ended_at__isnull=True) | Q(ended_at__gt=at)
    )


def active_break_glass(release_ids: Sequence[int], at: datetime) -> dict[int, list[GlassRow]]:
    """Each release's break-glass in force at ``at`` (one query; none without releases)."""
    found: dict[int, list[GlassRow]] = {pk: [] for pk in release_ids}
    if not release_ids:
        return found
    rows = BreakGlass.objects.filter(_in_force_at(at), release_id__in=list(release_ids))
    for row in _glass_rows(rows):
        found[row.release_id].append(row)
    return found


def pending_break_glass_reviews(release_ids: Sequence[int]) -> dict[int, list[GlassRow]]:
    """Each release's break-glass whose review is not approved yet (one query)."""
    found: dict[int, list[GlassRow]] = {pk: [] for pk in release_ids}
    if not release_ids:
        return found
    rows = BreakGlass.objects.filter(
        release_id__in=list(release_ids), review_state=BreakGlassReview.PENDING
    )
    for row in _glass_rows(rows):
        found[row.release_id].append(row)
    return found


@dataclass(frozen=True)
class FreezeFacts:
    """The freezes in force at ``at`` in production (with their end, following back-to-back
    occurrences, and the services they cover: none = every service), the (release id,
    freeze id) pairs an exception valid at ``at`` lets through, and the break-glass in force
    at ``at`` of the releases asked about, with the environments of the freezes (none =
    every production environment) that an environment-bound break-glass reads."""

    at: datetime
    in_force: list[tuple[FreezeWindow, datetime, frozenset[int]]]
    excepted: frozenset[tuple[int, int]]
    glass: Mapping[int, list[GlassRow]] = field(default_factory=dict)
    window_environments: Mapping[int, frozenset[int]] = field(default_factory=dict)

    def lifted_by(
        self, release_id: int, window: FreezeWindow, environment_id: int | None = None
    ) -> GlassRow | None:
        """The break-glass that lifts ``window`` for the release (in ``environment_id``)."""
        envs = self.window_environments.get(window.pk, frozenset())
        return next(
            (g for g in self.glass.get(release_id, []) if g.covers(envs, environment_id)),
            None,
        )

    def covering(self, service_ids: frozenset[int]) -> list[tuple[FreezeWindow, datetime]]:
        return [
            (window, end)
            for window, end, covered in self.in_force
            if not covered or covered & service_ids
        ]


class _NextMeeting:
    """The next scheduled CAB meeting after ``now``, read once and only when a rule asks."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    @functools.cached_property
    def scheduled_at(self) -> datetime | None:
        return (
            CABMeeting.objects.filter(state="scheduled", scheduled_at__gte=self.now)
            .order_by("scheduled_at")
            .values_list("scheduled_at", flat=True)
            .first()
        )


# --- the facts of many releases, in a fixed number of queries ----------------------------------


def _gates(stage_of: Mapping[int, str]) -> dict[int, list[GateRow]]:
    """The gates not yet done of each release's stage (one query; none without releases)."""
    found: dict[int, list[GateRow]] = {pk: [] for pk in stage_of}
    if not stage_of:
        return found
    by_stage: dict[str, list[int]] = {}
    for pk, stage in stage_of.items():
        by_stage.setdefault(stage, []).append(pk)
    wanted = Q()
    for stage, ids in by_stage.items():
        wanted |= Q(stage=stage, release_id__in=ids)
    rows = (
        GateCheck.objects.filter(wanted)
        .exclude(status__in=list(GATE_DONE))
        .order_by("position", "id")
        .values_list(*GATE_FIELDS)
    )
    for row in rows:
        gate = GateRow(row)
        found[gate.release_id].append(gate)
    return found


def _change_requests(release_ids: list[int]) -> dict[int, list[ChangeRequestRow]]:
    """Each release's change requests, newest first, with their first scheduled meeting."""
    found: dict[int, list[ChangeRequestRow]] = {pk: [] for pk in release_ids}
    if not release_ids:
        return found
    meeting = (
        CABMeeting.objects.filter(items__change_request=OuterRef("pk"), state="scheduled")
        .order_by("scheduled_at")
        .values("scheduled_at")[:1]
    )
    rows = (
        ChangeRequest.objects.filter(release_id__in=release_ids)
        .annotate(meeting_at=Subquery(meeting))
        .order_by("-created_at", "-id")
        .values_list("release_id", "number", "state", "meeting_at")
    )
    for release_id, number, state, meeting_at in rows:
        found[release_id].append(ChangeRequestRow(number, state, meeting_at))
    return found


def _links(release_ids: list[int]) -> tuple[dict[int, frozenset[int]], dict[int, list[str]]]:
    """Each release's services, and the other releases deploying one of them ("name
    version", in the releases' own order), from one read of the service links: the
    releases' own links and those of deploying releases on the same services, a UNION ALL
    of two index reads (an OR of the two made PostgreSQL scan every link)."""
    if not release_ids:
        return {}, {}
    link = Release.services.through
    columns = ("release_id", "service_id", "release__state", "release__name", "release__version")
    columns += ("release__window_start",)  # the releases' order: window_start, id descending
    own = link.objects.filter(release_id__in=release_ids).order_by().values_list(*columns)
    theirs = link.objects.filter(release_id__in=release_ids).order_by().values("service_id")
    deploying_links = (
        link.objects.filter(release__state=ReleaseState.DEPLOYING, service_id__in=theirs)
        .order_by()
        .values_list(*columns)
    )
    rows = own.union(deploying_links, all=True).order_by("-release__window_start", "-release_id")
    services: dict[int, set[int]] = {pk: set() for pk in release_ids}
    # service id → [(rank in the releases' order, release id, "name version")]
    deploying: dict[int, list[tuple[int, int, str]]] = {}
    for rank, (release_id, service_id, state, name, version, _) in enumerate(rows):
        if release_id in services:
            services[release_id].add(service_id)
        if state == ReleaseState.DEPLOYING:
            deploying.setdefault(service_id, []).append((rank, release_id, f"{name} {version}"))
    conflicts: dict[int, list[str]] = {}
    for pk, mine in services.items():
        others = {
            other_id: (rank, label)
            for service_id in mine
            for rank, other_id, label in deploying.get(service_id, [])
            if other_id != pk
        }
        conflicts[pk] = [label for _, label in sorted(others.values())]
    return {pk: frozenset(ids) for pk, ids in services.items()}, conflicts


def freeze_facts(release_ids: list[int], at: datetime) -> FreezeFacts:
    """The freezes in force at ``at`` (two queries) and the given releases' exceptions to
    them (one more, only when a freeze is in force)."""
    windows = (
        FreezeWindow.objects.filter(is_active=True)
        .filter(Q(environments__isnull=True) | Q(environments__is_production=True))
        .distinct()
        .prefetch_related(Prefetch("services", queryset=Service.objects.only("id")))
    )
    in_force = []
    for window in windows:
        try:
            rule = window.rule()
        except freeze_domain.FreezeRuleError:
            continue
        end = freeze_domain.next_end_after(rule, at)
        if end is not None:
            in_force.append((window, end, frozenset(s.pk for s in window.services.all())))
    excepted: set[tuple[int, int]] = set()
    glass: dict[int, list[GlassRow]] = {}
    window_environments: dict[int, frozenset[int]] = {}
    if in_force and release_ids:
        exceptions = FreezeException.objects.filter(
            release_id__in=release_ids, freeze_id__in=[window.pk for window, _, _ in in_force]
        )
        excepted = {(e.release_id, e.freeze_id) for e in exceptions if e.is_valid_at(at)}
        glass = active_break_glass(release_ids, at)
        if any(g.environment_id for rows in glass.values() for g in rows):
            # Only an environment-bound break-glass asks which environments a freeze covers.
            link = FreezeWindow.environments.through
            pairs: dict[int, set[int]] = {}
            for window_id, environment_id in link.objects.filter(
                freezewindow_id__in=[window.pk for window, _, _ in in_force]
            ).values_list("freezewindow_id", "environment_id"):
                pairs.setdefault(window_id, set()).add(environment_id)
            window_environments = {pk: frozenset(ids) for pk, ids in pairs.items()}
    return FreezeFacts(at, in_force, frozenset(excepted), glass, window_environments)


def governance_facts(
    releases: Sequence[Release], transitions: Mapping[int, str]
) -> dict[int, GovernanceFacts]:
    """The facts of every release asked about a governed transition: gates (one query),
    for "approve" the policy's change request and the change requests (two), for
    "start_deployment" the services and deploying releases (one), for "close" the
    break-glass reviews owed (one)."""
    asked = {r.pk: transitions[r.pk] for r in releases if transitions.get(r.pk) in STAGE_FOR}
    facts = {pk: GovernanceFacts() for pk in asked}
    gates = _gates({pk: STAGE_FOR[name] for pk, name in asked.items()})
    approving = [pk for pk, name in asked.items() if name == "approve"]
    deploying = [pk for pk, name in asked.items() if name == "start_deployment"]
    change_requests = _change_requests(approving)
    needed = dict(
        PolicySnapshot.objects.filter(release_id__in=approving).values_list(
            "release_id", "change_request"
        )
        if approving
        else {}
    )
    services, conflicts = _links(deploying)
    reviews = pending_break_glass_reviews([pk for pk, name in asked.items() if name == "close"])
    for pk, fact in facts.items():
        fact.gates = gates[pk]
        fact.change_requests = change_requests.get(pk, [])
        fact.change_request_needed = needed.get(pk) or ""
        fact.service_ids = services.get(pk, frozenset())
        fact.conflicts = conflicts.get(pk, [])
        fact.reviews = reviews.get(pk, [])
    return facts


# --- the rules, one release at a time, from its facts (no query but the next meeting) -----------


def _gate_rule(transition: str, facts: GovernanceFacts) -> list[Blocker]:
    relevant = facts.gates
    if transition == "request_approval":
        relevant = [g for g in relevant if not g.is_manual]
    return [_gate_blocker(g) for g in relevant]


def _change_request_rule(facts: GovernanceFacts, next_meeting: _NextMeeting) -> list[Blocker]:
    crs = facts.change_requests
    if any(c.state in CHANGE_APPROVED_STATES for c in crs):
        return []
    live = next((c for c in crs if c.state not in (ChangeState.REJECTED, ChangeState.CLOSED)), None)
    if live is None:
        if not facts.change_request_needed:
            return []
        return [
            Blocker(
                "change_request_missing",
                f"A {facts.change_request_needed} change request is required; it opens when "
                "approval is requested.",
                "release manager",
            )
        ]
    if live.state in (ChangeState.DRAFT, ChangeState.NEEDS_INFO):
        state = ChangeState(live.state).label.lower()
        return [
            Blocker(
                "change_request_not_submitted",
                f"CR-{live.number} is {state}; submit it to the CAB.",
                "release manager",
            )
        ]
    meeting_at = live.meeting_at or next_meeting.scheduled_at
    where = f"; next CAB meeting {meeting_at:%Y-%m-%d %H:%M} UTC" if meeting_at else ""
    return [
        Blocker(
            "cab_pending",
            f"CR-{live.number} awaits the CAB decision{where}.",
            "CAB members (vote), CAB chair (decide)",
            until=meeting_at,
        )
    ]


def _freeze_rule(
    release: Release,
    service_ids: frozenset[int],
    freezes: FreezeFacts,
    environment_id: int | None = None,
) -> list[Blocker]:
    """A blocker per freeze covering the release, unless an approved exception or an active
    break-glass lifts it (a break-glass bound to an environment lifts it only there)."""
    return [
        Blocker(
            "freeze",
            f"Freeze “{window.name}” ({window.description}) is in force until "
            f"{end:%Y-%m-%d %H:%M} UTC" + (f": {window.reason}" if window.reason else "."),
            "wait for the freeze to end, the CAB chair / operations (approve an exception), "
            "or a break-glass for a rollback or hotfix",
            until=end,
        )
        for window, end in freezes.covering(service_ids)
        if (release.pk, window.pk) not in freezes.excepted
        and freezes.lifted_by(release.pk, window, environment_id) is None
    ]


def _review_rule(reviews: list[GlassRow]) -> list[Blocker]:
    """Closing waits for the post-implementation review of every break-glass."""
    return [
        Blocker(
            "break_glass_review",
            f"The post-implementation review of the {g.kind} break-glass by {g.requested_by} "
            f"({g.expires_at:%Y-%m-%d %H:%M} UTC) is not approved yet.",
            f"{role_people((*_glass_roles(), 'cab_chair'))} other than {g.requested_by} "
            "(approve the review)",
        )
        for g in reviews
    ]


def _glass_roles() -> tuple[str, ...]:
    return tuple(settings.BREAK_GLASS_ROLES)


def window_blockers(release: Release, at: datetime) -> list[Blocker]:
    if not (release.window_start and release.window_end):
        return [Blocker("no_window", "No deployment window is set.", "release manager")]
    if at < release.window_start:
        return [
            Blocker(
                "window_not_open",
                f"The deployment window opens at {release.window_start:%Y-%m-%d %H:%M} UTC.",
                "wait, or a release manager (move the window)",
                until=release.window_start,
            )
        ]
    if at >= release.window_end:
        return [
            Blocker(
                "window_closed",
                f"The deployment window closed at {release.window_end:%Y-%m-%d %H:%M} UTC.",
                "release manager (schedule a new window)",
            )
        ]
    return []


def governance_rule(
    release: Release,
    transition: str,
    facts: GovernanceFacts,
    freezes: FreezeFacts | None,
    next_meeting: _NextMeeting,
) -> list[Blocker]:
    """Governance's blockers of one release's transition, from its facts."""
    if transition not in STAGE_FOR:
        return []
    found = _gate_rule(transition, facts)
    if transition == "approve":
        found += _change_request_rule(facts, next_meeting)
    if transition == "close":
        found += _review_rule(facts.reviews)
    if transition == "start_deployment" and freezes is not None:
        found += window_blockers(release, freezes.at)
        found += _freeze_rule(release, facts.service_ids, freezes)
        found += [
            Blocker(
                "conflict",
                f"{label} is deploying the same service right now.",
                "wait for it to finish",
            )
            for label in facts.conflicts
        ]
    return found


class GovernanceProvider:
    """The releases.readiness provider: every release's facts read at once, then the same
    rule for each (one release is the same with a list of one)."""

    def blockers_bulk(
        self, releases: Sequence[Release], transitions: Mapping[int, str]
    ) -> dict[int, list[Blocker]]:
        now = timezone.now()
        asked = [r for r in releases if transitions.get(r.pk) in GOVERNED_TRANSITIONS]
        facts = governance_facts(asked, transitions)
        deploying = [r.pk for r in asked if transitions[r.pk] == "start_deployment"]
        freezes = freeze_facts(deploying, now) if deploying else None
        next_meeting = _NextMeeting(now)
        return {
            r.pk: governance_rule(
                r, transitions[r.pk], facts.get(r.pk, GovernanceFacts()), freezes, next_meeting
            )
            for r in asked
        }

    def blockers(self, release: Release, transition: str) -> list[Blocker]:
        return self.blockers_bulk([release], {release.pk: transition}).get(release.pk, [])


governance_blockers = GovernanceProvider()


def active_freezes(release: Release, at: datetime) -> list[tuple[FreezeWindow, datetime]]:
    """Freezes covering the release's services in production at ``at``, with their end
    (following back-to-back occurrences), exceptions or not."""
    services, _ = _links([release.pk])
    return freeze_facts([], at).covering(services[release.pk])


def freeze_blockers(
    release: Release, at: datetime, *, environment_id: int | None = None
) -> list[Blocker]:
    """The freezes that keep the release from deploying at ``at`` (to the production
    environment ``environment_id``, where a break-glass bound to another one lifts nothing)."""
    services, _ = _links([release.pk])
    return _freeze_rule(
        release, services[release.pk], freeze_facts([release.pk], at), environment_id
    )


# --- break-glass, shown wherever the freeze is -------------------------------------------------


def break_glass_bulk(release_ids: Sequence[int], at: datetime) -> dict[int, list[GlassRow]]:
    """Each release's break-glass worth showing at ``at``: in force, or with its review still
    owed (one query; none without releases)."""
    found: dict[int, list[GlassRow]] = {pk: [] for pk in release_ids}
    if not release_ids:
        return found
    rows = BreakGlass.objects.filter(release_id__in=list(release_ids)).filter(
        _in_force_at(at) | Q(review_state=BreakGlassReview.PENDING)
    )
    for row in _glass_rows(rows):
        found[row.release_id].append(row)
    return found


def glass_note(glass: GlassRow, at: datetime, lifts: Sequence[str] = ()) -> dict:
    """One break-glass as the pages, the board and the API show it: a sentence and its facts."""
    active = glass.active_at(at)
    if active:
        what = (
            "lifts " + ", ".join(f"freeze “{name}”" for name in lifts)
            if lifts
            else "lifts the freeze"
        )
        message = (
            f"Break-glass ({glass.kind}) by {glass.requested_by} {what} {glass.where} until "
            f"{glass.expires_at:%Y-%m-%d %H:%M} UTC: {glass.reason}"
        )
    else:
        ended = "was revoked" if glass.state == BreakGlassState.REVOKED else "has expired"
        message = f"Break-glass ({glass.kind}) by {glass.requested_by} {ended}."
    if glass.review_state == BreakGlassReview.PENDING:
        message += " Its post-implementation review is pending and blocks closing."
    return {
        "id": glass.id,
        "kind": glass.kind,
        "active": active,
        "environment": glass.environment or None,
        "reason": glass.reason,
        "requested_by": glass.requested_by,
        "expires_at": glass.expires_at.isoformat(),
        "state": glass.state,
        "review_state": glass.review_state,
        "lifts": list(lifts),
        "message": message,
    }


def break_glass_notes(
    release: Release, at: datetime, *, environment_id: int | None = None
) -> list[dict]:
    """The release's break-glass at ``at`` (in force, or its review owed), each naming the
    freezes it lifts now (for a deployment to ``environment_id`` when given)."""
    rows = break_glass_bulk([release.pk], at)[release.pk]
    if not rows:
        return []
    lifts: dict[int, list[str]] = {}
    if any(g.active_at(at) for g in rows):
        services, _ = _links([release.pk])
        facts = freeze_facts([release.pk], at)
        for window, _end in facts.covering(services[release.pk]):
            glass = facts.lifted_by(release.pk, window, environment_id)
            if glass is not None and (release.pk, window.pk) not in facts.excepted:
                lifts.setdefault(glass.id, []).append(window.name)
    notes = [glass_note(g, at, lifts.get(g.id, [])) for g in rows]
    if environment_id is not None:
        # A deployment to one environment: the break-glass in force that reach it.
        notes = [
            n
            for n, g in zip(notes, rows, strict=True)
            if n["active"] and g.environment_id in (None, environment_id)
        ]
    return notes


# --- why is this blocked? ---------------------------------------------------------------------

NEXT_TRANSITIONS = {
    ReleaseState.DRAFT: ["plan"],
    ReleaseState.PLANNED: ["start_work"],
    ReleaseState.IN_PROGRESS: ["request_approval"],
    ReleaseState.AWAITING_APPROVAL: ["approve"],
    ReleaseState.APPROVED: ["start_deployment"],
    ReleaseState.DEPLOYING: ["mark_deployed"],
    ReleaseState.DEPLOYED: ["close"],
}


def release_blockers(release: Release, *, at: datetime | None = None) -> dict:
    """Every unmet requirement of the release's next forward transition(s), with who can
    resolve each and the earliest time it could proceed.

    ``earliest_at`` is when the release could move if nobody needs to act (now when nothing
    blocks; the latest time-bound blocker otherwise); ``needs_action`` says whether some
    blocker needs a person rather than time. For an approved release the window and freeze
    are also checked at the window's opening, so "earliest" accounts for a freeze then.
    """
    now = at or timezone.now()
    result = []
    for name in NEXT_TRANSITIONS.get(release.state, []):
        found = list(blockers_for(release, name))
        if name == "start_deployment" and release.window_start and now < release.window_start:
            # A freeze in force when the window opens pushes the earliest time further.
            found += [b for b in freeze_blockers(release, release.window_start) if b not in found]
        timed = [b.until for b in found if b.until is not None]
        needs_action = any(b.until is None for b in found)
        earliest = max(timed) if timed else (None if needs_action else now)
        result.append(
            {
                "transition": name,
                "ready": not found,
                "blockers": [b.as_dict() for b in found],
                "needs_action": needs_action,
                "earliest_at": earliest.isoformat() if earliest else None,
            }
        )
    return {
        "release": release.pk,
        "state": release.state,
        "checked_at": now.isoformat(),
        "transitions": result,
        "blocked": any(not t["ready"] for t in result),
        "break_glass": break_glass_notes(release, now),
    }
