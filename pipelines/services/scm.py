"""Enforcement through GitHub and GitLab: held deployments answered with the deployment
check's decision, and gate results published as commit statuses.

Held deployments (``DeploymentGateRequest``): a GitHub ``deployment_protection_rule`` event
or a GitLab deployment ``blocked`` on a protected environment is recorded once per run (or
deployment) and environment — a delivery sent twice finds the row taken and is answered
once. A worker then asks ``evaluate_deployment_check`` (the endpoint's own decision,
recorded and audited) and answers:

- ``allow`` → approved; ``deny`` → rejected, the blockers in the comment;
- ``wait`` → asked again when time may have cleared the blockers (``resume_at``, at most
  ``PIPELINES_GATE_RECHECK_SECONDS`` later), until the integration's ``gate_timeout_minutes``
  have passed: then rejected (fail closed). A ``resume_at`` beyond that deadline is
  rejected at once, since waiting cannot end in allow.

The answer is fixed and committed before it is sent and never changes: a failed send is
retried with backoff (the row's ``next_attempt_at``), and a worker killed at any point
leaves a claim (a lease) that runs out, after which the beat sweep goes on from where it
stopped — deciding again if nothing was fixed yet, else sending the same answer.

Commit statuses (``CommitStatus``): when a gate result of a release is recorded (governance's
gate listeners), every gate of the release is written as one status per commit that the
release's runs reported through a GitHub/GitLab integration holding an API token, and rows
whose content changed are published. Same claim, retry and lease as above.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from core.audit import audit_record
from core.backoff import backoff_seconds
from core.errors import InvalidInput
from governance.choices import GateStatus
from governance.models import GateCheck
from releases.models import Environment, Release

from .. import scm_api
from ..adapters.types import GateEvent
from ..authentication import IntegrationPrincipal
from ..models import (
    CheckDecision,
    CommitStatus,
    CommitStatusState,
    DeploymentGateRequest,
    GateAnswer,
    GateRequestKind,
    GateRequestState,
    Integration,
    IntegrationProvider,
    PipelineRun,
    WebhookDelivery,
)
from ..queueing import enqueue_on_commit
from .checks import evaluate_deployment_check
from .integrations import service_for_repository

logger = logging.getLogger(__name__)

# A claim is a lease: a worker that dies holding one is replaced once it runs out.
LEASE = timedelta(seconds=120)
MAX_SEND_ATTEMPTS = 10
COMMENT_LIMIT = 1000


def recheck_seconds() -> int:
    return int(getattr(settings, "PIPELINES_GATE_RECHECK_SECONDS", 30))


def release_url(release: Release | None) -> str:
    base = settings.SITE_URL.rstrip("/")
    return base + (release.get_absolute_url() if release is not None else "/releases/")


# --- held deployments -------------------------------------------------------------------------


@dataclass
class GateRequestResult:
    request: DeploymentGateRequest | None
    duplicate: bool


def deployment_gate_receive(
    *, integration: Integration, delivery_id: str, event: GateEvent
) -> GateRequestResult:
    """Record a verified held deployment, once, and queue its answer after commit.

    Unique per (integration, kind, repository, run or deployment id, environment): the same
    delivery again, or another delivery about the same run and environment, is a duplicate
    and is not answered again. A repository the integration does not map to a service is
    still recorded: it is answered ``rejected`` (unknown service), never left waiting.
    Audited (``deployment_gate.request``).
    """
    try:
        service = service_for_repository(integration, event.repository)
    except InvalidInput:
        service = None
    now = timezone.now()
    with transaction.atomic():
        if delivery_id:
            try:
                with transaction.atomic():
                    WebhookDelivery.objects.create(
                        provider=integration.provider,
                        delivery_id=delivery_id,
                        integration=integration,
                        event=event.kind[:50],
                    )
            except IntegrityError:
                return GateRequestResult(request=None, duplicate=True)
        try:
            with transaction.atomic():
                request = DeploymentGateRequest.objects.create(
                    integration=integration,
                    kind=event.kind,
                    repository=event.repository[:255],
                    project_id=event.project_id[:100],
                    external_id=event.external_id[:100],
                    environment_name=event.environment[:255],
                    sha=event.sha[:64],
                    ref=event.ref[:255],
                    version=event.version[:64],
                    delivery_id=delivery_id[:200],
                    installation_id=event.installation_id[:20],
                    service=service,
                    deadline=now + timedelta(minutes=integration.gate_timeout_minutes),
                    next_attempt_at=now,
                )
        except IntegrityError:
            existing = DeploymentGateRequest.objects.filter(
                integration=integration,
                kind=event.kind,
                repository=event.repository[:255],
                external_id=event.external_id[:100],
                environment_name=event.environment[:255],
            ).first()
            return GateRequestResult(request=existing, duplicate=True)
        audit_record(
            actor=None,
            action="deployment_gate.request",
            target=request,
            to_state=request.state,
            reason=f"{request.get_kind_display()} for {event.repository} "
            f"({event.external_id}) → {event.environment}, from the {integration.provider} "
            f"integration {integration.name!r}.",
            after={"sha": event.sha, "ref": event.ref, "version": event.version},
        )
        enqueue_on_commit("pipelines.answer_deployment_gate", request.pk)
    return GateRequestResult(request=request, duplicate=False)


def _claim(model, pk: int, seen: datetime | None, now: datetime, **extra) -> bool:
    """Take the row for one lease if its schedule is still what we read (and due)."""
    if seen is None or seen > now:
        return False
    return bool(
        model.objects.filter(pk=pk, next_attempt_at=seen, **extra).update(
            next_attempt_at=now + LEASE
        )
    )


def deployment_gate_answer(request_id: int) -> str:
    """Decide (if not decided yet) and deliver the answer of one held deployment when it is
    due. Returns what happened: skipped, waiting, answered, retrying or failed. Safe to run
    twice and concurrently: only the worker whose claim succeeded acts."""
    now = timezone.now()
    request = DeploymentGateRequest.objects.filter(
        pk=request_id, state=GateRequestState.PENDING
    ).first()
    if request is None or not _claim(
        DeploymentGateRequest,
        request.pk,
        request.next_attempt_at,
        now,
        state=GateRequestState.PENDING,
    ):
        return "skipped"
    if not request.answer:
        request = _decide(request.pk, now)
        if not request.answer:
            return "waiting"
    return _send_answer(request.pk, now)


def _environment_for(name: str) -> Environment | str:
    found = Environment.objects.filter(Q(slug__iexact=name) | Q(name__iexact=name)).first()
    return found if found is not None else name


def _version_for(request: DeploymentGateRequest) -> str:
    """The version being deployed: the one the platform named, else the version CI reported
    for the workflow run or the commit (newest first). "" when none is known: the check
    then denies it (no release carries it)."""
    if request.version:
        return request.version
    if request.service_id is None:
        return ""
    runs = PipelineRun.objects.filter(service_id=request.service_id).exclude(version="")
    match = Q(pk__in=[])
    if request.kind == GateRequestKind.GITHUB_PROTECTION_RULE:
        match |= Q(provider="github_actions", external_id=request.external_id)
    if request.sha:
        match |= Q(commit_sha__iexact=request.sha)
    return (
        runs.filter(match).order_by("-created_at", "-id").values_list("version", flat=True).first()
        or ""
    )


def _source(request: DeploymentGateRequest) -> str:
    return "github" if request.kind == GateRequestKind.GITHUB_PROTECTION_RULE else "gitlab"


def _decide(request_id: int, now: datetime) -> DeploymentGateRequest:
    """Ask the deployment check and fix the answer, or schedule the next look (wait)."""
    with transaction.atomic():
        request = (
            DeploymentGateRequest.objects.select_for_update(of=("self",))
            .select_related("integration", "service")
            .get(pk=request_id)
        )
        if request.answer or request.state != GateRequestState.PENDING:
            return request
        integration = request.integration
        principal = IntegrationPrincipal(
            integration, frozenset(integration.services.values_list("id", flat=True))
        )
        result = evaluate_deployment_check(
            # An unmapped repository is asked as itself: never a service slug, so "deny".
            service=request.service or request.repository,
            version=_version_for(request),
            environment=_environment_for(request.environment_name),
            commit_sha=request.sha or None,
            external_id=f"{_source(request)}:{request.external_id}",
            actor=principal,
            source=_source(request),
        )
        request.evaluations += 1
        request.last_check = result.check
        request.last_decision = result.decision
        request.release = result.release
        if not request.version and result.check is not None:
            request.version = result.check.version
        what = _what(request)
        link = release_url(result.release)
        if result.decision == CheckDecision.ALLOW:
            request.answer = GateAnswer.APPROVED
            request.comment = f"Releasegate allows {what}. {link}"
        elif result.decision == CheckDecision.DENY:
            request.answer = GateAnswer.REJECTED
            request.comment = _with_blockers(f"Releasegate denies {what}", result.blockers, link)
        elif now >= request.deadline or (
            result.resume_at is not None and result.resume_at > request.deadline
        ):
            request.answer = GateAnswer.REJECTED
            until = result.resume_at.isoformat() if result.resume_at else "later"
            request.comment = _with_blockers(
                f"Releasegate rejects {what}: it must wait until {until}, past the gate's "
                f"timeout of {integration.gate_timeout_minutes} minute(s) (fail closed)",
                result.blockers,
                link,
            )
        else:
            later = now + timedelta(seconds=recheck_seconds())
            if result.resume_at is not None and result.resume_at > now:
                later = min(later, result.resume_at)
            request.next_attempt_at = min(later, request.deadline)
        fields = [
            "evaluations",
            "last_check",
            "last_decision",
            "release",
            "version",
            "answer",
            "comment",
            "next_attempt_at",
        ]
        if request.answer:
            request.comment = request.comment[:COMMENT_LIMIT]
            request.next_attempt_at = now + LEASE  # still ours: the send follows at once
            audit_record(
                actor=None,
                action="deployment_gate.decide",
                target=request,
                release=result.release,
                to_state=request.answer,
                reason=request.comment,
                after={"decision": result.decision, "check": result.check.pk},
            )
        request.save(update_fields=fields)
    return request


def _what(request: DeploymentGateRequest) -> str:
    service = request.service.slug if request.service else request.repository
    version = request.version or "(unknown version)"
    return f"{service} {version} to {request.environment_name}"


def _with_blockers(head: str, blockers, link: str) -> str:
    reasons = "; ".join(b.message for b in blockers) or "no reason recorded"
    return f"{head}: {reasons} — {link}"


def _api_token(
    integration: Integration, installation_id: str = ""
) -> tuple[str | None, scm_api.Outcome]:
    """The token to call the provider with: a GitHub App installation token minted for the
    delivery's installation (else the integration's), else the stored API token. (None,
    outcome) when there is none or it could not be minted."""
    if integration.is_github_app:
        installation = installation_id or integration.github_app_installation_id
        if installation:
            return scm_api.github_installation_token(
                integration.api_base_url,
                integration.github_app_id,
                integration.github_app_private_key,
                installation,
            )
        if not integration.api_token:
            return None, scm_api.Outcome(
                ok=False,
                error="No GitHub App installation is known: set the integration's installation id.",
                permanent=True,
            )
    if integration.api_token:
        return integration.api_token, scm_api.Outcome(ok=True)
    return None, scm_api.Outcome(
        ok=False, error="The integration has no API token to answer with.", permanent=True
    )


def _send_answer(request_id: int, now: datetime) -> str:
    request = DeploymentGateRequest.objects.select_related("integration").get(pk=request_id)
    integration = request.integration
    token, outcome = _api_token(integration, request.installation_id)
    if token is None:
        pass  # ``outcome`` says why: recorded below like a failed send
    elif request.kind == GateRequestKind.GITHUB_PROTECTION_RULE:
        outcome = scm_api.post_json(
            scm_api.github_protection_rule_url(
                integration.api_base_url, request.repository, request.external_id
            ),
            {
                "environment_name": request.environment_name,
                "state": request.answer,
                "comment": request.comment,
            },
            headers=scm_api.github_headers(token),
        )
    else:
        outcome = scm_api.post_json(
            scm_api.gitlab_approval_url(
                integration.api_base_url,
                request.project_id or request.repository,
                request.external_id,
            ),
            {"status": request.answer, "comment": request.comment},
            headers=scm_api.gitlab_headers(token),
        )
    with transaction.atomic():
        request = DeploymentGateRequest.objects.select_for_update().get(pk=request_id)
        if request.state != GateRequestState.PENDING:
            return request.state
        earlier_sends = request.send_attempts
        request.send_attempts += 1
        # A platform that says "already answered" (409/422) to a repeat of a send whose
        # outcome a killed worker never recorded has the same answer already.
        repeat = token is not None and earlier_sends > 0 and outcome.status in (409, 422)
        if outcome.ok or repeat:
            request.state = GateRequestState.ANSWERED
            request.answered_at = timezone.now()
            request.next_attempt_at = None
            request.last_error = "" if outcome.ok else outcome.error[:500]
        elif outcome.permanent or request.send_attempts >= MAX_SEND_ATTEMPTS:
            request.state = GateRequestState.FAILED
            request.next_attempt_at = None
            request.last_error = outcome.error[:500]
            logger.error("Could not answer %s on %s: %s", request, integration.name, outcome.error)
        else:
            request.last_error = outcome.error[:500]
            request.next_attempt_at = now + timedelta(
                seconds=backoff_seconds(request.send_attempts, base=10, cap=600)
            )
        request.save(
            update_fields=["state", "answered_at", "next_attempt_at", "last_error", "send_attempts"]
        )
        if request.state != GateRequestState.PENDING:
            audit_record(
                actor=None,
                action="deployment_gate.answer",
                target=request,
                release=request.release,
                from_state=GateRequestState.PENDING,
                to_state=request.state,
                reason=f"{request.answer} sent to {integration.provider} "
                f"after {request.send_attempts} attempt(s)"
                + (f": {request.last_error}" if request.last_error else "."),
            )
    return (
        "answered"
        if request.state == GateRequestState.ANSWERED
        else ("failed" if request.state == GateRequestState.FAILED else "retrying")
    )


def due_deployment_gates(limit: int = 200) -> list[int]:
    return list(
        DeploymentGateRequest.objects.filter(
            state=GateRequestState.PENDING, next_attempt_at__lte=timezone.now()
        )
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )


# --- commit statuses --------------------------------------------------------------------------

STATUS_OF_GATE = {
    GateStatus.PASSED: CommitStatusState.SUCCESS,
    GateStatus.WAIVED: CommitStatusState.SUCCESS,
    GateStatus.FAILED: CommitStatusState.FAILURE,
    GateStatus.PENDING: CommitStatusState.PENDING,
}


def status_context(gate: GateCheck) -> str:
    """One context per gate, stable for the release's life: ``releasegate/<key>``."""
    return f"releasegate/{gate.key}"[:255]


