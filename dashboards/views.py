"""Dashboards pages: calendar (+ iCal), board, metrics. Thin: parse the query string, call
selectors (reads) or the releases services (the board's moves), render.

One view renders the full page or, for htmx navigation, only the part that changes
(``#calendar``, ``#board``, ``#metrics``). Everything works without JavaScript: links and
forms are plain GET/POST, and htmx only avoids full reloads.
"""

from __future__ import annotations

from calendar import monthrange
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import reswap, retarget

from core.errors import DomainError
from releases import services as release_services
from releases.actions import release_actions
from releases.choices import ReleaseState
from releases.models import Release

from . import charts, ical
from .forms import (
    BoardFilterForm,
    CalendarFilterForm,
    MetricsFilterForm,
    MoveForm,
    filters_from_query,
)
from .models import CalendarFeedToken, hash_feed_token
from .selectors import board as board_selectors
from .selectors import calendar as cal
from .selectors import metrics as metric_selectors
from .services import (
    calendar_feed_token_regenerate,
    calendar_feed_token_touch,
    metrics_facts_ensure_fresh,
)
from .templatetags.board_html import card_html

MONTH_PER_DAY = 3
WEEK_PER_DAY = 12
LIST_PAGE_SIZE = 50
# A column shows its first cards (soonest window first; finished work most recent first),
# its total, and a link to the rest in the release list.
BOARD_PER_COLUMN = 6
SESSION_FEED_URL = "dashboards_new_feed_url"


def _no_access(request: HttpRequest, title: str) -> HttpResponse:
    return render(request, "dashboards/no_access.html", {"title": title}, status=200)


def _query(base: QueryDict, **changes: Any) -> str:
    """The current query string with some values replaced (for navigation links)."""
    params = base.copy()
    for key, value in changes.items():
        if value is None:
            params.pop(key, None)
        else:
            params[key] = value
    return "?" + params.urlencode()


# --- calendar ---------------------------------------------------------------------------------


@dataclass
class Day:
    date: date
    in_month: bool
    is_today: bool
    releases: list[cal.CalendarWindow] = field(default_factory=list)
    meetings: list[Any] = field(default_factory=list)
    freezes: list[cal.FreezeBand] = field(default_factory=list)
    total: int = 0

    @property
    def more(self) -> int:
        return max(self.total - len(self.releases), 0)


def _range_for(view: str, anchor: date) -> tuple[date, date, date, date]:
    """(first day shown, last day shown, previous anchor, next anchor)."""
    if view == "week":
        first = anchor - timedelta(days=anchor.weekday())
        week = timedelta(days=7)
        return first, first + timedelta(days=6), first - week, first + week
    if view == "list":
        month = timedelta(days=30)
        return anchor, anchor + timedelta(days=29), anchor - month, anchor + month
    month_first = anchor.replace(day=1)
    month_last = anchor.replace(day=monthrange(anchor.year, anchor.month)[1])
    first = month_first - timedelta(days=month_first.weekday())
    last = month_last + timedelta(days=6 - month_last.weekday())
    prev_anchor = (month_first - timedelta(days=1)).replace(day=1)
    next_anchor = month_last + timedelta(days=1)
    return first, last, prev_anchor, next_anchor


def _days(
    first: date,
    last: date,
    *,
    month: int | None,
    releases: list[cal.CalendarWindow],
    meetings: list[Any],
    bands: list[cal.FreezeBand],
    totals: dict[date, int],
) -> list[Day]:
    """Place the (already capped) windows, meetings and freeze bands on their days."""
    today = timezone.localdate()
    days: dict[date, Day] = {}
    current = first
    while current <= last:
        days[current] = Day(
            date=current,
            in_month=month is None or current.month == month,
            is_today=current == today,
            total=totals.get(current, 0),
        )
        current += timedelta(days=1)
    for release in releases:
        day = max(release.window_start.date(), first)  # CalendarWindow: local time
        if day in days:
            days[day].releases.append(release)
    for meeting in meetings:
        day = timezone.localtime(meeting.scheduled_at).date()
        if day in days:
            days[day].meetings.append(meeting)
    for band in bands:
        start = max(timezone.localtime(band.start).date(), first)
        end = min(timezone.localtime(band.end - timedelta(microseconds=1)).date(), last)
        current = start
        while current <= end:
            days[current].freezes.append(band)
            current += timedelta(days=1)
    return list(days.values())


