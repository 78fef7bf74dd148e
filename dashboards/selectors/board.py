"""Release board reads: columns by state, cards with what a release manager scans for.

Each column shows at most ``per_column`` cards, chosen in SQL by one index seek per column
(soonest window first; finished work most recent first) and counted with one aggregate, so
the board costs the same at 100× data. Gate progress is annotated with two correlated
sub-queries. The top blocking reason comes from ``releases.readiness.blockers_for`` — the
same providers that refuse a transition — for the next forward transition of each card
shown; its reads are bounded by the cap and made cheap by prefetching what the governance
provider reads (gate checks, change requests, the policy snapshot).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from django.db.models import (
    Count,
    Exists,
    F,
    IntegerField,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.dates import MONTHS_3

from releases.choices import ReleaseState
from releases.models import Release
from releases.selectors import visible_releases

from .calendar import ServiceLink

COLUMNS: tuple[str, ...] = (
    ReleaseState.DRAFT,
    ReleaseState.PLANNED,
    ReleaseState.IN_PROGRESS,
    ReleaseState.AWAITING_APPROVAL,
    ReleaseState.APPROVED,
    ReleaseState.DEPLOYING,
    ReleaseState.DEPLOYED,
    ReleaseState.CLOSED,
    ReleaseState.ROLLED_BACK,
)
# Finished work stays on the board only while it is recent.
RECENT_ONLY = (ReleaseState.CLOSED, ReleaseState.ROLLED_BACK)
RECENT_DAYS = 30
# The forward move a card is waiting for (mirrors governance.readiness.NEXT_TRANSITIONS).
NEXT_TRANSITION = {
    ReleaseState.DRAFT: "plan",
    ReleaseState.PLANNED: "start_work",
    ReleaseState.IN_PROGRESS: "request_approval",
    ReleaseState.AWAITING_APPROVAL: "approve",
    ReleaseState.APPROVED: "start_deployment",
    ReleaseState.DEPLOYING: "mark_deployed",
    ReleaseState.DEPLOYED: "close",
}
# Not yet shipped: a past target date makes these late.
NOT_SHIPPED = (
    ReleaseState.DRAFT,
    ReleaseState.PLANNED,
    ReleaseState.IN_PROGRESS,
    ReleaseState.AWAITING_APPROVAL,
    ReleaseState.APPROVED,
    ReleaseState.DEPLOYING,
)
# Not yet approved: a window this close makes these at risk.
AT_RISK_HORIZON = timedelta(days=3)
NOT_APPROVED = (
    ReleaseState.DRAFT,
    ReleaseState.PLANNED,
    ReleaseState.IN_PROGRESS,
    ReleaseState.AWAITING_APPROVAL,
)

# The release columns a card, its blockers and its moves read: not the release's texts.
# What they need of the owner, the policy snapshot and the rollback plan comes as values
# (``_card_values``), not as three more model instances per card. The cards are
# read-only; a move reads its release afresh (``board_release``).
CARD_FIELDS = (
    "id",
    "name",
    "version",
    "state",
    "owner_id",
    "window_start",
    "window_end",
    "target_date",
    "risk_level",
)

# What governance.readiness.gate_blockers reads of a gate (``requirement`` for who may waive).
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


def _gate_property(name: str) -> property:
    """``GateCheck.<name>``, the model's own property, read on a ``BoardGate`` (looked up
    when read: the models are not imported with this module)."""

    def read(gate: BoardGate) -> Any:
        from governance.models import GateCheck

        return GateCheck.__dict__[name].fget(gate)

    return property(read, doc=f"GateCheck.{name}")


@dataclass(frozen=True)
class BoardFilters:
    service: str = ""
    team: str = ""
    owner: str = ""  # "me" or a username
    mine_user_id: int | None = None


class BoardRelease:
    """A release as the board's cards read it: the row's values (``CARD_FIELDS`` and
    ``_card_values``) as attributes, plus what ``board_columns`` attaches. A ``Release``
    instance cost ~15 µs more a card to build (model ``__init__``, and the FSM mixin recording
    its initial state), and the board reads none of its methods: the blockers, the moves'
    conditions and the permission rules read these attributes only."""

    def __init__(self, row: dict[str, Any]) -> None:
        self.__dict__.update(row)

    @property
    def pk(self) -> int:
        return self.id


class BoardGate:
    """A gate as ``governance.readiness.gate_blockers`` reads it (``GATE_FIELDS`` and the
    two properties it asks for, GateCheck's own), built from a values row."""

    __slots__ = GATE_FIELDS
    is_manual = _gate_property("is_manual")
    waivable_by = _gate_property("waivable_by")

    def __init__(self, row: tuple[Any, ...]) -> None:
        for name, value in zip(GATE_FIELDS, row, strict=True):
            setattr(self, name, value)


@dataclass
class Card:
    release: Release | BoardRelease
    delay: str  # "late" | "at_risk" | ""
    delay_reason: str
    gates_done: int
    gates_total: int
    next_transition: str
    top_blocker: str
    blocker_count: int
    # What the card prints, as strings made once here rather than filter chains and
    # related-manager reads per card in the template.
    key: str = ""  # the release id, for the card's element ids
    name: str = ""
    version: str = ""
    label: str = ""  # "name version"
    owner_name: str = "—"
    target_text: str = "—"
    service_names: list[str] = field(default_factory=list)
    # The transitions the viewer may perform now (names; ``board_moves``): the card offers
    # its "Move to…" menu only when there is one. The menu itself is loaded when opened.
    moves: list[Any] = field(default_factory=list)
    # Set by the view: where the card's title and its "Move to…" menu lead.
    detail_url: str = ""
    moves_url: str = ""

    @property
    def gates_text(self) -> str:
        return f"{self.gates_done}/{self.gates_total}"

    @property
    def delay_label(self) -> str:
        return {"late": "Late", "at_risk": "At risk"}.get(self.delay, "")

    @property
    def more_blockers(self) -> int:
        return max(self.blocker_count - 1, 0)

    @property
    def gate_percent(self) -> int:
        return round(100 * self.gates_done / self.gates_total) if self.gates_total else 0


@dataclass
class Column:
    state: str
    label: str
    total: int
    cards: list[Card] = field(default_factory=list)

    @property
    def hidden(self) -> int:
        return max(self.total - len(self.cards), 0)


def _board_queryset(*, viewer, filters: BoardFilters, recent: datetime) -> QuerySet[Release]:
    qs = visible_releases(viewer=viewer).filter(state__in=COLUMNS)
    qs = qs.exclude(state__in=RECENT_ONLY, updated_at__lt=recent)
    if filters.service:
        qs = qs.filter(
            Exists(
                ServiceLink.objects.filter(release_id=OuterRef("pk"), service__slug=filters.service)
            )
        )
    if filters.team:
        qs = qs.filter(
            Exists(
                ServiceLink.objects.filter(
                    release_id=OuterRef("pk"), service__team__slug=filters.team
                )
            )
        )
    if filters.owner == "me" and filters.mine_user_id:
        qs = qs.filter(owner_id=filters.mine_user_id)
    elif filters.owner:
        qs = qs.filter(owner__username=filters.owner)
    return qs


def _gate_count(done_only: bool) -> Coalesce:
    from governance.choices import GATE_DONE
    from governance.models import GateCheck

    gates = GateCheck.objects.filter(release_id=OuterRef("pk"))
    if done_only:
        gates = gates.filter(status__in=list(GATE_DONE))
    counted = gates.order_by().values("release_id").annotate(n=Count("id")).values("n")
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))


