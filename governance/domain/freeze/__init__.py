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

from .describe import describe
from .occurrences import active_at, next_end_after, occurrences
from .rules import (
    DEFAULT_ANCHOR,
    EVALUATION_END,
    EVALUATION_START,
    CronSpec,
    FreezeKind,
    FreezeRule,
    FreezeRuleError,
    parse_cron,
    parse_rule,
)

__all__ = [
    "DEFAULT_ANCHOR",
    "EVALUATION_END",
    "EVALUATION_START",
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
