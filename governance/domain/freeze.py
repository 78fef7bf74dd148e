"""Freeze-window recurrence: when is a freeze active, and until when.

Freeze windows are written by people in *local wall-clock time* ("no production
deployments from Friday 16:00 to Monday 08:00, Berlin time").  Storing them as UTC
instants or as start + fixed elapsed duration would drift by an hour twice a year,
so this module keeps the rule in local time and only converts each occurrence to UTC
when it is computed.  It is pure (no Django, no database) so that models, services,
the calendar and the iCal feed all share one definition of "frozen".

Rules
=====

Three kinds of rule exist (``FreezeRule.kind``):

``once``
    A single window between two aware datetimes (``start``/``end``).  ``tz`` is only
    used to describe it.
``rrule``
    An RFC 5545 RRULE (``FREQ=WEEKLY;BYDAY=FR;BYHOUR=16;BYMINUTE=0``) evaluated on
    naive local wall-clock times of ``tz``, anchored at ``anchor`` (naive local,
    default Monday 2000-01-03 00:00; it only matters for ``INTERVAL`` > 1, ``COUNT``
    and fields the RRULE leaves open, e.g. the time of day of ``FREQ=DAILY``).
    A ``DTSTART`` inside the string is refused: use ``anchor`` instead.  An ``UNTIL``
    written in UTC (``...Z``) is converted to local wall time of ``tz``.
``cron``
    A 5-field cron expression (minute hour day-of-month month day-of-week) for the
    start, evaluated on local wall-clock time of ``tz``.  Names (``MON``, ``JAN``),
    ranges, lists, steps and the ``@daily``-style macros are accepted.  As in Vixie
    cron, when both day-of-month and day-of-week are restricted a day matches if
    *either* matches.

The end of a recurring occurrence is given either by ``duration`` or by a local wall
time (``end_time`` with optional ``end_weekday``, 0 = Monday): the end is the first
such local wall time strictly after the start.

Daylight saving time
====================

* Occurrence starts keep their local wall-clock time: a Friday 16:00 rule is 16:00
  local on both sides of a DST switch, so its UTC instant moves by the offset change.
* ``duration`` is **wall-clock** duration: it is added to the local start time before
  converting to UTC.  Friday 16:00 + 64 h always ends Monday 08:00 local, even when
  the weekend contains a DST switch (elapsed time is then 63 or 65 hours).  Use
  ``end_time``/``end_weekday`` to say the same thing explicitly.
* Ambiguous local times (the repeated hour when clocks go back) resolve to their
  first occurrence (``fold=0``, the earlier instant); a recurrence fires once.
* Nonexistent local times (the skipped hour when clocks go forward) are shifted
  forward to the first valid instant after the gap (02:30 on the spring-forward day
  in Berlin becomes 03:00 CEST).  An occurrence whose start and end collapse onto the
  same instant this way is dropped.

Occurrences are returned as they are: overlapping occurrences of one rule are not
merged, except by :func:`next_end_after`, which follows a chain of overlapping or
touching occurrences to find when deployments are really possible again.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.relativedelta import relativedelta
from dateutil.rrule import rrule as RRule  # noqa: N812 - the class is lower-case upstream
from dateutil.rrule import rrulestr

__all__ = [
    "DEFAULT_ANCHOR",
    "CronSpec",
    "FreezeKind",
    "FreezeRule",
    "FreezeRuleError",
    "active_at",
    "describe",
    "next_end_after",
    "occurrences",
    "parse_cron",
    "parse_rule",
]

FreezeKind = Literal["once", "rrule", "cron"]
KINDS: tuple[str, ...] = ("once", "rrule", "cron")

#: Default RRULE anchor: a Monday at midnight, far enough in the past for any rule.
DEFAULT_ANCHOR = datetime(2000, 1, 3, 0, 0)

#: How far :func:`next_end_after` follows a chain of back-to-back occurrences before
#: giving up; a rule that is frozen for longer than this is reported as ending there.
NEXT_END_HORIZON = timedelta(days=400)

WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTH_ABBR = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
MONTH_NAMES = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_RRULE_DAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


class FreezeRuleError(ValueError):
    """A freeze rule that cannot be evaluated; the message is meant for the user."""


# --------------------------------------------------------------------------- cron


@dataclass(frozen=True)
class CronSpec:
    """A parsed 5-field cron expression (sets of allowed values per field).

    ``weekdays`` uses cron numbering (0 = Sunday).  ``dom_restricted`` and
    ``dow_restricted`` record whether the field was written as something other than
    ``*``: Vixie cron ORs the two day fields only when both are restricted.
    """

    expression: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    dom_restricted: bool
    dow_restricted: bool

    def matches_day(self, day: date) -> bool:
        """Whether cron would fire on ``day`` (at some minute)."""
        if day.month not in self.months:
            return False
        dom_ok = day.day in self.days
        dow_ok = (day.weekday() + 1) % 7 in self.weekdays
        if self.dom_restricted and self.dow_restricted:
            return dom_ok or dow_ok
        return dom_ok and dow_ok

    def times(self) -> list[time]:
        """All times of day at which the expression fires, sorted."""
        return [time(h, m) for h in sorted(self.hours) for m in sorted(self.minutes)]


_CRON_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_CRON_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, {name.upper(): i + 1 for i, name in enumerate(MONTH_ABBR)}),
    (
        "day of week",
        0,
        7,
        {name: i for i, name in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"))},
    ),
)


def _cron_value(token: str, name: str, lo: int, hi: int, names: dict[str, int]) -> int:
    upper = token.upper()
    if upper in names:
        return names[upper]
    if not token.isdigit():
        raise FreezeRuleError(f"cron {name}: {token!r} is not a number")
    value = int(token)
    if not lo <= value <= hi:
        raise FreezeRuleError(f"cron {name}: {value} is outside {lo}–{hi}")
    return value


def _parse_cron_field(text: str, name: str, lo: int, hi: int, names: dict[str, int]) -> set[int]:
    values: set[int] = set()
    for item in text.split(","):
        if not item:
            raise FreezeRuleError(f"cron {name}: empty list item in {text!r}")
        base, _, step_text = item.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) == 0:
                raise FreezeRuleError(f"cron {name}: step {step_text!r} must be a positive number")
            step = int(step_text)
        if base == "*":
            first, last = lo, hi
        elif "-" in base:
            a, _, b = base.partition("-")
            first = _cron_value(a, name, lo, hi, names)
            last = _cron_value(b, name, lo, hi, names)
            if first > last:
                raise FreezeRuleError(f"cron {name}: range {base!r} runs backwards")
        else:
            first = _cron_value(base, name, lo, hi, names)
            # "5/15" means "from 5 to the end, every 15" (Vixie cron).
            last = hi if step_text else first
        values.update(range(first, last + 1, step))
    return values


def parse_cron(expression: str) -> CronSpec:
    """Parse a 5-field cron expression, raising :class:`FreezeRuleError` when invalid."""
    text = " ".join(expression.split())
    text = _CRON_MACROS.get(text.lower(), text)
    if text.startswith("@"):
        raise FreezeRuleError(f"cron macro {text!r} is not supported for freeze windows")
    fields = text.split(" ")
    if len(fields) != 5:
        raise FreezeRuleError(
            f"cron expression {expression!r} must have 5 fields "
            f"(minute hour day-of-month month day-of-week), got {len(fields)}"
        )
    parsed = [
        _parse_cron_field(value, name, lo, hi, names)
        for value, (name, lo, hi, names) in zip(fields, _CRON_FIELDS, strict=True)
    ]
    weekdays = {0 if d == 7 else d for d in parsed[4]}
    return CronSpec(
        expression=text,
        minutes=frozenset(parsed[0]),
        hours=frozenset(parsed[1]),
        days=frozenset(parsed[2]),
        months=frozenset(parsed[3]),
        weekdays=frozenset(weekdays),
        dom_restricted=not fields[2].startswith("*"),
        dow_restricted=not fields[4].startswith("*"),
    )


# -------------------------------------------------------------------------- rrule


def _rrule_parts(text: str) -> dict[str, str]:
    body = text.strip()
    if body.upper().startswith("RRULE:"):
        body = body[len("RRULE:") :]
    if not body:
        raise FreezeRuleError("RRULE is empty")
    if "\n" in body or "DTSTART" in body.upper():
        raise FreezeRuleError(
            "RRULE must be a single rule without DTSTART; the anchor is set separately"
        )
    parts: dict[str, str] = {}
    for chunk in body.rstrip(";").split(";"):
        key, sep, value = chunk.partition("=")
        if not sep or not key or not value:
            raise FreezeRuleError(f"RRULE part {chunk!r} is not KEY=VALUE")
        key = key.strip().upper()
        if key in parts:
            raise FreezeRuleError(f"RRULE repeats {key}")
        parts[key] = value.strip().upper()
    if "FREQ" not in parts:
        raise FreezeRuleError("RRULE needs a FREQ (e.g. FREQ=WEEKLY)")
    if parts["FREQ"] == "SECONDLY":
        raise FreezeRuleError("RRULE FREQ=SECONDLY is too fine-grained for a freeze window")
    return parts


def _compile_rrule(parts: dict[str, str], anchor: datetime, tz: ZoneInfo) -> RRule:
    parts = dict(parts)
    until = parts.get("UNTIL")
    if until and until.endswith("Z"):
        # A UTC UNTIL next to our floating (local) anchor: express it in local time.
        try:
            instant = datetime.strptime(until, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        except ValueError as exc:
            raise FreezeRuleError(f"RRULE UNTIL {until!r} is not YYYYMMDDTHHMMSSZ") from exc
        parts["UNTIL"] = instant.astimezone(tz).strftime("%Y%m%dT%H%M%S")
    text = ";".join(f"{k}={v}" for k, v in parts.items())
    try:
        compiled = rrulestr(text, dtstart=anchor)
    except (ValueError, TypeError) as exc:
        raise FreezeRuleError(f"invalid RRULE {text!r}: {exc}") from exc
    if not isinstance(compiled, RRule):  # pragma: no cover - rrulestr returns rruleset only
        raise FreezeRuleError("RRULE must be a single rule")  # for multi-line input
    return compiled


# --------------------------------------------------------------------------- rule


@dataclass(frozen=True)
class FreezeRule:
    """A freeze window definition; invalid combinations raise :class:`FreezeRuleError`.

    Construct directly with typed values, or through :func:`parse_rule` when the
    values come from a form or a database row (strings for times and weekdays).
    """

    kind: FreezeKind
    tz: str
    start: datetime | None = None
    end: datetime | None = None
    rrule: str | None = None
    cron: str | None = None
    duration: timedelta | None = None
    end_time: time | None = None
    end_weekday: int | None = None
    anchor: datetime | None = None

    _zone: ZoneInfo = field(init=False, repr=False, compare=False)
    _rrule_parts: dict[str, str] | None = field(init=False, repr=False, compare=False, default=None)
    _rrule: RRule | None = field(init=False, repr=False, compare=False, default=None)
    _cron: CronSpec | None = field(init=False, repr=False, compare=False, default=None)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise FreezeRuleError(f"freeze rule kind must be one of {', '.join(KINDS)}")
        object.__setattr__(self, "_zone", _zone(self.tz))
        if self.kind == "once":
            self._validate_once()
            return
        self._validate_recurring_end()
        if self.kind == "rrule":
            if not self.rrule:
                raise FreezeRuleError("an rrule freeze needs an RRULE")
            if self.cron:
                raise FreezeRuleError("an rrule freeze cannot also have a cron expression")
            anchor = self.anchor or DEFAULT_ANCHOR
            if anchor.tzinfo is not None:
                raise FreezeRuleError("the anchor is a naive local wall time of the rule's tz")
            parts = _rrule_parts(self.rrule)
            object.__setattr__(self, "_rrule_parts", parts)
            object.__setattr__(self, "_rrule", _compile_rrule(parts, anchor, self._zone))
        else:
            if not self.cron:
                raise FreezeRuleError("a cron freeze needs a cron expression")
            if self.rrule:
                raise FreezeRuleError("a cron freeze cannot also have an RRULE")
            object.__setattr__(self, "_cron", parse_cron(self.cron))

    def _validate_once(self) -> None:
        if self.start is None or self.end is None:
            raise FreezeRuleError("a one-off freeze needs a start and an end")
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise FreezeRuleError("a one-off freeze needs timezone-aware start and end")
        if self.end <= self.start:
            raise FreezeRuleError("a freeze must end after it starts")
        if self.rrule or self.cron or self.duration or self.end_time:
            raise FreezeRuleError("a one-off freeze takes only a start and an end")

    def _validate_recurring_end(self) -> None:
        if self.start is not None or self.end is not None:
            raise FreezeRuleError(
                "a recurring freeze has no start/end datetimes; use duration or end_time"
            )
        if (self.duration is None) == (self.end_time is None):
            raise FreezeRuleError(
                "a recurring freeze needs exactly one of a duration or a local end time"
            )
        if self.duration is not None and self.duration <= timedelta(0):
            raise FreezeRuleError("the freeze duration must be positive")
        if self.end_weekday is not None:
            if self.end_time is None:
                raise FreezeRuleError("an end weekday needs an end time")
            if not 0 <= self.end_weekday <= 6:
                raise FreezeRuleError("the end weekday must be 0 (Monday) to 6 (Sunday)")
        if self.end_time is not None and self.end_time.tzinfo is not None:
            raise FreezeRuleError("the end time is a naive local wall time of the rule's tz")

    @property
    def zone(self) -> ZoneInfo:
        """The rule's time zone as a :class:`zoneinfo.ZoneInfo`."""
        return self._zone

    def max_span(self) -> timedelta:
        """An upper bound for the elapsed length of one occurrence (for look-back)."""
        if self.kind == "once":
            assert self.start is not None and self.end is not None
            return self.end - self.start
        # Wall-clock arithmetic can stretch elapsed time by a DST offset change;
        # one day of slack covers every offset change on record.
        if self.duration is not None:
            return self.duration + timedelta(days=1)
        return timedelta(days=8 if self.end_weekday is not None else 2)


