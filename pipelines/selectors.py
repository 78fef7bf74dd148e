"""Reads of the pipelines app for pages, with their joins chosen (query count does not grow
with the rows)."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Prefetch, Q, QuerySet

from releases.models import Deployment, Environment, Release

from .models import (
    Artefact,
    ArtefactTag,
    DeploymentCheck,
    Incident,
    PipelineCheck,
    PipelineRun,
    TokenScope,
)

RUNS_SHOWN = 15


@dataclass
class EnvironmentDeployments:
    environment: Environment
    deployments: list[Deployment] = field(default_factory=list)

    @property
    def latest(self) -> Deployment | None:
        return self.deployments[0] if self.deployments else None


@dataclass
class ReleaseDelivery:
    runs: list[PipelineRun]
    artefacts: list[Artefact]
    environments: list[EnvironmentDeployments]
    checks: list[DeploymentCheck] = field(default_factory=list)


def release_delivery(*, release: Release) -> ReleaseDelivery:
    """What CI/CD reported for a release: the runs of its services for its version (or a
    commit its gates saw), the artefacts of that version with their digests and all their
    versions, the deployments per environment (newest first) with their incidents, and the
    latest deployment checks asked about it. Seven queries."""
    service_ids = [s.pk for s in release.services.all()]
    runs = list(
        PipelineRun.objects.filter(service_id__in=service_ids, version=release.version)
        .select_related("service")
        .prefetch_related(Prefetch("checks", queryset=PipelineCheck.objects.order_by("kind")))
        .order_by("-created_at", "-id")[:RUNS_SHOWN]
    )
    # Named by the release's version, shown with every version naming the same digest.
    artefacts = list(
        Artefact.objects.filter(service_id__in=service_ids, tags__version=release.version)
        .select_related("service", "first_run")
        .prefetch_related("tags")
        .order_by("service__name", "name")
    )
    deployments = (
        Deployment.objects.filter(
            Q(release=release) | Q(service_id__in=service_ids, version=release.version)
        )
        .select_related("environment", "service")
        .prefetch_related(Prefetch("incidents", queryset=Incident.objects.order_by("-started_at")))
        .order_by("environment__order", "-created_at", "-id")
    )
    by_environment: dict[int, EnvironmentDeployments] = {}
    for deployment in deployments:
        group = by_environment.setdefault(
            deployment.environment_id, EnvironmentDeployments(deployment.environment)
        )
        group.deployments.append(deployment)
    return ReleaseDelivery(
        runs=runs,
        artefacts=artefacts,
        environments=list(by_environment.values()),
        checks=release_deployment_checks(release=release),
    )


# --- API reads --------------------------------------------------------------------------------

# A token reads what it may write (a CI job reads back the run it posted) or, with
# releases:read, the runs and deployments behind the releases it already reads; always only
# of its own services. There is no separate read scope for runs or deployments.
RUN_READ_SCOPES = (TokenScope.RUNS_WRITE, TokenScope.RELEASES_READ)
DEPLOYMENT_READ_SCOPES = (TokenScope.DEPLOYMENTS_WRITE, TokenScope.RELEASES_READ)


def _visible(qs: QuerySet, *, viewer, scopes: tuple[str, ...]) -> QuerySet:
    """The rows of ``qs`` (which has a ``service`` foreign key) the viewer may read: all of
    them for whoever reads releases (every role holder, administrators); for a token with
    one of ``scopes``, those of its services; nothing for outsiders and other tokens."""
    if getattr(viewer, "is_machine", False):
        if not any(viewer.has_scope(scope) for scope in scopes):
            return qs.none()
        return qs.filter(service_id__in=viewer.service_ids)
    if not viewer.has_perm("releases.view_release"):
        return qs.none()
    return qs


def visible_pipeline_runs(*, viewer) -> QuerySet[PipelineRun]:
    """Pipeline runs for the API, newest first, with their service, checks and the artefact
    versions they first reported (with every version of each digest): five queries whatever
    the page size (count, page, checks, versions with their artefacts, all their versions)."""
    qs = (
        PipelineRun.objects.select_related("service")
        .prefetch_related(
            Prefetch("checks", queryset=PipelineCheck.objects.order_by("kind", "name", "id")),
            Prefetch(
                "artefact_tags",
                queryset=ArtefactTag.objects.select_related("artefact")
                .prefetch_related("artefact__tags")
                .order_by("name", "version", "id"),
            ),
        )
        .order_by("-created_at", "-id")
    )
    return _visible(qs, viewer=viewer, scopes=RUN_READ_SCOPES)


def visible_artefacts(*, viewer) -> QuerySet[Artefact]:
    """Artefacts for the API, newest first (by id: the primary key's order, no sort), each
    with its versions: three queries whatever the page size (count, page, versions). Read
    like the runs that report them."""
    qs = Artefact.objects.select_related("service").prefetch_related("tags").order_by("-id")
    return _visible(qs, viewer=viewer, scopes=RUN_READ_SCOPES)


def visible_deployments(*, viewer) -> QuerySet[Deployment]:
    """Deployments for the API, newest first, with their release, service, environment and
    verification joined: two queries whatever the page size (count, page)."""
    qs = (
        Deployment.objects.select_related("release", "service", "environment", "verification")
        # The rows name their release; its prose (up to 100 KB of notes) stays in the table.
        .defer("release__description", "release__release_notes")
        .order_by("-created_at", "-id")
    )
    return _visible(qs, viewer=viewer, scopes=DEPLOYMENT_READ_SCOPES)


def token_manageable_services(user):
    """Services whose CI tokens ``user`` may create and revoke: administrators every
    service, release managers those of their teams, everybody else none."""
    from core.roles import Role, has_role
    from releases.models import Service
    from releases.rules import is_administrator

    if not getattr(user, "is_authenticated", False) or getattr(user, "is_machine", False):
        return Service.objects.none()
    if is_administrator(user):
        return Service.objects.all()
    if has_role(user, Role.RELEASE_MANAGER):
        return Service.objects.filter(team__in=user.teams.all())
    return Service.objects.none()


def tokens_for_manager(user) -> list:
    """The tokens ``user`` manages: each of whose services ``user`` may manage (a token
    with no service is an administrator's). Newest first, active before revoked; two
    queries however many tokens there are."""
    from releases.rules import is_administrator

    from .models import ApiToken

    manageable = set(token_manageable_services(user).values_list("id", flat=True))
    is_admin = is_administrator(user)
    tokens = (
        ApiToken.objects.select_related("created_by")
        .prefetch_related("services")
        .order_by("revoked_at", "-created_at")
    )
    if not is_admin:
        tokens = tokens.filter(services__in=manageable).distinct()
    return [
        token
        for token in tokens
        if is_admin or (token.services.all() and {s.id for s in token.services.all()} <= manageable)
    ]


CHECK_READ_SCOPES = (TokenScope.DEPLOYMENTS_CHECK, TokenScope.RELEASES_READ)


def visible_deployment_checks(*, viewer) -> QuerySet[DeploymentCheck]:
    """Deployment checks for the API, newest first, with their release and change request
    joined (one query for one check). Read like the deployments: every role holder reads
    them all; a token with ``deployments:check`` or ``releases:read``, those of its
    services."""
    qs = (
        DeploymentCheck.objects.select_related("release", "change_request")
        .defer("release__description", "release__release_notes")
        .order_by("-created_at", "-id")
    )
    return _visible(qs, viewer=viewer, scopes=CHECK_READ_SCOPES)


def release_deployment_checks(*, release, limit: int = 10) -> list[DeploymentCheck]:
    """The latest deployment checks asked about a release (the release page's panel)."""
    return list(
        DeploymentCheck.objects.filter(release=release)
        .select_related("token", "actor")
        .order_by("-created_at", "-id")[:limit]
    )
