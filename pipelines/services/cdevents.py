"""CDEvents received (``POST /api/v1/webhooks/cdevents/``): one verified delivery mapped onto
the same services as the REST endpoints and the other webhooks.

- ``pipelinerun.finished``: a pipeline run (``webhook_run_receive``, the run upsert);
- ``service.deployed``, ``service.upgraded``: a succeeded deployment
  (``deployment_report_upsert``, which moves a production release as the REST report does);
- ``service.rolledback``: the environment's latest succeeded deployment of another version
  (the event names the version rolled back *to*) is rolled back;
- ``incident.detected``, ``incident.resolved``: an incident opened or resolved
  (``alerts_receive``, the Alertmanager path).

Idempotency: the delivery is keyed by the CloudEvent's source, id and type (a
``WebhookDelivery`` row written first in the transaction), so a redelivery is processed once.
The type is part of the key because the spec's own examples give ``incident.detected`` and
``incident.resolved`` the same source and id; a redelivery always repeats all three.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from django.db import IntegrityError, transaction

from core.errors import InvalidInput
from releases.choices import DeploymentState
from releases.models import Deployment, Environment, Service

from ..adapters import cdevents as ce
from ..adapters.types import AlertEvent, Ignored, RunEvent
from ..authentication import IntegrationPrincipal
from ..cdevents import source as emitted_source
from ..models import Artefact, ArtefactTag, Integration, WebhookDelivery
from ..reports import DeploymentReport
from .deployments import DeploymentResult, deployment_report_upsert
from .incidents import alerts_receive
from .integrations import service_for_repository, webhook_run_receive

PROVIDER = "cdevents"


@dataclass
class CDEventResult:
    """What a delivery did. ``recorded`` is False when nothing was written (the answer is a
    202 naming why, in ``ignored``)."""

    recorded: bool
    detail: str
    duplicate: bool = False
    run: int | None = None
    deployment: DeploymentResult | None = None
    report: DeploymentReport | None = None
    environment: Environment | None = None
    incidents_opened: int = 0
    incidents_resolved: int = 0
    ignored: list[Ignored] = field(default_factory=list)


class _NothingRecorded(Exception):
    """Rolls the delivery row back: an event that changed nothing is not remembered, so a
    redelivery gets the same answer (and is processed once the facts it needs exist)."""

    def __init__(self, reason: str, where: str = "subject"):
        super().__init__(reason)
        self.reason, self.where = reason, where


def delivery_key(event: ce.CloudEvent) -> str:
    raw = "\n".join((event.source, event.id, event.type))
    return "ce:" + hashlib.sha256(raw.encode()).hexdigest()


def external_id(source: str, ident: str) -> str:
    """A stable id for what a CDEvents producer names ``ident`` (ids are unique per source)."""
    value = f"{source}#{ident}"
    return value if len(value) <= 200 else "sha256:" + hashlib.sha256(value.encode()).hexdigest()


def cdevent_receive(*, integration: Integration, event: ce.CloudEvent) -> CDEventResult:
    """Record one verified CDEvent. Permissions: the integration reports for its services only.
    Raises ``InvalidInput`` (400) when the event names no service, environment or version of
    ours; an event that maps onto nothing recorded yet is answered with ``recorded=False``."""
    if event.source == emitted_source():
        # Our own event coming back (a subscriber that is also a bus forwarding to us): it
        # announces a fact recorded here already, and recording it again would duplicate it.
        why_not = f"Emitted by this Releasegate (source {event.source}): already recorded."
        return CDEventResult(
            False, f"Ignored: {why_not}", ignored=[Ignored("context.source", why_not)]
        )
    name, why_not = ce.mapped_type(event.type)
    if why_not:
        return CDEventResult(False, f"Ignored: {why_not}", ignored=[Ignored("type", why_not)])
    ignored = _unmapped(event)
    if name == ce.PIPELINERUN_FINISHED:
        return _pipelinerun_finished(integration, event, ignored)
    try:
        with transaction.atomic():
            try:
                with transaction.atomic():
                    WebhookDelivery.objects.create(
                        provider=PROVIDER,
                        delivery_id=delivery_key(event),
                        integration=integration,
                        event=event.type[:50],
                    )
            except IntegrityError:
                return CDEventResult(True, "Duplicate delivery: already processed.", duplicate=True)
            if name in (ce.SERVICE_DEPLOYED, ce.SERVICE_UPGRADED, ce.SERVICE_ROLLEDBACK):
                result = _service_event(integration, event, name)
            else:
                result = _incident_event(integration, event, name)
            if result.deployment is not None and result.deployment.refusal is not None:
                # Governance refused to move the release: the deployment is recorded, the
                # answer is a 409 like the REST endpoint's, and the delivery is not
                # remembered, so a redelivery is answered 409 again (without writing again).
                WebhookDelivery.objects.filter(
                    provider=PROVIDER, delivery_id=delivery_key(event)
                ).delete()
    except _NothingRecorded as nothing:
        return CDEventResult(
            False,
            f"Ignored: {nothing.reason}",
            ignored=[Ignored(nothing.where, nothing.reason), *ignored],
        )
    result.ignored = [*result.ignored, *ignored]
    return result


def _unmapped(event: ce.CloudEvent) -> list[Ignored]:
    """What the event carries that no record keeps (docs/ingestion.md: nothing acknowledged
    is lost silently)."""
    out = []
    if event.event.get("customData") is not None:
        out.append(Ignored("customData", "Custom data is not stored."))
    if event.event["context"].get("links"):
        out.append(Ignored("context.links", "Links between events are not stored."))
    if event.type.startswith(ce.PIPELINERUN_FINISHED) and event.content.get("errors"):
        out.append(
            Ignored("subject.content.errors", "The run keeps its outcome, not the error text.")
        )
    if event.type.startswith(("dev.cdevents.incident.",)) and event.content.get("artifactId"):
        out.append(
            Ignored(
                "subject.content.artifactId",
                "The incident is opened on the latest deployment to the environment.",
            )
        )
    return out


def _principal(integration: Integration) -> IntegrationPrincipal:
    return IntegrationPrincipal(
        integration, frozenset(integration.services.values_list("id", flat=True))
    )


def _service(integration: Integration, *names: str, where: str = "subject.id") -> Service:
    """The integration's service that ``names`` designate (its only service, else by
    repository URL or slug, as for the other webhooks)."""
    first: InvalidInput | None = None
    for name in [n for n in names if n] or [""]:
        try:
            return service_for_repository(integration, name)
        except InvalidInput as exc:
            first = first or exc
    raise InvalidInput(
        f"{' / '.join(repr(n) for n in names if n)} names no service of integration "
        f"{integration.name!r}: use the service's slug or set its repository URL.",
        details={where: ["Not mapped to a service of this integration."]},
    ) from first


def _environment(slug: str, where: str) -> Environment:
    environment = (
        Environment.objects.filter(slug=slug).first()
        or Environment.objects.filter(name__iexact=slug).first()
    )
    if environment is None:
        raise InvalidInput(
            f"Environment {slug!r} is not an environment of Releasegate (by slug or name).",
            details={where: [f"Unknown environment {slug!r}."]},
        )
    return environment


def _version(service: Service, purl: ce.Purl, where: str) -> str:
    """The version a purl names: its ``tag`` qualifier, else its version unless that is a
    digest, else the version the digest was first reported under (an artefact of a run)."""
    version = purl.tag or ("" if purl.digest else purl.version)
    if version:
        if len(version) > 64:
            raise InvalidInput(
                "The artefact's version is over 64 characters.",
                details={where: ["The version must be at most 64 characters."]},
            )
        return version
    if purl.digest:
        artefact = (
            Artefact.objects.filter(service=service, digest=purl.digest).order_by("id").first()
        )
        if artefact is not None:
            return artefact.version
        tag = ArtefactTag.objects.filter(service=service, artefact__digest=purl.digest).first()
        if tag is not None:
            return tag.version
        raise InvalidInput(
            f"No artefact of {service.slug} has the digest {purl.digest}: report the build's "
            "artefacts (POST /api/v1/pipeline-runs/) first, or name the version in the purl.",
            details={where: [f"Unknown digest {purl.digest}."]},
        )
    raise InvalidInput(
        "The artefact names no version.",
        details={where: ["A purl with a version (pkg:type/name@version) is required."]},
    )


def _pipelinerun_finished(integration, event: ce.CloudEvent, ignored) -> CDEventResult:
    run = ce.parse_pipelinerun_finished(event)
    service = _service(integration, run.pipeline_name, event.subject_id)
    result = webhook_run_receive(
        integration=integration,
        delivery_id=delivery_key(event),
        event_name=event.type,
        event=RunEvent(
            provider=PROVIDER,
            external_id=external_id(event.subject_source, event.subject_id),
            attempt=1,
            status=run.status,  # type: ignore[arg-type]
            commit_sha="",
            ref="",
            # The service is already chosen; the upsert maps it again by this name.
            repository=service.slug,
            version="",
            url=run.url,
            started_at=None,
            finished_at=event.timestamp,
            name=run.pipeline_name or event.subject_id,
            waiting_approval=False,
            raw_status=f"finished/{run.outcome or 'unknown'}",
        ),
    )
    if result.duplicate:
        return CDEventResult(True, "Duplicate delivery: already processed.", duplicate=True)
    return CDEventResult(
        True,
        "Run recorded." if result.changed else "Run unchanged.",
        run=result.run.pk,
        ignored=[*result.ignored, *ignored],
    )


def _service_event(integration, event: ce.CloudEvent, name: str) -> CDEventResult:
    parsed = ce.parse_service_event(event)
    service = _service(integration, event.subject_id, parsed.artifact.name)
    environment = _environment(parsed.environment, "subject.content.environment.id")
    version = _version(service, parsed.artifact, "subject.content.artifactId")
    if name == ce.SERVICE_ROLLEDBACK:
        # The event names the version the service was rolled back *to*: what is rolled back
        # is the latest succeeded deployment of another version there.
        deployment = (
            Deployment.objects.filter(
                service=service, environment=environment, state=DeploymentState.SUCCEEDED
            )
            .exclude(version=version)
            # Only a deployment a CD system reported under an id can be reported again.
            .exclude(external_id="")
            .order_by("-finished_at", "-started_at", "-id")
            .first()
        )
        if deployment is None:
            raise _NothingRecorded(
                f"No succeeded deployment of {service.slug} to {environment.slug} other than "
                f"{version} is recorded: nothing to roll back."
            )
        report = DeploymentReport(
            service=service.slug,
            environment=environment.slug,
            version=deployment.version,
            status="rolled_back",
            provider=deployment.provider,
            external_id=deployment.external_id,
            finished_at=event.timestamp,
        )
    else:
        report = DeploymentReport(
            service=service.slug,
            environment=environment.slug,
            version=version,
            status="succeeded",
            provider=PROVIDER,
            external_id=external_id(event.source, event.id),
            started_at=event.timestamp,
            finished_at=event.timestamp,
        )
    result = deployment_report_upsert(
        actor=_principal(integration), service=service, environment=environment, report=report
    )
    verb = {"succeeded": "recorded", "rolled_back": "rolled back"}[report.status]
    return CDEventResult(
        True,
        f"Deployment {verb}." if result.changed else "Deployment unchanged.",
        deployment=result,
        report=report,
        environment=environment,
    )


def _incident_event(integration, event: ce.CloudEvent, name: str) -> CDEventResult:
    parsed = ce.parse_incident(event)
    if parsed.service:
        service = _service(integration, parsed.service, where="subject.content.service.id")
    else:
        service = _service(integration, "", where="subject.content.service.id")
    environment = _environment(parsed.environment, "subject.content.environment.id")
    detected = name == ce.INCIDENT_DETECTED
    fingerprint = hashlib.sha256(
        f"{event.subject_source}\n{event.subject_id}".encode()
    ).hexdigest()[:32]
    alert = AlertEvent(
        fingerprint=fingerprint,
        status="firing" if detected else "resolved",
        alertname=event.subject_id,
        labels={},
        annotations={"summary": parsed.description} if parsed.description else {},
        starts_at=event.timestamp if detected else None,
        ends_at=None if detected else event.timestamp,
        generator_url="",
        service=service.slug,
        environment=environment.slug,
    )
    outcome = alerts_receive(integration=integration, alerts=[alert])
    if not (outcome.opened or outcome.resolved):
        reason = outcome.ignored[0].reason if outcome.ignored else "Nothing to record."
        raise _NothingRecorded(reason)
    return CDEventResult(
        True,
        "Incident opened." if detected else "Incident resolved.",
        incidents_opened=outcome.opened,
        incidents_resolved=outcome.resolved,
        ignored=[
            Ignored(i.field.replace("alerts[0]", "subject"), i.reason) for i in outcome.ignored
        ],
    )