def _blocking_stage() -> Q:
    """Gates of the stage whose gates can block the next move of a release in its state
    (governance.readiness.STAGE_FOR of NEXT_TRANSITION): the only ones board_blockers reads."""
    from governance.readiness import STAGE_FOR

    states_by_stage: dict[str, list[str]] = {}
    for state, transition in NEXT_TRANSITION.items():
        if transition in STAGE_FOR:
            states_by_stage.setdefault(STAGE_FOR[transition], []).append(state)
    wanted = Q()
    for stage, states in states_by_stage.items():
        wanted |= Q(stage=stage, release__state__in=states)
    return wanted


def _gate_progress(release_ids: list[int]) -> dict[int, tuple[int, int]]:
    """release id → (gates, gates done), for the given releases, in one query."""
    from governance.choices import GATE_DONE
    from governance.models import GateCheck

    rows = (
        GateCheck.objects.filter(release_id__in=release_ids)
        .order_by()
        .values("release_id")
        .annotate(total=Count("id"), done=Count("id", filter=Q(status__in=list(GATE_DONE))))
        .values_list("release_id", "total", "done")
    )
    return {release_id: (total, done) for release_id, total, done in rows}


def _card_prefetches() -> list[Any]:
    """What ``board_blockers`` reads of one release read as a model (``board_release``); the
    board reads the same rows for all its cards in ``_attach_governance``.

    Each goes to a plain list (``to_attr``): a prefetch into the related manager builds a
    filtered QuerySet per card and per relation (~0.1 ms each). The services are read apart
    (``_attach``), only as the board reads them: names for the card, ids for the blockers,
    team ids for the permission check."""
    from governance.choices import GATE_DONE
    from governance.models import GateCheck

    return [
        # Only gates not yet done can block (gate_blockers skips the others), and only those
        # of the stage of the card's next move; progress is counted apart (_gate_progress).
        Prefetch(
            "gate_checks",
            queryset=GateCheck.objects.filter(_blocking_stage())
            .exclude(status__in=list(GATE_DONE))
            .only(*GATE_FIELDS)
            .order_by("position", "id"),
            to_attr="board_gates",
        ),
        Prefetch(
            "change_requests",
            queryset=_change_requests(),
            to_attr="board_change_requests",
        ),
    ]


