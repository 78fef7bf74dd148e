"""The release calendar as iCalendar (RFC 5545 + RFC 7986), built with ``icalendar``.

Subscribed calendars poll this feed; they match events by UID and keep the newest by
SEQUENCE / LAST-MODIFIED, so:

- UIDs are stable: ``release-<pk>@<host>``, ``freeze-<pk>-<start UTC>@<host>`` (one per
  occurrence of a recurring freeze), ``cab-<pk>@<host>``;
- SEQUENCE is the release's number of audit events (every transition or edit appends one,
  so it only grows), and LAST-MODIFIED/DTSTAMP its ``updated_at`` — fetching twice without
  a change gives byte-identical events;
- REFRESH-INTERVAL and X-PUBLISHED-TTL ask clients to poll hourly. Many clients poll less
  often than asked (Google Calendar: several hours), which the calendar page says.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import Count, IntegerField, OuterRef, Prefetch, Subquery, Value
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone
from icalendar import Calendar, Event

from core.models import AuditEvent
from governance.services.risk import governing_risk_level
from releases.choices import ReleaseState, RiskLevel
from releases.models import Release, Service

from .selectors.calendar import CalendarFilters, cab_meetings, calendar_queryset, freeze_bands

REFRESH = timedelta(hours=1)
# The feed covers recent history and the coming year; older windows are in the app.
PAST = timedelta(days=90)
FUTURE = timedelta(days=365)
MAX_EVENTS = 3000

CONFIRMED = {
    ReleaseState.APPROVED,
    ReleaseState.DEPLOYING,
    ReleaseState.DEPLOYED,
    ReleaseState.CLOSED,
}


def feed_range(now: datetime | None = None) -> tuple[datetime, datetime]:
    now = now or timezone.now()
    return now - PAST, now + FUTURE


def feed_releases(*, viewer, start: datetime, end: datetime, filters: CalendarFilters):
    """Releases of the feed with their audit count (the SEQUENCE) — two queries."""
    audit_count = (
        AuditEvent.objects.filter(release_id=OuterRef("pk"))
        .order_by()
        .values("release_id")
        .annotate(n=Count("id"))
        .values("n")
    )
    return (
        calendar_queryset(viewer=viewer, start=start, end=end, filters=filters)
        .select_related("owner", "risk_assessment")
        .defer("risk_assessment__factors", "risk_assessment__inputs")
        .prefetch_related(Prefetch("services", queryset=Service.objects.only("id", "name")))
        .annotate(sequence=Coalesce(Subquery(audit_count, output_field=IntegerField()), Value(0)))
        .order_by("window_start", "id")[:MAX_EVENTS]
    )


def build_calendar(
    *, viewer, filters: CalendarFilters, host: str, base_url: str, name: str = "Releases"
) -> bytes:
    """The whole feed as bytes (text/calendar; charset=utf-8)."""
    start, end = feed_range()
    cal = Calendar()
    cal.add("prodid", "-//Releasegate//Release calendar//EN")
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    cal.add("x-wr-calname", f"Releasegate: {name}")
    cal.add("name", f"Releasegate: {name}")
    cal.add("refresh-interval", REFRESH, parameters={"VALUE": "DURATION"})
    cal.add("x-published-ttl", "PT1H")

    for release in feed_releases(viewer=viewer, start=start, end=end, filters=filters):
        cal.add_component(_release_event(release, host=host, base_url=base_url))
    for band in freeze_bands(start=start, end=end, filters=filters):
        event = Event()
        event.add("uid", f"freeze-{band.freeze_id}-{band.start:%Y%m%dT%H%M%SZ}@{host}")
        event.add("summary", f"Freeze: {band.name}")
        event.add("dtstart", band.start)
        event.add("dtend", band.end)
        event.add("dtstamp", band.start)
        event.add("sequence", 0)
        event.add("transp", "TRANSPARENT")
        event.add("categories", ["Freeze"])
        event.add(
            "description",
            f"{band.description}. Covers {band.scope}."
            + (f"\nReason: {band.reason}" if band.reason else "")
            + "".join(f"\n{note}" for note in band.break_glass),
        )
        cal.add_component(event)
    for meeting in cab_meetings(start=start, end=end):
        event = Event()
        event.add("uid", f"cab-{meeting.pk}@{host}")
        event.add("summary", f"CAB: {meeting.title}")
        event.add("dtstart", meeting.scheduled_at)
        event.add("dtend", meeting.scheduled_at + meeting.duration)
        event.add("dtstamp", meeting.scheduled_at)
        event.add("sequence", 0)
        event.add("categories", ["CAB"])
        event.add("description", f"{meeting.agenda_size} change request(s) on the agenda.")
        if meeting.state == "closed":
            event.add("status", "CONFIRMED")
        cal.add_component(event)
    return cal.to_ical()


def _release_event(release: Release, *, host: str, base_url: str) -> Event:
    services = ", ".join(s.name for s in release.services.all())
    url = base_url + reverse("releases:detail", args=[release.pk])
    event = Event()
    event.add("uid", f"release-{release.pk}@{host}")
    event.add("summary", f"{release.name} {release.version} ({release.get_state_display()})")
    event.add("dtstart", release.window_start)
    event.add("dtend", release.window_end)
    event.add("dtstamp", release.updated_at)
    event.add("last-modified", release.updated_at)
    event.add("sequence", release.sequence)
    event.add("url", url)
    event.add("categories", ["Release", release.get_state_display()])
    if release.state == ReleaseState.CANCELLED:
        event.add("status", "CANCELLED")
    elif release.state in CONFIRMED:
        event.add("status", "CONFIRMED")
    else:
        event.add("status", "TENTATIVE")
    owner = release.owner.get_full_name() or release.owner.get_username() if release.owner else "—"
    event.add(
        "description",
        f"Services: {services or '—'}\nState: {release.get_state_display()}\n"
        f"Risk: {_risk_label(release)}\nOwner: {owner}\n{url}",
    )
    return event


def _risk_label(release) -> str:
    """The governing risk (what gates and the CAB use), as the release page header shows."""

    level = governing_risk_level(release, getattr(release, "risk_assessment", None))
    return str(RiskLevel(level).label)
