"""Ordered promotion and soak time: a version reaches an environment only after it has
succeeded, and been verified, in the environments its promotion path puts before it, and has
run there for their soak time since verification (Kargo's ``requiredSoakTime``).

The path is the release's gate policy's ``promotion_path`` as snapshotted at planning (a list
of environment slugs), else every environment by its ``order``. An environment's
``soak_minutes`` is how long a version must run there, verified, before it goes further.
"Verified" is the deployment verification of ``pipelines.verification``: a passed
verification run (soak counts from its end); where no verification is configured for the
service and environment, the deployment's success is its verification.

Registered with ``releases.readiness`` (``PromotionProvider``) for ``start_deployment``, which
is the release's deployment to production: the release page, the board and the deployment
check read the same blockers. The deployment check asks ``promotion_blockers`` directly for
an environment before production.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import timezone

from governance.models import PolicySnapshot
from releases.choices import DeploymentState
from releases.models import Deployment, Environment, Release
from releases.readiness import Blocker

from .models import VerificationSpec, VerificationStatus

WHO = "CD (deploy and verify it there), or wait for the soak time"


@dataclass(frozen=True)
class Landing:
    """A version's succeeded deployment in one environment, as the rule reads it."""

    finished_at: datetime | None
    verification: str | None  # None: no verification run
    verified_at: datetime | None
    verification_ends_at: datetime | None


def _paths(releases: Sequence[Release], environments: list[Environment]) -> dict[int, list]:
    """Each release's promotion path as environments (one query for the snapshots)."""
    by_slug = {e.slug: e for e in environments}
    snapshots = dict(
        PolicySnapshot.objects.filter(release_id__in=[r.pk for r in releases]).values_list(
            "release_id", "promotion_path"
        )
    )
    paths = {}
    for release in releases:
        slugs = snapshots.get(release.pk) or []
        path = [by_slug[s] for s in slugs if s in by_slug]
        paths[release.pk] = path or list(environments)
    return paths


def _before(path: list[Environment], target: Environment | None) -> list[Environment]:
    """The environments of ``path`` a version must pass before ``target`` (None: the first
    production environment of the path)."""
    if target is None:
        for index, env in enumerate(path):
            if env.is_production:
                return path[:index]
        return [e for e in path if not e.is_production]
    if target in path:
        return path[: path.index(target)]
    return [e for e in path if e.order < target.order]


def _landings(
    pairs: set[tuple[int, str]], environment_ids: set[int]
) -> dict[tuple[int, str, int], list[Landing]]:
    """Succeeded deployments of the (service, version) pairs in those environments, with
    their verification (one query)."""
    found: dict[tuple[int, str, int], list[Landing]] = {}
    if not pairs or not environment_ids:
        return found
    rows = (
        Deployment.objects.filter(
            service_id__in={s for s, _ in pairs},
            version__in={v for _, v in pairs},
            environment_id__in=environment_ids,
            state=DeploymentState.SUCCEEDED,
        )
        .order_by("finished_at", "id")
        .values_list(
            "service_id",
            "version",
            "environment_id",
            "finished_at",
            "verification__status",
            "verification__finished_at",
            "verification__ends_at",
        )
    )
    for service_id, version, env_id, finished, status, verified, ends in rows:
        if (service_id, version) in pairs:
            found.setdefault((service_id, version, env_id), []).append(
                Landing(finished, status, verified, ends)
            )
    return found


def _verified_specs(service_ids: set[int], environment_ids: set[int]) -> dict:
    """(service id, environment id) → the verification window, for enabled specs."""
    if not service_ids or not environment_ids:
        return {}
    return {
        (s, e): timedelta(seconds=w)
        for s, e, w in VerificationSpec.objects.filter(
            enabled=True, service_id__in=service_ids, environment_id__in=environment_ids
        ).values_list("service_id", "environment_id", "window_seconds")
    }


