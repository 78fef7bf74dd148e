"""Per-token request limits for the ingestion endpoints."""

from __future__ import annotations

import time

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from rest_framework.throttling import BaseThrottle

_redis_clients: dict = {}


def _redis_client(cache: RedisCache, key: str):
    # Django's RedisCache builds a new redis.Redis object for every operation, which costs
    # more CPU than the round trip; one client per process over the same pool does not.
    client = _redis_clients.get(id(cache))
    if client is None:
        client = _redis_clients[id(cache)] = cache._cache.get_client(key, write=True)
    return client


def _increment(key: str, timeout: int) -> int:
    """Atomically count one request in a window. On Redis one INCR (plus an EXPIRE for the
    window's first request; Django's cache.incr costs three commands); elsewhere add + incr."""
    cache = caches["default"]
    if isinstance(cache, RedisCache):
        full_key = cache.make_and_validate_key(key)
        client = _redis_client(cache, full_key)
        count = client.incr(full_key)
        if count == 1:  # the window's first request sets its expiry
            client.expire(full_key, timeout)
        return count
    cache.add(key, 0, timeout)
    try:
        return cache.incr(key)
    except ValueError:  # evicted between add and incr
        cache.set(key, 1, timeout)
        return 1


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
        count = _increment(f"pipelines:rate:{ident}:{index}", window + 5)
        if count > limit:
            self._wait = (index + 1) * window - now
            return False
        return True

    def wait(self) -> float | None:
        return self._wait
