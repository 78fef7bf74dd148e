"""Deployments reported by CD systems, and the release moving along with its
production deployment (through the release services)."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone
from django_fsm import ConcurrentTransition

from core.audit import audit_record
from core.errors import Conflict, DomainError, RequirementsNotMet, TransitionNotAllowed
from releases import services as release_services
from releases.choices import DeploymentState, DeploymentStrategy, ReleaseState
from releases.models import Deployment, Environment, Release, Service
from releases.readiness import blockers_text

from .. import cdevents
from ..authentication import DeploymentReporter
from ..models import (
    TokenScope,
)
from ..reports import DeploymentReport
from ._common import audit_actor, authorise_report, on_commit_enqueue, service_id_of, via
from .checks import environment_freeze_blockers

# --- deployments reported by CD systems -------------------------------------------------------

_DEPLOYMENT_RANK = {
    DeploymentState.PENDING: 0,
    DeploymentState.IN_PROGRESS: 1,
    DeploymentState.SUCCEEDED: 2,
    DeploymentState.FAILED: 2,
    DeploymentState.ROLLED_BACK: 3,
}
# Transition methods that lead from a state to a reported one (django-fsm guards each step).
_DEPLOYMENT_PATHS = {
    (DeploymentState.PENDING, DeploymentState.IN_PROGRESS): ("start",),
    (DeploymentState.PENDING, DeploymentState.SUCCEEDED): ("succeed",),
    (DeploymentState.PENDING, DeploymentState.FAILED): ("fail",),
    (DeploymentState.PENDING, DeploymentState.ROLLED_BACK): ("succeed", "roll_back"),
    (DeploymentState.IN_PROGRESS, DeploymentState.SUCCEEDED): ("succeed",),
    (DeploymentState.IN_PROGRESS, DeploymentState.FAILED): ("fail",),
    (DeploymentState.IN_PROGRESS, DeploymentState.ROLLED_BACK): ("succeed", "roll_back"),
    (DeploymentState.SUCCEEDED, DeploymentState.ROLLED_BACK): ("roll_back",),
}


@dataclass
class DeploymentResult:
    """What ``deployment_report_upsert`` did, and what governance refused, if anything."""

    deployment: Deployment
    created: bool
    changed: bool
    refusal: DomainError | None = None


def _release_for(service_id: int, version: str) -> Release | None:
    """The release that carries this version of the service: the newest one that is not
    cancelled."""
    return (
        Release.objects.filter(services=service_id, version=version)
        .exclude(state=ReleaseState.CANCELLED)
        .order_by("-created_at", "-id")
        .first()
    )


def deployment_report_upsert(
    *, actor, service: Service | int, environment: Environment, report: DeploymentReport
) -> DeploymentResult:
    """Record a deployment a CD system reports, and drive the deployment and release state
    machines through their transitions (never by setting fields).

    Permissions: a token with ``deployments:write`` for the service. Idempotent on (provider,
    external_id): the same report changes nothing; a deployment never moves back (a late
    ``in_progress`` after ``succeeded`` only fills blanks); a contradiction (``failed`` after
    ``succeeded``) is a 409. Linked to the release carrying that version of the service. For a
    production environment: in progress or succeeded moves an approved release to deploying
    (governance may refuse, e.g. a freeze window), succeeded moves deploying to deployed,
    rolled back rolls the release back. A governance refusal does not undo the deployment
    record — the deployment happened or is happening, and the refusal is audited and returned
    (the API answers 409 with the blockers). Audited; gates re-evaluated on commit.
    """
    service_id = service_id_of(service)
    authorise_report(
        actor, service_id, TokenScope.DEPLOYMENTS_WRITE, getattr(service, "slug", report.service)
    )
    try:
        with transaction.atomic():
            return _deployment_upsert(actor, service_id, environment, report)
    except ConcurrentTransition:
        raise TransitionNotAllowed(
            "The deployment was changed at the same time by another report; retry."
        ) from None


def _deployment_upsert(actor, service_id, environment, report) -> DeploymentResult:
    key = {"provider": report.provider, "external_id": report.external_id}
    deployment = Deployment.objects.select_for_update().filter(**key).first()
    created = False
    if deployment is None:
        try:
            with transaction.atomic():
                deployment = Deployment.objects.create(
                    release=_release_for(service_id, report.version),
                    service_id=service_id,
                    environment=environment,
                    version=report.version,
                    url=report.url,
                    started_at=report.started_at,
                    finished_at=report.finished_at
                    if report.status in ("succeeded", "failed", "rolled_back")
                    else None,
                    strategy=report.strategy or DeploymentStrategy.ALL_AT_ONCE,
                    canary_stages=list(report.canary_stages),
                    **key,
                )
            created = True
        except IntegrityError:
            # A concurrent report created it first: continue with theirs, locked.
            deployment = Deployment.objects.select_for_update().get(**key)
    if not created and (
        deployment.service_id != service_id
        or deployment.environment_id != environment.pk
        or deployment.version != report.version
    ):
        raise Conflict(
            f"Deployment {report.provider} #{report.external_id} is recorded for "
            f"{deployment.service} {deployment.version} → {deployment.environment}; "
            "a deployment's service, version and environment cannot change.",
            details={"external_id": ["Already used by another deployment."]},
        )

    from_state = deployment.state
    changed_fields: dict = {}
    target = report.status
    if _DEPLOYMENT_RANK[target] >= _DEPLOYMENT_RANK[from_state] and target != from_state:
        path = _DEPLOYMENT_PATHS.get((from_state, target))
        if path is None:
            raise TransitionNotAllowed(
                f"Deployment {report.provider} #{report.external_id} is already "
                f"{deployment.get_state_display().lower()}; it cannot become {target}."
            )
        for name in path:
            getattr(deployment, name)()
    for field in ("url", "started_at", "finished_at"):
        value = getattr(report, field)
        if value and not getattr(deployment, field) and not created:
            if field == "finished_at" and deployment.state not in (
                DeploymentState.SUCCEEDED,
                DeploymentState.FAILED,
                DeploymentState.ROLLED_BACK,
            ):
                continue
            changed_fields[field] = value
            setattr(deployment, field, value)
    if not created:
        changed_fields.update(_rollout_update(deployment, report))
    changed = created or deployment.state != from_state or bool(changed_fields)
    if changed:
        deployment.save()
        audit_record(
            actor=audit_actor(actor),
            action="deployment.report" if created else "deployment.update",
            target=deployment,
            release=deployment.release,
            from_state="" if created else from_state,
            to_state=deployment.state,
            reason=via(actor),
            after={
                "environment": environment.slug,
                "version": deployment.version,
                "status": report.status,
                "strategy": deployment.strategy,
                **({"canary_stages": deployment.canary_stages} if deployment.canary_stages else {}),
                **changed_fields,
            },
        )
        on_commit_enqueue("evaluate_gates_for_deployment", deployment.pk)
        if deployment.state != from_state:
            cdevents.deployment_changed(deployment)
    refusal = _sync_release(actor, deployment, environment, record_refusal=changed)
    return DeploymentResult(
        deployment=deployment, created=created, changed=changed, refusal=refusal
    )


def _rollout_update(deployment: Deployment, report: DeploymentReport) -> dict:
    """The rollout a later report adds: a strategy where none was reported yet (the default
    all-at-once), canary stages where none are recorded. Like the URL and the times, a
    rollout once recorded is kept (a report never rewrites history)."""
    changed: dict = {}
    if (
        report.strategy
        and report.strategy != deployment.strategy
        and deployment.strategy == DeploymentStrategy.ALL_AT_ONCE
    ):
        deployment.strategy = changed["strategy"] = report.strategy
    if (
        report.canary_stages
        and not deployment.canary_stages
        and deployment.strategy == DeploymentStrategy.CANARY
    ):
        deployment.canary_stages = changed["canary_stages"] = list(report.canary_stages)
    return changed


def _refuse_outside_break_glass(release: Release, environment: Environment) -> None:
    """A break-glass bound to one production environment lifts the freeze only there: a
    deployment to another one is refused as the deployment check refuses it (the release's
    own readiness is asked for production as a whole)."""
    blockers = environment_freeze_blockers(release, environment, [], timezone.now())
    if blockers:
        raise RequirementsNotMet(
            "Cannot start deployment. " + blockers_text(blockers),
            details=[b.as_dict() for b in blockers],
        )


def _sync_release(actor, deployment, environment, *, record_refusal: bool) -> DomainError | None:
    """Move the release along with its production deployment, through the release services
    (which check permission, readiness and governance: freeze windows, the window)."""
    release = deployment.release
    if release is None or not environment.is_production or actor is None:
        return None
    reporter = DeploymentReporter(actor) if getattr(actor, "is_machine", False) else actor
    label = f"{deployment.provider} #{deployment.external_id}"
    steps = []
    state = deployment.state
    if state in (DeploymentState.IN_PROGRESS, DeploymentState.SUCCEEDED):
        if release.state == ReleaseState.APPROVED:
            steps.append(release_services.release_start_deployment)
        if state == DeploymentState.SUCCEEDED and release.state in (
            ReleaseState.APPROVED,
            ReleaseState.DEPLOYING,
        ):
            steps.append(release_services.release_mark_deployed)
    elif state == DeploymentState.ROLLED_BACK and release.state in (
        ReleaseState.DEPLOYING,
        ReleaseState.DEPLOYED,
    ):
        steps.append(release_services.release_roll_back)
    for step in steps:
        try:
            if step is release_services.release_start_deployment:
                _refuse_outside_break_glass(release, environment)
            release = step(
                release=release.pk,
                actor=reporter,
                reason=f"Reported by CD: deployment {label} to {environment} is "
                f"{deployment.get_state_display().lower()}.",
            )
        except DomainError as exc:
            if record_refusal:
                audit_record(
                    actor=audit_actor(actor),
                    action="deployment.release_refused",
                    target=deployment,
                    release=deployment.release,
                    reason=exc.message,
                    after={"blockers": exc.details} if exc.details else None,
                )
            return exc
    deployment.release = release
    return None
