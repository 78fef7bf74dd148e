"""Release calendar reads: deployment windows in a date range, freeze bands, CAB meetings and
conflicts with their explanation.

Query discipline: every function issues a fixed number of queries whatever the data size.
The month and week grids show at most ``per_day`` windows per day (chosen in SQL with a
window function, with the per-day total from one aggregate), so a busy day at 100× data
costs the same to render as a quiet one; the list view is paginated. Conflicts are found
with two self-joins and one annotated predicate, only for the windows on screen.

A release's deployment window is its *production* window (starting a deployment needs the
release inside its window and outside any freeze: docs/architecture.md). The environment
filter therefore keeps, for a production environment, every release, and otherwise the
releases with a deployment to that environment.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from typing import Any

from django.db.models import (
    Count,
    Exists,
    F,
    Func,
    IntegerField,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Window,
)
from django.db.models.functions import RowNumber
from django.utils import timezone

from governance.domain import freeze as freeze_rules
from governance.models import BreakGlass, CABMeeting, FreezeWindow
from releases.choices import ReleaseState
from releases.models import Deployment, Environment, Release, Service, Team
from releases.selectors import visible_releases

# Cancelled releases never deploy: they are hidden unless asked for by state.
HIDDEN_BY_DEFAULT = (ReleaseState.CANCELLED,)
# States whose windows can still clash (a closed or rolled-back release is history).
ACTIVE_STATES = (
    ReleaseState.DRAFT,
    ReleaseState.PLANNED,
    ReleaseState.IN_PROGRESS,
    ReleaseState.AWAITING_APPROVAL,
    ReleaseState.APPROVED,
    ReleaseState.DEPLOYING,
)

ServiceLink = Release.services.through
# The calendar API answers at most this many windows (narrow the range or filter for more).
API_MAX_RELEASES = 2000


@dataclass(frozen=True)
class CalendarFilters:
    """What the calendar (page, iCal feed and API) is narrowed to; carried in the URL."""

    service: str = ""
    team: str = ""
    environment: str = ""
    states: tuple[str, ...] = ()

    def as_query(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for name in ("service", "team", "environment"):
            if value := getattr(self, name):
                data[name] = value
        if self.states:
            data["state"] = list(self.states)
        return data


@dataclass
class Conflict:
    """Why a window is highlighted, in words a stakeholder understands."""

    kind: str  # "service" | "environment" | "freeze"
    message: str
    other_id: int | None = None


@dataclass(frozen=True)
class FreezeBand:
    """One occurrence of a freeze window within the range (recurring freezes expand)."""

    freeze_id: int
    name: str
    reason: str
    description: str
    start: datetime
    end: datetime
    scope: str
    # For conflict detection: the covered services (empty = all) and whether the freeze
    # covers a production environment (release windows are production windows).
    service_ids: frozenset[int] = frozenset()
    covers_production: bool = True
    environment_ids: frozenset[int] = frozenset()
    # The break-glass overrides that lift this occurrence for a release, in sentences: the
    # calendar shows them wherever it shows the freeze (tooltip, list, iCal, API).
    break_glass: tuple[str, ...] = ()

    @property
    def break_glass_text(self) -> str:
        return " ".join(self.break_glass)


def day_bounds(first: date, last: date) -> tuple[datetime, datetime]:
    """[first 00:00, last+1 00:00) in the current time zone, as aware datetimes."""
    tz = timezone.get_current_timezone()
    start = datetime.combine(first, time.min, tzinfo=tz)
    end = datetime.combine(last + timedelta(days=1), time.min, tzinfo=tz)
    return start, end


def calendar_queryset(
    *, viewer, start: datetime, end: datetime, filters: CalendarFilters
) -> QuerySet[Release]:
    """Visible releases whose window overlaps [start, end), filtered, with what a calendar
    entry shows (owner, services) joined or prefetched."""
    # Overlapping [start, end) = starting inside it, or already open at its start (window_end
    # > window_start is a constraint). Two index ranges: the windows starting in the range,
    # and those ending after its start. The one condition "window_start < end AND window_end
    # > start" walked every window that ever started before the range's end — for the current
    # month the whole history (9,500 at 100×) — where these read the range's windows and the
    # ones planned after it, however long the history grows.
    qs = visible_releases(viewer=viewer).filter(
        Q(window_start__gte=start, window_start__lt=end)
        | Q(window_start__lt=start, window_end__gt=start),
        window_start__isnull=False,
    )
    if filters.states:
        qs = qs.filter(state__in=filters.states)
    else:
        qs = qs.exclude(state__in=HIDDEN_BY_DEFAULT)
    # Exists() rather than joins: a release with two matching services stays one row.
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
    if filters.environment:
        deployed_there = Exists(
            Deployment.objects.filter(
                release_id=OuterRef("pk"), environment__slug=filters.environment
            )
        )
        is_production = Environment.objects.filter(
            slug=filters.environment, is_production=True
        ).values("pk")
        qs = qs.filter(deployed_there | Exists(is_production))
    return qs


@dataclass
class CalendarWindow:
    """One deployment window as the calendar draws it: plain values, not a Release model
    (a busy month draws ~130; model instances with every column cost more than the query).
    Its times are in the current time zone."""

    pk: int
    name: str
    version: str
    state: str
    window_start: datetime
    window_end: datetime
    owner_name: str
    service_names: str = ""
    service_slugs: list[str] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)

    def get_state_display(self) -> str:
        return str(STATE_LABELS.get(self.state, self.state))


STATE_LABELS = dict(ReleaseState.choices)
WINDOW_COLUMNS = (
    "pk",
    "name",
    "version",
    "state",
    "window_start",
    "window_end",
    "owner__first_name",
    "owner__last_name",
    "owner__username",
)


def windows_from_rows(rows) -> list[CalendarWindow]:
    """``CalendarWindow``s from ``WINDOW_COLUMNS`` rows, with their services attached."""
    tz = timezone.get_current_timezone()
    windows = [
        CalendarWindow(
            pk=pk,
            name=name,
            version=version,
            state=state,
            window_start=start.astimezone(tz),
            window_end=end.astimezone(tz),
            owner_name=f"{first} {last}".strip() or username or "—",
        )
        for pk, name, version, state, start, end, first, last, username in rows
    ]
    return attach_services(windows)


def attach_services(windows: list[CalendarWindow]) -> list[CalendarWindow]:
    """Set ``service_names`` ("Ledger, Payments API") and ``service_slugs`` on each window,
    from one read of their service links."""
    names: dict[int, list[str]] = {w.pk: [] for w in windows}
    slugs: dict[int, list[str]] = {w.pk: [] for w in windows}
    links = (
        ServiceLink.objects.filter(release_id__in=list(names))
        .order_by("service__name")
        .values_list("release_id", "service__name", "service__slug")
    )
    for release_id, name, slug in links:
        names[release_id].append(name)
        slugs[release_id].append(slug)
    for window in windows:
        window.service_names = ", ".join(names[window.pk])
        window.service_slugs = slugs[window.pk]
    return windows


class DayIndex(Func):
    """The day of a range a datetime falls on (0 = the first day, and anything earlier), as
    a balanced CASE over the local midnights that end each day: the database evaluates a
    few comparisons per row, and the days are right across daylight-saving changes because
    the midnights are computed in Python, in the current time zone. (TruncDate calls a
    Python function per row on SQLite: 1,100 calls for a 100× month.) Compiled to SQL text
    directly: a tree of When() objects this deep costs more to compile than to run."""

    output_field = IntegerField()

    def __init__(self, expression, midnights: list[datetime]):
        super().__init__(expression)
        self.midnights = midnights

    def as_sql(self, compiler, connection, **extra_context):
        column, column_params = compiler.compile(self.source_expressions[0])
        bounds = [connection.ops.adapt_datetimefield_value(m) for m in self.midnights]

        def build(lo: int, hi: int) -> tuple[str, list]:
            if hi - lo == 1:
                return str(lo), []
            mid = (lo + hi) // 2
            left, left_params = build(lo, mid)
            right, right_params = build(mid, hi)
            return (
                f"CASE WHEN {column} < %s THEN {left} ELSE {right} END",
                [*column_params, bounds[mid - 1], *left_params, *right_params],
            )

        return build(0, len(bounds))


def calendar_grid_releases(
    *, viewer, start: datetime, end: datetime, filters: CalendarFilters, per_day: int
) -> tuple[list[CalendarWindow], dict[date, int]]:
    """The windows to draw in a month/week grid: the first ``per_day`` of each start day
    (by start time) plus the per-day totals, so the grid can say "+ 12 more".

    Windows that began before the range show on its first day. One ranked read of the
    (window_start, window_end, state) index gives the chosen ids and each day's total;
    then the chosen rows and their service names (three queries).
    """
    base = calendar_queryset(viewer=viewer, start=start, end=end, filters=filters)
    tz = timezone.get_current_timezone()
    first = timezone.localtime(start, tz).date()
    days = max((timezone.localtime(end, tz).date() - first).days, 1)
    midnights = [
        datetime.combine(first + timedelta(days=i), time.min, tzinfo=tz) for i in range(1, days)
    ] + [end]
    ranked = (
        base.annotate(day=DayIndex("window_start", midnights))
        .annotate(
            rank=Window(
                RowNumber(), partition_by=[F("day")], order_by=[F("window_start"), F("id")]
            ),
            total=Window(Count("id"), partition_by=[F("day")]),
        )
        .filter(rank__lte=per_day)
        .values_list("pk", "day", "total")
    )
    totals: dict[date, int] = {}
    chosen: list[int] = []
    for pk, day, total in ranked:
        chosen.append(pk)
        totals[first + timedelta(days=day)] = total
    rows = (
        Release.objects.filter(pk__in=chosen)
        .order_by("window_start", "id")
        .values_list(*WINDOW_COLUMNS)
    )
    return windows_from_rows(rows), totals


def calendar_list_releases(
    *, viewer, start: datetime, end: datetime, filters: CalendarFilters
) -> QuerySet:
    """The list view's rows (``WINDOW_COLUMNS``), soonest first: paginate or slice, then
    ``windows_from_rows``."""
    return (
        calendar_queryset(viewer=viewer, start=start, end=end, filters=filters)
        .order_by("window_start", "id")
        .values_list(*WINDOW_COLUMNS)
    )


# --- freezes and CAB meetings: governance's models, read here in one place each ----------------


def freeze_bands(*, start: datetime, end: datetime, filters: CalendarFilters) -> list[FreezeBand]:
    """Freeze occurrences overlapping [start, end), expanded from each window's rule by
    governance/domain/freeze/ (the same definition the deployment guard uses).

    Freeze windows are configuration (a handful of rows), so expanding their rules in Python
    is cheap and bounded; the rows themselves are read in one query plus two prefetches.
    A freeze scoped to other services/teams than the filter asks for is left out.
    """

    windows = FreezeWindow.objects.filter(is_active=True).prefetch_related(
        Prefetch("services", queryset=Service.objects.select_related("team")), "environments"
    )
    bands: list[FreezeBand] = []
    for window in windows:
        services = list(window.services.all())
        if filters.service and services and filters.service not in {s.slug for s in services}:
            continue
        if filters.team and services and filters.team not in {s.team.slug for s in services}:
            continue
        environments = list(window.environments.all())
        if (
            filters.environment
            and environments
            and filters.environment not in {e.slug for e in environments}
        ):
            continue
        try:
            rule = window.rule()
            spans = freeze_rules.occurrences(rule, start, end)
            description = freeze_rules.describe(rule)
        except freeze_rules.FreezeRuleError:
            continue  # an invalid row is reported by the governance admin, not here
        scope = ", ".join(s.name for s in services) or "all services"
        scope += " in " + (", ".join(e.name for e in environments) or "production")
        service_ids = frozenset(s.pk for s in services)
        covers_production = not environments or any(e.is_production for e in environments)
        bands.extend(
            FreezeBand(
                freeze_id=window.pk,
                name=window.name,
                reason=window.reason,
                description=description,
                start=s,
                end=e,
                scope=scope,
                service_ids=service_ids,
                covers_production=covers_production,
                environment_ids=frozenset(e.pk for e in environments),
            )
            for s, e in spans
        )
    bands.sort(key=lambda b: (b.start, b.name))
    return _with_break_glass(bands, start, end)


def _with_break_glass(bands: list[FreezeBand], start: datetime, end: datetime) -> list[FreezeBand]:
    """Each band with the break-glass overrides in force during it for a release it covers
    (two queries, only when there are bands): the same coverage rule as the deployment guard
    (services, production, the break-glass's environment)."""
    if not bands:
        return bands
    glasses = list(
        BreakGlass.objects.filter(created_at__lt=end, expires_at__gt=start)
        .filter(Q(ended_at__isnull=True) | Q(ended_at__gt=start))
        .select_related("release", "requested_by", "environment")
        .prefetch_related(Prefetch("release__services", queryset=Service.objects.only("id")))
        .order_by("created_at", "id")
    )
    if not glasses:
        return bands
    tz = timezone.get_current_timezone()
    found = []
    for band in bands:
        sentences = []
        for glass in glasses:
            until = min(glass.expires_at, glass.ended_at or glass.expires_at)
            services = {s.pk for s in glass.release.services.all()}
            if not (glass.created_at < band.end and until > band.start):
                continue
            if not band.covers_production or (band.service_ids and not band.service_ids & services):
                continue
            if (
                glass.environment_id
                and band.environment_ids
                and (glass.environment_id not in band.environment_ids)
            ):
                continue
            where = f" in {glass.environment.name}" if glass.environment_id else ""
            sentences.append(
                f"Lifted for {glass.release} by break-glass ({glass.get_kind_display().lower()}, "
                f"{glass.requested_by.get_username()}){where} until "
                f"{until.astimezone(tz):%a %d %b %H:%M}."
            )
        found.append(replace(band, break_glass=tuple(sentences)) if sentences else band)
    return found


def cab_meetings(*, start: datetime, end: datetime) -> list[Any]:
    """CAB meetings scheduled in [start, end), with their agenda size (one query)."""
    return list(
        CABMeeting.objects.filter(scheduled_at__gte=start, scheduled_at__lt=end)
        .annotate(agenda_size=Count("items"))
        .order_by("scheduled_at", "id")
    )


# --- conflicts -----------------------------------------------------------------------------


def _window_words(release_name: str, version: str, s: datetime, e: datetime) -> str:
    tz = timezone.get_current_timezone()
    s, e = s.astimezone(tz), e.astimezone(tz)
    same_day = s.date() == e.date()
    end_text = f"{e:%H:%M}" if same_day else f"{e:%a %d %b %H:%M}"
    return f"{release_name} {version} ({s:%a %d %b %H:%M}–{end_text})"


def conflicts_for(
    *, windows: list[CalendarWindow], bands: list[FreezeBand]
) -> dict[int, list[Conflict]]:
    """Conflicts of the windows on screen, explained. Two queries whatever the count, each
    reading only the active releases overlapping the windows on screen:

    - same service: another active release of one of its services with an overlapping window;
    - shared production environment: another active release with a deployment to the same
      production environment and an overlapping window;
    - freeze: the window overlaps a freeze occurrence covering one of its services (the
      occurrences come from ``bands``, already expanded for the range; no query).

    Only active windows conflict (a closed or rolled-back release is history).
    """
    found: dict[int, list[Conflict]] = {}
    active = [str(s) for s in ACTIVE_STATES]
    if not windows:
        return found
    mine_active = [w for w in windows if w.state in active]
    # The other side of each pair: only active releases overlapping the span of the windows
    # on screen (the (state, window_start) index finds them), so the self-joins below never
    # walk a service's or an environment's whole history. The active windows on screen are
    # among them. (Same two queries whenever windows are shown, even if none is active.)
    span = mine_active or windows
    candidates = Release.objects.filter(
        state__in=active,
        window_start__lt=max(w.window_end for w in span),
        window_end__gt=min(w.window_start for w in span),
    ).values("pk")

    # Same service: the links of the candidates in one query, paired here. Joining
    # release → service → every release of the service walked each service's whole history
    # (~600 releases each at 100× data).
    links = ServiceLink.objects.filter(release_id__in=candidates).values_list(
        "release_id",
        "service_id",
        "service__name",
        "release__name",
        "release__version",
        "release__window_start",
        "release__window_end",
        "release__state",
    )
    shown_ids = {w.pk for w in mine_active}
    by_service: dict[int, list[tuple]] = {}
    mine: list[tuple] = []
    services_of: dict[int, set[int]] = {}
    for row in links:
        by_service.setdefault(row[1], []).append(row)
        if row[0] in shown_ids:
            mine.append(row)
            services_of.setdefault(row[0], set()).add(row[1])
    pairs = []
    for rid, service_id, service_name, _, _, start, end, _ in mine:
        for other in by_service.get(service_id, []):
            other_id, _, _, other_name, other_version, other_start, other_end, _ = other
            if other_id != rid and other_start < end and other_end > start:
                pairs.append((rid, other_start, other_id, service_name, other))
    pairs.sort(key=lambda pair: pair[:3])
    for rid, _, other_id, service_name, other in pairs:
        words = _window_words(other[3], other[4], other[5], other[6])
        found.setdefault(rid, []).append(
            Conflict(
                kind="service",
                message=f"Same service {service_name}: overlaps {words}.",
                other_id=other_id,
            )
        )

    # Shared production environment: the candidates' production deployments in one query,
    # paired here like the service links. (A self-join through the environment walked every
    # deployment to production on PostgreSQL: ~480,000 rows at 100× data.)
    deployed = (
        Deployment.objects.filter(release_id__in=candidates, environment__is_production=True)
        .values_list(
            "release_id",
            "environment_id",
            "environment__name",
            "release__name",
            "release__version",
            "release__window_start",
            "release__window_end",
        )
        .order_by()  # else Deployment's ordering joins the DISTINCT: a row per deployment
        .distinct()
    )
    by_environment: dict[int, dict[int, tuple]] = {}
    environments_of: dict[int, dict[int, str]] = {}
    for rid, env_id, env_name, *other in deployed:
        by_environment.setdefault(env_id, {})[rid] = (rid, *other)
        if rid in shown_ids:
            environments_of.setdefault(rid, {})[env_id] = env_name
    env_pairs = []
    for window in mine_active:
        for env_id, env_name in environments_of.get(window.pk, {}).items():
            for other in by_environment[env_id].values():
                other_id, _, _, other_start, other_end = other
                if (
                    other_id != window.pk
                    and other_start < window.window_end
                    and other_end > window.window_start
                ):
                    env_pairs.append((window.pk, other_start, other_id, env_name, other))
    env_pairs.sort(key=lambda pair: pair[:4])
    seen: set[tuple[int, int]] = {(c.other_id or 0, rid) for rid, cs in found.items() for c in cs}
    for rid, _, other_id, env_name, other in env_pairs:
        if (other_id, rid) in seen:
            continue  # already explained (same service, or another shared environment)
        seen.add((other_id, rid))
        words = _window_words(*other[1:])
        found.setdefault(rid, []).append(
            Conflict(
                kind="environment",
                message=f"Shares production environment {env_name}: overlaps {words}.",
                other_id=other_id,
            )
        )

    said: dict[int, str] = {}  # one sentence per freeze occurrence, however many it covers
    for release_id, band in _freeze_hits(mine_active, services_of, bands):
        if id(band) not in said:
            s, e = timezone.localtime(band.start), timezone.localtime(band.end)
            reason = f" Reason: {band.reason}" if band.reason else ""
            said[id(band)] = (
                f"Window falls in freeze “{band.name}” ({s:%a %d %b %H:%M} – "
                f"{e:%a %d %b %H:%M}, {band.scope}).{reason}"
            )
        found.setdefault(release_id, []).append(Conflict(kind="freeze", message=said[id(band)]))
    return found


def _freeze_hits(
    windows: list[CalendarWindow], services_of: dict[int, set[int]], bands: list[FreezeBand]
) -> list[tuple[int, FreezeBand]]:
    """(window id, first freeze occurrence it overlaps) for the active windows on screen: a
    freeze covers a window when it covers production and all services or one of the
    window's services. Bounded by what is on screen; no query."""
    hits = []
    covering = [band for band in bands if band.covers_production]
    for window in windows:
        services = services_of.get(window.pk, set())
        for band in covering:
            if (
                band.start < window.window_end
                and band.end > window.window_start
                and (not band.service_ids or band.service_ids & services)
            ):
                hits.append((window.pk, band))
                break
    return hits


def calendar_filter_choices() -> dict[str, list]:
    """Options for the filter form (three small queries)."""
    return {
        "services": list(Service.objects.only("slug", "name").order_by("name")),
        "teams": list(Team.objects.only("slug", "name").order_by("name")),
        "environments": list(Environment.objects.order_by("order", "name")),
    }
