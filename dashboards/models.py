"""The one thing the dashboards app stores: personal calendar-feed tokens.

DESIGN says dashboards are read models only. The iCal feed is the exception: calendar
clients (Outlook, Google Calendar, Apple Calendar) subscribe to a URL and cannot log in,
so the URL itself must carry a secret that identifies the subscriber. That secret needs a
row; it is written only by ``dashboards.services`` and every (re)generation is audited.
"""

from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone

FEED_TOKEN_PREFIX = "cal_"


def hash_feed_token(raw: str) -> str:
    # 256-bit random tokens: a fast unsalted hash is safe and keeps the lookup one indexed
    # equality (same reasoning as pipelines.models.hash_token).
    return hashlib.sha256(raw.encode()).hexdigest()


class CalendarFeedToken(models.Model):
    """The secret of one user's personal iCal feed URL.

    Only the SHA-256 is stored; the raw token is shown once, when it is (re)generated.
    Regenerating replaces the hash, so every calendar subscribed with the old URL stops
    receiving updates (that is the point: it is how a leaked URL is revoked). The feed
    shows what the user may see *now* (permissions are checked on every fetch).
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="calendar_feed_token"
    )
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    key_hint = models.CharField(max_length=12, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "calendar feed token"

    def __str__(self) -> str:
        return f"Calendar feed of {self.user} ({self.key_hint}…)"

    @staticmethod
    def generate_raw() -> str:
        return FEED_TOKEN_PREFIX + secrets.token_urlsafe(32)
