"""Filter forms of the dashboards pages. They only parse the query string: nothing here
writes. Invalid values are dropped (a stale bookmark still opens the page)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django import forms
from django.core.validators import MaxValueValidator, MinValueValidator
from django.utils import timezone

from core.dates import FIRST_DATE, LAST_DATE
from releases.choices import ReleaseState

from .selectors.board import BoardFilters
from .selectors.calendar import CalendarFilters
from .selectors.metrics import MetricsScope

VIEWS = (("month", "Month"), ("week", "Week"), ("list", "List"))


def _date_field() -> forms.DateField:
    """A date within FIRST_DATE..LAST_DATE (outside it, a form error: the value is dropped)."""
    return forms.DateField(
        required=False,
        widget=forms.DateInput(
            attrs={"type": "date", "min": FIRST_DATE.isoformat(), "max": LAST_DATE.isoformat()}
        ),
        validators=[MinValueValidator(FIRST_DATE), MaxValueValidator(LAST_DATE)],
    )


def _choices(items: list, blank: str) -> list[tuple[str, str]]:
    return [("", blank)] + [(item.slug, item.name) for item in items]


class CalendarFilterForm(forms.Form):
    view = forms.ChoiceField(choices=VIEWS, required=False)
    date = _date_field()
    service = forms.ChoiceField(required=False)
    team = forms.ChoiceField(required=False)
    environment = forms.ChoiceField(required=False)
    state = forms.MultipleChoiceField(
        choices=ReleaseState.choices, required=False, widget=forms.CheckboxSelectMultiple
    )

    def __init__(self, data: Any, *, choices: dict[str, list]) -> None:
        super().__init__(data)
        self.fields["service"].choices = _choices(choices["services"], "All services")
        self.fields["team"].choices = _choices(choices["teams"], "All teams")
        self.fields["environment"].choices = _choices(choices["environments"], "All environments")

    def _clean(self, name: str, default: Any = "") -> Any:
        if not self.is_bound:
            return default
        self.is_valid()
        value = self.cleaned_data.get(name) if name not in self.errors else None
        return value or default

    def view_name(self) -> str:
        return self._clean("view", "month")

    def anchor(self) -> date:
        return self._clean("date", timezone.localdate())

    def filters(self) -> CalendarFilters:
        return CalendarFilters(
            service=self._clean("service"),
            team=self._clean("team"),
            environment=self._clean("environment"),
            states=tuple(self._clean("state", [])),
        )


def filters_from_query(data: Any) -> CalendarFilters:
    """The iCal feed's filters: the same names as the page, validated loosely (a calendar
    client cannot show a form error, so unknown values simply match nothing)."""
    states = tuple(s for s in data.getlist("state") if s in ReleaseState.values)
    return CalendarFilters(
        service=data.get("service", "")[:100],
        team=data.get("team", "")[:100],
        environment=data.get("environment", "")[:50],
        states=states,
    )


class BoardFilterForm(forms.Form):
    service = forms.ChoiceField(required=False)
    team = forms.ChoiceField(required=False)
    owner = forms.ChoiceField(required=False)

    def __init__(self, data: Any, *, choices: dict[str, list], owners: list) -> None:
        super().__init__(data)
        self.fields["service"].choices = _choices(choices["services"], "All services")
        self.fields["team"].choices = _choices(choices["teams"], "All teams")
        self.fields["owner"].choices = [("", "Anyone"), ("me", "Me")] + [
            (u.username, u.get_full_name() or u.username) for u in owners
        ]

    def filters(self, *, user_id: int | None) -> BoardFilters:
        if not self.is_bound or not self.is_valid():
            return BoardFilters(mine_user_id=user_id)
        data = self.cleaned_data
        return BoardFilters(
            service=data["service"], team=data["team"], owner=data["owner"], mine_user_id=user_id
        )


class MoveForm(forms.Form):
    """The board's "Move to…": which transition, and why (required for some)."""

    transition = forms.CharField(max_length=40)
    reason = forms.CharField(
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        label="Reason (recorded in the audit trail)",
    )


PERIODS = (
    ("30", "Last 30 days"),
    ("90", "Last 90 days"),
    ("180", "Last 6 months"),
    ("365", "Last 12 months"),
    ("custom", "Custom"),
)
#: The period the figures cover when none is chosen; the select shows it too.
DEFAULT_PERIOD = "90"


class MetricsFilterForm(forms.Form):
    period = forms.ChoiceField(choices=PERIODS, required=False, initial=DEFAULT_PERIOD)
    start_date = _date_field()
    end_date = _date_field()
    service = forms.ChoiceField(required=False)
    team = forms.ChoiceField(required=False)
    by = forms.ChoiceField(
        choices=(("service", "Service"), ("team", "Team")), required=False, label="Group by"
    )

    def __init__(self, data: Any, *, choices: dict[str, list]) -> None:
        if data is not None and not data.get("period"):
            # Filtered without a period: the figures cover the default, and so must the select.
            data = data.copy()
            data["period"] = DEFAULT_PERIOD
        super().__init__(data)
        self.fields["service"].choices = _choices(choices["services"], "All services")
        self.fields["team"].choices = _choices(choices["teams"], "All teams")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        start, end = data.get("start_date"), data.get("end_date")
        if data.get("period") == "custom" and start and end:
            if end < start:
                self.add_error("end_date", "The end date must not be before the start date.")
            elif (end - start).days > 3 * 366:
                self.add_error("start_date", "Choose a period of at most three years.")
        return data

    def scope(self) -> MetricsScope:
        today = timezone.localdate()
        data = self.cleaned_data if self.is_bound and self.is_valid() else {}
        period = data.get("period") or DEFAULT_PERIOD
        if period == "custom" and data.get("start_date") and data.get("end_date"):
            start, end = data["start_date"], data["end_date"]
        else:
            days = int(period) if period.isdigit() else int(DEFAULT_PERIOD)
            start, end = today - timedelta(days=days - 1), today
        return MetricsScope(
            start_date=start,
            end_date=end,
            service=data.get("service", ""),
            team=data.get("team", ""),
        )

    def group_by(self) -> str:
        data = self.cleaned_data if self.is_bound and self.is_valid() else {}
        return data.get("by") or "service"
