"""Freeze rules and their parsing: cron expressions, RRULEs, and the FreezeRule itself."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.rrule import rrule as RRule  # noqa: N812 - the class is lower-case upstream
from dateutil.rrule import rrulestr

FreezeKind = Literal["once", "rrule", "cron"]
KINDS: tuple[str, ...] = ("once", "rrule", "cron")

#: Default RRULE anchor: a Monday at midnight, far enough in the past for any rule.
DEFAULT_ANCHOR = datetime(2000, 1, 3, 0, 0)

#: How far :func:`next_end_after` follows a chain of back-to-back occurrences before
#: giving up; a rule that is frozen for longer than this is reported as ending there.
NEXT_END_HORIZON = timedelta(days=400)

#: The span of time freeze rules are evaluated in.  Every date the application accepts
#: lies in 1970-01-01..2999-12-31 (the range the dashboards already enforce); the margin
#: of a year covers look-back and time zones.  Outside it nothing is frozen, and the
#: date arithmetic never comes near ``datetime.min``/``datetime.max`` (OverflowError).
EVALUATION_START = datetime(1969, 1, 1, tzinfo=UTC)
EVALUATION_END = datetime(3001, 1, 1, tzinfo=UTC)

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
RRULE_DAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


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
    **{code.lower(): i for i, code in enumerate(RRULE_DAYS)},
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
