"""The profile page: a person chooses the time zone pages show dates and times in.
Imports no project app."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from .errors import DomainError
from .forms import ProfileForm
from .profiles import profile_update, remember_time_zone, time_zone_of


@login_required
@require_http_methods(["GET", "POST"])
def profile(request: HttpRequest) -> HttpResponse:
    form = ProfileForm(request.POST or None, initial={"time_zone": time_zone_of(request.user)})
    if request.method == "POST" and form.is_valid():
        try:
            profile_update(
                actor=request.user, user=request.user, time_zone=form.cleaned_data["time_zone"]
            )
        except DomainError as exc:
            form.add_error("time_zone", str(exc))
        else:
            remember_time_zone(request, request.user)
            messages.success(
                request, f"Dates and times are now shown in {form.cleaned_data['time_zone']}."
            )
            return redirect("profile")
    return render(
        request,
        "core/profile.html",
        {"form": form, "now": timezone.now()},
        status=400 if form.errors else 200,
    )