def _change_requests() -> QuerySet:
    """Change requests, newest first, each with its agenda items (and their meetings) as
    ``board_agenda``: what the approve blockers read."""
    from governance.models import AgendaItem, ChangeRequest

    agenda = Prefetch(
        "agenda_items",
        queryset=AgendaItem.objects.select_related("meeting").order_by("meeting__scheduled_at"),
        to_attr="board_agenda",
    )
    return ChangeRequest.objects.order_by("-created_at", "-id").prefetch_related(agenda)


def _attach_governance(releases: list[BoardRelease]) -> list[BoardRelease]:
    """The board's cards' ``board_gates`` and ``board_change_requests``, the same rows in the
    same order as ``_card_prefetches`` gives a model (two queries, none without cards). The
    gates come as values (``BoardGate``): at 100× data there are about as many as cards."""
    from governance.choices import GATE_DONE
    from governance.models import GateCheck

    by_id = {release.pk: release for release in releases}
    for release in releases:
        release.board_gates = []
        release.board_change_requests = []
    if not by_id:
        return releases
    gates = (
        GateCheck.objects.filter(release_id__in=list(by_id))
        .filter(_blocking_stage())
        .exclude(status__in=list(GATE_DONE))
        .order_by("position", "id")
        .values_list(*GATE_FIELDS)
    )
    for row in gates:
        gate = BoardGate(row)
        by_id[gate.release_id].board_gates.append(gate)
    for change_request in _change_requests().filter(release_id__in=list(by_id)):
        by_id[change_request.release_id].board_change_requests.append(change_request)
    _attach_validation(releases)
    return releases


def _attach_validation(releases: list[BoardRelease]) -> None:
    """``board_validation_pending``: the titles of the validation steps not yet done, for
    the deployed cards (what closing waits for). One query, none without such cards."""
    from releases.models import ValidationItem

    deployed = {r.pk: r for r in releases if r.state == ReleaseState.DEPLOYED}
    for release in releases:
        release.board_validation_pending = []
    if not deployed:
        return
    pending = (
        ValidationItem.objects.filter(release_id__in=list(deployed), done_at__isnull=True)
        .order_by("id")
        .values_list("release_id", "title")
    )
    for release_id, title in pending:
        deployed[release_id].board_validation_pending.append(title)


@dataclass(frozen=True)
class ServiceRef:
    """A card's service as the board reads it."""

    pk: int
    name: str
    team_id: int


