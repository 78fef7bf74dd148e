"""Delivery history for the demo portfolio, so every metrics chart has something to say.

seed_demo drives about forty releases through their lifecycle; the CD systems that would
have reported their deployments (and the continuous stream of service deployments between
releases) do not exist in a demo. ``demo.seed`` calls ``delivery_history`` last, and it
writes that history directly, the way seed_scale does: for each shipped demo release, its
staging and production deployments at the release's own timestamps; and, for the last six
months, a realistic stream of production deployments per service with the CI runs that
built them, occasional failures fixed by a redeploy, incidents and a rollback. It is demo
data, not application behaviour, and it is idempotent: rows are keyed by provider
``demo-history``, so a second seed_demo adds nothing.
"""

from __future__ import annotations

import random
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from dashboards.services import metrics_facts_refresh
from pipelines.models import DeploymentCheck, Incident, PipelineRun
from pipelines.services.checks import evaluate_deployment_check
from releases.models import Deployment, Environment, Release, Service

PROVIDER = "demo-history"
DAYS = 180


def delivery_history() -> None:
    """Write the demo's deployments, runs and incidents once (see module docstring)."""
    if Deployment.objects.filter(provider=PROVIDER).exists():
        return
    production = Environment.objects.filter(is_production=True).order_by("order").first()
    staging = (
        Environment.objects.filter(is_production=False).order_by("-order").first() or production
    )
    if production is None:
        return
    rng = random.Random(7)
    now = timezone.now()
    deployments: list[Deployment] = []
    runs: list[PipelineRun] = []
    incidents: list[tuple[int, int, int]] = []  # (index in deployments, delay min, length min)

    def deploy(service_id: int, version: str, when, state: str, release_id=None) -> int:
        deployments.append(
            Deployment(
                release_id=release_id,
                service_id=service_id,
                environment=production,
                version=version,
                state=state,
                provider=PROVIDER,
                external_id=f"{PROVIDER}-{len(deployments)}",
                started_at=when - timedelta(minutes=rng.randint(4, 15)),
                finished_at=when,
                created_at=when,
            )
        )
        return len(deployments) - 1

    # 1. The shipped demo releases: deployments at their own moments.
    shipped = Release.objects.filter(
        state__in=["deployed", "closed", "rolled_back"], deployed_at__isnull=False
    ).prefetch_related("services")
    # Releases promoted through staging by the demo's lifecycle already have that deployment.
    promoted = set(
        Deployment.objects.filter(environment=staging).values_list("release_id", "service_id")
    )
    for release in shipped:
        for service in release.services.all():
            state = "rolled_back" if release.state == "rolled_back" else "succeeded"
            index = deploy(service.pk, release.version, release.deployed_at, state, release.pk)
            if state == "rolled_back":
                incidents.append((index, 10, 45))
            if (release.pk, service.pk) in promoted:
                continue
            deployments.append(
                Deployment(
                    release_id=release.pk,
                    service_id=service.pk,
                    environment=staging,
                    version=release.version,
                    state="succeeded",
                    provider=PROVIDER,
                    external_id=f"{PROVIDER}-{len(deployments)}",
                    started_at=release.deployed_at - timedelta(days=1, minutes=12),
                    finished_at=release.deployed_at - timedelta(days=1),
                    created_at=release.deployed_at - timedelta(days=1),
                )
            )

    # 2. The continuous stream between releases: each service at its own pace.
    for service in Service.objects.order_by("name"):
        pace = rng.uniform(0.15, 0.7)  # chance of a production deployment per working day
        minor = 0
        for day in range(DAYS, 0, -1):
            moment = (now - timedelta(days=day)).replace(
                hour=rng.choice([10, 11, 14, 15, 16]), minute=rng.randint(0, 59)
            )
            if moment.weekday() >= 5 or rng.random() > pace:
                continue
            minor += 1
            version = f"9.{minor}.0"
            built = moment - timedelta(minutes=rng.randint(40, 60 * 72))
            runs.append(
                PipelineRun(
                    service_id=service.pk,
                    provider="generic",
                    external_id=f"{PROVIDER}-{service.slug}-{minor}",
                    status="succeeded",
                    commit_sha=f"{rng.getrandbits(160):040x}",
                    ref="refs/heads/main",
                    version=version,
                    started_at=built,
                    finished_at=built + timedelta(minutes=rng.randint(5, 20)),
                    created_at=built,
                    updated_at=built,
                )
            )
            roll = rng.random()
            if roll < 0.07:  # failed, fixed by a redeploy of a patch a little later
                deploy(service.pk, version, moment, "failed")
                fix = moment + timedelta(minutes=rng.randint(30, 240))
                deploy(service.pk, f"9.{minor}.1", fix, "succeeded")
                runs.append(
                    PipelineRun(
                        service_id=service.pk,
                        provider="generic",
                        external_id=f"{PROVIDER}-{service.slug}-{minor}-fix",
                        status="succeeded",
                        version=f"9.{minor}.1",
                        started_at=moment + timedelta(minutes=10),
                        finished_at=moment + timedelta(minutes=22),
                        created_at=moment,
                        updated_at=moment,
                    )
                )
            elif roll < 0.11:  # shipped, then an alert fired
                index = deploy(service.pk, version, moment, "succeeded")
                incidents.append((index, rng.randint(5, 90), rng.randint(15, 480)))
            else:
                deploy(service.pk, version, moment, "succeeded")

    with transaction.atomic():
        Deployment.objects.bulk_create(deployments, batch_size=1000)
        PipelineRun.objects.bulk_create(runs, batch_size=1000, ignore_conflicts=True)
        Incident.objects.bulk_create(
            [
                Incident(
                    deployment_id=deployments[i].pk,
                    service_id=deployments[i].service_id,
                    fingerprint=f"{PROVIDER}-{deployments[i].pk}",
                    alertname=rng.choice(["HighErrorRate", "LatencyP99High", "PodCrashLooping"]),
                    summary="Error rate above 2% for 5 minutes after the deployment.",
                    status="resolved",
                    started_at=deployments[i].finished_at + timedelta(minutes=delay),
                    resolved_at=deployments[i].finished_at + timedelta(minutes=delay + length),
                )
                for i, delay, length in incidents
                if deployments[i].finished_at + timedelta(minutes=delay + length) < now
            ],
            batch_size=1000,
        )
    metrics_facts_refresh(full=True)


def deployment_checks() -> None:
    """What CD asked before deploying the releases about to ship (once): production for the
    approved and deploying ones, through the same decision as the API, so their release
    pages show real answers (allow, deny with the blockers, wait until a freeze ends)."""
    if DeploymentCheck.objects.exists():
        return
    production = Environment.objects.filter(is_production=True).order_by("order").first()
    if production is None:
        return
    releases = Release.objects.filter(
        state__in=["approved", "deploying", "awaiting_approval"]
    ).prefetch_related("services")
    for release in releases.order_by("window_start", "id"):
        service = release.services.order_by("name").first()
        if service is not None:
            evaluate_deployment_check(
                service=service,
                version=release.version,
                environment=production,
                source="argo-cd",
            )
