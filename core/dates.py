"""The dates the application accepts: 1970-01-01 to 2999-12-31.

Pages, feeds and freeze rules step through the days, weeks and months around a date, which
near year 1 or 9999 would leave Python's dates (an OverflowError, a 500). Every date or
datetime a person or a client types — release windows, freeze windows and exceptions, CAB
meetings, change requests, dashboard periods — is held to this range at the door: a form
shows a field error, the API answers 400.
"""

from __future__ import annotations

from datetime import date, datetime

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