def _attach(releases: list[Any]) -> list[Any]:
    """Each release's services (by name) as ``board_services``, read in one query as values,
    and the permission rules' per-release cache of team ids seeded from them, so
    ``has_perm("releases.transition_release", release)`` costs no query per card."""
    by_release: dict[int, list[ServiceRef]] = {release.pk: [] for release in releases}
    links = (
        ServiceLink.objects.filter(release_id__in=list(by_release))
        .order_by("service__name", "service_id")
        .values_list("release_id", "service_id", "service__name", "service__team_id")
    )
    for release_id, service_id, name, team_id in links:
        by_release[release_id].append(ServiceRef(service_id, name, team_id))
    for release in releases:
        release.board_services = by_release[release.pk]
        release._team_ids = {s.team_id for s in release.board_services}
    return releases


def _card_values(*, included_scope: bool = True) -> dict[str, Any]:
    """Annotations: included scope (the "plan" condition; the board reads it apart, see
    ``_with_included_scope``), the owner's names, the change request the policy asks for,
    and the rollback plan's steps."""
    scope = {"has_included_scope": _has_included_scope()} if included_scope else {}
    return {
        **scope,
        "owner_username": F("owner__username"),
        "owner_first_name": F("owner__first_name"),
        "owner_last_name": F("owner__last_name"),
        "change_request_needed": F("policy_snapshot__change_request"),
        "rollback_steps": F("rollback_plan__steps"),
        # What closing a deployed release needs (releases.postrelease.close_blockers): the
        # risk assessment behind the governing level, and whether a retrospective exists.
        "risk_computed": F("risk_assessment__computed_level"),
        "risk_override": F("risk_assessment__override_level"),
        "has_retrospective": _has_retrospective(),
    }


def _has_retrospective() -> Exists:
    from releases.models import Retrospective

    return Exists(Retrospective.objects.filter(release_id=OuterRef("pk")))


def _with_included_scope(release_ids: list[int]) -> set[int]:
    """The given releases that have included scope, in one query."""
    from releases.choices import ScopeStatus
    from releases.models import ScopeItem

    return set(
        ScopeItem.objects.filter(release_id__in=release_ids, status=ScopeStatus.INCLUDED)
        .order_by()
        .values_list("release_id", flat=True)
        .distinct()
    )


def _has_included_scope() -> Exists:
    from releases.choices import ScopeStatus
    from releases.models import ScopeItem

    return Exists(ScopeItem.objects.filter(release_id=OuterRef("pk"), status=ScopeStatus.INCLUDED))


def _delay(release: Release, today: date) -> tuple[str, str]:
    """Late: not shipped and its target date (or window end) has passed. At risk: not yet
    approved and its window opens within three days."""
    now = timezone.now()
    if release.state in NOT_SHIPPED:
        if release.target_date and release.target_date < today:
            return "late", f"Target date {release.target_date:%d %b} has passed."
        if release.window_end and release.window_end < now:
            return "late", "Its deployment window has closed."
    if (
        release.state in NOT_APPROVED
        and release.window_start
        and now <= release.window_start <= now + AT_RISK_HORIZON
    ):
        return "at_risk", (
            f"Window opens {timezone.localtime(release.window_start):%a %d %b %H:%M} "
            "and it is not approved yet."
        )
    return "", ""