@login_required
@require_GET
def calendar_page(request: HttpRequest) -> HttpResponse:
    """Month, week or list of deployment windows with freezes, CAB meetings and conflicts."""
    if not request.user.has_perm("releases.view_release"):
        return _no_access(request, "Release calendar")
    choices = cal.calendar_filter_choices()
    form = CalendarFilterForm(request.GET or None, choices=choices)
    view, anchor, filters = form.view_name(), form.anchor(), form.filters()
    first, last, prev_anchor, next_anchor = _range_for(view, anchor)
    start, end = cal.day_bounds(first, last)
    bands = cal.freeze_bands(start=start, end=end, filters=filters)
    context: dict[str, Any] = {
        "form": form,
        "view": view,
        "anchor": anchor,
        "first": first,
        "last": last,
        "freezes": bands,
        "meetings": cal.cab_meetings(start=start, end=end),
        "prev_query": _query(request.GET, date=prev_anchor.isoformat()),
        "next_query": _query(request.GET, date=next_anchor.isoformat()),
        "today_query": _query(request.GET, date=None),
        "view_queries": {v: _query(request.GET, view=v) for v in ("month", "week", "list")},
        "filter_query": urlencode(filters.as_query(), doseq=True),
        "weekdays": ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"],
    }
    if view == "list":
        page = Paginator(
            cal.calendar_list_releases(viewer=request.user, start=start, end=end, filters=filters),
            LIST_PAGE_SIZE,
        ).get_page(request.GET.get("page"))
        releases = cal.windows_from_rows(page.object_list)
        context["page"] = page
        context["releases"] = releases
    else:
        releases, totals = cal.calendar_grid_releases(
            viewer=request.user,
            start=start,
            end=end,
            filters=filters,
            per_day=MONTH_PER_DAY if view == "month" else WEEK_PER_DAY,
        )
        context["days"] = _days(
            first,
            last,
            month=anchor.month if view == "month" else None,
            releases=releases,
            meetings=context["meetings"],
            bands=bands,
            totals=totals,
        )
        context["weeks"] = [context["days"][i : i + 7] for i in range(0, len(context["days"]), 7)]
    conflicts = cal.conflicts_for(windows=releases, bands=bands)
    for release in releases:  # the windows on screen (capped), for the template
        release.conflicts = conflicts.get(release.pk, [])
    context["title_text"] = (
        f"{anchor:%B %Y}" if view == "month" else f"{first:%d %b} – {last:%d %b %Y}"
    )
    context["feed_url"] = request.session.pop(SESSION_FEED_URL, None)
    context["has_feed"] = CalendarFeedToken.objects.filter(user=request.user).exists()
    if request.htmx and request.htmx.target == "calendar":
        return render(request, "dashboards/partials/calendar_body.html", context)
    return render(request, "dashboards/calendar.html", context)


@login_required
@require_POST
def calendar_feed_regenerate(request: HttpRequest) -> HttpResponse:
    """Create or replace the personal feed token; the URL is shown once on the next page."""
    try:
        raw = calendar_feed_token_regenerate(actor=request.user)
    except DomainError as error:
        messages.error(request, error.message)
        return redirect("dashboards:calendar")
    query = request.POST.get("filters", "")
    url = request.build_absolute_uri(reverse("dashboards:calendar_feed", args=[raw]))
    request.session[SESSION_FEED_URL] = url + (f"?{query}" if query else "")
    messages.success(
        request,
        "Your calendar feed URL was created. Copy it now: it is shown only once. "
        "Any older feed URL has stopped working.",
    )
    return redirect(reverse("dashboards:calendar") + (f"?{query}" if query else ""))


