"""The dates the application accepts: 1970-01-01 to 2999-12-31.

Pages, feeds and freeze rules step through the days, weeks and months around a date, which
near year 1 or 9999 would leave Python's dates (an OverflowError, a 500). Every date or
datetime a person or a client types — release windows, freeze windows and exceptions, CAB
meetings, change requests, dashboard periods — is held to this range at the door: a form
shows a field error, the API answers 400.
"""

from __future__ import annotations

import functools
from datetime import date, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from django.core.exceptions import ValidationError
from django.utils.deconstruct import deconstructible

FIRST_DATE, LAST_DATE = date(1970, 1, 1), date(2999, 12, 31)


@deconstructible
class DateRangeValidator:
    """Refuses a date or datetime outside FIRST_DATE..LAST_DATE (a datetime by the date it
    was written with: converting 9999-12-31 23:00 to another zone would itself overflow).
    A Django validator, so forms and DRF serializers share it."""

    message = f"Must be between {FIRST_DATE.isoformat()} and {LAST_DATE.isoformat()}."

    def __call__(self, value: date | datetime | None) -> None:
        if value is None:
            return
        if isinstance(value, datetime):
            value = value.date()
        if not FIRST_DATE <= value <= LAST_DATE:
            raise ValidationError(self.message, code="date_out_of_range")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DateRangeValidator)


in_date_range = DateRangeValidator()


# --- time zones --------------------------------------------------------------------------------
#
# Every date and time a page shows is in the viewer's zone (their profile's, else the site's
# TIME_ZONE), in one format, with the UTC instant on hover: ``core.templatetags.dates``.

DISPLAY_FORMAT = "D j M Y, H:i T"  # Wed 20 Jan 2027, 21:00 CET
DATE_FORMAT = "j M Y"  # 20 Jan 2027, for values that are a day, not an instant
SESSION_KEY = "time_zone"


def valid_time_zone(name: str) -> bool:
    """Whether ``name`` is an IANA zone this Python knows (zoneinfo), e.g. Europe/Paris."""
    if not name or name != name.strip() or name.startswith(("/", ".")) or ".." in name:
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


@deconstructible
class TimeZoneValidator:
    """Refuses a name that is not an IANA time zone."""

    message = "Not a known time zone (an IANA name such as Europe/Paris)."

    def __call__(self, value: str) -> None:
        if not valid_time_zone(value):
            raise ValidationError(self.message, code="unknown_time_zone")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TimeZoneValidator)


is_time_zone = TimeZoneValidator()


@functools.cache
def time_zone_choices() -> list[tuple[str, str]]:
    """Every IANA zone, sorted, as (value, label) for a select."""
    return [(name, name.replace("_", " ")) for name in sorted(available_timezones())]
