"""Deployment verification against Prometheus, and what a failed verification triggers.

Lifecycle: the beat sweep (``verify_due``) starts a VerificationRun for each deployment in
progress or succeeded whose service and environment have a VerificationSpec, then samples
each running verification every ``interval_seconds`` until ``ends_at``.

Decisions (documented in docs/workers.md):

- Prometheus returns values as strings. "NaN" and an empty result are *no data*: neither
  healthy nor a breach. "+Inf"/"-Inf" are values (a division by zero error ratio is +Inf and
  breaches "< 1%"). With several series the worst one counts (the max against < / ≤, the
  min against > / ≥).
- A query fails the verification when its last ``consecutive_breaches`` samples all
  breached. At the end of the window a query with no data at all fails it too: a
  verification that saw nothing cannot say the deployment is healthy.
- An unreachable Prometheus records a sample with an error (no data); it is not a breach.

A failed verification, in one transaction: the run is failed, the release's automated
post-deployment gates are failed (through governance's ``gate_record_result``), the
deployment is failed when its state machine allows (pending/in progress; a succeeded
deployment cannot fail, it can only be rolled back by the CD system), the environment's
rollback policy is applied (notify, or "rollback required" + a signed webhook call), people
are notified through the outbox, and every change is audited.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.db.models.functions import Coalesce
from django.utils import timezone

from core.audit import audit_record
from core.backoff import backoff_seconds
from core.models import NotificationEvent
from core.notifications import notification_enqueue, post_signed
from core.outbound import outbound_client
from governance.choices import GateKind, GateStage, GateStatus
from governance.models import GateCheck
from governance.services import gate_record_result
from releases.choices import DeploymentState
from releases.models import Deployment

from .models import (
    Comparator,
    RollbackAction,
    RollbackPolicy,
    RollbackRequest,
    VerificationQuery,
    VerificationRun,
    VerificationSample,
    VerificationSpec,
    VerificationStatus,
)
from .polling.http import FetchStats, PollError, get_json
from .queueing import enqueue_on_commit

logger = logging.getLogger(__name__)

PROMETHEUS_TIMEOUT = httpx.Timeout(5.0, connect=2.0)
ROLLBACK_WEBHOOK_LEASE = timedelta(seconds=60)
ROLLBACK_WEBHOOK_MAX_ATTEMPTS = 10
VERIFIED_STATES = (DeploymentState.IN_PROGRESS, DeploymentState.SUCCEEDED)


# --- Prometheus -------------------------------------------------------------------------------


def parse_sample_value(text: Any) -> float | None:
    """A Prometheus sample value (a string) as a float; NaN (and garbage) is None."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) else value


def instant_value(body: Any, comparator: str) -> float | None:
    """The value of an /api/v1/query answer: the worst series for this comparator."""
    if not isinstance(body, dict) or body.get("status") != "success":
        error = body.get("error") if isinstance(body, dict) else None
        raise PollError(f"Prometheus error: {error or 'unexpected response'}")
    data = body.get("data") or {}
    kind, result = data.get("resultType"), data.get("result")
    values: list[float] = []
    if kind == "scalar" and isinstance(result, list) and len(result) == 2:
        value = parse_sample_value(result[1])
        values = [] if value is None else [value]
    elif kind == "vector" and isinstance(result, list):
        for series in result:
            pair = series.get("value") if isinstance(series, dict) else None
            if isinstance(pair, list) and len(pair) == 2:
                value = parse_sample_value(pair[1])
                if value is not None:
                    values.append(value)
    else:
        raise PollError(f"Unsupported Prometheus result type {kind!r}.")
    if not values:
        return None
    return max(values) if comparator in (Comparator.LT, Comparator.LE) else min(values)


