"""Release board reads: columns by state, cards with what a release manager scans for.

Each column shows at most ``per_column`` cards, chosen in SQL by one index seek per column
(soonest window first; finished work most recent first) and counted with one aggregate, so
the board costs the same at 100× data. Gate progress is counted in one grouped read. The
top blocking reason comes from ``releases.readiness.blockers_bulk`` — the same rules and
providers that refuse a transition — for the next forward transition of every card shown,
asked once for all of them (a fixed number of queries, whatever the cards).
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
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.dates import MONTHS_3

from governance.choices import GATE_DONE
from governance.models import GateCheck
from governance.readiness import GlassRow, break_glass_bulk, glass_note
from releases import readiness
from releases.choices import ReleaseState, ScopeStatus
from releases.models import Release, ScopeItem, has_rollback_plan, has_scope
from releases.risk import governing_level, governing_level_expression
from releases.selectors import visible_releases
from releases.services import available_transitions

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
# What they need of the owner comes as values (``_owner_values``), not as one more model
# instance per card. The cards are read-only; a move reads its release afresh
# (``board_release``).
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


@dataclass(frozen=True)
class BoardFilters:
    service: str = ""
    team: str = ""
    owner: str = ""  # "me" or a username
    mine_user_id: int | None = None


class BoardRelease:
    """A release as the board's cards read it: the row's values (``CARD_FIELDS`` and
    ``_owner_values``) as attributes, plus what ``board_columns`` attaches. A ``Release``
    instance cost ~15 µs more a card to build (model ``__init__``, and the FSM mixin recording
    its initial state), and the board reads none of its methods: the blockers, the moves'
    conditions and the permission rules read these attributes only."""

    def __init__(self, row: dict[str, Any]) -> None:
        self.__dict__.update(row)

    @property
    def pk(self) -> int:
        return self.id


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
    # Break-glass shown where the freeze is: one sentence per override in force or review
    # owed (``governance.readiness.glass_note``), never a blocker of its own.
    break_glass: list[str] = field(default_factory=list)
    # What the card prints, as strings made once here rather than filter chains and
    # related-manager reads per card in the template.
    key: str = ""  # the release id, for the card's element ids
    name: str = ""
    version: str = ""
    label: str = ""  # "name version"
    owner_name: str = "—"
    target_text: str = "—"
    service_names: list[str] = field(default_factory=list)
    risk: str = ""  # the governing risk level
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

    gates = GateCheck.objects.filter(release_id=OuterRef("pk"))
    if done_only:
        gates = gates.filter(status__in=list(GATE_DONE))
    counted = gates.order_by().values("release_id").annotate(n=Count("id")).values("n")
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))


def _gate_progress(release_ids: list[int]) -> dict[int, tuple[int, int]]:
    """release id → (gates, gates done), for the given releases, in one query."""

    rows = (
        GateCheck.objects.filter(release_id__in=release_ids)
        .order_by()
        .values("release_id")
        .annotate(total=Count("id"), done=Count("id", filter=Q(status__in=list(GATE_DONE))))
        .values_list("release_id", "total", "done")
    )
    return {release_id: (total, done) for release_id, total, done in rows}


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


def _owner_values() -> dict[str, Any]:
    """Annotations: the owner's names, for the card (``_owner_name``)."""
    return {
        "owner_username": F("owner__username"),
        "owner_first_name": F("owner__first_name"),
        "owner_last_name": F("owner__last_name"),
    }


