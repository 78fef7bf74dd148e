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
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import httpx
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.errors import DomainError
from core.outbound import outbound_client

from ..models import IntegrationPollState
from ..services import pipeline_run_upsert
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


def _interleave_by_host(targets: list[tuple[int, PollTarget]]) -> list[tuple[int, PollTarget]]:
    """Round-robin over hosts, so the pool's threads spread over hosts instead of queueing
    behind one host's limit while other hosts wait."""
    by_host: dict[str, list[tuple[int, PollTarget]]] = defaultdict(list)
    for item in targets:
        by_host[httpx.URL(item[1].base_url).netloc.decode()].append(item)
    queues = list(by_host.values())
    out: list[tuple[int, PollTarget]] = []
    for i in range(max((len(q) for q in queues), default=0)):
        out.extend(q[i] for q in queues if i < len(q))
    return out


def fetch_concurrently(
    targets: Iterable[tuple[int, PollTarget]],
    *,
    workers: int | None = None,
    per_host: int | None = None,
    client: httpx.Client | None = None,
    now: datetime | None = None,
    on_result: Callable[[FetchOutcome], None] | None = None,
) -> list[FetchOutcome]:
    """Poll many targets at once (network only). Never raises: each failure is an outcome
    with its PollError. ``on_result`` runs on the calling thread as each poll finishes, so
    database writes overlap the network without sharing connections between threads."""
    targets = _interleave_by_host(list(targets))
    workers = workers or concurrency()
    limiter = HostLimiter(per_host or per_host_limit())
    now = now or timezone.now()
    own_client = client is None
    if client is None:
        client = outbound_client(
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
            outcomes = []
            for future in as_completed(futures):
                outcome = future.result()
                if on_result is not None:
                    on_result(outcome)
                outcomes.append(outcome)
            return outcomes
    finally:
        if own_client:
            client.close()


def claim_due(*, now: datetime | None = None, limit: int = 1000) -> list[IntegrationPollState]:
    """Claim the due, enabled integrations in one conditional UPDATE.

    Every row is moved to the same lease end, made unique to this sweep by a random
    sub-second offset; the rows that carry it afterwards are ours. A concurrent sweep's
    UPDATE either ran first (our WHERE ``next_poll_at <= now`` no longer matches its rows)
    or waits for our row locks and then re-checks the WHERE (PostgreSQL READ COMMITTED; on
    SQLite writes are serialised), so no row is ever claimed twice. One statement instead of
    one per row: claiming 500 integrations costs one commit.
    """
    now = now or timezone.now()
    due_ids = list(
        IntegrationPollState.objects.filter(
            enabled=True, integration__enabled=True, next_poll_at__lte=now
        )
        .order_by("next_poll_at", "id")
        .values_list("id", flat=True)[:limit]
    )
    if not due_ids:
        return []
    lease_end = now + LEASE + timedelta(microseconds=random.randrange(1, 10**6))
    IntegrationPollState.objects.filter(pk__in=due_ids, next_poll_at__lte=now).update(
        next_poll_at=lease_end
    )
    return list(
        IntegrationPollState.objects.filter(pk__in=due_ids, next_poll_at=lease_end)
        .select_related("integration")
        .order_by("id")
    )


def _claim(state: IntegrationPollState, now: datetime) -> bool:
    """Claim one row (poll now): compare the value read, write the lease end."""
    lease_end = now + LEASE + timedelta(microseconds=random.randrange(1, 10**6))
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


RECORD_BATCH = 25
RECORD_BATCH_SECONDS = 0.25


def poll_states(states: list[IntegrationPollState], **kwargs) -> list[FetchOutcome]:
    """Poll claimed states concurrently and record everything (runs and health).

    Results are recorded on this thread as they arrive, a few integrations per transaction
    (each in its own savepoint): one commit per batch instead of one per run keeps the
    writer ahead of 50 fetching threads, and a failure still only loses its integration.
    """
    pollable = [s for s in states if s.integration.provider in CLIENTS]
    by_pk = {s.pk: s for s in pollable}
    pending: list[FetchOutcome] = []
    first_pending = [0.0]

    def flush() -> None:
        batch, pending[:] = list(pending), []
        with transaction.atomic():
            for outcome in batch:
                try:
                    with transaction.atomic():
                        record_outcome(by_pk[outcome.key], outcome)
                except Exception:  # noqa: BLE001 - one integration must not stop the rest
                    # Its claim expires with the lease and the next sweep tries again.
                    logger.exception("Recording the poll of state %s failed", outcome.key)

    def record(outcome: FetchOutcome) -> None:
        if not pending:
            first_pending[0] = time.monotonic()
        pending.append(outcome)
        if (
            len(pending) >= RECORD_BATCH
            or time.monotonic() - first_pending[0] >= RECORD_BATCH_SECONDS
        ):
            flush()

    try:
        return fetch_concurrently(
            [(s.pk, _target(s)) for s in pollable], on_result=record, **kwargs
        )
    finally:
        if pending:
            flush()


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
    IntegrationPollState.objects.filter(pk=state.pk, next_poll_at=state.next_poll_at).update(
        **fields
    )
