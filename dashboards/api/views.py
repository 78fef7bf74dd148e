"""Dashboards over REST: DORA metric series and calendar events. Thin: validate the query
string (400 JSON on bad input, via config.api.exception_handler), call a selector, answer."""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from releases.models import Service

from ..selectors import calendar as cal
from ..selectors import metrics as metric_selectors
from ..services import metrics_facts_ensure_fresh
from .serializers import (
    CalendarEventSerializer,
    CalendarQuerySerializer,
    DoraPointSerializer,
    DoraQuerySerializer,
)


def _require_reader(request: Request) -> None:
    if not request.user.has_perm("releases.view_release"):
        raise PermissionDenied("You need a role (or a token with releases:read) to read this.")


class DoraMetricsView(APIView):
    """One DORA / KPI metric over a period as ``[{"date", "value"}]`` (GitLab's shape)."""

    @extend_schema(
        parameters=[DoraQuerySerializer],
        responses={200: DoraPointSerializer(many=True)},
        summary="DORA and delivery metrics as a time series",
        description=(
            "metric: deployment_frequency (count), lead_time_for_changes and "
            "lead_time_for_changes_p90, time_to_restore_service, release_cycle_time, "
            "approval_wait_time (seconds, median unless p90), change_failure_rate and "
            "deployment_success_rate (0–1). interval=all returns one point dated start_date."
        ),
    )
    def get(self, request: Request) -> Response:
        _require_reader(request)
        query = DoraQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        if getattr(request.user, "is_machine", False):
            # A token sees only its services' metrics, so it must name one of them.
            ids = getattr(request.user, "service_ids", frozenset())
            allowed = set(Service.objects.filter(pk__in=ids).values_list("slug", flat=True))
            if data["service"] not in allowed:
                raise PermissionDenied("A token must ask for one of its own services.")
        scope = metric_selectors.MetricsScope(
            start_date=data["start_date"],
            end_date=data["end_date"],
            service=data["service"],
            team=data["team"],
        )
        metrics_facts_ensure_fresh()
        series = metric_selectors.metric_series(data["metric"], scope, data["interval"])
        return Response(DoraPointSerializer(series, many=True).data)


class CalendarEventsView(APIView):
    """Deployment windows (with their conflicts), freeze occurrences and CAB meetings in a
    date range — the calendar page's data."""

    @extend_schema(
        parameters=[
            CalendarQuerySerializer,
            OpenApiParameter("state", str, many=True, description="Repeat for several."),
        ],
        responses={200: CalendarEventSerializer(many=True)},
        summary="Release calendar events",
    )
    def get(self, request: Request) -> Response:
        _require_reader(request)
        params = request.query_params.copy()
        query = CalendarQuerySerializer(
            data={**params.dict(), "state": request.query_params.getlist("state")}
        )
        query.is_valid(raise_exception=True)
        data = query.validated_data
        filters = cal.CalendarFilters(
            service=data["service"],
            team=data["team"],
            environment=data["environment"],
            states=tuple(data["state"]),
        )
        start, end = cal.day_bounds(data["start"], data["end"])
        releases = cal.windows_from_rows(
            cal.calendar_list_releases(viewer=request.user, start=start, end=end, filters=filters)[
                : cal.API_MAX_RELEASES
            ]
        )
        is_machine = getattr(request.user, "is_machine", False)
        bands = cal.freeze_bands(start=start, end=end, filters=filters)
        conflicts = cal.conflicts_for(windows=releases, bands=bands)
        events: list[dict] = [
            {
                "type": "release",
                "id": f"release-{r.pk}",
                "title": f"{r.name} {r.version}",
                "start": r.window_start,
                "end": r.window_end,
                "state": r.state,
                "services": r.service_slugs,
                "url": request.build_absolute_uri(reverse("releases:detail", args=[r.pk])),
                "description": "",
                "conflicts": conflicts.get(r.pk, []),
            }
            for r in releases
        ]
        events += [
            {
                "type": "freeze",
                "id": f"freeze-{b.freeze_id}-{b.start:%Y%m%dT%H%M%SZ}",
                "title": f"Freeze: {b.name}",
                "start": b.start,
                "end": b.end,
                "state": "",
                "services": [],
                "url": "",
                "description": f"{b.description}. Covers {b.scope}. {b.reason}".strip()
                + (f" {b.break_glass_text}" if b.break_glass else ""),
                "conflicts": [],
            }
            for b in bands
        ]
        events += [
            {
                "type": "cab_meeting",
                "id": f"cab-{m.pk}",
                "title": f"CAB: {m.title}",
                "start": m.scheduled_at,
                "end": m.scheduled_at + m.duration,
                "state": m.state,
                "services": [],
                "url": "",
                "description": f"{m.agenda_size} change request(s) on the agenda.",
                "conflicts": [],
            }
            # CAB meetings are for people: a token reads no meeting (as /cab-meetings/).
            for m in ([] if is_machine else cal.cab_meetings(start=start, end=end))
        ]
        events.sort(key=lambda e: (e["start"], e["id"]))
        return Response(CalendarEventSerializer(events, many=True).data)
