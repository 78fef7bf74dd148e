"""Load the demo, part by part, in the order each part needs the previous ones.

It is idempotent: reference data is keyed by natural keys (slugs, usernames, policy names)
and a release whose (name, version) already exists is skipped whole, so running it twice
changes nothing. Each release is built in its own transaction, so an interrupted run leaves
no half-built one.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from releases.models import Release

from . import delivery, governance, lifecycle, portfolio
from .catalogue import ensure_catalogue
from .users import DEMO_USERS, ensure_users


@dataclass
class SeedResult:
    created: int = 0
    skipped: int = 0
    users: list[str] = field(default_factory=list)


def seed(*, now: datetime | None = None, stdout=None) -> SeedResult:
    """Load the demo portfolio (idempotent). ``now`` is the moment "today" is built around;
    with ``stdout``, each release created is reported on it."""
    now = (now or timezone.now()).replace(microsecond=0)
    result = SeedResult()
    # 1. Reference data: teams, services, environments, users; then the gate and quorum
    #    policies and the freeze, which need the users and environments.
    with transaction.atomic():
        users = ensure_users(ensure_catalogue())
        governance.ensure_reference_data()
    result.users = [u[0] for u in DEMO_USERS]
    # 2. The releases. Built in window order so that, as in real life, an earlier release
    #    has left the deploying state before a later one of the same service starts deploying.
    versions = portfolio.versions()
    for index, spec in sorted(
        enumerate(portfolio.PORTFOLIO), key=lambda pair: (pair[1].day, pair[1].hour, pair[0])
    ):
        version = versions[spec.name]
        if Release.objects.filter(name=spec.name, version=version).exists():
            result.skipped += 1
            continue
        rng = random.Random(f"{spec.name}-{index}")  # stable per release, so reruns agree
        with transaction.atomic():
            lifecycle.build_release(spec, version=version, users=users, now=now, rng=rng)
        result.created += 1
        if stdout is not None:
            stdout.write(f"  {spec.name} {version}: {spec.state}\n")
    # 3. What follows from the releases: CAB meetings closed and scheduled, then the
    #    delivery history the metrics charts read (it includes the shipped releases), then
    #    the questions CD asked before deploying the releases about to ship.
    governance.after_seed()
    delivery.delivery_history()
    delivery.deployment_checks()
    return result
