"""CDEvents out: what Releasegate tells CDEvents consumers, through its signed webhook outbox.

- a deployment succeeded (any environment): ``dev.cdevents.service.deployed.0.3.0``;
- a deployment rolled back: ``dev.cdevents.service.rolledback.0.3.0``;
- an incident opened / resolved: ``dev.cdevents.incident.detected.0.3.0`` /
  ``dev.cdevents.incident.resolved.0.3.0``;
- a release asks for approval, is approved, is sent back, loses its approval:
  ``dev.cdeventsx.releasegate-approval.{requested,granted,rejected,withdrawn}.0.1.0``;
- a freeze window starts / ends: ``dev.cdeventsx.releasegate-freeze.{started,ended}.0.1.0``.

Producers call ``emit`` inside the transaction of the fact: one ``CDEventDelivery`` row per
subscription that wants the type, unique on (subscription, occurrence key), so producing twice
emits once. The event id is derived from the key (UUID 5): a row delivered twice (at least
once) carries the same id, which is what CDEvents consumers deduplicate on.

``context.chainId`` links the events of one release: its approval, its deployments and the
incidents on them share the release's chain (a deployment of no release has its own, which
its incidents share).

Delivery (after commit, and by the beat sweep for anything whose enqueue was lost) is
CloudEvents HTTP binary mode: ``ce-*`` headers, the CDEvent as the JSON body, signed like every
outbound webhook (``core.notifications.post_signed``: ``X-Releasegate-Signature``,
``X-Releasegate-Timestamp``, ``X-Releasegate-Idempotency-Key``, through the outbound guard).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from core.backoff import backoff_seconds
from core.notifications import post_signed
from governance.domain.freeze import occurrences
from governance.selectors import active_freeze_rules
from releases.models import Deployment, Release

from .models import (
    ArtefactTag,
    CDEventDelivery,
    CDEventDeliveryStatus,
    CDEventSubscription,
    Incident,
)
from .queueing import enqueue_on_commit

SPEC_VERSION = "0.5.1"
SERVICE_DEPLOYED = "dev.cdevents.service.deployed.0.3.0"
SERVICE_ROLLEDBACK = "dev.cdevents.service.rolledback.0.3.0"
INCIDENT_DETECTED = "dev.cdevents.incident.detected.0.3.0"
INCIDENT_RESOLVED = "dev.cdevents.incident.resolved.0.3.0"
APPROVAL = "dev.cdeventsx.releasegate-approval.{}.0.1.0"
FREEZE = "dev.cdeventsx.releasegate-freeze.{}.0.1.0"
# Release transitions that are approval events, by their predicate.
APPROVAL_TRANSITIONS = {
    "request_approval": "requested",
    "approve": "granted",
    "request_changes": "rejected",
    "reopen": "withdrawn",
}
MAX_ATTEMPTS = 8
LEASE = timedelta(seconds=120)
# How far back the freeze sweep looks for starts and ends it has not announced: a beat that
# was down for a while still announces them, a freeze of last month is not news.
FREEZE_LOOKBACK = timedelta(hours=1)


def source() -> str:
    """``context.source`` of every event: this Releasegate (a URI reference)."""
    return getattr(settings, "SITE_URL", "").rstrip("/") or "/releasegate"


def _uuid(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{source()}/{name}"))


def release_chain(release_id: int) -> str:
    return _uuid(f"releases/{release_id}")


def deployment_chain(deployment: Deployment) -> str:
    if deployment.release_id:
        return release_chain(deployment.release_id)
    return _uuid(f"deployments/{deployment.pk}")


def _timestamp(moment: datetime | None = None) -> str:
    moment = (moment or timezone.now()).astimezone(UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def build(
    *,
    key: str,
    event_type: str,
    subject_id: str,
    content: dict,
    chain_id: str | None = None,
    at: datetime | None = None,
) -> dict:
    """One CDEvent (its JSON form), with an id derived from the occurrence ``key``."""
    context = {
        "specversion": SPEC_VERSION,
        "id": _uuid(f"cdevents/{key}"),
        "source": source(),
        "type": event_type,
        "timestamp": _timestamp(at),
    }
    if chain_id:
        context["chainId"] = chain_id
    return {
        "context": context,
        "subject": {"id": subject_id, "source": source(), "content": content},
    }


def emit(event: dict, *, key: str) -> list[CDEventDelivery]:
    """Write the event to the outbox of every enabled subscription that wants its type, in
    the caller's transaction; each new row is delivered after commit. Returns the rows
    created now (a key already emitted to a subscription is not written again)."""
    event_type = event["context"]["type"]
    created = []
    for subscription in CDEventSubscription.objects.filter(enabled=True):
        if not subscription.wants(event_type):
            continue
        row = CDEventDelivery(
            subscription=subscription,
            key=key[:200],
            event_id=event["context"]["id"],
            event_type=event_type,
            payload=event,
        )
        try:
            with transaction.atomic():  # a savepoint: a duplicate leaves the caller's work
                row.save()
        except IntegrityError:
            continue
        created.append(row)
        enqueue_on_commit("pipelines.deliver_cdevent", row.pk)
    return created


# --- the events ----------------------------------------------------------------------------------


def artifact_id(service_id: int, service_slug: str, version: str) -> str:
    """The deployed artefact as a package URL: ``pkg:generic/<service>@<version>``, with the
    digest the build reported for that version as its ``checksum`` when there is one."""
    purl = f"pkg:generic/{quote(service_slug, safe='')}@{quote(version, safe='')}"
    tag = (
        ArtefactTag.objects.filter(service_id=service_id, version=version)
        .select_related("artefact")
        .order_by("id")
        .first()
    )
    if tag is not None:
        purl += f"?checksum={quote(tag.artefact.digest, safe=':')}"
    return purl


def deployment_changed(deployment: Deployment) -> None:
    """A deployment reached succeeded (``service.deployed``) or rolled back
    (``service.rolledback``, naming the version the environment went back to: the previous
    succeeded deployment's there, when there is one)."""
    state = deployment.state
    if state not in ("succeeded", "rolled_back"):
        return
    if not CDEventSubscription.objects.filter(enabled=True).exists():
        return
    if state == "succeeded":
        event_type, version = SERVICE_DEPLOYED, deployment.version
    else:
        event_type = SERVICE_ROLLEDBACK
        previous = (
            Deployment.objects.filter(
                service_id=deployment.service_id,
                environment_id=deployment.environment_id,
                state="succeeded",
            )
            .exclude(pk=deployment.pk)
            .exclude(version=deployment.version)
            .order_by("-finished_at", "-id")
            .values_list("version", flat=True)
            .first()
        )
        version = previous or deployment.version
    service, environment = deployment.service, deployment.environment
    key = f"deployment:{deployment.pk}:{state}"
    emit(
        build(
            key=key,
            event_type=event_type,
            subject_id=service.slug,
            content={
                "environment": {"id": environment.slug, "source": source()},
                "artifactId": artifact_id(service.pk, service.slug, version),
            },
            chain_id=deployment_chain(deployment),
            at=deployment.finished_at,
        ),
        key=key,
    )


def incident_changed(incident: Incident) -> None:
    """An incident opened (``incident.detected``) or resolved (``incident.resolved``)."""
    if not CDEventSubscription.objects.filter(enabled=True).exists():
        return
    deployment = incident.deployment
    resolved = incident.status == "resolved"
    key = f"incident:{incident.pk}:{incident.status}"
    emit(
        build(
            key=key,
            event_type=INCIDENT_RESOLVED if resolved else INCIDENT_DETECTED,
            subject_id=f"incident/{incident.pk}",
            content={
                "description": incident.summary or incident.alertname or incident.fingerprint,
                "environment": {"id": deployment.environment.slug, "source": source()},
                "service": {"id": incident.service.slug, "source": source()},
                "artifactId": artifact_id(
                    incident.service_id, incident.service.slug, deployment.version
                ),
            },
            chain_id=deployment_chain(deployment),
            at=incident.resolved_at if resolved else incident.started_at,
        ),
        key=key,
    )


def release_transitioned(*, release: Release, actor, name: str, from_state: str) -> None:
    """A release transition listener (``releases.readiness``): approval events."""
    predicate = APPROVAL_TRANSITIONS.get(name)
    if predicate is None or not CDEventSubscription.objects.filter(enabled=True).exists():
        return
    # One occurrence per transition: the release's audit trail numbers them.
    stamp = f"{timezone.now():%Y%m%dT%H%M%S.%f}"
    key = f"approval:{release.pk}:{predicate}:{stamp}"
    site = getattr(settings, "SITE_URL", "").rstrip("/")
    emit(
        build(
            key=key,
            event_type=APPROVAL.format(predicate),
            subject_id=f"release/{release.pk}",
            content={
                "release": {
                    "id": release.pk,
                    "name": release.name,
                    "version": release.version,
                    "url": site + release.get_absolute_url(),
                },
                "services": sorted(release.services.values_list("slug", flat=True)),
                "state": release.state,
                "previousState": from_state,
                "actor": str(actor) if actor is not None else "system",
            },
            chain_id=release_chain(release.pk),
        ),
        key=key,
    )


def freezes_sweep(*, now: datetime | None = None) -> int:
    """Announce freeze windows that started or ended since ``FREEZE_LOOKBACK`` (once per
    occurrence and subscription). Returns the rows written."""
    if not CDEventSubscription.objects.filter(enabled=True).exists():
        return 0
    now = now or timezone.now()
    since = now - FREEZE_LOOKBACK
    written = 0
    for window, rule, _service_ids, covers_production in active_freeze_rules():
        for start, end in occurrences(rule, since, now + timedelta(seconds=1)):
            for predicate, moment in (("started", start), ("ended", end)):
                if not since <= moment <= now:
                    continue
                key = f"freeze:{window.pk}:{start:%Y%m%dT%H%M%SZ}:{predicate}"
                content = {
                    "name": window.name,
                    "reason": window.reason,
                    "start": _timestamp(start),
                    "end": _timestamp(end),
                    "services": sorted(s.slug for s in window.services.all()),
                    "environments": sorted(e.slug for e in window.environments.all()),
                    "coversProduction": covers_production,
                }
                with transaction.atomic():
                    written += len(
                        emit(
                            build(
                                key=key,
                                event_type=FREEZE.format(predicate),
                                subject_id=f"freeze/{window.pk}/{start:%Y%m%dT%H%M%SZ}",
                                content=content,
                                at=moment,
                            ),
                            key=key,
                        )
                    )
    return written


# --- delivery ------------------------------------------------------------------------------------


def _headers(event: dict) -> dict[str, str]:
    """The CloudEvents binary-mode attributes of a CDEvent (the CDEvents binding)."""
    context = event["context"]
    return {
        "ce-specversion": "1.0",
        "ce-id": context["id"],
        "ce-source": context["source"],
        "ce-type": context["type"],
        "ce-time": context["timestamp"],
        "ce-subject": event["subject"]["id"],
    }


def _claim(pk: int) -> CDEventDelivery | None:
    """pending (due) or sending with an expired lease → sending, leased; None if we lost."""
    now = timezone.now()
    row = CDEventDelivery.objects.filter(pk=pk).select_related("subscription").first()
    if row is None or row.status in (CDEventDeliveryStatus.DELIVERED, CDEventDeliveryStatus.DEAD):
        return None
    if row.next_attempt_at > now:
        return None
    won = CDEventDelivery.objects.filter(
        pk=pk, status=row.status, next_attempt_at=row.next_attempt_at, attempts=row.attempts
    ).update(
        status=CDEventDeliveryStatus.SENDING,
        attempts=row.attempts + 1,
        next_attempt_at=now + LEASE,
    )
    if not won:
        return None
    row.refresh_from_db()
    return row


def deliver(delivery_id: int) -> str:
    """Send one outbox row if it is due and we win the claim ("delivered", "retry", "dead",
    "skipped"). A delivered row is never sent again; a row another worker holds is left."""
    row = _claim(delivery_id)
    if row is None:
        return "skipped"
    subscription = row.subscription
    if not subscription.enabled:
        outcome_ok, code, error, permanent = False, None, "The subscription is disabled.", True
    else:
        outcome = post_signed(
            subscription.url,
            row.payload,
            secret=subscription.secret,
            key=f"cdevent:{row.event_id}",
            headers=_headers(row.payload),
        )
        outcome_ok, code = outcome.ok, outcome.status_code
        error, permanent = outcome.error, outcome.permanent
    now = timezone.now()
    claimed = CDEventDelivery.objects.filter(pk=row.pk, status=CDEventDeliveryStatus.SENDING)
    if outcome_ok:
        claimed.update(
            status=CDEventDeliveryStatus.DELIVERED,
            delivered_at=now,
            last_error="",
            last_status_code=code,
        )
        return "delivered"
    if row.attempts >= MAX_ATTEMPTS or permanent:
        claimed.update(status=CDEventDeliveryStatus.DEAD, last_error=error, last_status_code=code)
        return "dead"
    claimed.update(
        status=CDEventDeliveryStatus.PENDING,
        last_error=error,
        last_status_code=code,
        next_attempt_at=now + timedelta(seconds=backoff_seconds(row.attempts, base=10)),
    )
    return "retry"


def deliver_due(limit: int = 200) -> int:
    """The beat sweep: rows due (pending, or sending with an expired lease: a worker died)."""
    due = CDEventDelivery.objects.filter(
        status__in=[CDEventDeliveryStatus.PENDING, CDEventDeliveryStatus.SENDING],
        next_attempt_at__lte=timezone.now(),
    ).order_by("next_attempt_at")
    return sum(deliver(pk) == "delivered" for pk in list(due.values_list("id", flat=True)[:limit]))
