"""Retention of pipeline runs and webhook deliveries: old rows are deleted in bounded batches,
after their runs were folded into per-service, per-version, per-day summaries.

The policy (settings, docs/operations.md "Data retention"):

- a run is eligible when it was reported more than ``PIPELINE_RUNS_KEEP_DAYS`` ago *and* it is
  not among the newest ``PIPELINE_RUNS_KEEP_PER_SERVICE`` runs of its service (a rule set to 0
  is off; with both off no run is pruned);
- a webhook delivery is eligible when received more than ``WEBHOOK_DELIVERIES_KEEP_DAYS`` ago
  (it is only the guard against a provider's redelivery, which comes within hours);
- never pruned, whatever their age: runs a release's evidence refers to — the run that decided
  a gate, a run of a commit a gate saw, a run of a release's service and version (what the
  release page, its evidence pack and its deployments show), the run that first reported an
  artefact version a release ships — runs whose gate evaluation is still pending, and the
  deliveries of such runs.

Why summaries: the metrics read runs for one figure, lead time for changes (the earliest start
of a service's version). Each pruned run's day is added to a ``RunDaySummary`` in the
transaction that deletes it, and the lead-time query reads the earliest start of the live
runs and of the summaries, so DORA figures and the metrics pages do not change.

Each batch is one transaction, serialised with any other pruner (an advisory lock on
PostgreSQL; SQLite's single writer, taken by the batch's first write), and one audit event
``pipeline_data.pruned`` on its ``PruneBatch`` row. Re-running after a crash or twice in a
row prunes nothing twice: a run is either still there (and eligible again) or gone with its
summary committed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from core.audit import audit_record
from governance.models import GateCheck
from releases.models import Release, Service

from ..models import (
    ArtefactTag,
    PipelineCheck,
    PipelineRun,
    PruneBatch,
    RunDaySummary,
    RunStatus,
    WebhookDelivery,
)

# Any 64-bit constant: the key of the PostgreSQL advisory lock the batches take.
PRUNE_LOCK_KEY = 0x7267_7072_756E  # "rgprun"


@dataclass(frozen=True)
class RetentionPolicy:
    runs_keep_days: int
    runs_keep_per_service: int
    deliveries_keep_days: int
    batch_size: int
    max_batches: int

    @classmethod
    def from_settings(cls) -> RetentionPolicy:
        return cls(
            runs_keep_days=settings.PIPELINE_RUNS_KEEP_DAYS,
            runs_keep_per_service=settings.PIPELINE_RUNS_KEEP_PER_SERVICE,
            deliveries_keep_days=settings.WEBHOOK_DELIVERIES_KEEP_DAYS,
            batch_size=settings.PIPELINE_PRUNE_BATCH_SIZE,
            max_batches=settings.PIPELINE_PRUNE_MAX_BATCHES,
        )

    @property
    def prunes_runs(self) -> bool:
        return bool(self.runs_keep_days or self.runs_keep_per_service)


@dataclass
class PruneReport:
    """What one prune did (or, dry, would do)."""

    dry_run: bool = False
    runs: int = 0
    checks: int = 0
    deliveries: int = 0
    summaries: int = 0
    batches: int = 0
    # Stopped at max_batches with eligible rows left (the next beat run goes on).
    more: bool = False
    runs_by_service: dict[str, int] = field(default_factory=dict)


# --- what may never go -------------------------------------------------------------------------


def _release_of_version(service_ref: str, version_ref: str) -> Exists:
    """A release of that service (in its scope) and that version exists."""
    return Exists(
        Release.services.through.objects.filter(
            service_id=OuterRef(service_ref), release__version=OuterRef(version_ref)
        )
    )


def evidence_linked() -> Q:
    """The runs a release's evidence refers to (a filter on PipelineRun)."""
    return Q(
        Exists(GateCheck.objects.filter(run_id=OuterRef("pk")))
        | Exists(GateCheck.objects.exclude(commit_sha="").filter(commit_sha=OuterRef("commit_sha")))
        | _release_of_version("service_id", "version")
        | Exists(
            ArtefactTag.objects.filter(run_id=OuterRef("pk")).filter(
                _release_of_version("service_id", "version")
            )
        )
    )


# --- what may go -------------------------------------------------------------------------------


def _runs_cutoff(policy: RetentionPolicy, now: datetime) -> datetime | None:
    return now - timedelta(days=policy.runs_keep_days) if policy.runs_keep_days else None


def _deliveries_cutoff(policy: RetentionPolicy, now: datetime) -> datetime | None:
    return (
        now - timedelta(days=policy.deliveries_keep_days) if policy.deliveries_keep_days else None
    )


