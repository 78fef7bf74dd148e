"""The only writes of the dashboards app: (re)generating a personal calendar-feed token.

Why a write in a read-model app: see dashboards/models.py. The service follows the house
order (transaction → lock → change → audit) so a regeneration is as traceable as any
governance decision: who revoked the old feed URL, and when.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from core.audit import audit_record
from core.errors import PermissionDenied

from .models import (
    CalendarFeedToken,
    DeliveryFact,
    FactsWatermark,
    ReleaseFact,
    TrendPoint,
    hash_feed_token,
)
from .selectors.metrics import delivery_fact_rows, release_fact_rows, trend_point_rows


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


# --- metrics facts: the read model behind the metrics pages and API ---------------------------

# Facts of deployments and releases finished within this long before the last refresh are
# rebuilt on every refresh: incidents, fixes and approvals can land after the fact.
FACTS_REWINDOW = timedelta(days=35)
# Pages and the API refresh the facts first when they are older than this.
FACTS_MAX_AGE = timedelta(minutes=5)
# The beat task (dashboards.refresh_metrics_facts, every 4 minutes) refreshes them unless
# this recent, so readers normally find them fresh.
FACTS_BEAT_MAX_AGE = timedelta(minutes=3)
# Bump when what a TrendPoint holds changes: the next refresh then ranks every bucket.
TREND_POINTS_VERSION = 1


def metrics_facts_refresh(*, full: bool = False, max_age: timedelta | None = None) -> int:
    """Rebuild the metrics facts (all of them, or those of the last FACTS_REWINDOW before
    the previous refresh) from deployments, runs, incidents, releases and audit events.

    No permission: it derives data everyone with a role may read, and writes no domain
    data (not audited). Idempotent; safe to run concurrently with reads (one transaction).
    With ``max_age``, a refresh that another request finished while this one waited for
    the lock is not repeated. Returns the number of deployment facts written.
    """
    now = timezone.now()
    with transaction.atomic():
        mark = FactsWatermark.objects.select_for_update().filter(key="metrics").first()
        points_current = mark is not None and mark.trend_points_version == TREND_POINTS_VERSION
        if max_age is not None and points_current and now - mark.refreshed_at <= max_age:
            return 0
        since = None if full or mark is None else mark.refreshed_at - FACTS_REWINDOW
        stale_deployments = DeliveryFact.objects.all()
        stale_releases = ReleaseFact.objects.all()
        if since is not None:
            stale_deployments = stale_deployments.filter(finished_at__gte=since)
            stale_releases = stale_releases.filter(
                Q(deployed_at__gte=since) | Q(approved_at__gte=since)
            )
        written = _facts_sync(stale_deployments, delivery_fact_rows(since=since))
        _facts_sync(stale_releases, release_fact_rows(since=since))
        _trend_points_write(since=since if points_current else None)
        FactsWatermark.objects.update_or_create(
            key="metrics",
            defaults={"refreshed_at": now, "trend_points_version": TREND_POINTS_VERSION},
        )
    return written


def _facts_sync(current, batches) -> int:
    """Make the facts in ``current`` (a queryset of the refreshed window) equal to the rows
    ``batches`` yields, writing only what differs: new facts are inserted, changed ones
    replaced, vanished ones deleted, and identical ones left alone. Rewriting every fact of
    the window on each refresh (every 4 minutes) left several dead rows per live one on
    PostgreSQL and made the DORA reads drift slower. Returns the facts written."""
    model = current.model
    names = [f.attname for f in model._meta.concrete_fields]
    pk = model._meta.pk.attname
    existing = {row[0]: row[1:] for row in current.values_list(pk, *(n for n in names if n != pk))}
    fresh = [row for batch in batches for row in batch]
    seen, changed, new = set(), [], []
    for row in fresh:
        key = getattr(row, pk)
        seen.add(key)
        values = tuple(getattr(row, n) for n in names if n != pk)
        if key not in existing:
            new.append(row)
        elif existing[key] != values:
            changed.append(row)
    gone = [key for key in existing if key not in seen]
    for start in range(0, len(gone), FACT_WRITE_BATCH):
        model.objects.filter(pk__in=gone[start : start + FACT_WRITE_BATCH]).delete()
    if changed:
        model.objects.bulk_update(
            changed, [n for n in names if n != pk], batch_size=FACT_WRITE_BATCH
        )
    # A fact outside the window (its date moved) may exist already: leave it to its window.
    model.objects.bulk_create(new, batch_size=FACT_WRITE_BATCH, ignore_conflicts=True)
    return len(new) + len(changed)


FACT_WRITE_BATCH = 500


def metrics_facts_ensure_fresh(*, max_age: timedelta = FACTS_MAX_AGE) -> None:
    """Refresh the facts when they are older than ``max_age`` (one indexed read otherwise).
    Called by the metrics page and API before reading, so figures lag by at most max_age."""
    mark = FactsWatermark.objects.filter(key="metrics").values_list(
        "refreshed_at", "trend_points_version"
    )
    refreshed, version = next(iter(mark), (None, None))
    if refreshed is None or timezone.now() - refreshed > max_age or version != TREND_POINTS_VERSION:
        metrics_facts_refresh(max_age=max_age)


def metrics_trend_points_refresh() -> None:
    """Rank every organisation-wide trend bucket afresh from the facts as they are (the
    facts refresh ranks only the buckets it may have changed). Takes the facts refresh's
    lock, so it never interleaves with one. No permission and not audited, like it."""
    with transaction.atomic():
        FactsWatermark.objects.select_for_update().filter(key="metrics").first()
        _trend_points_write(since=None)


def _trend_points_write(*, since: datetime | None) -> None:
    """Replace the TrendPoint rows of the buckets from the one holding ``since`` on (all of
    them when None) with a ranking of their facts. Runs in the caller's transaction, under
    the watermark's lock, so points and facts change together."""
    firsts, rows = trend_point_rows(since=since)
    for interval, first in firsts.items():
        stale = TrendPoint.objects.filter(interval=interval)
        if first is not None:
            stale = stale.filter(bucket__gte=first)
        stale.delete()
    TrendPoint.objects.bulk_create(rows, batch_size=2000)
