"""Explained risk scoring for a release.

Risk decides which gates apply and whether the CAB must look at a change, so a
number on its own is not enough: release managers and approvers need to see where
it comes from to trust it, challenge it, or override it with a justification.
:func:`assess` therefore returns every factor with its own contribution, e.g.
``"Change size: 14 scope items → +12"``, and the score is exactly their sum.

Weights
=======

Each factor has a maximum contribution (a named constant below); the maxima sum
to 100, so the score is naturally bounded to 0–100 and a factor's weight reads as
"percent of the worst case".  The split reflects what most often turns a release
into an incident:

=====================  ====  ==================================================
factor                 max   rule
=====================  ====  ==================================================
change size             20   +1 per scope item beyond the first 2 (small releases
                             are free), capped
service criticality     20   most critical service touched: low 0, medium 7,
                             high 14, critical 20
services touched         6   +2 per service beyond the first (coordination)
data migration          15   all or nothing: migrations are hard to roll back
off-hours window        10   share of the deployment window outside business
                             hours (fewer people to react), rounded
change failure history  20   recent change failure rate, linear up to 50%
                             (DORA "low performer"); unknown history → +5
freeze proximity         9   ≤ 4 h to a freeze +9, ≤ 24 h +5, ≤ 72 h +2: a
                             problem found late collides with the freeze
=====================  ====  ==================================================

Levels: score < 25 low, < 50 medium, < 75 high, otherwise critical.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "CRITICALITY_POINTS",
    "LEVEL_THRESHOLDS",
    "BusinessHours",
    "Criticality",
    "RiskAssessment",
    "RiskFactor",
    "RiskInput",
    "RiskLevel",
    "assess",
    "level_for",
]

Criticality = Literal["low", "medium", "high", "critical"]
RiskLevel = Literal["low", "medium", "high", "critical"]
CRITICALITIES: tuple[str, ...] = ("low", "medium", "high", "critical")

# Maximum contribution of each factor (see the module docstring for the reasoning).
CHANGE_SIZE_WEIGHT = 20
SERVICE_CRITICALITY_WEIGHT = 20
SERVICE_BREADTH_WEIGHT = 6
DATA_MIGRATION_WEIGHT = 15
OFF_HOURS_WEIGHT = 10
FAILURE_HISTORY_WEIGHT = 20
FREEZE_PROXIMITY_WEIGHT = 9

WEIGHTS: dict[str, int] = {
    "change_size": CHANGE_SIZE_WEIGHT,
    "service_criticality": SERVICE_CRITICALITY_WEIGHT,
    "services_touched": SERVICE_BREADTH_WEIGHT,
    "data_migration": DATA_MIGRATION_WEIGHT,
    "off_hours": OFF_HOURS_WEIGHT,
    "failure_history": FAILURE_HISTORY_WEIGHT,
    "freeze_proximity": FREEZE_PROXIMITY_WEIGHT,
}
assert sum(WEIGHTS.values()) <= 100, "factor weights must sum to at most 100"

#: Scope items that come free: every release has at least one.
FREE_SCOPE_ITEMS = 2
POINTS_PER_SCOPE_ITEM = 1
POINTS_PER_EXTRA_SERVICE = 2
CRITICALITY_POINTS: dict[str, int] = {"low": 0, "medium": 7, "high": 14, "critical": 20}
#: Change failure rate at which the failure-history factor is maxed out.
FAILURE_RATE_CEILING = 0.5
#: Contribution when a service has no change history yet: uncertainty is a risk.
FAILURE_HISTORY_UNKNOWN_POINTS = 5
#: (hours to the nearest freeze at most, points), checked in order.
FREEZE_PROXIMITY_STEPS: tuple[tuple[float, int], ...] = ((4, 9), (24, 5), (72, 2))

#: Upper bounds (exclusive) of each level; a score at or above the last is critical.
LOW_BELOW = 25
MEDIUM_BELOW = 50
HIGH_BELOW = 75
LEVEL_THRESHOLDS: tuple[tuple[int, RiskLevel], ...] = (
    (LOW_BELOW, "low"),
    (MEDIUM_BELOW, "medium"),
    (HIGH_BELOW, "high"),
)

assert CRITICALITY_POINTS["critical"] <= SERVICE_CRITICALITY_WEIGHT
assert FREEZE_PROXIMITY_STEPS[0][1] <= FREEZE_PROXIMITY_WEIGHT

_DAY_ABBR = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def level_for(score: int) -> RiskLevel:
    """The risk level of a score (also used when a person overrides the score)."""
    for below, level in LEVEL_THRESHOLDS:
        if score < below:
            return level
    return "critical"


@dataclass(frozen=True)
class BusinessHours:
    """When people are at their desks to react: weekdays (0 = Monday) and hours in ``tz``."""

    tz: str = "UTC"
    weekdays: frozenset[int] = frozenset(range(5))
    start: time = time(9, 0)
    end: time = time(17, 0)

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.tz)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {self.tz!r}") from exc
        if not set(self.weekdays) <= set(range(7)):
            raise ValueError("business weekdays must be 0 (Monday) to 6 (Sunday)")
        if self.end <= self.start:
            raise ValueError("business hours must end after they start")
        object.__setattr__(self, "weekdays", frozenset(self.weekdays))

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.tz)

    def describe(self) -> str:
        """E.g. ``"Mon–Fri 09:00–17:00 Europe/Berlin"``."""
        days = sorted(self.weekdays)
        day_text = ", ".join(_DAY_ABBR[d] for d in days) or "no days"
        if len(days) == 7:
            day_text = "Mon–Sun"
        elif len(days) > 1:
            # A run that may wrap past Sunday, e.g. Sun–Thu in much of the Middle East.
            for first in days:
                if (first - 1) % 7 not in self.weekdays:
                    last = (first + len(days) - 1) % 7
                    if all((first + i) % 7 in self.weekdays for i in range(len(days))):
                        day_text = f"{_DAY_ABBR[first]}–{_DAY_ABBR[last]}"
                    break
        return f"{day_text} {self.start:%H:%M}–{self.end:%H:%M} {self.tz}"

    def overlap(self, start: datetime, end: datetime) -> timedelta:
        """How much of ``[start, end)`` falls inside business hours.

        Business hours are local wall-clock times, so each day is localized on its
        own; a window crossing a DST change is measured correctly.
        """
        zone = self.zone
        total = timedelta(0)
        day = start.astimezone(zone).date() - timedelta(days=1)
        last = end.astimezone(zone).date() + timedelta(days=1)
        while day <= last:
            if day.weekday() in self.weekdays:
                open_at = datetime.combine(day, self.start, tzinfo=zone)
                close_at = datetime.combine(day, self.end, tzinfo=zone)
                lo, hi = max(start, open_at), min(end, close_at)
                if hi > lo:
                    total += hi - lo
            day += timedelta(days=1)
        return total


@dataclass(frozen=True)
class RiskInput:
    """Facts about a release that drive its risk (data in, no database).

    ``services`` is a list of ``(slug, criticality)``.  ``recent_change_failure_rate``
    is the worst rate (0–1) over the services touched, ``None`` when unknown.
    ``window_start``/``window_end`` are the deployment window, ``None`` if not set.
    """

    scope_item_count: int
    services: Sequence[tuple[str, Criticality]] = ()
    data_migration: bool = False
    window_start: datetime | None = None
    window_end: datetime | None = None
    business_hours: BusinessHours = field(default_factory=BusinessHours)
    recent_change_failure_rate: float | None = None
    hours_to_nearest_freeze: float | None = None

    def __post_init__(self) -> None:
        if self.scope_item_count < 0:
            raise ValueError("scope_item_count cannot be negative")
        for slug, criticality in self.services:
            if criticality not in CRITICALITIES:
                raise ValueError(
                    f"service {slug!r} has unknown criticality {criticality!r}; "
                    f"use one of {', '.join(CRITICALITIES)}"
                )
        rate = self.recent_change_failure_rate
        if rate is not None and not 0.0 <= rate <= 1.0:
            raise ValueError("recent_change_failure_rate must be between 0 and 1")
        if (self.window_start is None) != (self.window_end is None):
            raise ValueError("give both window_start and window_end, or neither")
        if self.window_start is not None and self.window_end is not None:
            for name in ("window_start", "window_end"):
                value: datetime = getattr(self, name)
                if value.tzinfo is None or value.utcoffset() is None:
                    raise ValueError(f"{name} must be timezone-aware")
            if self.window_end <= self.window_start:
                raise ValueError("window_end must be after window_start")


@dataclass(frozen=True)
class RiskFactor:
    """One line of the explanation: what was seen and how many points it adds."""

    name: str
    label: str
    value_description: str
    contribution: int

    @property
    def explanation(self) -> str:
        """E.g. ``"Change size: 14 scope items → +12"``."""
        return f"{self.label}: {self.value_description} → +{self.contribution}"


@dataclass(frozen=True)
class RiskAssessment:
    """Score (0–100, the sum of the factors), its level and the factors themselves."""

    score: int
    level: RiskLevel
    factors: list[RiskFactor]

    @property
    def explanation(self) -> list[str]:
        """One line per factor, in display order."""
        return [f.explanation for f in self.factors]


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _change_size(data: RiskInput) -> RiskFactor:
    n = data.scope_item_count
    points = min(CHANGE_SIZE_WEIGHT, max(0, n - FREE_SCOPE_ITEMS) * POINTS_PER_SCOPE_ITEM)
    return RiskFactor("change_size", "Change size", _plural(n, "scope item"), points)


def _service_criticality(data: RiskInput) -> RiskFactor:
    if not data.services:
        return RiskFactor("service_criticality", "Service criticality", "no services touched", 0)
    slug, worst = max(data.services, key=lambda s: CRITICALITIES.index(s[1]))
    return RiskFactor(
        "service_criticality",
        "Service criticality",
        f"most critical service {slug} is {worst}",
        CRITICALITY_POINTS[worst],
    )


def _services_touched(data: RiskInput) -> RiskFactor:
    n = len({slug for slug, _ in data.services})
    points = min(SERVICE_BREADTH_WEIGHT, max(0, n - 1) * POINTS_PER_EXTRA_SERVICE)
    return RiskFactor("services_touched", "Services touched", _plural(n, "service"), points)


def _data_migration(data: RiskInput) -> RiskFactor:
    if data.data_migration:
        return RiskFactor(
            "data_migration", "Data migration", "includes a data migration", DATA_MIGRATION_WEIGHT
        )
    return RiskFactor("data_migration", "Data migration", "no data migration", 0)


def _off_hours(data: RiskInput) -> RiskFactor:
    hours = data.business_hours
    if data.window_start is None or data.window_end is None:
        return RiskFactor("off_hours", "Off-hours window", "no deployment window set", 0)
    length = data.window_end - data.window_start
    outside = length - hours.overlap(data.window_start, data.window_end)
    share = outside / length
    points = round(OFF_HOURS_WEIGHT * share)
    local = data.window_start.astimezone(hours.zone)
    local_end = data.window_end.astimezone(hours.zone)
    window = f"{_DAY_ABBR[local.weekday()]} {local:%H:%M}–{_DAY_ABBR[local_end.weekday()]} " + (
        f"{local_end:%H:%M}"
    )
    if outside <= timedelta(0):
        text = f"window {window} within business hours ({hours.describe()})"
    else:
        text = (
            f"{round(share * 100)}% of window {window} outside business hours ({hours.describe()})"
        )
    return RiskFactor("off_hours", "Off-hours window", text, points)


def _failure_history(data: RiskInput) -> RiskFactor:
    rate = data.recent_change_failure_rate
    if rate is None:
        return RiskFactor(
            "failure_history",
            "Change failure history",
            "no recent change history (unknown)",
            FAILURE_HISTORY_UNKNOWN_POINTS,
        )
    points = round(FAILURE_HISTORY_WEIGHT * min(rate, FAILURE_RATE_CEILING) / FAILURE_RATE_CEILING)
    return RiskFactor(
        "failure_history",
        "Change failure history",
        f"recent change failure rate {rate:.0%}",
        points,
    )


def _freeze_proximity(data: RiskInput) -> RiskFactor:
    hours = data.hours_to_nearest_freeze
    if hours is None:
        return RiskFactor("freeze_proximity", "Freeze proximity", "no freeze nearby", 0)
    points = next((p for limit, p in FREEZE_PROXIMITY_STEPS if hours <= limit), 0)
    text = "window touches a freeze" if hours <= 0 else f"{hours:g} h to the nearest freeze"
    return RiskFactor("freeze_proximity", "Freeze proximity", text, points)


def assess(data: RiskInput) -> RiskAssessment:
    """Score ``data`` and explain the score factor by factor.

    Factors appear in a fixed order (including those contributing 0) so pages and
    the audit trail always show the same checklist.
    """
    factors = [
        _change_size(data),
        _service_criticality(data),
        _services_touched(data),
        _data_migration(data),
        _off_hours(data),
        _failure_history(data),
        _freeze_proximity(data),
    ]
    score = max(0, min(100, sum(f.contribution for f in factors)))
    return RiskAssessment(score=score, level=level_for(score), factors=factors)