def _has_included_scope() -> Exists:

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
    # planned the OR as a scan of every release, the union as a few row reads per column.
    # (Each LIMIT sits one level down: SQLite refuses LIMIT in a compound's own parts.)
    # A finished column also says its recency as a range (the base's exclusion is a NOT(…)
    # no index serves): PostgreSQL then reads the recent closed releases from the (state,
    # updated_at) index instead of scanning every release. (Figures: docs/benchmarks-pages.md.)
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
    # The cards' releases as values (BoardRelease): no model instance per card (readiness
    # reads their gates as values too). A move reads its release as a model
    # (``board_release``).
    values = _owner_values()
    rows = (
        Release.objects.filter(shown)
        .annotate(**values, governing_risk=governing_level_expression())
        .order_by(F("window_start").asc(nulls_last=True), "id")
        .values(*CARD_FIELDS, *values, "governing_risk")
    )
    releases = _attach([BoardRelease(row) for row in rows])
    # Gate progress of all the cards from one grouped read (two correlated counts per card
    # cost more as soon as a column fills).
    progress = _gate_progress([release.pk for release in releases])
    for release in releases:
        release.gates_total, release.gates_done = progress.get(release.pk, (0, 0))
    blockers = _blockers(releases)
    glass = break_glass_bulk([release.pk for release in releases], timezone.now())
    today = timezone.localdate()
    columns = {
        state: Column(state=state, label=ReleaseState(state).label, total=totals.get(state, 0))
        for state in COLUMNS
    }
    for release in releases:
        card = card_for(
            release, today=today, blockers=blockers.get(release.pk, []), glass=glass[release.pk]
        )
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


def _blockers(releases: list[BoardRelease]) -> dict[int, list[readiness.Blocker]]:
    """The blockers of every card's next forward transition, asked of the readiness seam
    once for all the cards. The intrinsic facts it reads for "plan" (included scope, the
    rollback plan's steps) are also the two conditions of that move that read more than the
    card's row: ``board_moves`` reads them from the cards."""
    transitions = {r.pk: NEXT_TRANSITION[r.state] for r in releases if r.state in NEXT_TRANSITION}
    intrinsic = readiness.intrinsic_facts(releases, transitions)
    for release in releases:
        facts = intrinsic.get(release.pk, readiness.IntrinsicFacts())
        release.has_included_scope = facts.has_scope
        release.rollback_steps = facts.rollback_steps
    return readiness.blockers_bulk(releases, transitions, intrinsic=intrinsic)


def card_for(
    release: Release | BoardRelease,
    *,
    today: date | None = None,
    blockers: list[readiness.Blocker] | None = None,
    glass: list[GlassRow] | None = None,
) -> Card:
    """One card. Its blockers are those of the next forward transition, and its break-glass:
    given when the board asked for all its cards at once (``_blockers``,
    ``break_glass_bulk``), else asked for this release."""
    delay, delay_reason = _delay(release, today or timezone.localdate())
    name = NEXT_TRANSITION.get(release.state, "")
    if blockers is None:
        blockers = readiness.blockers_for(release, name) if name else []
    messages = [b.message for b in blockers]
    now = timezone.now()
    if glass is None:
        glass = break_glass_bulk([release.pk], now)[release.pk]
    return Card(
        release=release,
        delay=delay,
        delay_reason=delay_reason,
        gates_done=getattr(release, "gates_done", 0),
        gates_total=getattr(release, "gates_total", 0),
        next_transition=name,
        top_blocker=messages[0] if messages else "",
        blocker_count=len(messages),
        break_glass=[glass_note(g, now)["message"] for g in glass],
        key=str(release.pk),
        name=release.name,
        version=release.version,
        label=f"{release.name} {release.version}",
        owner_name=_owner_name(release),
        target_text=_target_text(release),
        service_names=[s.name for s in release.board_services],
        # The governing level (releases.risk), computed in the cards' query.
        risk=getattr(release, "governing_risk", None) or governing_level(release),
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
    state), except that the two conditions that read more than the release's row — "plan"
    needs included scope and a rollback plan — are read from the card's
    ``has_included_scope`` and ``rollback_steps`` (the readiness facts the board read for
    all its drafts, or ``board_release``'s annotations), so a column of drafts costs no
    query per card. The move itself always goes through the service, which re-checks all."""
    if not hasattr(release, "has_included_scope"):
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


def board_release(*, viewer, pk: int) -> Release:
    """One release as the board's move form needs it (raises Release.DoesNotExist): with
    the annotations ``board_moves`` and ``card_for`` read (its blockers are asked of the
    readiness seam for this release alone)."""
    release = (
        visible_releases(viewer=viewer)
        .select_related("owner", "policy_snapshot", "rollback_plan")
        .annotate(
            gates_total=_gate_count(False),
            gates_done=_gate_count(True),
            has_included_scope=_has_included_scope(),
            rollback_steps=F("rollback_plan__steps"),
            governing_risk=governing_level_expression(),
            **_owner_values(),
        )
        .get(pk=pk)
    )
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