def _description(gate: GateCheck) -> str:
    words = {
        GateStatus.PASSED: "passed",
        GateStatus.WAIVED: "waived",
        GateStatus.FAILED: "failed",
        GateStatus.PENDING: "pending",
    }[gate.status]
    text = f"{gate.label}: {words}"
    if gate.detail:
        text += f" ({gate.detail})"
    return text[:140]


RUN_PROVIDER_OF = {
    "github_actions": IntegrationProvider.GITHUB,
    "gitlab": IntegrationProvider.GITLAB,
}


def _repository_of(run: PipelineRun) -> str:
    """The run's repository (``owner/name``, a GitLab project path), else its service's
    repository URL's path (runs posted over REST may not name it)."""
    if run.repository:
        return run.repository.strip("/")
    url = run.service.repository_url.rstrip("/").removesuffix(".git")
    parts = url.split("://", 1)[-1].split("/", 1)
    return parts[1] if len(parts) == 2 else ""


def _status_targets(release: Release) -> list[tuple[Integration, str, str]]:
    """(integration, repository, sha) of each commit the release's runs were built from on
    GitHub Actions or GitLab CI, with the integration that calls that platform's API for the
    run's service: the one that reported the run if it holds an API token, else an enabled
    integration of that platform with a token serving the service."""
    service_ids = list(release.services.values_list("id", flat=True))
    gate_commits = list(
        release.gate_checks.exclude(commit_sha="").values_list("commit_sha", flat=True)
    )
    runs = (
        PipelineRun.objects.filter(service_id__in=service_ids, provider__in=list(RUN_PROVIDER_OF))
        .filter(Q(version=release.version) | Q(commit_sha__in=gate_commits))
        .exclude(commit_sha="")
        .select_related("reported_by_integration", "service")
        .order_by("id")
    )
    callers = list(
        _publishing_integrations()
        .filter(services__in=service_ids)
        .prefetch_related("services")
        .distinct()
        .order_by("id")
    )
    seen: dict[tuple[int, str, str], tuple[Integration, str, str]] = {}
    for run in runs:
        provider = RUN_PROVIDER_OF[run.provider]
        integration = run.reported_by_integration
        if integration is None or not integration.can_call_api or integration.provider != provider:
            integration = next(
                (
                    i
                    for i in callers
                    if i.provider == provider
                    and any(s.pk == run.service_id for s in i.services.all())
                ),
                None,
            )
        repository = _repository_of(run)
        if integration is None or not repository:
            continue
        key = (integration.pk, repository, run.commit_sha.lower())
        seen.setdefault(key, (integration, repository, run.commit_sha.lower()))
    return list(seen.values())


