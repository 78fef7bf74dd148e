"""Retry spacing shared by the workers (notification delivery, pipelines' webhooks and
polls). A pure helper: imports no project app."""

from __future__ import annotations

import random


def backoff_seconds(attempt: int, *, base: float = 5.0, cap: float = 3600.0) -> float:
    """Exponential backoff with full jitter: uniform(0, min(cap, base * 2**attempt)).

    Full jitter spreads retries of many failing rows (a provider outage) over the whole
    window instead of synchronising them into waves that hit the provider together.
    """
    return random.uniform(0, min(cap, base * (2 ** max(0, attempt))))