def _zone(name: str) -> ZoneInfo:
    if not name or not isinstance(name, str):
        raise FreezeRuleError("a freeze rule needs a time zone (IANA name, e.g. Europe/Berlin)")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise FreezeRuleError(f"unknown time zone {name!r} (use an IANA name)") from exc


_WEEKDAY_ALIASES = {
    **{name.lower(): i for i, name in enumerate(WEEKDAY_NAMES)},
    **{name.lower()[:3]: i for i, name in enumerate(WEEKDAY_NAMES)},
    **{code.lower(): i for i, code in enumerate(_RRULE_DAYS)},
}


def _coerce_weekday(value: int | str | None) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, int):
        return value
    key = value.strip().lower()
    if key.isdigit():
        return int(key)
    if key not in _WEEKDAY_ALIASES:
        raise FreezeRuleError(f"unknown weekday {value!r}")
    return _WEEKDAY_ALIASES[key]


def _coerce_time(value: time | str | None) -> time | None:
    if value is None or value == "":
        return None
    if isinstance(value, time):
        return value
    match = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*", value)
    if not match or int(match[1]) > 23 or int(match[2]) > 59:
        raise FreezeRuleError(f"end time {value!r} must be HH:MM")
    return time(int(match[1]), int(match[2]))


def parse_rule(
    kind: str,
    tz: str,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    rrule: str | None = None,
    cron: str | None = None,
    duration: timedelta | None = None,
    end_time: time | str | None = None,
    end_weekday: int | str | None = None,
    anchor: datetime | None = None,
) -> FreezeRule:
    """Build a validated :class:`FreezeRule` from loosely typed input (forms, rows).

    ``end_time`` may be ``"08:00"``; ``end_weekday`` may be 0–6, ``"monday"``,
    ``"mon"`` or ``"MO"``.  Empty strings count as "not given".  Every problem is
    reported as :class:`FreezeRuleError` with a message fit for a form error.
    """
    return FreezeRule(
        kind=kind,  # type: ignore[arg-type]  # validated in __post_init__
        tz=tz,
        start=start,
        end=end,
        rrule=rrule or None,
        cron=cron or None,
        duration=duration,
        end_time=_coerce_time(end_time),
        end_weekday=_coerce_weekday(end_weekday),
        anchor=anchor,
    )