def _hash(state: str, description: str, target_url: str) -> str:
    raw = json.dumps([state, description, target_url])
    return hashlib.sha256(raw.encode()).hexdigest()


def commit_statuses_sync(*, release_id: int) -> list[int]:
    """Write what every gate of the release should say on each of its commits; return the
    ids of the rows that now differ from what was published (to be sent). Idempotent: the
    same gates again change no row."""
    release = Release.objects.filter(pk=release_id).first()
    if release is None:
        return []
    targets = _status_targets(release)
    if not targets:
        return []
    gates = list(release.gate_checks.order_by("position", "id"))
    link = release_url(release)
    now = timezone.now()
    changed: list[int] = []
    with transaction.atomic():
        for integration, repository, sha in targets:
            for gate in gates:
                state = STATUS_OF_GATE[gate.status]
                description = _description(gate)
                desired = _hash(state, description, link)
                row, created = CommitStatus.objects.select_for_update().get_or_create(
                    integration=integration,
                    repository=repository,
                    sha=sha,
                    context=status_context(gate),
                    defaults={
                        "release": release,
                        "state": state,
                        "description": description,
                        "target_url": link,
                        "desired_hash": desired,
                        "next_attempt_at": now,
                    },
                )
                if not created and row.desired_hash != desired:
                    row.state, row.description, row.target_url = state, description, link
                    row.desired_hash = desired
                    row.attempts = 0
                    row.next_attempt_at = now
                    row.updated_at = now
                    row.save(
                        update_fields=[
                            "state",
                            "description",
                            "target_url",
                            "desired_hash",
                            "attempts",
                            "next_attempt_at",
                            "updated_at",
                        ]
                    )
                if row.desired_hash != row.published_hash:
                    changed.append(row.pk)
    return changed


