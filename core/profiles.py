"""A person's profile: the time zone pages show dates and times in.

The zone is read on every page, so it travels in the session: put there when the person
logs in (``remember_time_zone``, on ``user_logged_in``) and when they change it, and read by
``TimeZoneMiddleware`` without a query. Imports no project app.
"""

from __future__ import annotations

import zoneinfo

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .audit import audit_record
from .dates import SESSION_KEY, valid_time_zone
from .errors import InvalidInput, PermissionDenied
from .models import Profile


def time_zone_of(user) -> str:
    """The zone ``user`` chose, else the site's (one query)."""
    if user is None or not user.is_authenticated:
        return settings.TIME_ZONE
    chosen = Profile.objects.filter(user=user).values_list("time_zone", flat=True).first()
    return chosen if chosen and valid_time_zone(chosen) else settings.TIME_ZONE


def profile_update(*, actor, user, time_zone: str) -> Profile:
    """Set the time zone ``user`` sees pages in.

    Permissions: the person themselves. Side effects: one ``profile.update`` audit event
    with the zone before and after (none when nothing changed).
    """
    time_zone = (time_zone or "").strip()
    if not valid_time_zone(time_zone):
        raise InvalidInput(
            "Not a known time zone (an IANA name such as Europe/Paris).",
            details={"time_zone": ["Not a known time zone."]},
        )
    if actor is None or actor.pk != user.pk:
        raise PermissionDenied("Only the person themselves can change their profile.")
    with transaction.atomic():
        profile, _ = Profile.objects.get_or_create(user=user)
        profile = Profile.objects.select_for_update().get(pk=profile.pk)
        before = profile.time_zone
        if before != time_zone:
            profile.time_zone = time_zone
            profile.save(update_fields=["time_zone"])
            audit_record(
                actor=actor,
                action="profile.update",
                target=profile,
                before={"time_zone": before},
                after={"time_zone": time_zone},
            )
    return profile


def remember_time_zone(request, user) -> None:
    """Keep ``user``'s zone in the session, so pages read it without a query."""
    if hasattr(request, "session"):
        request.session[SESSION_KEY] = time_zone_of(user)


def on_logged_in(sender, request, user, **kwargs) -> None:
    if request is not None:
        remember_time_zone(request, user)


class TimeZoneMiddleware:
    """Pages render dates and times in the viewer's zone (the API stays in UTC)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        name = None
        if not request.path.startswith("/api/") and hasattr(request, "session"):
            name = request.session.get(SESSION_KEY)
            if name is None and request.user.is_authenticated:
                # A session from before zones were remembered: read it once.
                remember_time_zone(request, request.user)
                name = request.session[SESSION_KEY]
        if name and name != settings.TIME_ZONE and valid_time_zone(name):
            timezone.activate(zoneinfo.ZoneInfo(name))
        else:
            timezone.deactivate()
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
