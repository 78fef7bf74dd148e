"""The only writes of the dashboards app: (re)generating a personal calendar-feed token.

Why a write in a read-model app: see dashboards/models.py. The service follows the house
order (transaction → lock → change → audit) so a regeneration is as traceable as any
governance decision: who revoked the old feed URL, and when.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from governance.services import audit_record
from releases.errors import PermissionDenied

from .models import CalendarFeedToken, hash_feed_token


def calendar_feed_token_regenerate(*, actor) -> str:
    """Create or replace the actor's feed token and return the raw value (shown once).

    Permissions: any user who may view releases (an outsider would get an empty feed, so
    they are refused instead). Side effects: the previous feed URL stops working at once;
    one audit event ``calendar_feed.token_regenerated`` (or ``…created``).
    """
    if not actor.has_perm("releases.view_release"):
        raise PermissionDenied("You need a role to subscribe to the release calendar.")
    raw = CalendarFeedToken.generate_raw()
    with transaction.atomic():
        token = CalendarFeedToken.objects.select_for_update().filter(user=actor).first()
        created = token is None
        if created:
            token = CalendarFeedToken(user=actor)
        token.key_hash = hash_feed_token(raw)
        token.key_hint = raw[:8]
        token.created_at = timezone.now()
        token.last_used_at = None
        token.save()
        audit_record(
            actor=actor,
            action="calendar_feed.token_created" if created else "calendar_feed.token_regenerated",
            target=token,
            reason="" if created else "Previous feed URL revoked.",
        )
    return raw


def calendar_feed_token_touch(*, token: CalendarFeedToken) -> None:
    """Record the last fetch (not audited: it is a read). A conditional update so concurrent
    fetches by several calendar clients never contend on a lock."""
    now = timezone.now()
    CalendarFeedToken.objects.filter(pk=token.pk).update(last_used_at=now)