def eligible_runs(
    *,
    service_id: int,
    policy: RetentionPolicy,
    now: datetime,
    after: tuple[datetime, int] | None = None,
) -> QuerySet:
    """One service's runs the policy lets go, oldest first (a walk down the service's
    newest-first index, from its old end), optionally only those after ``after`` (the
    (created_at, id) of the last run of the previous batch: the kept runs before it are not
    read again)."""
    qs = PipelineRun.objects.filter(service_id=service_id, gates_pending=False)
    if after is not None:
        qs = qs.filter(Q(created_at__gt=after[0]) | Q(created_at=after[0], id__gt=after[1]))
    cutoff = _runs_cutoff(policy, now)
    if cutoff is not None:
        qs = qs.filter(created_at__lt=cutoff)
    if policy.runs_keep_per_service:
        # The newest N are kept: everything strictly older than the N-th newest may go.
        nth = (
            PipelineRun.objects.filter(service_id=service_id)
            .order_by("-created_at", "-id")
            .values_list("created_at", "id")[
                policy.runs_keep_per_service - 1 : policy.runs_keep_per_service
            ]
        )
        boundary = next(iter(nth), None)
        if boundary is None:
            return qs.none()
        at, pk = boundary
        qs = qs.filter(Q(created_at__lt=at) | Q(created_at=at, id__lt=pk))
    return qs.exclude(evidence_linked()).order_by("created_at", "id")


def eligible_deliveries(*, policy: RetentionPolicy, now: datetime) -> QuerySet:
    cutoff = _deliveries_cutoff(policy, now)
    if cutoff is None:
        return WebhookDelivery.objects.none()
    kept_runs = PipelineRun.objects.filter(pk=OuterRef("run_id")).filter(
        evidence_linked() | Q(gates_pending=True)
    )
    # Oldest first by id: ids grow with received_at, so the primary key walk finds them first.
    return (
        WebhookDelivery.objects.filter(received_at__lt=cutoff)
        .exclude(Exists(kept_runs))
        .order_by("id")
    )


# --- the batches ---------------------------------------------------------------------------------