def board_columns(*, viewer, filters: BoardFilters, per_column: int = 12) -> list[Column]:
    """The board: one column per state with its total and its first ``per_column`` cards."""
    recent = timezone.now() - timedelta(days=RECENT_DAYS)
    base = _board_queryset(viewer=viewer, filters=filters, recent=recent)
    totals = dict(base.order_by().values("state").annotate(n=Count("id")).values_list("state", "n"))
    # One LIMIT sub-query per column, OR-ed into one query: each is a seek on the
    # (state, window_start) index that stops after ``per_column`` rows, where a ROW_NUMBER()
    # over every release on the board sorted thousands of closed ones at 100× data.
    # UNION ALL of the columns' LIMIT sub-queries, not an OR of IN (…) filters: PostgreSQL
    # planned the OR as a scan of every release (9 ms at 100×), the union as 54 row reads.
    # (Each LIMIT sits one level down: SQLite refuses LIMIT in a compound's own parts.)
    # A finished column also says its recency as a range (the base's exclusion is a NOT(…)
    # no index serves): PostgreSQL then reads the recent closed releases from the (state,
    # updated_at) index instead of scanning every release (2 ms at 100×).
    columns_ids = [
        Release.objects.filter(
            pk__in=base.filter(state=state, **_recent_range(state, recent)).order_by(
                *_column_order(state)
            )[:per_column]
        )
        .order_by()
        .values("pk")
        for state in COLUMNS
    ]
    shown = Q(pk__in=columns_ids[0].union(*columns_ids[1:], all=True))
    # The cards' releases and gates as values (BoardRelease, BoardGate): no model instance
    # per card or per gate. A move reads its release as a model (``board_release``).
    values = _card_values(included_scope=False)
    rows = (
        Release.objects.filter(shown)
        .annotate(**values)
        .order_by(F("window_start").asc(nulls_last=True), "id")
        .values(*CARD_FIELDS, *values)
    )
    cards = [BoardRelease(row) for row in rows]
    # Which cards have included scope, from one read of those cards' items: as an EXISTS in
    # the cards' query PostgreSQL hashed every scope item ever written (1.2 ms at 100×).
    included = _with_included_scope([release.pk for release in cards])
    for release in cards:
        release.has_included_scope = release.pk in included
    releases = _attach_governance(_attach(cards))
    # Gate progress of all the cards from one grouped read (two correlated counts per card
    # cost more as soon as a column fills).
    progress = _gate_progress([release.pk for release in releases])
    for release in releases:
        release.gates_total, release.gates_done = progress.get(release.pk, (0, 0))
    context = BlockerContext.load()
    today = timezone.localdate()
    columns = {
        state: Column(state=state, label=ReleaseState(state).label, total=totals.get(state, 0))
        for state in COLUMNS
    }
    for release in releases:
        card = card_for(release, today=today, context=context)
        card.moves = board_moves(release=release, actor=viewer)
        columns[release.state].cards.append(card)
    for state in RECENT_ONLY:  # finished work: the most recent first
        columns[state].cards.sort(key=_recent_first, reverse=True)
    return list(columns.values())


def _recent_first(card: Card) -> tuple[bool, Any, int]:
    start = card.release.window_start
    return (start is not None, start or 0, card.release.pk)  # no window: last


def _recent_range(state: str, recent: datetime) -> dict[str, Any]:
    return {"updated_at__gte": recent} if state in RECENT_ONLY else {}


def _column_order(state: str) -> list[Any]:
    """Cards of a column in order: soonest window first for work in flight (the late ones
    lead), the most recent first for finished work (what the board is there to recall)."""
    if state in RECENT_ONLY:
        return [F("window_start").desc(nulls_last=True), F("id").desc()]
    return [F("window_start").asc(nulls_last=True), F("id").asc()]


def card_for(
    release: Release, *, today: date | None = None, context: BlockerContext | None = None
) -> Card:
    """One card. Its blockers are those of the next forward transition, computed from data
    already loaded for the whole board (see ``board_blockers``)."""
    delay, delay_reason = _delay(release, today or timezone.localdate())
    name = NEXT_TRANSITION.get(release.state, "")
    context = context or BlockerContext.load()
    blockers = board_blockers(release, name, context) if name else []
    return Card(
        release=release,
        delay=delay,
        delay_reason=delay_reason,
        gates_done=getattr(release, "gates_done", 0),
        gates_total=getattr(release, "gates_total", 0),
        next_transition=name,
        top_blocker=blockers[0] if blockers else "",
        blocker_count=len(blockers),
        key=str(release.pk),
        name=release.name,
        version=release.version,
        label=f"{release.name} {release.version}",
        owner_name=_owner_name(release),
        target_text=_target_text(release),
        service_names=[s.name for s in release.board_services],
    )


def _owner_name(release: Release) -> str:
    """As ``User.get_full_name() or username``, from the board's annotations."""
    if not release.owner_id:
        return "—"
    full = f"{release.owner_first_name} {release.owner_last_name}".strip()
    return full or release.owner_username or "—"


def _target_text(release: Release) -> str:
    """The card's "Target": the target date ("j M"), else when the window opens ("j M H:i",
    local time) — Django's date formats, spelled out (date_format costs ~20 µs a card)."""
    if release.target_date:
        day = release.target_date
        return f"{day.day} {MONTHS_3[day.month].title()}"
    if release.window_start:
        start = timezone.localtime(release.window_start)
        return f"{start.day} {MONTHS_3[start.month].title()} {start:%H:%M}"
    return "—"


