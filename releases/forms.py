"""Forms of the release pages. They validate input and shape it for a service call; the
services remain the judges of permission and domain rules (a DomainError they raise is put
back on the form with ``apply_domain_error``)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from django import forms
from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from django.utils import timezone

from core.dates import in_date_range
from core.errors import DomainError
from core.roles import Role, has_role

from .choices import (
    Likelihood,
    ReleaseState,
    ReleaseType,
    RiskItemStatus,
    RiskLevel,
    ScopeKind,
    ScopeStatus,
)
from .models import Service
from .rules import is_administrator, user_team_ids

User = get_user_model()

# Time zones offered for entering a deployment window. Stored values are always aware
# datetimes; the zone only says how the typed wall-clock time is to be read.
TIME_ZONES = [
    "UTC",
    "Europe/London",
    "Europe/Berlin",
    "Europe/Paris",
    "America/New_York",
    "America/Chicago",
    "America/Los_Angeles",
    "America/Sao_Paulo",
    "Asia/Kolkata",
    "Asia/Singapore",
    "Asia/Tokyo",
    "Australia/Sydney",
]

_DATETIME_WIDGET = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")
_DATE_WIDGET = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


class UserChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj) -> str:
        full = obj.get_full_name()
        return f"{full} ({obj.get_username()})" if full else obj.get_username()


def users_with_role(*roles: str) -> QuerySet:
    return (
        User.objects.filter(is_active=True, groups__name__in=roles)
        .distinct()
        .order_by("first_name", "last_name", "username")
    )


def apply_domain_error(form: forms.Form, error: DomainError) -> None:
    """Put a service's refusal on the form: field errors where the service named a field
    the form has, the message as a form-wide error otherwise."""
    details = error.details if isinstance(error.details, dict) else {}
    placed = False
    for field, messages in details.items():
        if field in form.fields:
            for message in messages if isinstance(messages, list | tuple) else [messages]:
                form.add_error(field, str(message))
            placed = True
    if not placed:
        form.add_error(None, error.message)


class Form(forms.Form):
    """Our forms: labels without Django's trailing colon (the layout separates them)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)


