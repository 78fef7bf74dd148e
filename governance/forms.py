"""Small forms of the governance pages. Validation of business rules stays in services."""

from __future__ import annotations

from django import forms
from django.conf import settings

from core.dates import in_date_range
from releases.choices import RiskLevel
from releases.forms import Form
from releases.models import Environment

from .choices import BreakGlassKind, VoteChoice


class GateDecisionForm(forms.Form):
    decision = forms.ChoiceField(
        choices=[("sign_off", "Sign off"), ("reject", "Reject"), ("waive", "Waive")]
    )
    comment = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def clean(self):
        data = super().clean()
        if data.get("decision") in ("reject", "waive") and not (data.get("comment") or "").strip():
            self.add_error(
                "comment",
                "A comment is required to reject."
                if data["decision"] == "reject"
                else "A justification is required to waive.",
            )
        return data


class VoteForm(forms.Form):
    choice = forms.ChoiceField(choices=VoteChoice.choices)
    comment = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def clean(self):
        data = super().clean()
        if data.get("choice") == VoteChoice.REJECT and not (data.get("comment") or "").strip():
            self.add_error("comment", "A comment is required to reject.")
        return data


class CommentForm(forms.Form):
    comment = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))


class AgendaCloseForm(forms.Form):
    """Close an agenda item. The page shows what closing will record (``expected_outcome``,
    checked again by the service) and a rejection needs the chair's explicit confirmation."""

    outcome = forms.ChoiceField(
        choices=[("", "Record the quorum decision"), ("needs_info", "Needs information")],
        required=False,
    )
    comment = forms.CharField(required=False)
    expected_outcome = forms.ChoiceField(
        choices=[("", "—"), ("approved", "Approved"), ("rejected", "Rejected")], required=False
    )
    confirm_rejection = forms.BooleanField(required=False)

    def clean(self):
        data = super().clean()
        if data.get("outcome") or "outcome" in self.errors:
            return data
        expected = data.get("expected_outcome")
        if not expected:
            self.add_error(
                "expected_outcome", "Reload the page to see what closing the item records."
            )
        elif expected == "rejected" and not data.get("confirm_rejection"):
            self.add_error(
                "confirm_rejection",
                "Closing now records a rejection: tick “Record the rejection” to confirm.",
            )
        return data

    def service_kwargs(self) -> dict:
        data = self.cleaned_data
        return {
            "outcome": data.get("outcome", ""),
            "comment": data.get("comment", ""),
            "expected_outcome": data.get("expected_outcome", ""),
        }


class MeetingForm(Form):
    title = forms.CharField(max_length=200)
    kind = forms.ChoiceField(choices=[("regular", "Regular CAB"), ("emergency", "Emergency CAB")])
    scheduled_at = forms.DateTimeField(
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}), validators=[in_date_range]
    )


class RiskOverrideForm(forms.Form):
    level = forms.ChoiceField(choices=RiskLevel.choices)
    justification = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}))


class FreezeExceptionForm(forms.Form):
    freeze = forms.IntegerField(widget=forms.HiddenInput)
    justification = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}))


class InboxFilterForm(forms.Form):
    """The inbox's filters and order. The release and service choices are those of the
    items waiting (``selectors.inbox_rows``), so no filter can lead to an empty guess."""

    kind = forms.ChoiceField(label="Kind", required=False)
    release = forms.ChoiceField(label="Release", required=False)
    service = forms.ChoiceField(label="Service", required=False)
    sort = forms.ChoiceField(label="Sort by", required=False)

    def __init__(self, data, *, rows, kinds, sorts):
        super().__init__(data)
        releases = {r.release.pk: str(r.release) for r in rows if r.release is not None}
        services = sorted({slug for r in rows for slug in r.services})
        self.fields["kind"].choices = [("", "All kinds"), *kinds.items()]
        self.fields["release"].choices = [
            ("", "All releases"),
            *sorted(((str(pk), name) for pk, name in releases.items()), key=lambda c: c[1]),
        ]
        self.fields["service"].choices = [("", "All services"), *((s, s) for s in services)]
        self.fields["sort"].choices = list(sorts.items())

    def filters(self) -> dict[str, str]:
        """The valid filters (an unknown value is dropped, with the form's error shown)."""
        if self.is_valid():
            data = self.cleaned_data
        else:
            data = {k: v for k, v in self.data.items() if k in self.fields and k not in self.errors}
        return {
            "kind": data.get("kind") or "",
            "release": data.get("release") or "",
            "service": data.get("service") or "",
            "sort": data.get("sort") or "due",
        }


class BreakGlassForm(Form):
    """Break the glass on a freeze: the service checks the roles, the reason's length and the
    expiry again (its refusals land next to these fields)."""

    kind = forms.ChoiceField(label="For a", choices=BreakGlassKind.choices)
    environment = forms.ModelChoiceField(
        queryset=Environment.objects.filter(is_production=True).order_by("order", "name"),
        to_field_name="slug",
        required=False,
        empty_label="Every production environment",
    )
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Why the freeze must be broken now (incident, customer impact).",
    )
    expires_at = forms.DateTimeField(
        label="Expires at",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        validators=[in_date_range],
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["expires_at"].help_text = (
            f"{settings.TIME_ZONE}; in the future, at most {settings.BREAK_GLASS_MAX_HOURS} hours "
            "ahead."
        )


class BreakGlassReviewForm(Form):
    note = forms.CharField(
        label="Review note",
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="What happened and what follows.",
    )


class BreakGlassRevokeForm(Form):
    reason = forms.CharField(label="Reason", max_length=2000)