def commit_status_publish(status_id: int) -> str:
    """Send one status row when it is due and differs from what was published. Claimed,
    retried with backoff; a row changed while it was being sent is sent again."""
    now = timezone.now()
    row = CommitStatus.objects.select_related("integration").filter(pk=status_id).first()
    if row is None or not _claim(CommitStatus, row.pk, row.next_attempt_at, now):
        return "skipped"
    if row.desired_hash == row.published_hash:
        CommitStatus.objects.filter(pk=row.pk).update(next_attempt_at=None)
        return "unchanged"
    integration = row.integration
    token, outcome = _api_token(integration)
    if token is None:
        pass  # recorded below like a failed send
    elif integration.provider == IntegrationProvider.GITHUB:
        outcome = scm_api.post_json(
            scm_api.github_status_url(integration.api_base_url, row.repository, row.sha),
            {
                "state": scm_api.GITHUB_STATES[row.state],
                "target_url": row.target_url,
                "description": row.description,
                "context": row.context,
            },
            headers=scm_api.github_headers(token),
        )
    else:
        outcome = scm_api.post_json(
            scm_api.gitlab_status_url(
                integration.api_base_url, row.project_id or row.repository, row.sha
            ),
            {
                "state": scm_api.GITLAB_STATES[row.state],
                "name": row.context,
                "target_url": row.target_url,
                "description": row.description,
            },
            headers=scm_api.gitlab_headers(token),
        )
    sent = row.desired_hash
    with transaction.atomic():
        row = CommitStatus.objects.select_for_update().get(pk=row.pk)
        row.attempts += 1
        if outcome.ok:
            row.published_hash = sent
            row.published_at = timezone.now()
            row.last_error = ""
            # Changed meanwhile: what was sent is stale, send again now.
            row.next_attempt_at = None if row.desired_hash == sent else timezone.now()
        elif outcome.permanent or row.attempts >= MAX_SEND_ATTEMPTS:
            row.last_error = outcome.error[:500]
            row.next_attempt_at = None
            logger.warning("Gave up publishing %s: %s", row, outcome.error)
        else:
            row.last_error = outcome.error[:500]
            row.next_attempt_at = now + timedelta(
                seconds=backoff_seconds(row.attempts, base=10, cap=600)
            )
        row.save(
            update_fields=[
                "attempts",
                "published_hash",
                "published_at",
                "last_error",
                "next_attempt_at",
            ]
        )
    if outcome.ok:
        return "published"
    return "failed" if row.next_attempt_at is None else "retrying"


