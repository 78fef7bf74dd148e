"""The polling sweep: claim the due integrations, ask their providers concurrently, record
the runs through the one upsert service, and keep each integration's health.

Claim: ``filter(pk=…, next_poll_at=<value read>).update(next_poll_at=<lease end>)``; only
the sweep whose update changed the row polls it, so two beat schedulers started by mistake
(or two workers running the sweep) never poll an integration twice. If the worker dies
mid-poll, the row becomes due again when the lease ends.

Concurrency: network in a thread pool (bounded overall and per host, so one slow provider
cannot take every thread and we never hammer one host); database writes stay on the calling
thread, in the order results arrive, each upsert in its own transaction.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import httpx
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from releases.errors import DomainError

from ..worker_models import IntegrationPollState
from .clients import CLIENTS, PollResult, PollTarget, resolve_token
from .http import DEFAULT_TIMEOUT, FetchStats, PollError

logger = logging.getLogger(__name__)

LEASE = timedelta(minutes=10)
MAX_BACKOFF = timedelta(hours=1)


def concurrency() -> int:
    return int(getattr(settings, "POLL_CONCURRENCY", 32))


def per_host_limit() -> int:
    return int(getattr(settings, "POLL_PER_HOST", 8))


@dataclass
class FetchOutcome:
    """What one integration's poll gave: a result or an error, and the requests it took."""

    key: int
    result: PollResult | None = None
    error: PollError | None = None
    stats: FetchStats = field(default_factory=FetchStats)
    seconds: float = 0.0


class HostLimiter:
    """One semaphore per host:port, created on first use."""

    def __init__(self, limit: int):
        self._limit = limit
        self._lock = threading.Lock()
        self._sems: dict[str, threading.BoundedSemaphore] = defaultdict(
            lambda: threading.BoundedSemaphore(self._limit)
        )

    def for_url(self, url: str) -> threading.BoundedSemaphore:
        netloc = httpx.URL(url).netloc.decode()
        with self._lock:
            return self._sems[netloc]


def fetch_concurrently(
    targets: Iterable[tuple[int, PollTarget]],
    *,
    workers: int | None = None,
    per_host: int | None = None,
    client: httpx.Client | None = None,
    now: datetime | None = None,
) -> list[FetchOutcome]:
    """Poll many targets at once (network only; no database). Never raises: each failure is
    an outcome with its PollError."""
    targets = list(targets)
    workers = workers or concurrency()
    limiter = HostLimiter(per_host or per_host_limit())
    now = now or timezone.now()
    own_client = client is None
    if client is None:
        client = httpx.Client(
            timeout=DEFAULT_TIMEOUT,
            limits=httpx.Limits(max_connections=workers, max_keepalive_connections=workers),
            follow_redirects=False,
        )

    def one(key: int, target: PollTarget) -> FetchOutcome:
        outcome = FetchOutcome(key=key)
        started = time.monotonic()
        try:
            with limiter.for_url(target.base_url):
                outcome.result = CLIENTS[target.provider](client, target, outcome.stats, now)
        except PollError as exc:
            outcome.error = exc
        except Exception as exc:  # noqa: BLE001 - a bug in one client must not stop the sweep
            logger.exception("Polling %s failed unexpectedly", target.base_url)
            outcome.error = PollError(f"Unexpected error: {type(exc).__name__}: {exc}")
        outcome.seconds = time.monotonic() - started
        return outcome

    try:
        if not targets:
            return []
        with ThreadPoolExecutor(max_workers=min(workers, len(targets))) as pool:
            futures = [pool.submit(one, key, target) for key, target in targets]
            return [f.result() for f in as_completed(futures)]
    finally:
        if own_client:
            client.close()


def claim_due(*, now: datetime | None = None, limit: int = 1000) -> list[IntegrationPollState]:
    """Claim the due, enabled integrations by moving next_poll_at to the end of a lease."""
    now = now or timezone.now()
    due = (
        IntegrationPollState.objects.filter(
            enabled=True, integration__enabled=True, next_poll_at__lte=now
        )
        .select_related("integration")
        .order_by("next_poll_at", "id")[:limit]
    )
    return [state for state in due if _claim(state, now)]


def _claim(state: IntegrationPollState, now: datetime) -> bool:
    lease_end = now + LEASE
    won = IntegrationPollState.objects.filter(pk=state.pk, next_poll_at=state.next_poll_at).update(
        next_poll_at=lease_end
    )
    if won:
        state.next_poll_at = lease_end
    return bool(won)


def _target(state: IntegrationPollState) -> PollTarget:
    return PollTarget(
        provider=state.integration.provider,
        base_url=state.base_url,
        target=state.target,
        branch=state.branch,
        username=state.username,
        token=resolve_token(state.token, state.token_env),
        cursor=state.cursor,
    )


def poll_states(states: list[IntegrationPollState], **kwargs) -> list[FetchOutcome]:
    """Poll claimed states concurrently and record everything (runs and health)."""
    pollable = [s for s in states if s.integration.provider in CLIENTS]
    by_pk = {s.pk: s for s in pollable}
    outcomes = fetch_concurrently([(s.pk, _target(s)) for s in pollable], **kwargs)
    for outcome in outcomes:
        record_outcome(by_pk[outcome.key], outcome)
    return outcomes


def poll_due(**kwargs) -> list[FetchOutcome]:
    """The beat sweep."""
    return poll_states(claim_due(), **kwargs)


def poll_one_now(integration_id: int) -> str:
    """Poll one integration now, claiming it like the sweep (so a concurrent sweep skips it)."""
    state = (
        IntegrationPollState.objects.select_related("integration")
        .filter(integration_id=integration_id)
        .first()
    )
    if state is None or not _claim(state, timezone.now()):
        return "skipped"
    outcome = poll_states([state])
    return "failed" if outcome and outcome[0].error else "polled"


def record_outcome(state: IntegrationPollState, outcome: FetchOutcome) -> None:
    """Upsert the runs (each in its own transaction: one refused run does not lose the
    others), then write health and the next poll time — only if our claim still stands."""
    from ..services import pipeline_run_upsert

    now = timezone.now()
    errors: list[str] = []
    count = 0
    if outcome.result is not None:
        errors.extend(outcome.result.errors)
        for event in outcome.result.events:
            try:
                pipeline_run_upsert(actor=None, service=state.service_id, event=event)
                count += 1
            except DomainError as exc:
                errors.append(f"{event.external_id}: {exc.message}")
    fields: dict = {"last_polled_at": now, "last_duration_ms": int(outcome.seconds * 1000)}
    if outcome.error is None:
        interval = state.interval_seconds * random.uniform(0.9, 1.1)
        fields.update(
            last_success_at=now,
            consecutive_failures=0,
            last_run_count=count,
            next_poll_at=now + timedelta(seconds=interval),
        )
        if outcome.result is not None and outcome.result.next_cursor:
            fields["cursor"] = outcome.result.next_cursor
        if errors:
            fields.update(last_error="; ".join(errors)[:2000], last_error_at=now)
    else:
        failures = state.consecutive_failures + 1
        backoff = min(
            MAX_BACKOFF.total_seconds(), state.interval_seconds * 2 ** min(failures - 1, 10)
        )
        wait = max(outcome.error.retry_after, random.uniform(backoff / 2, backoff))
        fields.update(
            consecutive_failures=failures,
            last_error=str(outcome.error)[:2000],
            last_error_at=now,
            next_poll_at=now + timedelta(seconds=wait),
        )
    with transaction.atomic():
        IntegrationPollState.objects.filter(pk=state.pk, next_poll_at=state.next_poll_at).update(
            **fields
        )