# --- moves and blockers without a query per card -----------------------------------------------


def board_moves(*, release: Release, actor) -> list[str]:
    """Exactly ``releases.services.available_transitions`` (a test holds them equal for every
    state), except that the one condition that queries — "plan" needs included scope — is
    read from the board's ``has_included_scope`` annotation, so a column of drafts costs no
    query per card. The move itself always goes through the service, which re-checks all."""
    from releases.models import has_rollback_plan, has_scope

    if not hasattr(release, "has_included_scope"):
        from releases.services import available_transitions

        return available_transitions(release=release, actor=actor)
    transitions = _transitions_from(release.state)
    if not transitions or not actor.has_perm("releases.transition_release", release):
        return []
    read = {
        has_scope: lambda: release.has_included_scope,
        has_rollback_plan: lambda: bool((release.rollback_steps or "").strip()),
    }
    return [
        name
        for name, conditions in transitions
        if all(
            read[condition]() if condition in read else condition(release)
            for condition in conditions
        )
    ]


@functools.cache
def _transitions_from(state: str) -> tuple[tuple[str, tuple[Any, ...]], ...]:
    """(name, conditions) of the FSM transitions out of ``state``, in the model's order: the
    graph is fixed when the model class is built, so it is read once per state."""
    field = Release._meta.get_field("state")
    found = []
    for method in field.transitions[Release].values():
        meta = method._django_fsm
        if meta.has_transition(state):
            transition = meta.get_transition(state)
            found.append((transition.name, tuple(transition.conditions or ())))
    return tuple(found)


@dataclass
class BlockerContext:
    """What the board's blockers need beyond each release's prefetched rows, read once for
    the whole board: freezes in force now (with their exceptions for the cards shown), the
    next CAB meeting, and the services with a release deploying right now."""

    now: Any
    freezes: list[tuple[Any, Any, frozenset[int]]]  # (window, in force until, service ids)
    excepted: set[tuple[int, int]]  # (release id, freeze id) with a valid exception
    next_meeting: Any
    deploying: dict[int, list[tuple[int, str]]]  # service id → [(release id, "name version")]

    @classmethod
    def load(cls) -> BlockerContext:
        from governance.domain import freeze as freeze_domain
        from governance.models import CABMeeting, FreezeException, FreezeWindow

        now = timezone.now()
        freezes = []
        windows = FreezeWindow.objects.filter(is_active=True).prefetch_related(
            "services", "environments"
        )
        for window in windows:
            environments = list(window.environments.all())
            if environments and not any(e.is_production for e in environments):
                continue
            try:
                end = freeze_domain.next_end_after(window.rule(), now)
            except freeze_domain.FreezeRuleError:
                continue
            if end is not None:
                freezes.append((window, end, frozenset(s.pk for s in window.services.all())))
        # Exceptions of every approved release (a short list; one query whatever the cards).
        excepted = {
            (e.release_id, e.freeze_id)
            for e in FreezeException.objects.filter(
                release__state=ReleaseState.APPROVED, expires_at__gt=now
            )
            if e.is_valid_at(now)
        }
        next_meeting = (
            CABMeeting.objects.filter(state="scheduled", scheduled_at__gte=now)
            .order_by("scheduled_at")
            .first()
        )
        deploying: dict[int, list[tuple[int, str]]] = {}
        for release_id, service_id, name, version in ServiceLink.objects.filter(
            release__state=ReleaseState.DEPLOYING
        ).values_list("release_id", "service_id", "release__name", "release__version"):
            deploying.setdefault(service_id, []).append((release_id, f"{name} {version}"))
        return cls(now, freezes, excepted, next_meeting, deploying)