# --------------------------------------------------------------- time arithmetic


def _to_utc(local: datetime, tz: ZoneInfo) -> datetime:
    """Resolve a naive local wall time to a UTC instant (fold=0; gaps shift forward)."""
    aware = local.replace(tzinfo=tz, fold=0)
    instant = aware.astimezone(UTC)
    if instant.astimezone(tz).replace(tzinfo=None) == local:
        return instant
    # Nonexistent wall time.  fold=0 applies the offset from before the gap and fold=1
    # the one after it, so the transition lies between the two readings; find the
    # first instant that already carries the post-gap offset.
    lo = local.replace(tzinfo=tz, fold=1).astimezone(UTC)
    hi = instant
    if lo > hi:  # a backwards gap cannot happen, but never loop on bad tz data
        lo, hi = hi, lo
    after = aware.replace(fold=1).utcoffset()
    while hi - lo > timedelta(seconds=1):
        mid = lo + (hi - lo) / 2
        if mid.astimezone(tz).utcoffset() == after:
            hi = mid
        else:
            lo = mid
    return hi.replace(microsecond=0)


def _local_naive(instant: datetime, tz: ZoneInfo) -> datetime:
    return instant.astimezone(tz).replace(tzinfo=None)


def _require_aware(name: str, value: datetime) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime")


