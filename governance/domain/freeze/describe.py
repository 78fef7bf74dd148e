"""A freeze rule in plain words ("Every Friday 16:00 to Monday 08:00, Europe/Berlin")."""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from .rules import DEFAULT_ANCHOR, MONTH_ABBR, MONTH_NAMES, RRULE_DAYS, WEEKDAY_NAMES, FreezeRule

# --------------------------------------------------------------------- describe


def _hm(value: time | datetime) -> str:
    return f"{value.hour:02d}:{value.minute:02d}"


def _join(words: list[str]) -> str:
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]


def _weekday_phrase(days: list[int]) -> str:
    """'Every ...' words for a set of Python weekdays (0 = Monday)."""
    days = sorted(set(days))
    if days == list(range(7)):
        return "Every day"
    if days == list(range(5)):
        return "Every weekday"
    if days == [5, 6]:
        return "Every weekend day"
    return "Every " + _join([WEEKDAY_NAMES[d] for d in days])


def _duration_words(value: timedelta) -> str:
    total = int(value.total_seconds()) // 60
    days, rest = divmod(total, 24 * 60)
    hours, minutes = divmod(rest, 60)
    words = []
    if days:
        words.append(f"{days} day" + ("s" if days != 1 else ""))
    if hours:
        words.append(f"{hours} hour" + ("s" if hours != 1 else ""))
    if minutes:
        words.append(f"{minutes} minute" + ("s" if minutes != 1 else ""))
    return " ".join(words) or "0 minutes"


def _span_words(rule: FreezeRule, start: time, single_weekday: int | None) -> str:
    """'16:00–Monday 08:00' style text for an occurrence starting at ``start``."""
    if rule.end_time is not None:
        if rule.end_weekday is not None:
            return f"{_hm(start)}–{WEEKDAY_NAMES[rule.end_weekday]} {_hm(rule.end_time)}"
        return f"{_hm(start)}–{_hm(rule.end_time)}"
    assert rule.duration is not None
    if rule.duration < timedelta(days=1):
        end = datetime.combine(DEFAULT_ANCHOR.date(), start) + rule.duration
        return f"{_hm(start)}–{_hm(end)}"
    if single_weekday is not None and rule.duration < timedelta(days=7):
        base = DEFAULT_ANCHOR.date() + timedelta(days=single_weekday)  # anchor is a Monday
        end = datetime.combine(base, start) + rule.duration
        return f"{_hm(start)}–{WEEKDAY_NAMES[end.weekday()]} {_hm(end)}"
    return f"{_hm(start)} for {_duration_words(rule.duration)}"


def _describe_times(rule: FreezeRule, times: list[time], single_weekday: int | None) -> str | None:
    if len(times) == 1:
        return _span_words(rule, times[0], single_weekday)
    if 1 < len(times) <= 4:
        return "at " + _join([_span_words(rule, t, single_weekday) for t in times])
    return None


def _describe_cron(rule: FreezeRule) -> str | None:
    spec = rule._cron
    assert spec is not None
    every_dom = spec.days == frozenset(range(1, 32))
    every_dow = spec.weekdays == frozenset(range(7))
    if not every_dom and not every_dow:
        return None  # AND/OR of both day fields is too subtle to put in words
    if every_dom:
        py_days = sorted((d - 1) % 7 for d in spec.weekdays)
        phrase = _weekday_phrase(py_days)
        single = py_days[0] if len(py_days) == 1 else None
    else:
        phrase = "Every month on day " + _join([str(d) for d in sorted(spec.days)])
        single = None
    if spec.months != frozenset(range(1, 13)):
        phrase += " in " + _join([MONTH_NAMES[m - 1] for m in sorted(spec.months)])
    times = _describe_times(rule, spec.times(), single)
    return None if times is None else f"{phrase} {times}"


def _rrule_ints(parts: dict[str, str], key: str) -> list[int] | None:
    if key not in parts:
        return None
    return [int(v) for v in parts[key].split(",")]


