"""The profile form. Imports no project app."""

from __future__ import annotations

from django import forms

from .dates import is_time_zone, time_zone_choices


class ProfileForm(forms.Form):
    time_zone = forms.ChoiceField(
        label="Time zone",
        choices=time_zone_choices,
        validators=[is_time_zone],
        help_text=(
            "Every date and time on the pages is shown in this zone; hover one to see it in UTC."
        ),
    )
