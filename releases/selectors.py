"""Reads of the releases app, with their joins chosen for the pages and the API."""

from __future__ import annotations

from datetime import date, datetime, time

from django.db.models import Prefetch, QuerySet
from django.utils import timezone

from core.models import AuditEvent

from .choices import OPEN_ACTION_STATUSES
from .models import (
    ActionItem,
    Environment,
    Release,
    ReleaseRisk,
    Retrospective,
    ScopeItem,
    Service,
    Team,
)
from .risk import governing_level_q, with_risk


def visible_releases(*, viewer) -> QuerySet[Release]:
    """Releases the viewer may see: everything for role holders and administrators; for a
    token, the releases of its services; nothing for outsiders."""
    qs = Release.objects.all()
    if getattr(viewer, "is_machine", False):
        if not viewer.has_scope("releases:read"):
            return qs.none()
        return qs.filter(services__in=viewer.service_ids).distinct()
    if not viewer.has_perm("releases.view_release"):
        return qs.none()
    return qs


def release_list(*, viewer, filters: dict | None = None) -> QuerySet[Release]:
    """Releases for the list page, newest window first. ``risk_level`` filters on the
    governing risk (what the rows show), read with the assessment in the same query."""
    filters = filters or {}
    qs = (
        # What the governing level reads, lean: the rows show the level, not why.
        with_risk(visible_releases(viewer=viewer), lean=True)
        .select_related("owner")
        .prefetch_related(
            Prefetch("services", queryset=Service.objects.only("id", "name", "slug", "team_id"))
        )
    )
    if states := filters.get("state"):
        qs = qs.filter(state__in=states if isinstance(states, list | tuple) else [states])
    if service := filters.get("service"):
        qs = qs.filter(services__slug=service)
    if team := filters.get("team"):
        qs = qs.filter(services__team__slug=team)
    if release_type := filters.get("release_type"):
        qs = qs.filter(release_type=release_type)
    if risk := filters.get("risk_level"):
        qs = qs.filter(governing_level_q([risk]))
    if start := filters.get("window_from"):
        qs = qs.filter(window_end__gte=_as_datetime(start))
    if end := filters.get("window_to"):
        qs = qs.filter(window_start__lte=_as_datetime(end, end_of_day=True))
    if q := (filters.get("q") or "").strip():
        qs = qs.filter(name__icontains=q) | qs.filter(version__icontains=q)
    if filters.get("service") or filters.get("team"):
        qs = qs.distinct()
    return qs.order_by("-window_start", "-id")


def _as_datetime(value: date | datetime | str, *, end_of_day: bool = False) -> datetime:
    if isinstance(value, str):
        value = date.fromisoformat(value)
    if isinstance(value, datetime):
        return value if timezone.is_aware(value) else timezone.make_aware(value)
    moment = datetime.combine(value, time.max if end_of_day else time.min)
    return timezone.make_aware(moment)


def release_detail(*, viewer, pk: int) -> Release:
    """One release with everything its page shows. Raises Release.DoesNotExist if hidden."""
    return (
        # What the header's governing risk and its why read rides along, in the same query.
        with_risk(visible_releases(viewer=viewer), header=True)
        .select_related("owner", "product_owner", "rollback_plan")
        .prefetch_related(
            Prefetch("services", queryset=Service.objects.select_related("team")),
            Prefetch(
                "scope_items", queryset=ScopeItem.objects.order_by("kind", "external_key", "id")
            ),
            Prefetch("risks", queryset=ReleaseRisk.objects.select_related("owner")),
        )
        .get(pk=pk)
    )


def release_audit_events(*, release: Release) -> QuerySet[AuditEvent]:
    return (
        AuditEvent.objects.filter(release_id=release.pk)
        .select_related("actor")
        .order_by("created_at", "id")
    )


def filter_choices() -> dict:
    return {
        "services": list(Service.objects.only("slug", "name")),
        "teams": list(Team.objects.only("slug", "name")),
        "environments": list(Environment.objects.all()),
    }


# --- post-release ----------------------------------------------------------------------------


def open_action_items(*, viewer, team_slug: str | None = None, today: date | None = None):
    """Open action items across releases, overdue ones flagged (``is_overdue``), linked back
    to the release that raised them; earliest due first."""
    from django.db.models import BooleanField, Case, Value, When

    today = today or timezone.localdate()
    qs = ActionItem.objects.filter(
        status__in=OPEN_ACTION_STATUSES, release__in=visible_releases(viewer=viewer)
    )
    if team_slug:
        qs = qs.filter(team__slug=team_slug)
    return (
        qs.select_related("release", "team", "owner")
        .annotate(
            is_overdue=Case(
                When(due_date__lt=today, then=Value(True)),
                default=Value(False),
                output_field=BooleanField(),
            )
        )
        .order_by("due_date", "id")
    )


def lessons_learned_search(*, viewer, query: str, limit: int = 50):
    """Past retrospectives matching the words of ``query`` (every word, any field).

    On PostgreSQL this could be a full-text index; plain containment keeps SQLite and
    PostgreSQL identical and is fast enough for thousands of retrospectives."""
    from django.db.models import Q

    words = [w for w in query.split() if w][:8]
    qs = Retrospective.objects.filter(release__in=visible_releases(viewer=viewer))
    for word in words:
        qs = qs.filter(
            Q(lessons_learned__icontains=word)
            | Q(went_well__icontains=word)
            | Q(went_badly__icontains=word)
            | Q(to_change__icontains=word)
        )
    return qs.select_related("release").order_by("-recorded_at")[:limit] if words else qs.none()