class ReleaseFilterForm(Form):
    """The release list's filters. Invalid values are reported and ignored, never a 500."""

    q = forms.CharField(label="Search", required=False, max_length=100)
    state = forms.MultipleChoiceField(
        choices=ReleaseState.choices, required=False, widget=forms.CheckboxSelectMultiple
    )
    service = forms.ChoiceField(required=False)
    team = forms.ChoiceField(required=False)
    release_type = forms.ChoiceField(
        label="Type", choices=[("", "Any type"), *ReleaseType.choices], required=False
    )
    risk_level = forms.ChoiceField(
        label="Risk", choices=[("", "Any risk"), *RiskLevel.choices], required=False
    )
    window_from = forms.DateField(label="Window from", required=False, widget=_DATE_WIDGET)
    window_to = forms.DateField(label="Window to", required=False, widget=_DATE_WIDGET)

    def __init__(self, *args, services=(), teams=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["service"].choices = [("", "Any service")] + [
            (s.slug, s.name) for s in services
        ]
        self.fields["team"].choices = [("", "Any team")] + [(t.slug, t.name) for t in teams]

    def clean(self):
        data = super().clean()
        start, end = data.get("window_from"), data.get("window_to")
        if start and end and end < start:
            self.add_error("window_to", "Must not be before “Window from”.")
        return data

    def filters(self) -> dict:
        """The valid filters, in the shape selectors.release_list expects."""
        if not self.is_bound:
            return {}
        self.is_valid()
        data = getattr(self, "cleaned_data", {})
        return {key: value for key, value in data.items() if value not in (None, "", [])}

    @property
    def active_count(self) -> int:
        return len(self.filters())


class ReleaseForm(Form):
    """Create or edit a release. The services offered are those of the user's teams
    (administrators: every service), plus those the release already has."""

    name = forms.CharField(max_length=200)
    version = forms.CharField(max_length=64, help_text="For example 2.4.0.")
    release_type = forms.ChoiceField(
        label="Type", choices=ReleaseType.choices, initial=ReleaseType.MINOR
    )
    risk_level = forms.ChoiceField(label="Risk", choices=RiskLevel.choices, initial=RiskLevel.LOW)
    services = forms.ModelMultipleChoiceField(
        queryset=Service.objects.none(), widget=forms.CheckboxSelectMultiple
    )
    owner = UserChoiceField(
        queryset=User.objects.none(),
        required=False,
        help_text="The accountable release manager. Defaults to you.",
    )
    product_owner = UserChoiceField(
        label="Product owner", queryset=User.objects.none(), required=False
    )
    time_zone = forms.ChoiceField(
        label="Time zone of the times below",
        choices=[(tz, tz) for tz in TIME_ZONES],
        initial="UTC",
    )
    window_start = forms.DateTimeField(
        label="Deployment window start",
        required=False,
        widget=_DATETIME_WIDGET,
        validators=[in_date_range],
    )
    window_end = forms.DateTimeField(
        label="Deployment window end",
        required=False,
        widget=_DATETIME_WIDGET,
        validators=[in_date_range],
    )
    code_freeze_at = forms.DateTimeField(
        label="Code freeze", required=False, widget=_DATETIME_WIDGET, validators=[in_date_range]
    )
    target_date = forms.DateField(
        label="Target date", required=False, widget=_DATE_WIDGET, validators=[in_date_range]
    )
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))
    release_notes = forms.CharField(
        label="Release notes",
        required=False,
        widget=forms.Textarea(attrs={"rows": 8}),
        help_text="Markdown. Raw HTML is shown as text.",
    )

    DATETIME_FIELDS = ("window_start", "window_end", "code_freeze_at")

    def __init__(self, *args, user, release=None, **kwargs):
        if release is not None and "initial" not in kwargs:
            kwargs["initial"] = self.initial_from(release)
        super().__init__(*args, **kwargs)
        services = Service.objects.select_related("team").order_by("team__name", "name")
        if not is_administrator(user):
            allowed = Service.objects.filter(team__in=user_team_ids(user)).values("pk")
            current = release.services.values("pk") if release is not None else []
            services = services.filter(pk__in=allowed) | services.filter(pk__in=current)
        self.fields["services"].queryset = services.distinct()
        self.fields["owner"].queryset = users_with_role(Role.RELEASE_MANAGER)
        if release is None and has_role(user, Role.RELEASE_MANAGER):
            self.fields["owner"].initial = user.pk
        self.fields["product_owner"].queryset = users_with_role(Role.PRODUCT_OWNER)

    @staticmethod
    def initial_from(release) -> dict:
        zone = timezone.get_current_timezone()
        initial = {
            "name": release.name,
            "version": release.version,
            "release_type": release.release_type,
            "risk_level": release.risk_level,
            "services": list(release.services.all()),
            "owner": release.owner_id,
            "product_owner": release.product_owner_id,
            "time_zone": str(zone),
            "target_date": release.target_date,
            "description": release.description,
            "release_notes": release.release_notes,
        }
        for field in ReleaseForm.DATETIME_FIELDS:
            value = getattr(release, field)
            initial[field] = timezone.localtime(value, zone) if value else None
        return initial

    def clean(self):
        data = super().clean()
        zone = ZoneInfo(data.get("time_zone") or "UTC")
        for field in self.DATETIME_FIELDS:
            value = data.get(field)
            if value is not None:
                # The widget's wall-clock time was read in the current zone; re-read it in
                # the zone the user chose.
                data[field] = timezone.make_aware(timezone.make_naive(value), zone)
        start, end = data.get("window_start"), data.get("window_end")
        if start and end and end <= start:
            self.add_error("window_end", "The window must end after it starts.")
        if bool(start) != bool(end):
            missing = "window_end" if start else "window_start"
            if missing not in self.errors:  # typed but refused: its own error says why
                self.add_error(missing, "Give both the start and the end of the window.")
        freeze = data.get("code_freeze_at")
        if freeze and start and freeze > start:
            self.add_error("code_freeze_at", "The code freeze must be before the window starts.")
        return data

    def service_kwargs(self) -> dict:
        """Cleaned data as keyword arguments of release_create / changes of release_update."""
        data = dict(self.cleaned_data)
        data.pop("time_zone", None)
        return data


class TransitionForm(Form):
    """The reason given for a transition; required where the service requires one."""

    reason = forms.CharField(
        required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2})
    )

    def __init__(self, *args, reason_required: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["reason"].required = reason_required
        if reason_required:
            self.fields["reason"].error_messages["required"] = "Please give a reason."


class ScopeItemForm(Form):
    kind = forms.ChoiceField(choices=ScopeKind.choices, initial=ScopeKind.FEATURE)
    external_key = forms.CharField(
        label="Key", max_length=50, required=False, help_text="For example PAY-123."
    )
    title = forms.CharField(max_length=300)
    url = forms.URLField(label="Link", required=False, max_length=200, assume_scheme="https")
    status = forms.ChoiceField(choices=ScopeStatus.choices, initial=ScopeStatus.INCLUDED)


class RiskForm(Form):
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}))
    likelihood = forms.ChoiceField(choices=Likelihood.choices, initial=Likelihood.MEDIUM)
    impact = forms.ChoiceField(choices=Likelihood.choices, initial=Likelihood.MEDIUM)
    mitigation = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    owner = UserChoiceField(queryset=User.objects.none(), required=False)
    status = forms.ChoiceField(choices=RiskItemStatus.choices, initial=RiskItemStatus.OPEN)

    def __init__(self, *args, owners=None, adding: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner"].queryset = owners if owners is not None else User.objects.none()
        if adding:
            # A new risk is always open; its status changes afterwards.
            del self.fields["status"]


class RollbackPlanForm(Form):
    steps = forms.CharField(widget=forms.Textarea(attrs={"rows": 5}))
    rehearsed_at = forms.DateTimeField(
        label="Rehearsed at", required=False, widget=_DATETIME_WIDGET, validators=[in_date_range]
    )
    evidence_url = forms.URLField(
        label="Evidence link", required=False, max_length=200, assume_scheme="https"
    )
