"""Reads of the pipelines app for pages, with their joins chosen (query count does not grow
with the rows)."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Prefetch, Q

from releases.models import Deployment, Environment, Release

from .models import Artefact, Incident, PipelineCheck, PipelineRun

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


def release_delivery(*, release: Release) -> ReleaseDelivery:
    """What CI/CD reported for a release: the runs of its services for its version (or a
    commit its gates saw), the artefacts of that version with their digests, and the
    deployments per environment (newest first) with their incidents. Five queries."""
    service_ids = [s.pk for s in release.services.all()]
    runs = list(
        PipelineRun.objects.filter(service_id__in=service_ids, version=release.version)
        .select_related("service")
        .prefetch_related(Prefetch("checks", queryset=PipelineCheck.objects.order_by("kind")))
        .order_by("-created_at", "-id")[:RUNS_SHOWN]
    )
    artefacts = list(
        Artefact.objects.filter(service_id__in=service_ids, version=release.version)
        .select_related("service", "first_run")
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
        runs=runs, artefacts=artefacts, environments=list(by_environment.values())
    )
