"""Per-token request limits for the ingestion endpoints."""

from __future__ import annotations

import time

from django.conf import settings
from django.core.cache import cache
from rest_framework.throttling import BaseThrottle


class IngestRateThrottle(BaseThrottle):
    """A fixed-window counter per token in the cache: INGEST_RATE_LIMIT requests per
    INGEST_RATE_WINDOW_SECONDS, then 429 with Retry-After until the window ends.

    A fixed window costs one atomic increment per request (DRF's SimpleRateThrottle keeps a
    list of timestamps per client and rewrites it on every request, which does not scale to
    thousands of posts a second). With a shared cache (Redis) the limit is global; with the
    per-process default it applies per worker process. A limit of 0 disables it.
    """

    def __init__(self) -> None:
        self._wait: float | None = None

    def allow_request(self, request, view) -> bool:
        limit = settings.INGEST_RATE_LIMIT
        if limit <= 0:
            return True
        token = getattr(request.user, "token", None)
        ident = token.key_hash if token is not None else self.get_ident(request)
        window = max(1, settings.INGEST_RATE_WINDOW_SECONDS)
        now = time.time()
        index = int(now // window)
        key = f"pipelines:rate:{ident}:{index}"
        cache.add(key, 0, window + 5)
        try:
            count = cache.incr(key)
        except ValueError:  # evicted between add and incr
            cache.set(key, 1, window + 5)
            count = 1
        if count > limit:
            self._wait = (index + 1) * window - now
            return False
        return True

    def wait(self) -> float | None:
        return self._wait
