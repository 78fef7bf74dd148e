"""Fixtures of the dashboards tests: a small portfolio that can be grown, so a test can render
a page at two data sizes and compare query counts."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from releases.choices import ReleaseState
from releases.models import Deployment, Release


def grow(*, services: list, environments: list, owner, per_state: int, start: datetime) -> None:
    """Add ``per_state`` releases in every board state, windows spread over the coming and
    past weeks (two per day), with deployments to every environment and a shared-service
    overlap on each day, so conflicts exist at every size. Bulk inserts: fast."""
    states = [
        ReleaseState.DRAFT,
        ReleaseState.PLANNED,
        ReleaseState.IN_PROGRESS,
        ReleaseState.AWAITING_APPROVAL,
        ReleaseState.APPROVED,
        ReleaseState.DEPLOYING,
        ReleaseState.DEPLOYED,
        ReleaseState.CLOSED,
    ]
    base = Release.objects.count()
    releases = []
    for i in range(per_state * len(states)):
        n = base + i
        window = start + timedelta(hours=12 * i)
        releases.append(
            Release(
                name=f"Release {n}",
                version=f"2.{n}.0",
                state=states[i % len(states)],
                owner=owner,
                window_start=window,
                window_end=window + timedelta(hours=13),  # overlaps the next one
                target_date=(window + timedelta(days=1)).date(),
            )
        )
    created = Release.objects.bulk_create(releases)
    link = Release.services.through
    link.objects.bulk_create(
        link(release_id=r.pk, service_id=services[k % len(services)].pk)
        for k, r in enumerate(created)
    )
    Deployment.objects.bulk_create(
        Deployment(
            release=r,
            service=services[k % len(services)],
            environment=env,
            version=r.version,
            state="pending",
        )
        for k, r in enumerate(created)
        for env in environments
    )


@pytest.fixture
def portfolio(service, other_service, production, staging, release_manager):
    def add(per_state: int) -> None:
        grow(
            services=[service, other_service],
            environments=[production, staging],
            owner=release_manager,
            per_state=per_state,
            start=timezone.now() - timedelta(days=3),
        )

    return add
