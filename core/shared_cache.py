"""The shared cache (Redis in production) as an accelerator, never a dependency.

Token lookups and rate counters live in the cache so that a busy CI costs no database round
trip; when the cache cannot be reached, a request must still be answered from the database
(a CI report is a fact we keep, not a nice-to-have). ``guarded`` runs one cache call: a
failure is logged, answered with the caller's fallback, and blows a fuse that keeps the
cache out of the request path for ``FUSE_SECONDS``, so an outage costs one timeout per
process and fuse period instead of one per request. Imports no project app.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")
FUSE_SECONDS = 5.0

_lock = threading.Lock()
_blown_until = 0.0


def available() -> bool:
    """Whether the shared cache is worth asking now (its fuse is not blown)."""
    return time.monotonic() >= _blown_until


def guarded(call: Callable[[], T], fallback: T) -> T:
    """``call()``, or ``fallback`` when the cache is down or its fuse is blown."""
    global _blown_until
    if not available():
        return fallback
    try:
        return call()
    except Exception as exc:  # noqa: BLE001 - any cache failure means "answer without it"
        with _lock:
            first = time.monotonic() >= _blown_until
            _blown_until = time.monotonic() + FUSE_SECONDS
        if first:
            logger.warning(
                "Shared cache unavailable (%s: %s); answering from the database for %.0f s.",
                type(exc).__name__,
                exc,
                FUSE_SECONDS,
            )
        return fallback


def reset() -> None:
    """Mend the fuse (tests, and a probe that found the cache answering again)."""
    global _blown_until
    _blown_until = 0.0