def _serialise() -> None:
    """Take the pruners' lock for this transaction (PostgreSQL). On SQLite the batch's first
    write (its PruneBatch row) takes the database's single write lock before any read that
    decides what to delete."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [PRUNE_LOCK_KEY])


def _fold_into_summaries(rows: list[tuple]) -> int:
    """Add runs (service_id, version, created_at, status, started_at, finished_at) to their
    day's summaries. Called under the pruners' lock, in the deleting transaction. The batch
    is bounded, so grouping it here is cheaper than a GROUP BY that SQLite would run through
    a Python date function anyway."""
    groups: dict[tuple[int, str, object], dict] = {}
    for service_id, version, created_at, status, started_at, finished_at in rows:
        key = (service_id, version, created_at.astimezone(UTC).date())
        g = groups.setdefault(
            key,
            {"runs": 0, "succeeded": 0, "failed": 0, "cancelled": 0, "first": None, "last": None},
        )
        g["runs"] += 1
        if status == RunStatus.SUCCEEDED:
            g["succeeded"] += 1
        elif status == RunStatus.FAILED:
            g["failed"] += 1
        elif status == RunStatus.CANCELLED:
            g["cancelled"] += 1
        if started_at is not None and (g["first"] is None or started_at < g["first"]):
            g["first"] = started_at
        if finished_at is not None and (g["last"] is None or finished_at > g["last"]):
            g["last"] = finished_at
    services = {k[0] for k in groups}
    existing = {
        (s.service_id, s.version, s.day): s
        for s in RunDaySummary.objects.filter(
            service_id__in=services,
            version__in={k[1] for k in groups},
            day__in={k[2] for k in groups},
        )
    }
    changed, created = [], []
    for (service_id, version, day), g in groups.items():
        summary = existing.get((service_id, version, day))
        if summary is None:
            created.append(
                RunDaySummary(
                    service_id=service_id,
                    version=version,
                    day=day,
                    runs=g["runs"],
                    succeeded=g["succeeded"],
                    failed=g["failed"],
                    cancelled=g["cancelled"],
                    first_started_at=g["first"],
                    last_finished_at=g["last"],
                )
            )
            continue
        summary.runs += g["runs"]
        summary.succeeded += g["succeeded"]
        summary.failed += g["failed"]
        summary.cancelled += g["cancelled"]
        if g["first"] is not None and (
            summary.first_started_at is None or g["first"] < summary.first_started_at
        ):
            summary.first_started_at = g["first"]
        if g["last"] is not None and (
            summary.last_finished_at is None or g["last"] > summary.last_finished_at
        ):
            summary.last_finished_at = g["last"]
        changed.append(summary)
    RunDaySummary.objects.bulk_create(created)
    RunDaySummary.objects.bulk_update(
        changed,
        ["runs", "succeeded", "failed", "cancelled", "first_started_at", "last_finished_at"],
    )
    return len(groups)


def _prune_runs_batch(
    *,
    service: Service,
    policy: RetentionPolicy,
    now: datetime,
    after: tuple[datetime, int] | None = None,
) -> tuple[PruneBatch, tuple[datetime, int]] | None:
    with transaction.atomic():
        batch = PruneBatch.objects.create(
            ran_at=now,
            runs_before=_runs_cutoff(policy, now),
            keep_per_service=policy.runs_keep_per_service,
        )
        _serialise()
        candidates = eligible_runs(service_id=service.pk, policy=policy, now=now, after=after)
        if connection.features.has_select_for_update:
            # A concurrent re-report of one of these runs waits for this batch, then inserts
            # it afresh (and it counts as live again).
            candidates = candidates.select_for_update(of=("self",))
        rows = list(
            candidates.values_list(
                "pk", "service_id", "version", "created_at", "status", "started_at", "finished_at"
            )[: policy.batch_size]
        )
        if not rows:
            transaction.set_rollback(True)
            return None
        ids = [r[0] for r in rows]
        last = (rows[-1][3], rows[-1][0])
        batch.summaries_touched = _fold_into_summaries([r[1:] for r in rows])
        # The collector deletes the runs' checks and unlinks what merely points at a run:
        # deliveries (pruned by their own age), artefacts and versions first reported by it
        # (their digest and ``reported_by`` stay).
        _, deleted = PipelineRun.objects.filter(pk__in=ids).delete()
        batch.runs_deleted = deleted.get(PipelineRun._meta.label, 0)
        batch.checks_deleted = deleted.get(PipelineCheck._meta.label, 0)
        batch.save(update_fields=["summaries_touched", "checks_deleted", "runs_deleted"])
        audit_record(
            actor=None,
            action="pipeline_data.pruned",
            target=batch,
            reason=f"Retention policy: runs of {service.slug}.",
            after=_audit_after(batch, service=service.slug),
        )
    return batch, last


def _prune_deliveries_batch(*, policy: RetentionPolicy, now: datetime) -> PruneBatch | None:
    with transaction.atomic():
        batch = PruneBatch.objects.create(
            ran_at=now, deliveries_before=_deliveries_cutoff(policy, now)
        )
        _serialise()
        ids = list(
            eligible_deliveries(policy=policy, now=now).values_list("pk", flat=True)[
                : policy.batch_size
            ]
        )
        if not ids:
            transaction.set_rollback(True)
            return None
        batch.deliveries_deleted, _ = WebhookDelivery.objects.filter(pk__in=ids).delete()
        batch.save(update_fields=["deliveries_deleted"])
        audit_record(
            actor=None,
            action="pipeline_data.pruned",
            target=batch,
            reason="Retention policy: webhook deliveries.",
            after=_audit_after(batch),
        )
    return batch


def _audit_after(batch: PruneBatch, **extra) -> dict:
    return {
        **extra,
        "runs_before": batch.runs_before.isoformat() if batch.runs_before else None,
        "deliveries_before": (
            batch.deliveries_before.isoformat() if batch.deliveries_before else None
        ),
        "keep_per_service": batch.keep_per_service,
        "runs_deleted": batch.runs_deleted,
        "checks_deleted": batch.checks_deleted,
        "deliveries_deleted": batch.deliveries_deleted,
        "summaries_touched": batch.summaries_touched,
    }


def _services() -> Iterator[Service]:
    yield from Service.objects.order_by("pk").only("pk", "slug")


def pipeline_data_prune(
    *, policy: RetentionPolicy | None = None, dry_run: bool = False, now: datetime | None = None
) -> PruneReport:
    """Apply the retention policy: at most ``policy.max_batches`` batches (runs service by
    service, then deliveries), each its own audited transaction. With ``dry_run``, count what
    would go and change nothing.

    No permission: the system's housekeeping (beat, or an operator's management command).
    Side effects: one audit event per batch. Safe to run twice or concurrently."""
    policy = policy or RetentionPolicy.from_settings()
    now = now or timezone.now()
    report = PruneReport(dry_run=dry_run)
    if dry_run:
        if policy.prunes_runs:
            for service in _services():
                n = eligible_runs(service_id=service.pk, policy=policy, now=now).count()
                if n:
                    report.runs_by_service[service.slug] = n
                    report.runs += n
        report.deliveries = eligible_deliveries(policy=policy, now=now).count()
        return report

    budget = policy.max_batches
    if policy.prunes_runs:
        for service in _services():
            after = None
            while budget > 0:
                pruned = _prune_runs_batch(service=service, policy=policy, now=now, after=after)
                if pruned is None:
                    break
                batch, after = pruned
                budget -= 1
                report.batches += 1
                report.runs += batch.runs_deleted
                report.checks += batch.checks_deleted
                report.summaries += batch.summaries_touched
                report.runs_by_service[service.slug] = (
                    report.runs_by_service.get(service.slug, 0) + batch.runs_deleted
                )
            if budget == 0:
                report.more = True
                return report
    while budget > 0:
        batch = _prune_deliveries_batch(policy=policy, now=now)
        if batch is None:
            return report
        budget -= 1
        report.batches += 1
        report.deliveries += batch.deliveries_deleted
    report.more = True
    return report
