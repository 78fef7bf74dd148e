"""Query-parameter and response serializers of the dashboards API (reads only)."""

from __future__ import annotations

from datetime import date, timedelta

from django.utils import timezone
from rest_framework import serializers

from core.dates import FIRST_DATE, LAST_DATE
from releases.choices import ReleaseState
from releases.models import Environment, Service, Team

from ..selectors.metrics import METRICS

MAX_DAILY_DAYS = 366 * 3
MAX_CALENDAR_DAYS = 92


def _in_range(value: date) -> date:
    if not FIRST_DATE <= value <= LAST_DATE:
        raise serializers.ValidationError(f"Must be between {FIRST_DATE} and {LAST_DATE}.")
    return value


def _slug_exists(model, field_name: str):
    def check(value: str) -> str:
        if value and not model.objects.filter(slug=value).exists():
            raise serializers.ValidationError(f"Unknown {field_name} {value!r}.")
        return value

    return check


class DoraQuerySerializer(serializers.Serializer):
    metric = serializers.ChoiceField(choices=sorted(METRICS))
    start_date = serializers.DateField(
        required=False, help_text="Default: 90 days ago.", validators=[_in_range]
    )
    end_date = serializers.DateField(
        required=False, help_text="Default: today (inclusive).", validators=[_in_range]
    )
    interval = serializers.ChoiceField(
        choices=["daily", "monthly", "all"], default="daily", required=False
    )
    service = serializers.CharField(
        required=False, default="", validators=[_slug_exists(Service, "service")]
    )
    team = serializers.CharField(
        required=False, default="", validators=[_slug_exists(Team, "team")]
    )

    def validate(self, data: dict) -> dict:
        if "end_date" not in data:
            data["end_date"] = timezone.localdate()
        if "start_date" not in data:  # 90 days, or as many as the range allows
            data["start_date"] = max(data["end_date"] - timedelta(days=89), FIRST_DATE)
        if data["end_date"] < data["start_date"]:
            raise serializers.ValidationError({"end_date": "Must not be before start_date."})
        if (data["end_date"] - data["start_date"]).days > MAX_DAILY_DAYS:
            raise serializers.ValidationError({"start_date": "The period is at most 3 years."})
        return data


class DoraPointSerializer(serializers.Serializer):
    date = serializers.DateField()
    value = serializers.FloatField(
        allow_null=True,
        help_text="Count for deployment_frequency, seconds for times, 0–1 for rates; "
        "null when there is no data in the bucket.",
    )


class CalendarQuerySerializer(serializers.Serializer):
    start = serializers.DateField(help_text="First day (inclusive).", validators=[_in_range])
    end = serializers.DateField(
        help_text="Last day (inclusive); at most 92 days after start.", validators=[_in_range]
    )
    service = serializers.CharField(
        required=False, default="", validators=[_slug_exists(Service, "service")]
    )
    team = serializers.CharField(
        required=False, default="", validators=[_slug_exists(Team, "team")]
    )
    environment = serializers.CharField(
        required=False, default="", validators=[_slug_exists(Environment, "environment")]
    )
    state = serializers.ListField(
        child=serializers.ChoiceField(choices=ReleaseState.choices), required=False, default=list
    )

    def validate(self, data: dict) -> dict:
        if data["end"] < data["start"]:
            raise serializers.ValidationError({"end": "Must not be before start."})
        if (data["end"] - data["start"]).days > MAX_CALENDAR_DAYS:
            raise serializers.ValidationError({"end": "The range is at most 92 days."})
        return data


class ConflictSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["service", "environment", "freeze"])
    message = serializers.CharField()
    other_release = serializers.IntegerField(allow_null=True, source="other_id")


class CalendarEventSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=["release", "freeze", "cab_meeting"])
    id = serializers.CharField(help_text="Stable: the same as the iCal UID's local part.")
    title = serializers.CharField()
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    state = serializers.CharField(allow_blank=True)
    services = serializers.ListField(child=serializers.CharField())
    url = serializers.CharField(allow_blank=True)
    description = serializers.CharField(allow_blank=True)
    conflicts = ConflictSerializer(many=True)
