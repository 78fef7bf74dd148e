"""The calendar's repeated markup — one entry per deployment window — built in Python.

A busy month draws ~130 windows; through the template engine each cost ~0.1 ms (a URL
reversal, date filters, a loop over its conflicts twice), which was most of the page's
growth from 1× to 100× data. The markup is the same the template drew, escaped with
``conditional_escape``.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape as esc

from django import template
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe

register = template.Library()

_PK = 2_147_483_647  # a placeholder id, replaced in the reversed URL


def _detail_pattern() -> str:
    # Reversed once per page (``release_detail_pattern``), not once per entry.
    return reverse("releases:detail", args=[_PK])


def _conflict_items(release) -> str:
    return "".join(f"<li>{esc(c.message)}</li>" for c in release.conflicts)


@register.simple_tag
def calendar_event(release, detail_url: str = "") -> SafeString:
    """One window in a month/week day cell (an ``<li class="event">``)."""
    name = f"{esc(release.name)} {esc(release.version)}"
    url = (detail_url or _detail_pattern()).replace(str(_PK), str(release.pk))
    start = release.window_start  # CalendarWindow times are local already
    conflicts = release.conflicts
    title = ""
    details = ""
    if conflicts:
        messages = [esc(c.message) for c in conflicts]
        title = ' title="' + "&#10;".join(messages) + '"'
        items = "".join(
            f'<li class="conflict-{c.kind}">{m}</li>'
            for c, m in zip(conflicts, messages, strict=True)
        )
        details = (
            '\n  <details class="conflict">\n    <summary><span aria-hidden="true">⚠</span> '
            f'Conflict<span class="visually-hidden"> for {name}</span></summary>\n'
            f"    <ul>{items}</ul>\n  </details>"
        )
    return mark_safe(
        f'<li class="event state-{esc(release.state)}'
        f'{" event-conflict" if conflicts else ""}"{title}>\n'
        f'  <a href="{url}"><span class="event-time">{start:%H:%M}</span> {name}</a>\n'
        f'  <span class="event-meta">{esc(release.service_names)} · '
        f"{esc(release.get_state_display())}</span>{details}\n</li>"
    )


@register.simple_tag
def calendar_events(windows, detail_url: str = "") -> SafeString:
    """A day's windows (one tag call per day rather than per window)."""
    detail_url = detail_url or _detail_pattern()
    return mark_safe("".join(calendar_event(window, detail_url) for window in windows))


@register.simple_tag
def day_more_link(day, filter_query: str = "") -> SafeString:
    """ "+ N more": the day in the list view, with the same filters."""
    query = f"&amp;{esc(filter_query)}" if filter_query else ""
    return mark_safe(
        f'<a class="day-more" href="?view=list&amp;date={day.date.isoformat()}{query}">'
        f"+ {day.more} more</a>"
    )


@register.simple_tag
def release_detail_pattern() -> str:
    """The release page URL with a placeholder id, reversed once for a page of entries."""
    return _detail_pattern()


def _day_time(value) -> str:
    return f"{value:%a} {value.day} {value:%b %H:%M}"


@register.simple_tag
def calendar_row(release, detail_url: str = "") -> SafeString:
    """One window in the list view (a table row)."""
    name = f"{esc(release.name)} {esc(release.version)}"
    url = (detail_url or _detail_pattern()).replace(str(_PK), str(release.pk))
    start, end = release.window_start, release.window_end  # local already
    end_text = f"{end:%H:%M}" if end.date() == start.date() else _day_time(end)
    conflicts = release.conflicts
    if conflicts:
        count = len(conflicts)
        cell = (
            '<details class="conflict"><summary><span aria-hidden="true">⚠</span> '
            f"{count} conflict{'s' if count != 1 else ''}</summary>"
            f"<ul>{_conflict_items(release)}</ul></details>"
        )
    else:
        cell = '<span class="muted">—</span>'
    return mark_safe(
        f'<tr class="{"row-conflict" if conflicts else ""}">\n'
        f'    <td class="nowrap">{_day_time(start)} – {end_text}</td>\n'
        f'    <td><a href="{url}">{name}</a></td>\n'
        f"    <td>{esc(release.service_names)}</td>\n"
        f'    <td><span class="badge badge-state state-{esc(release.state)}">'
        f"{esc(release.get_state_display())}</span></td>\n"
        f"    <td>{esc(release.owner_name)}</td>\n"
        f"    <td>{cell}</td>\n  </tr>"
    )


# --- the week view's time grid ------------------------------------------------------------
# Half-hour rows between FIRST_HOUR and LAST_HOUR (stretched to fit every item of the week).
# Positions are classes (row-N, span-N, lane-I-of-N) from dashboards.css: the
# Content-Security-Policy refuses style attributes.
FIRST_HOUR, LAST_HOUR, MAX_LANES = 7, 20, 3
TODAY = '<span class="visually-hidden">Today, </span>'


@dataclass
class _Slot:
    start: int  # half-hour row from the grid's first hour
    span: int
    html: str
    lane: int = 0
    lanes: int = 1


def _rows(value, first_hour: int) -> int:
    return (value.hour - first_hour) * 2 + value.minute // 30