def commit_statuses_publish_for_release(release_id: int) -> int:
    """Sync the release's statuses and send the changed ones; returns how many were sent."""
    return sum(
        commit_status_publish(pk) == "published"
        for pk in commit_statuses_sync(release_id=release_id)
    )


def due_commit_statuses(limit: int = 200) -> list[int]:
    return list(
        CommitStatus.objects.filter(next_attempt_at__lte=timezone.now())
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )


def _publishing_integrations():
    return Integration.objects.filter(
        enabled=True, provider__in=list(RUN_PROVIDER_OF.values())
    ).filter(~Q(api_token="") | (~Q(github_app_id="") & ~Q(github_app_private_key="")))


def on_gate_changed(gate: GateCheck) -> None:
    """Governance's gate listener (registered in ``PipelinesConfig.ready``): inside the
    gate's transaction; the statuses are published by a task after commit. Without any
    GitHub/GitLab integration that can call its API, nothing is queued."""
    if _publishing_integrations().exists():
        enqueue_on_commit("pipelines.publish_commit_statuses", gate.release_id)


__all__ = [
    "GateRequestResult",
    "commit_status_publish",
    "commit_statuses_publish_for_release",
    "commit_statuses_sync",
    "deployment_gate_answer",
    "deployment_gate_receive",
    "due_commit_statuses",
    "due_deployment_gates",
    "on_gate_changed",
]
