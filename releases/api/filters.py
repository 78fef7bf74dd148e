"""Query filters shared by the read endpoints."""

from __future__ import annotations

from datetime import UTC

import django_filters
from django import forms
from django_filters.fields import IsoDateTimeField
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

# The largest id a BigAutoField holds (PostgreSQL bigint, SQLite's 64-bit integer).
MAX_ID = 2**63 - 1


class UtcIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 time, normalised to UTC. Python accepts offsets up to ±23:59 where
    PostgreSQL stops at ±15:59 (a DataError, so a 500), and a time near year 1 or 9999 may
    not exist in UTC at all: both are a 400 naming the parameter instead."""

    def clean(self, value):
        cleaned = super().clean(value)
        if cleaned is None:
            return None
        try:
            return cleaned.astimezone(UTC)
        except (OverflowError, ValueError):
            raise forms.ValidationError(
                "This time is out of range once converted to UTC.", code="out_of_range"
            ) from None


class UtcIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    """``IsoDateTimeFilter`` whose value is compared in UTC (see ``UtcIsoDateTimeField``)."""

    field_class = UtcIsoDateTimeField


@extend_schema_field(OpenApiTypes.INT)
class IdFilter(django_filters.NumberFilter):
    """An id: a whole number (``1.5`` is refused, not truncated), compared as a number with
    no lookup of the row. A ModelChoiceFilter looks the row up among *all* rows, so an id
    that does not exist was a 400 while a hidden one filtered to nothing: the difference
    told a caller which ids exist. Here both filter to nothing.

    Give it the column (``field_name="release_id"``) so the filter needs no join."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        # A foreign key's lookup has no overflow guard: past the BigAutoField range SQLite
        # raises OverflowError and PostgreSQL a DataError (a 500). Refuse such a value as input.
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)