def _local_end(rule: FreezeRule, local_start: datetime) -> datetime:
    """The naive local end of an occurrence that starts at ``local_start``."""
    if rule.duration is not None:
        return local_start + rule.duration
    assert rule.end_time is not None
    if rule.end_weekday is None:
        candidate = datetime.combine(local_start.date(), rule.end_time)
        step = timedelta(days=1)
    else:
        ahead = (rule.end_weekday - local_start.weekday()) % 7
        candidate = datetime.combine(local_start.date() + timedelta(days=ahead), rule.end_time)
        step = timedelta(days=7)
    if candidate <= local_start:
        candidate += step
    return candidate


_FIXED_PERIODS = {
    "MINUTELY": timedelta(minutes=1),
    "HOURLY": timedelta(hours=1),
    "DAILY": timedelta(days=1),
    "WEEKLY": timedelta(weeks=1),
}


def _fast_forward(rule: FreezeRule, local_from: datetime) -> RRule:
    """The rule's RRULE re-anchored close to ``local_from``, producing the same dates.

    dateutil walks every occurrence from DTSTART, which for a rule anchored in 2000
    means thousands of steps per query.  Moving the anchor forward by whole periods
    (whole multiples of INTERVAL) leaves the generated set unchanged from one period
    before the new anchor on, so it is safe whenever COUNT does not depend on the
    number of skipped occurrences.
    """
    assert rule._rrule is not None and rule._rrule_parts is not None
    parts = rule._rrule_parts
    anchor = rule.anchor or DEFAULT_ANCHOR
    if "COUNT" in parts or local_from <= anchor:
        return rule._rrule
    interval = int(parts.get("INTERVAL", "1"))
    freq = parts["FREQ"]
    if freq in _FIXED_PERIODS:
        period = _FIXED_PERIODS[freq] * interval
        steps = (local_from - anchor) // period - 1
        shift: timedelta | relativedelta = period * steps
    elif freq in ("MONTHLY", "YEARLY") and anchor.day <= 28:
        months = (local_from.year - anchor.year) * 12 + local_from.month - anchor.month
        unit = interval if freq == "MONTHLY" else 12 * interval
        steps = months // unit - 1
        shift = relativedelta(months=unit * steps)
    else:
        return rule._rrule
    if steps <= 0:
        return rule._rrule
    return rule._rrule.replace(dtstart=anchor + shift)