def board_blockers(release: Release, transition: str, context: BlockerContext) -> list[str]:
    """The messages ``releases.readiness.blockers_for`` gives for this transition, in its
    order, from the board's prefetched rows and ``context`` instead of per-release queries.

    Gates and the deployment window use governance.readiness' own functions (they are pure
    given the gates); the intrinsic "plan" conditions, the change request, freezes and
    deploying conflicts are read from the board's bulk data with the same wording. A move
    is always decided by the service, so a stale or missing reason here can never allow
    what readiness refuses.
    """
    from governance import readiness as gov
    from governance.choices import CHANGE_APPROVED_STATES, ChangeState

    found: list[str] = []
    if transition == "plan":
        if not release.owner_id:
            found.append("An owner (release manager) must be set.")
        if not getattr(release, "has_included_scope", True):
            found.append("At least one included scope item is needed.")
        if not (
            release.window_start
            and release.window_end
            and release.window_end > release.window_start
        ):
            found.append("A deployment window with an end after its start is needed.")
        if not (release.rollback_steps or "").strip():
            found.append("A rollback plan with steps is needed.")
        return found
    if transition == "close":  # intrinsic first, as readiness.blockers_for orders them
        found += [b["message"] for b in _close_blockers(release)]
    if transition not in gov.STAGE_FOR:
        return found
    gates = release.board_gates
    found += [b.message for b in gov.gate_blockers(release, transition, gates=gates)]
    if transition == "approve":
        needed = release.change_request_needed or ""
        crs = release.board_change_requests
        if not any(c.state in CHANGE_APPROVED_STATES for c in crs):
            live = next(
                (c for c in crs if c.state not in (ChangeState.REJECTED, ChangeState.CLOSED)),
                None,
            )
            if live is None and needed:
                found.append(
                    f"A {needed} change request is required; it opens when approval is requested."
                )
            elif live is not None and live.state in (ChangeState.DRAFT, ChangeState.NEEDS_INFO):
                found.append(
                    f"CR-{live.number} is {live.get_state_display().lower()}; submit it to the CAB."
                )
            elif live is not None:
                meeting = next(
                    (
                        item.meeting
                        for item in live.board_agenda
                        if item.meeting.state == "scheduled"
                    ),
                    context.next_meeting,
                )
                where = (
                    f"; next CAB meeting {meeting.scheduled_at:%Y-%m-%d %H:%M} UTC"
                    if meeting
                    else ""
                )
                found.append(f"CR-{live.number} awaits the CAB decision{where}.")
    if transition == "start_deployment":
        found += [b.message for b in gov.window_blockers(release, context.now)]
        service_ids = {s.pk for s in release.board_services}
        for window, end, covered in context.freezes:
            if covered and not covered & service_ids:
                continue
            if (release.pk, window.pk) in context.excepted:
                continue
            found.append(
                f"Freeze “{window.name}” ({window.description}) is in force until "
                f"{end:%Y-%m-%d %H:%M} UTC" + (f": {window.reason}" if window.reason else ".")
            )
        others = {
            label
            for service_id in service_ids
            for other_id, label in context.deploying.get(service_id, [])
            if other_id != release.pk
        }
        found += [f"{label} is deploying the same service right now." for label in sorted(others)]
    return found


def board_release(*, viewer, pk: int) -> Release:
    """One release as the board's move form needs it (raises Release.DoesNotExist)."""
    release = (
        visible_releases(viewer=viewer)
        .select_related("owner", "policy_snapshot", "rollback_plan")
        .prefetch_related(*_card_prefetches())
        .annotate(
            gates_total=_gate_count(False),
            gates_done=_gate_count(True),
            **_card_values(),
        )
        .get(pk=pk)
    )
    _attach_validation([release])
    return _attach([release])[0]


def board_owner_choices() -> QuerySet:
    """Owners with at least one release on the board (for the owner filter)."""
    from django.contrib.auth import get_user_model

    return (
        get_user_model()
        .objects.filter(Q(owned_releases__state__in=NOT_SHIPPED))
        .distinct()
        .only("id", "username", "first_name", "last_name")
        .order_by("username")
    )


def _close_blockers(release: BoardRelease) -> list[dict[str, Any]]:
    """``releases.postrelease.close_blockers`` from the card's row (same rule, same words)."""
    from types import SimpleNamespace

    from governance.services.risk import governing_risk_level
    from releases.postrelease.services import close_blockers_from

    assessment = (
        SimpleNamespace(
            computed_level=release.risk_computed, override_level=release.risk_override or ""
        )
        if release.risk_computed
        else None
    )
    return close_blockers_from(
        pending=release.board_validation_pending,
        risk=governing_risk_level(release, assessment),
        has_retrospective=release.has_retrospective,
    )