def _ics_response(body: bytes, filename: str) -> HttpResponse:
    response = HttpResponse(body, content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = f'inline; filename="{filename}"'
    response["Cache-Control"] = "private, max-age=300"
    return response


@require_GET
def calendar_feed(request: HttpRequest, token: str) -> HttpResponse:
    """The subscription feed: authenticated by the secret in the URL (calendar clients cannot
    log in). An unknown token is a 404, like any URL that does not exist."""
    found = (
        CalendarFeedToken.objects.select_related("user")
        .filter(key_hash=hash_feed_token(token), user__is_active=True)
        .first()
    )
    if found is None or not found.user.has_perm("releases.view_release"):
        raise Http404("No such calendar feed.")
    calendar_feed_token_touch(token=found)
    filters = _feed_filters(request)
    body = ical.build_calendar(
        viewer=found.user,
        filters=filters,
        host=request.get_host().split(":")[0],
        base_url=request.build_absolute_uri("/").rstrip("/"),
    )
    return _ics_response(body, "releasegate.ics")


@login_required
@require_GET
def calendar_download(request: HttpRequest) -> HttpResponse:
    """The same feed for the logged-in user, as a one-off download (no token needed)."""
    if not request.user.has_perm("releases.view_release"):
        raise Http404("No such calendar.")
    body = ical.build_calendar(
        viewer=request.user,
        filters=_feed_filters(request),
        host=request.get_host().split(":")[0],
        base_url=request.build_absolute_uri("/").rstrip("/"),
    )
    response = _ics_response(body, "releasegate.ics")
    response["Content-Disposition"] = 'attachment; filename="releasegate.ics"'
    return response


def _feed_filters(request: HttpRequest) -> cal.CalendarFilters:
    return filters_from_query(request.GET)


# --- board ------------------------------------------------------------------------------------


def _board_context(request: HttpRequest) -> dict[str, Any]:
    choices = cal.calendar_filter_choices()
    owners = list(board_selectors.board_owner_choices())
    form = BoardFilterForm(request.GET or None, choices=choices, owners=owners)
    columns = board_selectors.board_columns(
        viewer=request.user,
        filters=form.filters(user_id=request.user.pk),
        per_column=BOARD_PER_COLUMN,
    )
    query = request.GET.urlencode()
    detail_url = _url_pattern("releases:detail")
    moves_url = _url_pattern("dashboards:board_moves")
    # The "Move to…" menu keeps the board's filters, so a move redraws the same board.
    moves_query = "?" + urlencode({"query": query}) if query else ""
    for column in columns:
        for card in column.cards:
            card.detail_url = detail_url.format(pk=card.release.pk)
            card.moves_url = moves_url.format(pk=card.release.pk) + moves_query
    return {
        "form": form,
        "columns": columns,
        "query": query,
        "release_list_url": reverse("releases:list"),  # each column's "N more" link
    }


def _url_pattern(name: str) -> str:
    """``reverse(name, args=[pk])`` as a format string, reversed once per board instead of
    once per card."""
    marker = 987654321
    return reverse(name, args=[marker]).replace(str(marker), "{pk}")


def _moves(release: Release, actor, names: list[str]) -> list[dict[str, Any]]:
    """The "Move to…" options: ``releases.actions.release_actions`` for the board's
    ``names`` (held equal to ``available_transitions``), with the state each leads to,
    whether it needs a reason, and what blocks it now (a blocked move is shown disabled
    with why, as on the release page)."""
    return [
        {
            "name": action.name,
            "label": action.label,
            "target_label": _state_label(action.target),
            "reason_required": action.reason_required,
            "danger": action.danger,
            "blockers": action.blockers,
        }
        for action in release_actions(release=release, actor=actor, names=names)
    ]


def _state_label(state: str | None) -> str:
    try:
        return ReleaseState(state).label
    except ValueError:
        return state or ""


@login_required
@require_GET
def board_page(request: HttpRequest) -> HttpResponse:
    """Columns by state; each card says what blocks its next move and offers the moves."""
    if not request.user.has_perm("releases.view_release"):
        return _no_access(request, "Release board")
    context = _board_context(request)
    if request.htmx and request.htmx.target == "board":
        return render(request, "dashboards/partials/board_columns.html", context)
    return render(request, "dashboards/board.html", context)


@login_required
@require_POST
def board_move(request: HttpRequest, pk: int) -> HttpResponse:
    """Run one transition through the same service as the release page and the API. A
    refusal (permission, state, readiness) shows the service's reason on the card."""
    try:
        release = board_selectors.board_release(viewer=request.user, pk=pk)
    except Release.DoesNotExist:
        raise Http404("No such release.") from None
    form = MoveForm(request.POST)
    name = request.POST.get("transition", "")
    service = release_services.TRANSITION_SERVICES.get(name)
    back = reverse("dashboards:board") + (
        "?" + request.POST["query"] if request.POST.get("query") else ""
    )
    error: DomainError | None = None
    if not form.is_valid() or service is None:
        error = DomainError("Choose a move from the menu.")
    else:
        try:
            service(release=release, actor=request.user, reason=form.cleaned_data["reason"])
        except DomainError as exc:
            error = exc
    if error is None:
        label = release_services.TRANSITION_LABELS.get(name, name)
        messages.success(request, f"{release}: {label.lower()} done.")
        if request.htmx:
            # The card changes column: redraw the whole board, not just the card.
            request.GET = QueryDict(request.POST.get("query", ""))
            response = render(
                request, "dashboards/partials/board_columns.html", _board_context(request)
            )
            return reswap(retarget(response, "#board"), "outerHTML")
        return redirect(back)
    blockers = [b.get("message", "") for b in error.details or [] if isinstance(b, dict)]
    if request.htmx:
        # The card again, its menu open with the moves left and the refusal on it.
        release = board_selectors.board_release(viewer=request.user, pk=pk)
        card = board_selectors.card_for(release)
        card.moves = board_selectors.board_moves(release=release, actor=request.user)
        query = request.POST.get("query", "")
        card.detail_url = reverse("releases:detail", args=[release.pk])
        card.moves_url = reverse("dashboards:board_moves", args=[release.pk]) + (
            "?" + urlencode({"query": query}) if query else ""
        )
        # The same card markup as the board's (board_html.card_html), with the move form.
        from django.template.loader import render_to_string

        form_context = {
            "release": release,
            "moves": _moves(release, request.user, card.moves),
            "query": query,
            "inline": True,
        }
        menu = (
            render_to_string("dashboards/partials/board_move_form.html", form_context, request)
            if card.moves
            else None
        )
        return HttpResponse(
            card_html(card, menu=menu, move_error=error.message, move_blockers=blockers),
            status=error.status_code if error.status_code in (400, 403, 409) else 422,
        )
    messages.error(request, f"{release}: {error.message}")
    return redirect(back)


@login_required
@require_GET
def board_moves_page(request: HttpRequest, pk: int) -> HttpResponse:
    """A card's "Move to…" menu, loaded when it is opened (htmx: the form alone, into the
    card), or a page of its own without JavaScript. The moves are those the viewer may
    perform now, from the same ``board_moves`` as the board (held equal to
    ``available_transitions``); the move itself goes through ``board_move`` and the
    releases services, which check everything again."""
    try:
        release = board_selectors.board_release(viewer=request.user, pk=pk)
    except Release.DoesNotExist:
        raise Http404("No such release.") from None
    query = request.GET.get("query", "")
    context = {
        "release": release,
        "moves": _moves(
            release,
            request.user,
            board_selectors.board_moves(release=release, actor=request.user),
        ),
        "query": query,
        "back": reverse("dashboards:board") + (f"?{query}" if query else ""),
        "inline": bool(request.htmx),
    }
    if request.htmx:
        return render(request, "dashboards/partials/board_move_form.html", context)
    return render(request, "dashboards/board_moves.html", context)


# --- metrics ----------------------------------------------------------------------------------

CHARTED = (
    ("deployment_frequency", "bar"),
    ("lead_time_for_changes", "line"),
    ("change_failure_rate", "line"),
    ("time_to_restore_service", "line"),
    ("deployment_success_rate", "line"),
    ("release_cycle_time", "line"),
)


@login_required
@require_GET
def metrics_page(request: HttpRequest) -> HttpResponse:
    """DORA and KPI metrics for a period, with trends (SVG + data table) and a table per
    service or team."""
    if not request.user.has_perm("releases.view_release"):
        return _no_access(request, "Metrics")
    metrics_facts_ensure_fresh()  # figures lag the raw data by at most a few minutes
    choices = cal.calendar_filter_choices()
    form = MetricsFilterForm(request.GET or None, choices=choices)
    scope = form.scope()
    interval = "weekly" if scope.days <= 120 else "monthly"
    if scope.days <= 21:
        interval = "daily"
    by = form.group_by()
    figures = metric_selectors.metrics_page(scope, interval, [key for key, _ in CHARTED], by=by)
    summary, trends = figures.summary, figures.trends
    chart_list = [
        charts.build_chart(
            key=key,
            title=metric_selectors.METRICS[key].label,
            series=trends[key],
            unit=metric_selectors.METRICS[key].unit,
            interval=interval,
            kind=kind,
        )
        for key, kind in CHARTED
    ]
    tiles = []
    for key, value in summary.items():
        text = charts.format_value(value.value, value.info.unit)
        if key == "deployment_frequency" and value.value is not None:
            text = f"{value.value:g} ({charts.format_value(value.value / scope.days, 'per_day')})"
        tiles.append({"key": key, "metric": value, "text": text})
    table = [
        {
            "name": row.name,
            "team": row.team,
            "cells": [
                {
                    "text": charts.format_value(mv.value, mv.info.unit),
                    "band": mv.band,
                    "key": key,
                }
                for key, mv in row.values.items()
            ],
        }
        for row in figures.groups
    ]
    context = {
        "form": form,
        "scope": scope,
        "interval": interval,
        "tiles": tiles,
        "charts": chart_list,
        "table": table,
        "columns": list(metric_selectors.METRICS.values()),
        "by": by,
        "api_query": urlencode(
            {
                "metric": "deployment_frequency",
                "start_date": scope.start_date.isoformat(),
                "end_date": scope.end_date.isoformat(),
                "interval": "monthly",
                **({"service": scope.service} if scope.service else {}),
            }
        ),
    }
    if request.htmx and request.htmx.target == "metrics":
        return render(request, "dashboards/partials/metrics_body.html", context)
    return render(request, "dashboards/metrics.html", context)