def _local_starts(rule: FreezeRule, local_from: datetime, local_to: datetime) -> Iterator[datetime]:
    """Naive local starts of a recurring rule in [local_from, local_to]."""
    if rule.kind == "rrule":
        yield from _fast_forward(rule, local_from).between(local_from, local_to, inc=True)
        return
    spec = rule._cron
    assert spec is not None
    times = spec.times()
    day = local_from.date()
    while day <= local_to.date():
        if spec.matches_day(day):
            for t in times:
                candidate = datetime.combine(day, t)
                if local_from <= candidate <= local_to:
                    yield candidate
        day += timedelta(days=1)


# ------------------------------------------------------------------- public API


def occurrences(
    rule: FreezeRule, start: datetime, end: datetime
) -> list[tuple[datetime, datetime]]:
    """Freeze intervals ``[s, e)`` (aware, UTC) that overlap ``[start, end)``, by start.

    An occurrence that began before ``start`` but is still running is included, so a
    caller asking about "this week" sees the freeze that started last Friday.
    """
    _require_aware("start", start)
    _require_aware("end", end)
    if end <= start:
        return []
    if rule.kind == "once":
        assert rule.start is not None and rule.end is not None
        s, e = rule.start.astimezone(UTC), rule.end.astimezone(UTC)
        return [(s, e)] if s < end and e > start else []
    tz = rule.zone
    # Widen by a day on each side: local wall time and UTC differ by under a day.
    local_from = _local_naive(start - rule.max_span(), tz) - timedelta(days=1)
    local_to = _local_naive(end, tz) + timedelta(days=1)
    result: list[tuple[datetime, datetime]] = []
    for local_start in _local_starts(rule, local_from, local_to):
        s = _to_utc(local_start, tz)
        e = _to_utc(_local_end(rule, local_start), tz)
        if e > s and s < end and e > start:
            result.append((s, e))
    result.sort()
    return result