def _hour_range(days) -> tuple[int, int]:
    first, last = FIRST_HOUR, LAST_HOUR
    for day in days:
        for release in day.releases:
            start, end = release.window_start, release.window_end
            first = min(first, start.hour)
            if end.date() > start.date():
                last = 24
            else:
                last = max(last, end.hour + (1 if end.minute else 0))
        for meeting in day.meetings:
            start = timezone.localtime(meeting.scheduled_at)
            end = start + meeting.duration
            first = min(first, start.hour)
            last = (
                24 if end.date() > start.date() else max(last, end.hour + (1 if end.minute else 0))
            )
    return first, last


def _place_lanes(slots: list[_Slot]) -> None:
    """Side by side when they overlap: each slot takes the first free lane of its cluster."""
    slots.sort(key=lambda s: (s.start, -s.span))
    cluster: list[_Slot] = []
    cluster_end = -1
    for slot in [*slots, None]:
        if slot is None or slot.start >= cluster_end:
            lanes = min(max((s.lane for s in cluster), default=0) + 1, MAX_LANES)
            for member in cluster:
                member.lanes = lanes
            cluster, cluster_end = [], -1
            if slot is None:
                break
        ends = {}
        for member in cluster:
            ends[member.lane] = max(ends.get(member.lane, -1), member.start + member.span)
        slot.lane = next((lane for lane in range(MAX_LANES) if ends.get(lane, -1) <= slot.start), 0)
        cluster.append(slot)
        cluster_end = max(cluster_end, slot.start + slot.span)


def _window_slot(release, url: str, first_hour: int, rows: int) -> _Slot:
    start, end = release.window_start, release.window_end
    top = max(_rows(start, first_hour), 0)
    bottom = rows if end.date() > start.date() else max(_rows(end, first_hour), top + 1)
    if end.minute % 30:
        bottom = min(bottom + 1, rows)
    ends = f"{end:%H:%M}" if end.date() == start.date() else _day_time(end)
    name = f"{esc(release.name)} {esc(release.version)}"
    conflicts = release.conflicts
    why = esc(" ".join(c.message for c in conflicts))
    hidden = f'<span class="visually-hidden"> {why}</span>'
    warn = f' <span class="event-warn" title="{why}">⚠{hidden}</span>' if conflicts else ""
    html = (
        f'<li class="week-event event state-{esc(release.state)}'
        f'{" event-conflict" if conflicts else ""} {{pos}}">'
        f'<a href="{url}"><span class="event-time">{start:%H:%M}–{ends}</span> {name}</a>{warn}'
        f'<span class="event-meta">{esc(release.service_names)} · '
        f"{esc(release.get_state_display())}</span></li>"
    )
    return _Slot(start=top, span=min(bottom, rows) - top, html=html)


def _meeting_slot(meeting, first_hour: int, rows: int) -> _Slot:
    start = timezone.localtime(meeting.scheduled_at)
    end = start + meeting.duration
    top = max(_rows(start, first_hour), 0)
    bottom = rows if end.date() > start.date() else max(_rows(end, first_hour), top + 1)
    html = (
        f'<li class="week-event event-cab {{pos}}"><span class="event-time">'
        f"{start:%H:%M}–{end:%H:%M}</span> CAB: {esc(meeting.title)}</li>"
    )
    return _Slot(start=top, span=min(bottom, rows) - top, html=html)


@register.simple_tag
def week_time_grid(days, detail_url: str = "") -> SafeString:
    """The week as seven day columns on one time axis: each window and CAB meeting sits at
    its time, as tall as it lasts, side by side when they overlap."""
    detail_url = detail_url or _detail_pattern()
    first_hour, last_hour = _hour_range(days)
    rows = (last_hour - first_hour) * 2
    axis = "".join(
        f'<span class="week-hour row-{(hour - first_hour) * 2}">{hour:02d}:00</span>'
        for hour in range(first_hour, last_hour)
    )
    columns = []
    for day in days:
        slots = [_meeting_slot(m, first_hour, rows) for m in day.meetings]
        slots += [
            _window_slot(r, detail_url.replace(str(_PK), str(r.pk)), first_hour, rows)
            for r in day.releases
        ]
        _place_lanes(slots)
        items = "".join(
            s.html.replace(
                "{pos}",
                f"row-{s.start} span-{max(s.span, 1)} lane-{min(s.lane, s.lanes - 1)}-of-{s.lanes}",
            )
            for s in slots
        )
        label = f"{day.date:%A} {day.date.day} {day.date:%B}"
        bands = "".join(
            f'<li class="freeze-band" title="Freeze: {esc(b.name)}">❄ {esc(b.name)}</li>'
            for b in day.freezes
        )
        classes = (
            "week-day"
            + (" day-frozen" if day.freezes else "")
            + (" day-today" if day.is_today else "")
        )
        more = (
            f'<a class="day-more" href="?view=list&amp;date={day.date.isoformat()}">'
            f"+ {day.more} more</a>"
            if day.more
            else ""
        )
        columns.append(
            f'<section class="{classes}" aria-label="{label}">'
            f'<h3 class="week-day-head">{TODAY if day.is_today else ""}'
            f"{day.date:%a} {day.date.day}</h3>"
            f'<ul class="week-freezes">{bands}</ul>'
            f'<ol class="week-slots rows-{rows}">{items}</ol>{more}</section>'
        )
    return mark_safe(
        f'<div class="week-grid"><div class="week-axis rows-{rows}" aria-hidden="true">'
        f'<span class="week-day-head">&nbsp;</span><span class="week-freezes"></span>'
        f'<div class="week-axis-hours week-slots rows-{rows}">{axis}</div></div>'
        f"{''.join(columns)}</div>"
    )