def _describe_rrule(rule: FreezeRule) -> str | None:
    parts = rule._rrule_parts
    assert parts is not None
    known = {"FREQ", "INTERVAL", "BYDAY", "BYHOUR", "BYMINUTE", "BYMONTHDAY", "BYMONTH", "WKST"}
    if set(parts) - known or parts.get("INTERVAL", "1") != "1":
        return None
    anchor = rule.anchor or DEFAULT_ANCHOR
    freq = parts["FREQ"]
    hours = _rrule_ints(parts, "BYHOUR") or [anchor.hour]
    minutes = _rrule_ints(parts, "BYMINUTE") or [anchor.minute]
    if freq not in ("DAILY", "WEEKLY", "MONTHLY", "YEARLY"):
        return None
    byday = parts.get("BYDAY")
    if byday and not re.fullmatch(r"(MO|TU|WE|TH|FR|SA|SU)(,(MO|TU|WE|TH|FR|SA|SU))*", byday):
        return None  # positional weekdays ("-1FR") are described generically
    single: int | None = None
    if freq == "DAILY" and not byday and "BYMONTHDAY" not in parts:
        phrase = "Every day"
    elif freq in ("DAILY", "WEEKLY") and "BYMONTHDAY" not in parts:
        days = [RRULE_DAYS.index(d) for d in byday.split(",")] if byday else [anchor.weekday()]
        phrase = _weekday_phrase(days)
        single = days[0] if len(set(days)) == 1 else None
    elif freq == "MONTHLY" and not byday:
        monthdays = _rrule_ints(parts, "BYMONTHDAY") or [anchor.day]
        phrase = "Every month on day " + _join([str(d) for d in monthdays])
    elif freq == "YEARLY" and not byday and "BYMONTHDAY" in parts:
        months = _rrule_ints(parts, "BYMONTH") or [anchor.month]
        monthdays = _rrule_ints(parts, "BYMONTHDAY") or [anchor.day]
        if len(months) != 1 or len(monthdays) != 1:
            return None
        phrase = f"Every year on {monthdays[0]} {MONTH_ABBR[months[0] - 1]}"
    else:
        return None
    if "BYMONTH" in parts and freq != "YEARLY":
        months = _rrule_ints(parts, "BYMONTH") or []
        phrase += " in " + _join([MONTH_NAMES[m - 1] for m in months])
    times = _describe_times(
        rule, [time(h, m) for h in sorted(hours) for m in sorted(minutes)], single
    )
    return None if times is None else f"{phrase} {times}"


def _format_local(value: datetime, tz: ZoneInfo) -> str:
    local = value.astimezone(tz)
    return f"{local.day} {MONTH_ABBR[local.month - 1]} {local.year} {_hm(local)}"


def describe(rule: FreezeRule) -> str:
    """The rule in plain words, with its time zone.

    Examples: ``"Every Friday 16:00–Monday 08:00 Europe/Berlin"``,
    ``"Every day 22:00–06:00 UTC"``,
    ``"Once: 24 Dec 2026 00:00 – 2 Jan 2027 00:00 Europe/London"``.
    Rules too unusual to phrase fall back to quoting the RRULE or cron expression.
    """
    if rule.kind == "once":
        assert rule.start is not None and rule.end is not None
        return (
            f"Once: {_format_local(rule.start, rule.zone)} – "
            f"{_format_local(rule.end, rule.zone)} {rule.tz}"
        )
    text = _describe_rrule(rule) if rule.kind == "rrule" else _describe_cron(rule)
    if text is not None:
        return f"{text} {rule.tz}"
    if rule.duration is not None:
        length = f"for {_duration_words(rule.duration)}"
    else:
        assert rule.end_time is not None
        weekday = f"{WEEKDAY_NAMES[rule.end_weekday]} " if rule.end_weekday is not None else ""
        length = f"until the next {weekday}{_hm(rule.end_time)}"
    source = f"RRULE {rule.rrule}" if rule.kind == "rrule" else f"cron {rule.cron}"
    return f"Recurring ({source}) {length} {rule.tz}"