def active_at(rule: FreezeRule, at: datetime) -> tuple[datetime, datetime] | None:
    """The occurrence covering ``at`` (start inclusive, end exclusive), else ``None``.

    When occurrences overlap, the one that lasts longest is returned, because that
    is the one that decides how long ``at`` stays blocked.
    """
    _require_aware("at", at)
    covering = [
        (s, e) for s, e in occurrences(rule, at, at + timedelta(microseconds=1)) if s <= at < e
    ]
    if not covering:
        return None
    return max(covering, key=lambda interval: (interval[1], -interval[0].timestamp()))


def next_end_after(
    rule: FreezeRule, at: datetime, *, horizon: timedelta = NEXT_END_HORIZON
) -> datetime | None:
    """When the freeze covering ``at`` ends (UTC), following back-to-back occurrences.

    This is the "blocked until" shown to someone who tries to deploy: if another
    occurrence starts at or before the moment the current one ends, deployments are
    still blocked, so the chain is followed.  ``None`` when ``at`` is not frozen.
    A rule that stays frozen for longer than ``horizon`` reports the end of the first
    occurrence past the horizon instead of searching forever; callers can treat such
    a date as "not in the foreseeable future".
    """
    current = active_at(rule, at)
    if current is None:
        return None
    until = current[1]
    while until - at < horizon:
        probe = occurrences(rule, until, until + timedelta(microseconds=1))
        later = [e for s, e in probe if s <= until < e]
        if not later:
            return until
        until = max(later)
    return until


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
        days = [_RRULE_DAYS.index(d) for d in byday.split(",")] if byday else [anchor.weekday()]
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
