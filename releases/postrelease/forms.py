"""Forms of the post-release pages. They validate shape; the services decide."""

from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model

from ..choices import ActionStatus, CommsAudience, CommsChannel, CommsTrigger, CustomerImpact
from ..models import Team


class ValidationItemForm(forms.Form):
    prefix = "validation"

    title = forms.CharField(label="Validation step", max_length=200)


class CompleteItemForm(forms.Form):
    prefix = "complete"

    note = forms.CharField(label="Note", required=False, max_length=2000)


class RetrospectiveForm(forms.Form):
    prefix = "retro"

    went_well = forms.CharField(
        label="What went well", widget=forms.Textarea(attrs={"rows": 3}), required=False
    )
    went_badly = forms.CharField(
        label="What did not", widget=forms.Textarea(attrs={"rows": 3}), required=False
    )
    to_change = forms.CharField(
        label="What to change", widget=forms.Textarea(attrs={"rows": 3}), required=False
    )
    lessons_learned = forms.CharField(
        label="Lessons learned",
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        help_text="Searchable across all past retrospectives.",
    )
    runbook_links = forms.CharField(
        label="Runbooks and docs updated",
        widget=forms.Textarea(attrs={"rows": 2}),
        required=False,
        help_text="One http(s) link per line.",
    )

    def clean_runbook_links(self) -> list[str]:
        return [
            line.strip() for line in self.cleaned_data["runbook_links"].splitlines() if line.strip()
        ]


class ActionItemForm(forms.Form):
    prefix = "action"

    title = forms.CharField(label="Action", max_length=300)
    owner = forms.ModelChoiceField(queryset=get_user_model().objects.none(), label="Owner")
    due_date = forms.DateField(label="Due", widget=forms.DateInput(attrs={"type": "date"}))
    team = forms.ModelChoiceField(
        queryset=Team.objects.all(), required=False, help_text="Defaults to the release's team."
    )

    def __init__(self, *args, owners=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner"].queryset = (
            owners if owners is not None else get_user_model().objects.all()
        )


class ActionStatusForm(forms.Form):
    prefix = "status"

    status = forms.ChoiceField(choices=ActionStatus.choices)


class ImpactForm(forms.Form):
    prefix = "impact"

    expected_outcome = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}))
    observed_outcome = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    customer_impact = forms.ChoiceField(choices=CustomerImpact.choices)
    notes = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)


class NotesForm(forms.Form):
    body = forms.CharField(
        label="Markdown",
        widget=forms.Textarea(attrs={"rows": 10, "class": "mono"}),
        max_length=100_000,
        required=False,
    )


class LessonsSearchForm(forms.Form):
    q = forms.CharField(label="Search lessons learned", max_length=200, required=False)


class ActionsFilterForm(forms.Form):
    team = forms.ModelChoiceField(queryset=Team.objects.all(), required=False, to_field_name="slug")


class CommunicationForm(forms.Form):
    prefix = "comms"

    audience = forms.ChoiceField(choices=CommsAudience.choices)
    channel = forms.ChoiceField(choices=CommsChannel.choices)
    destination = forms.CharField(
        max_length=500, help_text="Email addresses (comma-separated) or a webhook URL."
    )
    trigger = forms.ChoiceField(label="When", choices=CommsTrigger.choices)
    offset_hours = forms.IntegerField(
        label="Hours before",
        min_value=1,
        max_value=720,
        initial=24,
        required=False,
        help_text="For 'before the window'.",
    )
    subject = forms.CharField(max_length=200)
    message = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}))

    def clean_offset_hours(self) -> int:
        return self.cleaned_data.get("offset_hours") or 24
