"""Release board reads: columns by state, cards with what a release manager scans for.

Each column shows at most ``per_column`` cards, chosen in SQL with a window function
(soonest window first) and counted with one aggregate, so the board costs the same at 100×
data. Gate progress is annotated with two correlated sub-queries. The top blocking reason
comes from ``releases.readiness.blockers_for`` — the same providers that refuse a
transition — for the next forward transition of each card shown; its reads are bounded by
the cap and made cheap by prefetching what the governance provider reads (gate checks,
change requests, the policy snapshot).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
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
    Window,
)
from django.db.models.functions import Coalesce, RowNumber
from django.utils import timezone

from releases import readiness
from releases.choices import ReleaseState
from releases.models import Release, Service
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


@dataclass(frozen=True)
class BoardFilters:
    service: str = ""
    team: str = ""
    owner: str = ""  # "me" or a username
    mine_user_id: int | None = None


@dataclass
class Card:
    release: Release
    delay: str  # "late" | "at_risk" | ""
    delay_reason: str
    gates_done: int
    gates_total: int
    next_transition: str
    top_blocker: str
    blocker_count: int
    moves: list[dict[str, Any]] = field(default_factory=list)

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


def _board_queryset(*, viewer, filters: BoardFilters) -> QuerySet[Release]:
    recent = timezone.now() - timedelta(days=RECENT_DAYS)
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


def _card_prefetches() -> list[Any]:
    """What the cards and the governance readiness provider read, fetched once per board."""
    from governance.models import ChangeRequest, GateCheck

    return [
        Prefetch("services", queryset=Service.objects.select_related("team")),
        Prefetch("gate_checks", queryset=GateCheck.objects.order_by("position", "id")),
        Prefetch("change_requests", queryset=ChangeRequest.objects.order_by("-created_at", "-id")),
    ]


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
    base = _board_queryset(viewer=viewer, filters=filters)
    totals = dict(base.order_by().values("state").annotate(n=Count("id")).values_list("state", "n"))
    ranked = (
        base.annotate(
            rank=Window(
                RowNumber(),
                partition_by=[F("state")],
                order_by=[F("window_start").asc(nulls_last=True), F("id").asc()],
            )
        )
        .filter(rank__lte=per_column)
        .values("pk")
    )
    releases = (
        Release.objects.filter(pk__in=ranked)
        .select_related("owner", "policy_snapshot", "rollback_plan")
        .prefetch_related(*_card_prefetches())
        .annotate(gates_total=_gate_count(False), gates_done=_gate_count(True))
        .order_by(F("window_start").asc(nulls_last=True), "id")
    )
    today = timezone.localdate()
    columns = {
        state: Column(state=state, label=ReleaseState(state).label, total=totals.get(state, 0))
        for state in COLUMNS
    }
    for release in releases:
        columns[release.state].cards.append(card_for(release, today=today))
    return list(columns.values())


def card_for(release: Release, *, today: date | None = None) -> Card:
    """One card; the top blocking reason is readiness' first blocker of the next move."""
    delay, delay_reason = _delay(release, today or timezone.localdate())
    name = NEXT_TRANSITION.get(release.state, "")
    blockers = readiness.blockers_for(release, name) if name else []
    return Card(
        release=release,
        delay=delay,
        delay_reason=delay_reason,
        gates_done=getattr(release, "gates_done", 0),
        gates_total=getattr(release, "gates_total", 0),
        next_transition=name,
        top_blocker=blockers[0].message if blockers else "",
        blocker_count=len(blockers),
    )


def board_release(*, viewer, pk: int) -> Release:
    """One release as the board's move form needs it (raises Release.DoesNotExist)."""
    return (
        visible_releases(viewer=viewer)
        .select_related("owner", "policy_snapshot", "rollback_plan")
        .prefetch_related(*_card_prefetches())
        .annotate(gates_total=_gate_count(False), gates_done=_gate_count(True))
        .get(pk=pk)
    )


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