def _rule(
    *,
    label: str,
    target_name: str,
    env: Environment,
    landings: list[Landing],
    window: timedelta | None,
    at: datetime,
) -> Blocker | None:
    """What keeps one service's version from leaving ``env`` for the target, if anything."""
    soak = timedelta(minutes=env.soak_minutes)
    verified_at = None
    pending_until = None
    failed = False
    for landing in landings:
        if landing.verification == VerificationStatus.PASSED:
            candidate = landing.verified_at or landing.finished_at
        elif landing.verification is None and window is None:
            candidate = landing.finished_at  # no verification configured: success is enough
        elif landing.verification == VerificationStatus.RUNNING:
            pending_until = landing.verification_ends_at
            continue
        elif landing.verification is None:  # configured, not started yet
            start = landing.finished_at or at
            pending_until = max(start, at) + window
            continue
        else:
            failed = True
            continue
        if candidate is not None and (verified_at is None or candidate < verified_at):
            verified_at = candidate
    if verified_at is not None:
        until = verified_at + soak
        if soak and until > at:
            return Blocker(
                "soak",
                f"{label} soaks in {env.name} until {until:%Y-%m-%d %H:%M} UTC "
                f"({env.soak_minutes} min after verification) before it may go to "
                f"{target_name}.",
                WHO,
                until=until,
            )
        return None
    if pending_until is not None:
        until = max(pending_until, at) + soak
        return Blocker(
            "verification_pending",
            f"{label} is being verified in {env.name}; with its soak time it may go to "
            f"{target_name} at {until:%Y-%m-%d %H:%M} UTC at the earliest, if verification "
            "passes.",
            WHO,
            until=until,
        )
    if failed:
        return Blocker(
            "verification_failed",
            f"{label} failed its verification in {env.name}; it may not go to {target_name}.",
            "CD (a new version, deployed and verified there)",
        )
    return Blocker(
        "promotion",
        f"{label} has not yet succeeded in {env.name}; it must be deployed and verified there "
        f"before it goes to {target_name}.",
        WHO,
    )


def promotion_blockers_bulk(
    releases: Sequence[Release],
    *,
    target: Environment | None = None,
    at: datetime | None = None,
) -> dict[int, list[Blocker]]:
    """Each release's promotion and soak blockers towards ``target`` (None: production), in
    a fixed number of queries whatever the number of releases."""
    now = at or timezone.now()
    found: dict[int, list[Blocker]] = {r.pk: [] for r in releases}
    if not releases:
        return found
    environments = list(Environment.objects.order_by("order", "name"))
    paths = _paths(releases, environments)
    link = Release.services.through
    services: dict[int, list[tuple[int, str]]] = {}
    for release_id, service_id, slug in (
        link.objects.filter(release_id__in=[r.pk for r in releases])
        .order_by("service__name")
        .values_list("release_id", "service_id", "service__slug")
    ):
        services.setdefault(release_id, []).append((service_id, slug))
    before = {r.pk: _before(paths[r.pk], target) for r in releases}
    env_ids = {e.pk for envs in before.values() for e in envs}
    pairs = {(s, r.version) for r in releases for s, _ in services.get(r.pk, [])}
    landings = _landings(pairs, env_ids)
    specs = _verified_specs({s for s, _ in pairs}, env_ids)
    target_names = {r.pk: target.name if target else "production" for r in releases}
    for release in releases:
        for env in before[release.pk]:
            for service_id, slug in services.get(release.pk, []):
                blocker = _rule(
                    label=f"{slug} {release.version}",
                    target_name=target_names[release.pk],
                    env=env,
                    landings=landings.get((service_id, release.version, env.pk), []),
                    window=specs.get((service_id, env.pk)),
                    at=now,
                )
                if blocker is not None:
                    found[release.pk].append(blocker)
    return found


def environments_before(release: Release, target: Environment | None = None) -> list[Environment]:
    """The environments the release's versions must pass before ``target`` (None:
    production), in path order."""
    environments = list(Environment.objects.order_by("order", "name"))
    return _before(_paths([release], environments)[release.pk], target)


def promotion_blockers(
    release: Release, target: Environment | None = None, *, at: datetime | None = None
) -> list[Blocker]:
    return promotion_blockers_bulk([release], target=target, at=at)[release.pk]


class PromotionProvider:
    """The releases.readiness provider: promotion and soak before ``start_deployment``."""

    def blockers_bulk(
        self, releases: Sequence[Release], transitions: Mapping[int, str]
    ) -> dict[int, list[Blocker]]:
        asked = [r for r in releases if transitions.get(r.pk) == "start_deployment"]
        return promotion_blockers_bulk(asked)


promotion_provider = PromotionProvider()
