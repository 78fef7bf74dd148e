"""Query filters shared by the read endpoints."""

from __future__ import annotations

from datetime import UTC

import django_filters
from django import forms
from django_filters.fields import IsoDateTimeField


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