def query_prometheus(
    client: httpx.Client, base_url: str, query: VerificationQuery
) -> tuple[float | None, str]:
    """(value or None, error message) for one query; never raises."""
    try:
        body = get_json(
            client,
            f"{base_url.rstrip('/')}/api/v1/query",
            params={"query": query.promql},
            max_bytes=1024 * 1024,
            body_deadline=10.0,
            stats=FetchStats(),
        )
        return instant_value(body, query.comparator), ""
    except PollError as exc:
        return None, str(exc)[:300]


# --- starting and sampling ----------------------------------------------------------------------


def verification_start_due(*, now: datetime | None = None) -> list[VerificationRun]:
    """Start a verification for each deployment in a verified state that has a spec, no
    verification yet, and is still inside the window. The OneToOne on deployment makes a
    concurrent second sweep's insert fail, and that sweep moves on."""
    now = now or timezone.now()
    started: list[VerificationRun] = []
    for spec in VerificationSpec.objects.filter(enabled=True):
        window = timedelta(seconds=spec.window_seconds)
        deployments = (
            Deployment.objects.filter(
                service_id=spec.service_id,
                environment_id=spec.environment_id,
                state__in=VERIFIED_STATES,
                verification__isnull=True,
            )
            .annotate(anchor=Coalesce(F("finished_at"), F("started_at"), F("created_at")))
            .filter(anchor__gte=now - window)
        )
        for deployment in deployments:
            try:
                with transaction.atomic():
                    run = VerificationRun.objects.create(
                        deployment=deployment,
                        spec=spec,
                        started_at=now,
                        ends_at=now + window,
                        next_sample_at=now,
                    )
                    audit_record(
                        actor=None,
                        action="verification.start",
                        target=run,
                        release=deployment.release,
                        to_state=run.status,
                        reason=f"Verifying {deployment} for {spec.window_seconds}s against "
                        f"{spec.queries.count()} Prometheus queries.",
                    )
            except IntegrityError:
                continue
            started.append(run)
    return started


def _claim_sample(run: VerificationRun, now: datetime) -> bool:
    """Move next_sample_at forward if nobody else did: the sampler that wins samples."""
    return bool(
        VerificationRun.objects.filter(
            pk=run.pk, status=VerificationStatus.RUNNING, next_sample_at=run.next_sample_at
        ).update(next_sample_at=now + timedelta(seconds=run.spec.interval_seconds))
    )


@dataclass
class Reading:
    query: VerificationQuery
    value: float | None
    error: str


