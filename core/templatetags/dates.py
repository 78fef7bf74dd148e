"""Every date and time a page shows, in one format and in the viewer's zone.

The zone is the one ``core.profiles.TimeZoneMiddleware`` activated (the viewer's profile,
else the site's TIME_ZONE). An instant is written as
``<time datetime="2027-01-20T20:00:00Z" title="2027-01-20 20:00 UTC">Wed 20 Jan 2027, 21:00
CET</time>``: the reader's local time, the UTC value on hover and for machines. Installed
as a template builtin (settings ``TEMPLATES``), so no template needs to load it.

- ``{{ value|when }}``: an instant (empty for None, so ``|default:"—"`` works after it);
- ``{{ value|when_time }}``: the same, time of day only (an end on the day of its start);
- ``{% window start end %}``: a span, the end shortened when it falls on the same local day;
- ``{{ value|ago }}``: "3 hours ago" (``|ago:""``: "3 hours"), the instant on hover;
- ``{{ value|day }}``: a calendar date (a DateField has no zone).

Imports no project app.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from django import template
from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.utils.html import format_html
from django.utils.timesince import timesince

from ..dates import DATE_FORMAT, DISPLAY_FORMAT

register = template.Library()

TIME_FORMAT = "H:i T"


def _instant(value) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    if timezone.is_naive(value):
        value = timezone.make_aware(value, UTC)
    return value


def _utc(value: datetime) -> tuple[str, str]:
    utc = value.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%SZ"), utc.strftime("%Y-%m-%d %H:%M UTC")


def local(value: datetime) -> datetime:
    """``value`` in the zone pages are rendered in now."""
    return timezone.localtime(value)


def _time_tag(value: datetime, text: str, hover: str | None = None):
    machine, utc_text = _utc(value)
    return format_html('<time datetime="{}" title="{}">{}</time>', machine, hover or utc_text, text)


@register.filter(is_safe=True)
def when(value, fmt: str = DISPLAY_FORMAT):
    """An instant in the viewer's zone, with its UTC value on hover."""
    instant = _instant(value)
    if instant is None:
        return day(value) if isinstance(value, date) else ""
    return _time_tag(instant, date_format(local(instant), fmt))


@register.filter(is_safe=True)
def when_time(value):
    """An instant's local time of day (with its zone), the UTC value on hover."""
    return when(value, TIME_FORMAT)


@register.simple_tag
def window(start, end=None):
    """``start–end``, the end as a time of day when it falls on the start's local day."""
    first = _instant(start)
    if first is None:
        return ""
    last = _instant(end)
    if last is None:
        return when(first)
    same_day = local(first).date() == local(last).date()
    return format_html("{}–{}", when(first), when_time(last) if same_day else when(last))


@register.filter(is_safe=True)
def ago(value, suffix: str = " ago"):
    """How long ago an instant was ("3 hours ago"; ``|ago:""`` for "3 hours"), the instant
    on hover, local and UTC."""
    instant = _instant(value)
    if instant is None:
        return ""
    hover = f"{date_format(local(instant), DISPLAY_FORMAT)} ({_utc(instant)[1]})"
    return _time_tag(instant, f"{timesince(instant)}{suffix}", hover)


@register.filter(is_safe=True)
def day(value):
    """A calendar date in the one date format (a datetime is taken on the viewer's day)."""
    if isinstance(value, datetime):
        value = local(_instant(value)).date()
    if not isinstance(value, date):
        return ""
    return format_html(
        '<time datetime="{}">{}</time>', value.isoformat(), date_format(value, DATE_FORMAT)
    )
