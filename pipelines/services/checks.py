"""The deploy boundary: may this version of this service go to this environment now?

``evaluate_deployment_check`` is the one answer every path gives — the REST endpoint
(``POST /api/v1/deployment-checks/``), ``scripts/releasegate-check``, and the GitHub and GitLab
integrations that gate deployments. It judges with the same code as the release page and the
board: for a production environment the blockers of the release's ``start_deployment``
transition as "why is this blocked?" lists them (``governance.readiness.release_blockers``:
gates, window, freezes, other releases deploying, promotion order and soak), for an earlier
environment the promotion order and soak towards it (``pipelines.promotion``). No rule of its
own decides; it only says how the blockers turn into an answer:

- ``allow``: nothing blocks;
- ``wait``: only time blocks (a freeze ends, the window opens, a soak completes) —
  ``resume_at`` is when every such blocker will have cleared;
- ``deny``: anything else, including an unknown service, environment or version, a version
  no release carries, and any internal error (it fails closed, never open).

Every answer is recorded (``DeploymentCheck``) and audited.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from core.audit import audit_record
from core.errors import PermissionDenied
from governance.choices import CHANGE_APPROVED_STATES, ChangeState
from governance.models import ChangeRequest
from governance.readiness import break_glass_notes, freeze_blockers, release_blockers
from releases.choices import ReleaseState
from releases.models import Environment, Release, Service
from releases.readiness import Blocker

from .. import promotion
from ..models import ApiToken, CheckDecision, DeploymentCheck, PipelineRun, TokenScope
from ._common import audit_actor

logger = logging.getLogger(__name__)

# Blockers that time alone clears; with only these, the answer is "wait" until the latest.
# A verification under way counts as time: it passes (or fails, and the answer becomes deny).
TIMED_CODES = frozenset({"freeze", "window_not_open", "soak", "verification_pending"})

# A release in these states carries nothing deployable any more.
FINISHED_STATES = frozenset({ReleaseState.CLOSED, ReleaseState.ROLLED_BACK, ReleaseState.CANCELLED})
# Production is reached through the release's own deployment transition.
BEFORE_APPROVAL = frozenset(
    {
        ReleaseState.DRAFT,
        ReleaseState.PLANNED,
        ReleaseState.IN_PROGRESS,
        ReleaseState.AWAITING_APPROVAL,
    }
)


@dataclass(frozen=True)
class DeploymentCheckResult:
    """The answer: ``decision`` (allow, deny, wait), the blockers behind it, when time alone
    clears them (``resume_at``), the governing release and change request, and the stored
    ``check`` row."""

    decision: str
    blockers: list[Blocker] = field(default_factory=list)
    resume_at: datetime | None = None
    release: Release | None = None
    change_request: ChangeRequest | None = None
    check: DeploymentCheck | None = None
    break_glass: list[dict] = field(default_factory=list)

    @property
    def allowed(self) -> bool:
        return self.decision == CheckDecision.ALLOW


def _slug(value: Service | Environment | str | None) -> str:
    if value is None:
        return ""
    return value.slug if hasattr(value, "slug") else str(value).strip()


def _release_for(service: Service, version: str) -> Release | None:
    """The release that governs this version of the service: the newest one carrying it
    that is not cancelled (the same one a reported deployment is linked to)."""
    return (
        Release.objects.filter(services=service, version=version)
        .exclude(state=ReleaseState.CANCELLED)
        .order_by("-created_at", "-id")
        .first()
    )


def governing_change_request(release: Release) -> ChangeRequest | None:
    """The release's change request that governs it: the newest approved (or later) one,
    else the newest still open, else none."""
    crs = list(release.change_requests.order_by("-created_at", "-id"))
    approved = next((c for c in crs if c.state in CHANGE_APPROVED_STATES), None)
    if approved is not None:
        return approved
    return next((c for c in crs if c.state not in (ChangeState.REJECTED, ChangeState.CLOSED)), None)


def _blocker_from(data: dict) -> Blocker:
    until = parse_datetime(data["until"]) if data.get("until") else None
    return Blocker(data["code"], data["message"], data.get("who_can_resolve", ""), until)


def page_blockers(release: Release, *, at: datetime | None = None) -> list[Blocker]:
    """The blockers the release page lists for the release's next forward transition(s)
    ("why is this blocked?"), as Blocker objects."""
    found: list[Blocker] = []
    for transition in release_blockers(release, at=at)["transitions"]:
        found += [_blocker_from(b) for b in transition["blockers"]]
    return found


def deployment_blockers(
    release: Release, environment: Environment, *, at: datetime | None = None
) -> list[Blocker]:
    """What keeps ``release`` from deploying to ``environment`` at ``at`` (now)."""
    now = at or timezone.now()
    state = ReleaseState(release.state)
    label = f"{release.name} {release.version}"
    if state in FINISHED_STATES:
        return [
            Blocker(
                "release_finished",
                f"{label} is {state.label.lower()}; no deployment of it may start. A new "
                "release must carry this version.",
                "a release manager (plan a new release)",
            )
        ]
    if environment.is_production:
        if state in BEFORE_APPROVAL:
            return [
                Blocker(
                    "not_approved",
                    f"{label} is {state.label.lower()}; it must be approved before it deploys "
                    f"to {environment.name}.",
                    "the release manager and the approvers",
                ),
                *environment_freeze_blockers(
                    release, environment, page_blockers(release, at=now), now
                ),
            ]
        if state == ReleaseState.APPROVED:
            return environment_freeze_blockers(
                release, environment, page_blockers(release, at=now), now
            )
        # Deploying or deployed: the release has passed its deployment's governance already
        # (another service of it, a retry, a re-sync of the same version).
        return []
    if state == ReleaseState.DRAFT:
        return [
            Blocker(
                "not_planned",
                f"{label} is a draft; plan it before it deploys to {environment.name}.",
                "the release manager",
            )
        ]
    return promotion.promotion_blockers(release, environment, at=now)


def environment_freeze_blockers(
    release: Release, environment: Environment, found: list[Blocker], at: datetime
) -> list[Blocker]:
    """The page's blockers, plus the freezes that a break-glass bound to another production
    environment lifts on the page but not in this one (the same freeze rule, asked for this
    environment; identical to the page's when no break-glass is bound to an environment)."""
    if not release.break_glasses.filter(environment__isnull=False).exists():
        return found
    extra = freeze_blockers(release, at, environment_id=environment.pk)
    return found + [b for b in extra if b not in found]


def decide(blockers: list[Blocker]) -> tuple[str, datetime | None]:
    """allow with no blockers; wait when every blocker clears with time alone (until the
    latest of them); deny otherwise."""
    if not blockers:
        return CheckDecision.ALLOW, None
    if all(b.code in TIMED_CODES and b.until is not None for b in blockers):
        return CheckDecision.WAIT, max(b.until for b in blockers)
    return CheckDecision.DENY, None


def _token_of(actor, token: ApiToken | None) -> ApiToken | None:
    if token is not None:
        return token
    found = getattr(actor, "token", None)
    return found if isinstance(found, ApiToken) else None


def _person(actor):
    """The user to link, when a person (not a machine, not the system) asked."""
    if actor is None or getattr(actor, "is_machine", False) or getattr(actor, "pk", None) is None:
        return None
    return actor


def _authorise(actor, service: Service | None, service_slug: str) -> None:
    """A machine asks only with the deployments:check scope and for its own services (an
    unknown service is answered "deny", which tells nothing a token may not know)."""
    if actor is None or not getattr(actor, "is_machine", False):
        return
    if getattr(actor, "integration", None) is not None:
        return  # a verified webhook delivery of an integration (GitHub, GitLab)
    if not actor.has_scope(TokenScope.DEPLOYMENTS_CHECK):
        raise PermissionDenied(
            f"This token lacks the {TokenScope.DEPLOYMENTS_CHECK.value!r} scope."
        )
    if service is not None and service.pk not in actor.service_ids:
        raise PermissionDenied(f"This token may not ask about service {service_slug!r}.")


def _judge(
    service: Service | None,
    service_slug: str,
    environment: Environment | None,
    environment_slug: str,
    version: str,
    commit_sha: str | None,
) -> tuple[list[Blocker], Release | None, ChangeRequest | None]:
    """The blockers of the question, with the governing release and change request."""
    blockers: list[Blocker] = []
    if service is None:
        blockers.append(
            Blocker(
                "unknown_service",
                f"No service {service_slug!r} is known to Releasegate.",
                "an administrator (register the service)",
            )
        )
    if environment is None:
        blockers.append(
            Blocker(
                "unknown_environment",
                f"No environment {environment_slug!r} is known to Releasegate.",
                "an administrator (register the environment)",
            )
        )
    if service is None or environment is None:
        return blockers, None, None
    release = _release_for(service, version)
    if release is None:
        blockers.append(
            Blocker(
                "no_release",
                f"No release carries {service.slug} {version}; plan one before deploying it.",
                "a release manager (plan a release with this version)",
            )
        )
        return blockers, None, None
    blockers = deployment_blockers(release, environment)
    if commit_sha:
        blockers += commit_blockers(service, version, commit_sha)
    return blockers, release, governing_change_request(release)


def commit_blockers(service: Service, version: str, commit_sha: str) -> list[Blocker]:
    """When the caller names the commit it deploys: CI must have built this version from
    that commit. Versions CI never reported a commit for are not judged here (their gates
    are)."""
    sha = commit_sha.strip().lower()
    built = {
        c.lower()
        for c in PipelineRun.objects.filter(service=service, version=version)
        .exclude(commit_sha="")
        .values_list("commit_sha", flat=True)
    }
    if not built or any(c.startswith(sha) or sha.startswith(c) for c in built):
        return []
    shown = ", ".join(sorted(c[:10] for c in built))
    return [
        Blocker(
            "commit_mismatch",
            f"{service.slug} {version} was built from {shown}, not {sha[:10]}; the commit being "
            "deployed is not the one CI tested.",
            "CD (deploy the commit CI built for this version)",
        )
    ]


def evaluate_deployment_check(
    *,
    service: Service | str,
    version: str,
    environment: Environment | str,
    commit_sha: str | None = None,
    external_id: str | None = None,
    actor=None,
    token: ApiToken | None = None,
    source: str = "api",
) -> DeploymentCheckResult:
    """May ``version`` of ``service`` deploy to ``environment`` now? (slugs or instances)

    Permissions: a token principal needs the ``deployments:check`` scope and the service
    among its services (else ``PermissionDenied``); people, the system (``actor=None``) and
    integrations ask for any service. Writes one ``DeploymentCheck`` row and one audit event
    (``deployment_check.answer``) in one transaction. Fails closed: an error while judging is
    logged and answered ``deny``.
    """
    service_slug = _slug(service)
    environment_slug = _slug(environment)
    version = (version or "").strip()
    service_obj = (
        service
        if isinstance(service, Service)
        else Service.objects.filter(slug=service_slug).first()
    )
    _authorise(actor, service_obj, service_slug)
    environment_obj = (
        environment
        if isinstance(environment, Environment)
        else Environment.objects.filter(slug=environment_slug).first()
    )
    release = None
    change_request = None
    try:
        # A savepoint: a database error while judging (inside a caller's transaction too)
        # rolls back to here, and the answer below is still recorded.
        with transaction.atomic():
            blockers, release, change_request = _judge(
                service_obj, service_slug, environment_obj, environment_slug, version, commit_sha
            )
        decision, resume_at = decide(blockers)
        glass = _glass_notes(release, environment_obj, timezone.now())
    except Exception:
        # Fail closed: whatever went wrong, the answer is no.
        logger.exception(
            "Deployment check of %s %s → %s failed; answering deny",
            service_slug,
            version,
            environment_slug,
        )
        blockers = [
            Blocker(
                "internal_error",
                "Releasegate could not evaluate this deployment; it is refused until it can "
                "(fail closed).",
                "an administrator (see the server log)",
            )
        ]
        decision, resume_at, glass = CheckDecision.DENY, None, []
    with transaction.atomic():
        check = DeploymentCheck.objects.create(
            service=service_obj,
            service_slug=service_slug[:100],
            environment=environment_obj,
            environment_slug=environment_slug[:50],
            version=version[:64],
            commit_sha=(commit_sha or "")[:64],
            external_id=(external_id or "")[:200],
            decision=decision,
            blockers=[b.as_dict() for b in blockers],
            resume_at=resume_at,
            release=release,
            change_request=change_request,
            actor=_person(actor),
            token=_token_of(actor, token),
            source=source[:40],
        )
        audit_record(
            actor=audit_actor(actor),
            action="deployment_check.answer",
            target=check,
            release=release,
            to_state=decision,
            reason=f"{service_slug} {version} → {environment_slug} asked by {source}.",
            after={
                "decision": decision,
                "blockers": [b.code for b in blockers],
                "resume_at": resume_at.isoformat() if resume_at else None,
                "commit_sha": commit_sha or "",
                "external_id": external_id or "",
                **({"break_glass": [g["id"] for g in glass]} if glass else {}),
            },
        )
    return DeploymentCheckResult(
        decision=decision,
        blockers=blockers,
        resume_at=resume_at,
        release=release,
        change_request=change_request,
        check=check,
        break_glass=glass,
    )


def check_break_glass(check: DeploymentCheck) -> list[dict]:
    """The break-glass in force for the check's release and environment when it was answered
    (a non-blocking note of the answer: the freezes it lifted), read back the same later."""
    return _glass_notes(check.release, check.environment, check.created_at)


def _glass_notes(release: Release | None, environment: Environment | None, at) -> list[dict]:
    if release is None or environment is None or not environment.is_production:
        return []
    return break_glass_notes(release, at, environment_id=environment.pk)
