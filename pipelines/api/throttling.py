"""Per-token request limits for the ingestion endpoints."""

from __future__ import annotations

import threading
import time

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from rest_framework.throttling import BaseThrottle

from core.shared_cache import guarded

_redis_clients: dict = {}


def _redis_client(cache: RedisCache, key: str):
    # Django's RedisCache builds a new redis.Redis object for every operation, which costs
    # more CPU than the round trip; one client per process over the same pool does not.
    client = _redis_clients.get(id(cache))
    if client is None:
        client = _redis_clients[id(cache)] = cache._cache.get_client(key, write=True)
    return client


# Redis counts arrive in batches of up to 1% of the limit per process (at most 50): the
# limit is then exact to within that many requests per process, and a busy token costs one
# round trip per batch instead of one per request. Small limits (< 200) stay exact.
_batch_lock = threading.Lock()
_unsynced: dict[str, list[int]] = {}  # key -> [requests not yet sent, last global count]


def _increment_redis(cache: RedisCache, key: str, timeout: int, batch: int) -> int:
    full_key = cache.make_and_validate_key(key)
    with _batch_lock:
        entry = _unsynced.get(full_key)
        if entry is None:
            if len(_unsynced) > 10_000:  # keys of past windows: forget them
                _unsynced.clear()
            entry = _unsynced[full_key] = [0, 0]
        entry[0] += 1
        if entry[0] < batch:
            return entry[1] + entry[0]
        pending, entry[0] = entry[0], 0
    client = _redis_client(cache, full_key)
    count = client.incrby(full_key, pending)
    if count == pending:  # the window's first batch sets its expiry
        client.expire(full_key, timeout)
    with _batch_lock:
        entry[1] = max(entry[1], count)
    return count


_local_counts: dict[str, int] = {}


def _increment_local(key: str, timeout: int) -> int:
    """This process's count for a window (the fallback while the shared cache is down)."""
    with _batch_lock:
        if len(_local_counts) > 10_000:  # keys of past windows: forget them
            _local_counts.clear()
        _local_counts[key] = _local_counts.get(key, 0) + 1
        return _local_counts[key]


def _increment(key: str, timeout: int, limit: int = 0) -> int:
    """Atomically count one request in a window. On Redis one INCRBY per batch (plus an
    EXPIRE for the window's first; Django's cache.incr costs three commands per request);
    elsewhere add + incr."""
    cache = caches["default"]
    if isinstance(cache, RedisCache):
        batch = max(1, min(50, limit // 100))
        # Redis down: count in this process (the limit then applies per process, as with
        # the per-process cache) rather than refuse or fail the request.
        count = guarded(lambda: _increment_redis(cache, key, timeout, batch), None)
        return count if count is not None else _increment_local(key, timeout)
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
    thousands of posts a second). With a shared cache (Redis) the limit is global, exact to
    within 1% of it per process (counts are sent in small batches); with the per-process
    default cache it applies per worker process. A limit of 0 disables it.
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
        count = _increment(f"pipelines:rate:{ident}:{index}", window + 5, limit)
        if count > limit:
            self._wait = (index + 1) * window - now
            return False
        return True

    def wait(self) -> float | None:
        return self._wait
