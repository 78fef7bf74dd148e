"""When a freeze rule is active: occurrences in local wall-clock time, converted to UTC
(see the package docstring for the daylight-saving rules)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from dateutil.relativedelta import relativedelta
from dateutil.rrule import rrule as RRule  # noqa: N812 - the class is lower-case upstream

from .rules import (
    DEFAULT_ANCHOR,
    EVALUATION_END,
    EVALUATION_START,
    NEXT_END_HORIZON,
    FreezeRule,
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
    A recurring rule is only evaluated within EVALUATION_START..EVALUATION_END: a far
    past or far future query is clamped to it.
    """
    _require_aware("start", start)
    _require_aware("end", end)
    if rule.kind != "once":
        start, end = max(start, EVALUATION_START), min(end, EVALUATION_END)
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
    is the one that decides how long ``at`` stays blocked.  Outside
    EVALUATION_START..EVALUATION_END nothing is frozen.
    """
    _require_aware("at", at)
    if not EVALUATION_START <= at < EVALUATION_END:
        return None
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
    while until - at < horizon and until < EVALUATION_END:
        probe = occurrences(rule, until, until + timedelta(microseconds=1))
        later = [e for s, e in probe if s <= until < e]
        if not later:
            return until
        until = max(later)
    return until