def verification_sample(
    *, run: VerificationRun | int, now: datetime | None = None, client=None
) -> str:
    """Take one sample of every query of a running verification (if due and claimed), store
    it, and decide. Returns the run's status afterwards ("skipped" if not sampled)."""
    now = now or timezone.now()
    if not isinstance(run, VerificationRun):
        run = VerificationRun.objects.select_related("spec").filter(pk=run).first()
        if run is None:
            return "skipped"
    if run.status != VerificationStatus.RUNNING or run.next_sample_at > now:
        return "skipped"
    if not _claim_sample(run, now):
        return "skipped"
    spec = run.spec
    queries = list(spec.queries.all())
    own = client is None
    client = client or outbound_client(timeout=PROMETHEUS_TIMEOUT)
    try:
        readings = [Reading(q, *query_prometheus(client, spec.prometheus_url, q)) for q in queries]
    finally:
        if own:
            client.close()
    seq = int((now - run.started_at).total_seconds() // max(1, spec.interval_seconds))
    with transaction.atomic():
        run = VerificationRun.objects.select_for_update().select_related("spec").get(pk=run.pk)
        if run.status != VerificationStatus.RUNNING:
            return run.status
        VerificationSample.objects.bulk_create(
            [
                VerificationSample(
                    run=run,
                    query=r.query,
                    seq=seq,
                    taken_at=now,
                    value=r.value,
                    breached=r.value is not None and not r.query.healthy(r.value),
                    error=r.error,
                )
                for r in readings
            ],
            ignore_conflicts=True,
        )
        failure = _breach(run, queries)
        if failure:
            verification_fail(run=run, detail=failure)
        elif now >= run.ends_at:
            missing = _without_data(run, queries)
            if missing:
                verification_fail(run=run, detail=f"No data for {', '.join(missing)}.")
            else:
                _verification_pass(run)
        return run.status


def _breach(run: VerificationRun, queries: list[VerificationQuery]) -> str:
    need = max(1, run.spec.consecutive_breaches)
    for query in queries:
        last = list(
            VerificationSample.objects.filter(run=run, query=query, value__isnull=False)
            .order_by("-seq")
            .values_list("breached", "value")[:need]
        )
        if len(last) == need and all(breached for breached, _ in last):
            return (
                f"{query.name} = {last[0][1]:g}{query.unit} breached "
                f"{query.get_comparator_display()} {query.threshold:g}{query.unit} "
                f"in {need} consecutive sample(s)."
            )
    return ""


def _without_data(run: VerificationRun, queries: list[VerificationQuery]) -> list[str]:
    with_data = set(
        VerificationSample.objects.filter(run=run, value__isnull=False).values_list(
            "query_id", flat=True
        )
    )
    return [q.name for q in queries if q.pk not in with_data]


def verify_due(*, now: datetime | None = None) -> int:
    """The beat sweep: start new verifications, then sample those due. Returns samples taken."""
    now = now or timezone.now()
    verification_start_due(now=now)
    taken = 0
    due = VerificationRun.objects.select_related("spec").filter(
        status=VerificationStatus.RUNNING, next_sample_at__lte=now
    )
    with outbound_client(timeout=PROMETHEUS_TIMEOUT) as client:
        for run in due:
            taken += verification_sample(run=run, now=now, client=client) != "skipped"
    return taken


# --- outcomes -----------------------------------------------------------------------------------


def _verification_pass(run: VerificationRun) -> None:
    run.status = VerificationStatus.PASSED
    run.finished_at = timezone.now()
    run.detail = "All queries held their thresholds for the window."
    run.save(update_fields=["status", "finished_at", "detail"])
    audit_record(
        actor=None,
        action="verification.pass",
        target=run,
        release=run.deployment.release,
        from_state=VerificationStatus.RUNNING,
        to_state=run.status,
        reason=run.detail,
    )
    _record_gates(run, passed=True)


def verification_fail(*, run: VerificationRun, detail: str) -> VerificationRun:
    """Fail a running verification and apply its consequences, in the caller's transaction
    with the run locked (see the module docstring for the order and the reasons)."""
    run.status = VerificationStatus.FAILED
    run.finished_at = timezone.now()
    run.detail = detail[:500]
    run.save(update_fields=["status", "finished_at", "detail"])
    deployment = (
        Deployment.objects.select_for_update(of=("self",))
        .select_related("release", "service__team")
        .get(pk=run.deployment_id)
    )
    release = deployment.release
    audit_record(
        actor=None,
        action="verification.fail",
        target=run,
        release=release,
        from_state=VerificationStatus.RUNNING,
        to_state=run.status,
        reason=run.detail,
    )
    _record_gates(run, passed=False)
    deployment_failed = deployment_fail_for_verification(deployment=deployment, run=run)
    _apply_rollback_policy(deployment=deployment, run=run)
    recipients = _people_for(deployment)
    link = release.get_absolute_url() if release else ""
    notification_enqueue(
        event=NotificationEvent.VERIFICATION_FAILED,
        recipients=recipients,
        subject=f"Verification failed: {deployment}",
        body=run.detail,
        link=link,
        idempotency_key=f"verification_failed:{run.pk}",
    )
    if deployment_failed:
        notification_enqueue(
            event=NotificationEvent.DEPLOYMENT_FAILED,
            recipients=recipients,
            subject=f"Deployment failed: {deployment}",
            body=f"Marked failed by its verification: {run.detail}",
            link=link,
            idempotency_key=f"deployment_failed:{deployment.pk}",
        )
    return run


def deployment_fail_for_verification(*, deployment: Deployment, run: VerificationRun) -> bool:
    """pending | in progress → failed, audited; False (and no change) for a deployment that
    already succeeded: the FSM only lets the CD system roll it back, so the rollback policy
    marks the release "rollback required" instead. The deployment is locked by the caller."""
    if deployment.state not in (DeploymentState.PENDING, DeploymentState.IN_PROGRESS):
        return False
    from_state = deployment.state
    deployment.fail()
    deployment.save()
    audit_record(
        actor=None,
        action="deployment.fail",
        target=deployment,
        release=deployment.release,
        from_state=from_state,
        to_state=deployment.state,
        reason=f"Verification failed: {run.detail}",
    )
    return True


def post_deployment_gates(release):
    """SEAM: the automated gates a verification decides — the release's post-deployment
    gates that are not manual sign-offs. Governance may narrow this to a dedicated
    "deployment verified" gate kind; this is the one place to change."""

    if release is None:
        return GateCheck.objects.none()
    return GateCheck.objects.filter(release=release, stage=GateStage.POST_DEPLOYMENT).exclude(
        kind=GateKind.MANUAL
    )


def _record_gates(run: VerificationRun, *, passed: bool) -> None:

    status = GateStatus.PASSED if passed else GateStatus.FAILED
    detail = f"Deployment verification {'passed' if passed else 'failed'}: {run.detail}"
    for gate in post_deployment_gates(run.deployment.release):
        gate_record_result(gate=gate, status=status, actor=None, detail=detail)


def _people_for(deployment: Deployment) -> list:
    """Who hears about a failed deployment: the release owner and the service's team."""
    people = list(deployment.service.team.members.all())
    release = deployment.release
    if release is not None and release.owner_id:
        people.insert(0, release.owner)
    return people


def _apply_rollback_policy(*, deployment: Deployment, run: VerificationRun) -> None:
    policy = RollbackPolicy.objects.filter(environment_id=deployment.environment_id).first()
    if policy is None or policy.action == RollbackAction.NOTIFY:
        return
    request, created = RollbackRequest.objects.get_or_create(
        deployment=deployment,
        defaults={
            "release": deployment.release,
            "verification": run,
            "reason": f"Verification failed: {run.detail}"[:500],
            "webhook_url": policy.webhook_url,
            "webhook_next_attempt_at": timezone.now() if policy.webhook_url else None,
        },
    )
    if not created:
        return
    audit_record(
        actor=None,
        action="release.rollback_required",
        target=request,
        release=deployment.release,
        to_state="rollback_required",
        reason=request.reason,
        after={"deployment": deployment.pk, "webhook": bool(policy.webhook_url)},
    )
    if policy.webhook_url:
        enqueue_on_commit("pipelines.call_rollback_webhook", request.pk)


# --- rollback webhook -----------------------------------------------------------------------------


def _rollback_secret(request: RollbackRequest) -> str:
    policy = RollbackPolicy.objects.filter(environment_id=request.deployment.environment_id).first()
    name = policy.webhook_secret_env if policy else ""
    return (
        (os.environ.get(name) if name else None)
        or os.environ.get("ROLLBACK_WEBHOOK_SECRET")
        or getattr(settings, "ROLLBACK_WEBHOOK_SECRET", settings.SECRET_KEY)
    )


def call_rollback_webhook(rollback_request_id: int) -> str:
    """POST the signed rollback request to the environment's webhook (claimed by conditional
    update, so two workers never call it concurrently; at least once, with the request id as
    idempotency key). 2xx ends it; otherwise retried with backoff up to a limit."""
    now = timezone.now()
    request = (
        RollbackRequest.objects.select_related("deployment__service", "deployment__environment")
        .filter(pk=rollback_request_id)
        .first()
    )
    if request is None or request.webhook_next_attempt_at is None:
        return "skipped"
    if request.webhook_next_attempt_at > now:
        return "skipped"
    won = RollbackRequest.objects.filter(
        pk=request.pk, webhook_next_attempt_at=request.webhook_next_attempt_at
    ).update(webhook_next_attempt_at=now + ROLLBACK_WEBHOOK_LEASE)
    if not won:
        return "skipped"
    deployment = request.deployment
    payload = {
        "rollback_request": request.pk,
        "service": deployment.service.slug,
        "environment": deployment.environment.slug,
        "version": deployment.version,
        "deployment": {"provider": deployment.provider, "external_id": deployment.external_id},
        "reason": request.reason,
    }
    outcome = post_signed(
        request.webhook_url, payload, secret=_rollback_secret(request), key=f"rollback:{request.pk}"
    )
    attempts = request.webhook_attempts + 1
    with transaction.atomic():
        request = RollbackRequest.objects.select_for_update().get(pk=request.pk)
        request.webhook_attempts = attempts
        if outcome.ok:
            request.webhook_status = "delivered"
            request.webhook_next_attempt_at = None
        elif attempts >= ROLLBACK_WEBHOOK_MAX_ATTEMPTS:
            request.webhook_status = "gave up"
            request.webhook_next_attempt_at = None
        elif outcome.permanent:  # a refused (private) address: calling again cannot help
            request.webhook_status = "refused"
            request.webhook_next_attempt_at = None
        else:
            request.webhook_status = (outcome.error or "failed")[:20]
            request.webhook_next_attempt_at = now + timedelta(
                seconds=backoff_seconds(attempts, base=10)
            )
        request.save()
        if request.webhook_next_attempt_at is None:
            audit_record(
                actor=None,
                action="rollback.webhook",
                target=request,
                release=request.release,
                to_state=request.webhook_status,
                reason=f"Rollback webhook {request.webhook_status} after {attempts} attempt(s)"
                + (f": {outcome.error}" if outcome.error else "."),
            )
    return request.webhook_status


def call_due_rollback_webhooks() -> int:
    due = RollbackRequest.objects.filter(webhook_next_attempt_at__lte=timezone.now()).values_list(
        "id", flat=True
    )
    return sum(call_rollback_webhook(pk) == "delivered" for pk in list(due[:100]))


# --- chart --------------------------------------------------------------------------------------


def chart(run: VerificationRun, *, width: int = 320, height: int = 90) -> list[dict]:
    """Per query: SVG polyline points of the samples, the threshold line's y, and labels.
    Scaled so the threshold is always visible; no-data samples leave a gap."""
    charts = []
    samples = list(run.samples.all())
    for query in run.spec.queries.all():
        mine = [s for s in samples if s.query_id == query.pk]
        finite = [s.value for s in mine if s.value is not None and math.isfinite(s.value)]
        top = max([query.threshold, *finite]) * 1.2 or 1.0
        bottom = min([0.0, *finite])
        span = (top - bottom) or 1.0
        last_seq = max([s.seq for s in mine], default=0) or 1

        def y(v: float, bottom=bottom, span=span) -> float:
            return round(height - (v - bottom) / span * height, 1)

        points = []
        for s in mine:
            if s.value is None:
                continue
            value = s.value if math.isfinite(s.value) else top
            points.append(
                {
                    "x": round(s.seq / last_seq * width, 1),
                    "y": y(value),
                    "breached": s.breached,
                    "value": s.value,
                }
            )
        charts.append(
            {
                "query": query,
                "points": points,
                "polyline": " ".join(f"{p['x']},{p['y']}" for p in points),
                "threshold_y": y(query.threshold),
                "width": width,
                "height": height,
                "latest": next((s.value for s in reversed(mine) if s.value is not None), None),
                "breaches": sum(s.breached for s in mine),
                "no_data": sum(s.value is None for s in mine),
            }
        )
    return charts
