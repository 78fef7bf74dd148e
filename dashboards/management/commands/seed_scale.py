"""``manage.py seed_scale``: years of realistic delivery history, fast, for benchmarks.

    python manage.py seed_scale --releases 10000 --runs 1000000
    python manage.py seed_scale --scale 100        # the same: 100 × (100 releases, 10k runs)

Unlike seed_demo (which drives every step through the services so the audit trail is
genuine), this writes rows directly with ``bulk_create`` in batches: a million pipeline runs
through the services would take hours. The shapes match what the services produce (states
consistent with timestamps, deployments per environment, gate checks, the "request
approval" audit events the approval-wait metric reads), so every page and metric has
realistic work to do. It is meant for an empty (benchmark) database; on a database that
already holds seed_scale data it refuses unless ``--append``.

The history is anchored on "now" (two years back, two months ahead) so the current month of
the calendar and the board are populated at every scale, with the same services, teams and
environments at every scale: 100× data means 100× more releases per service, not more
services.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, models, transaction
from django.utils import timezone

from core import audit_keys
from core.models import AuditChainHead, AuditEvent, audit_event_hash
from core.roles import Role
from governance.models import (
    CABMeeting,
    FreezeWindow,
    GateCheck,
)
from pipelines.models import Incident, PipelineRun
from releases.models import (
    Deployment,
    Environment,
    Release,
    RollbackPlan,
    ScopeItem,
    Service,
    Team,
)

from ...services import metrics_facts_refresh

BATCH = 5000
PREFIX = "scale"  # marks seed_scale rows (release names, run ids, usernames)
TEAMS = {
    "Payments": ["payments-api", "ledger", "billing-worker", "checkout-web"],
    "Identity": ["identity-api", "auth-gateway", "profile-service"],
    "Platform": ["platform-gateway", "search-api", "notifications", "scheduler"],
    "Mobile": ["mobile-bff", "push-service", "app-config"],
    "Data": ["events-pipeline", "reporting-api", "warehouse-loader"],
}
ENVIRONMENTS = [("dev", 1, False), ("staging", 2, False), ("production", 3, True)]
HISTORY = timedelta(days=730)
# One release per live state, with a window where that state belongs (see _releases).
SHAPE = (
    ("planned", timedelta(days=9)),
    ("in_progress", timedelta(days=6)),
    ("awaiting_approval", timedelta(days=4)),
    ("approved", timedelta(days=1)),
    ("deploying", -timedelta(minutes=30)),
    ("deployed", -timedelta(days=1)),
)
AHEAD = timedelta(days=60)
GATES = [
    ("ci", "pre_approval", "ci_green", "CI build green", ""),
    ("tests", "pre_approval", "tests_passed", "Tests passed", ""),
    ("security", "pre_approval", "manual", "Security sign-off", Role.SECURITY_LEAD),
    ("qa", "pre_approval", "manual", "QA sign-off", Role.QA_LEAD),
    ("staging", "pre_deployment", "staging_validated", "Staging validation passed", ""),
]
ORDER = [
    "draft",
    "planned",
    "in_progress",
    "awaiting_approval",
    "approved",
    "deploying",
    "deployed",
    "closed",
]


def batched(items: Iterator[Any], size: int = BATCH) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _adapter(field: Any) -> Any:
    """How one column's Python value becomes a driver parameter, chosen once per column."""
    if isinstance(field, models.DateTimeField):
        if connection.vendor == "sqlite":
            # Django stores aware datetimes on SQLite as naive UTC ISO text.
            return lambda v: (
                None if v is None else v.astimezone(UTC).replace(tzinfo=None).isoformat(" ")
            )
        return lambda v: v
    if isinstance(field, models.JSONField):
        return lambda v: json.dumps(v)
    return lambda v: v


def fast_insert(model: type[models.Model], rows: Iterator[dict[str, Any]]) -> None:
    """INSERT many rows with executemany, filling every other column with its default.

    Used for the one table that must reach millions of rows quickly. Values are adapted
    per column type (datetimes, JSON) rather than through get_db_prep_save per value,
    which is what makes bulk_create slow at this size.
    """
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    adapters = [_adapter(f) for f in fields]
    defaults = [
        f.get_default() if f.has_default() else ("" if not f.null else None) for f in fields
    ]
    names = [f.attname for f in fields]
    table = connection.ops.quote_name(model._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    sql = f"INSERT INTO {table} ({columns}) VALUES ({', '.join(['%s'] * len(fields))})"
    with connection.cursor() as cursor:
        for chunk in batched(rows, 20_000):
            cursor.executemany(
                sql,
                [
                    tuple(
                        adapt(row.get(name, default))
                        for name, adapt, default in zip(names, adapters, defaults, strict=True)
                    )
                    for row in chunk
                ],
            )


class Command(BaseCommand):
    help = "Generate a large, realistic delivery history quickly (bulk inserts)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--releases", type=int, default=None)
        parser.add_argument("--runs", type=int, default=None)
        parser.add_argument(
            "--scale", type=float, default=None, help="N × (100 releases, 10,000 runs)."
        )
        parser.add_argument("--seed", type=int, default=42)
        parser.add_argument("--append", action="store_true", help="Add to existing data.")

    def handle(self, *args: Any, **options: Any) -> None:
        scale = options["scale"]
        releases = options["releases"] or (int(100 * scale) if scale else 10_000)
        runs = options["runs"] or (int(10_000 * scale) if scale else 1_000_000)
        if releases < 1 or runs < 0:
            raise CommandError("--releases must be ≥ 1 and --runs ≥ 0.")
        if Release.objects.filter(name__startswith=f"{PREFIX} ").exists() and not options["append"]:
            raise CommandError("seed_scale data exists; use a fresh database or --append.")
        self.rng = random.Random(options["seed"])
        self.now = timezone.now().replace(minute=0, second=0, microsecond=0)
        started = time.monotonic()
        with transaction.atomic():
            self._reference()
            ids = self._releases(releases)
            self._children(ids)
            deployments = self._deployments(ids)
            self._runs(ids, runs)
            self._incidents(deployments)
            self._governance(ids)
            self._last_touched(ids)
            written = metrics_facts_refresh(full=True)
        if connection.vendor == "postgresql":
            # What autovacuum does within a minute of a bulk load: planner statistics, so a
            # benchmark right after seeding measures the plans production would run.
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")
        self.stdout.write(
            self.style.SUCCESS(
                f"seed_scale: {releases} releases, {runs} pipeline runs, "
                f"{len(deployments)} deployments ({written} metrics facts) in "
                f"{time.monotonic() - started:.1f} s"
            )
        )

    def _last_touched(self, ids: list[int]) -> None:
        """``updated_at`` as a real history has it: the release's last event, not the moment
        of the bulk insert (which made two years of closed releases look recently finished
        to the board's "recent" columns)."""
        from django.db.models import F, Value
        from django.db.models.functions import Coalesce, Least

        Release.objects.filter(pk__in=ids).update(
            updated_at=Least(
                Coalesce(
                    F("closed_at"),
                    F("deployed_at"),
                    F("deployment_started_at"),
                    F("approved_at"),
                    F("planned_at"),
                    F("created_at"),
                ),
                Value(self.now),
            )
        )

    # --- reference data (idempotent) ------------------------------------------------------

    def _reference(self) -> None:
        User = get_user_model()
        self.envs = {}
        for slug, order, prod in ENVIRONMENTS:
            self.envs[slug], _ = Environment.objects.get_or_create(
                slug=slug, defaults={"name": slug, "order": order, "is_production": prod}
            )
        self.services: list[Service] = []
        self.managers: dict[int, Any] = {}
        rm_group, _ = Group.objects.get_or_create(name=Role.RELEASE_MANAGER)
        for name, service_names in TEAMS.items():
            team, _ = Team.objects.get_or_create(slug=name.lower(), defaults={"name": name})
            manager, created = User.objects.get_or_create(
                username=f"{PREFIX}-rm-{team.slug}",
                defaults={"first_name": name, "last_name": "Release Manager"},
            )
            if created:
                manager.set_unusable_password()
                manager.save()
                manager.groups.add(rm_group)
                team.members.add(manager)
            self.managers[team.pk] = manager
            for service_name in service_names:
                service, _ = Service.objects.get_or_create(
                    slug=service_name, defaults={"name": service_name, "team": team}
                )
                self.services.append(service)
        self.service_team = {s.pk: s.team_id for s in self.services}

    # --- releases -------------------------------------------------------------------------

    def _state_for(self, start: datetime) -> str:
        age = self.now - start
        roll = self.rng.random()
        if age > timedelta(days=14):
            return "cancelled" if roll < 0.05 else "rolled_back" if roll < 0.09 else "closed"
        if age > timedelta(days=2):
            return "deployed" if roll < 0.6 else "closed"
        if age > -timedelta(days=1):
            return "deploying" if roll < 0.3 else "approved" if roll < 0.6 else "deployed"
        if age > -timedelta(days=10):
            return self.rng.choice(["in_progress", "awaiting_approval", "approved", "planned"])
        return "draft" if roll < 0.4 else "planned"

    def _releases(self, count: int) -> list[int]:
        span = HISTORY + AHEAD
        first = self.now - HISTORY
        counters: dict[int, int] = {}
        created_ids: list[int] = []
        base = Release.objects.count()

        def build() -> Iterator[Release]:
            for i in range(count):
                start = first + span * (i / count) + timedelta(minutes=self.rng.randint(0, 600))
                start = start.replace(hour=self.rng.choice([6, 9, 11, 14, 16, 20]), minute=0)
                end = start + timedelta(hours=self.rng.choice([1, 2, 2, 3, 4]))
                service = self.services[(i * 7 + self.rng.randint(0, 2)) % len(self.services)]
                counters[service.pk] = counters.get(service.pk, 0) + 1
                state = self._state_for(start)
                if i < len(SHAPE):
                    # Every scale has a release in each live state near now, so the pages
                    # run the same code paths (and queries) at 1× as at 100×.
                    state, offset = SHAPE[i]
                    start = (self.now + offset).replace(minute=0, second=0, microsecond=0)
                    end = start + timedelta(hours=2)
                index = ORDER.index(state) if state in ORDER else len(ORDER)
                shipped = state in ("deployed", "closed", "rolled_back")
                release = Release(
                    name=f"{PREFIX} {service.name}",
                    version=f"{counters[service.pk] // 20 + 1}.{counters[service.pk] % 20}.0",
                    release_type=self.rng.choice(["minor", "minor", "patch", "major", "hotfix"]),
                    risk_level=self.rng.choice(["low", "low", "medium", "medium", "high"]),
                    state=state,
                    owner=self.managers[service.team_id],
                    window_start=start,
                    window_end=end,
                    target_date=(start - timedelta(days=self.rng.choice([0, 0, 0, 1, 3]))).date(),
                    description="Generated by seed_scale.",
                    created_at=start - timedelta(days=21),
                    planned_at=start - timedelta(days=12) if index >= 1 else None,
                    approved_at=start - timedelta(hours=self.rng.randint(4, 60))
                    if index >= 4
                    else None,
                    deployment_started_at=start if index >= 5 else None,
                    deployed_at=end if shipped else None,
                    closed_at=end + timedelta(days=3) if state == "closed" else None,
                )
                release._service_id = service.pk  # type: ignore[attr-defined]
                yield release

        link = Release.services.through
        for chunk in batched(build()):
            Release.objects.bulk_create(chunk, batch_size=BATCH)
            if chunk[0].pk is None:  # backends that do not return ids (none we support)
                raise CommandError("bulk_create did not return primary keys.")
            links = []
            for r in chunk:
                links.append(link(release_id=r.pk, service_id=r._service_id))
                if self.rng.random() < 0.15:  # some releases span two services of a team
                    sibling = self.rng.choice(
                        [s for s in self.services if s.team_id == self.service_team[r._service_id]]
                    )
                    if sibling.pk != r._service_id:
                        links.append(link(release_id=r.pk, service_id=sibling.pk))
            link.objects.bulk_create(links, batch_size=BATCH)
            created_ids.extend(r.pk for r in chunk)
        self.release_rows = {
            row[0]: row
            for row in Release.objects.filter(pk__in=created_ids)
            .order_by()
            .values_list(
                "pk", "state", "window_start", "window_end", "version", "approved_at", "planned_at"
            )
            .iterator(chunk_size=BATCH)
        }
        self.release_service = dict(
            link.objects.filter(release_id__in=created_ids)
            .order_by("release_id", "-id")
            .values_list("release_id", "service_id")
        )
        del base
        return created_ids

    def _children(self, ids: list[int]) -> None:
        ScopeItem.objects.bulk_create(
            (
                ScopeItem(release_id=pk, title=f"Change set {pk}", external_key=f"SC-{pk}")
                for pk in ids
            ),
            batch_size=BATCH,
        )
        RollbackPlan.objects.bulk_create(
            (RollbackPlan(release_id=pk, steps="Redeploy the previous image.") for pk in ids),
            batch_size=BATCH,
        )

    # --- deployments, runs, incidents -----------------------------------------------------

    def _deployments(self, ids: list[int]) -> list[Deployment]:
        made: list[Deployment] = []
        rows: list[Deployment] = []
        for pk in ids:
            _, state, start, end, version, _, _ = self.release_rows[pk]
            service_id = self.release_service[pk]
            if state in ("draft", "planned", "in_progress", "awaiting_approval", "cancelled"):
                continue
            staging_at = start - timedelta(days=1)
            rows.append(
                Deployment(
                    release_id=pk,
                    service_id=service_id,
                    environment=self.envs["staging"],
                    version=version,
                    state="succeeded",
                    started_at=staging_at,
                    finished_at=staging_at + timedelta(minutes=9),
                    created_at=staging_at,
                )
            )
            if state == "approved":
                rows.append(
                    Deployment(
                        release_id=pk,
                        service_id=service_id,
                        environment=self.envs["production"],
                        version=version,
                        state="pending",
                        created_at=staging_at,
                    )
                )
                continue
            if state == "deploying":
                prod_state, finished = "in_progress", None
            elif state == "rolled_back":
                prod_state, finished = "rolled_back", start + timedelta(minutes=25)
            else:
                prod_state = "failed" if self.rng.random() < 0.06 else "succeeded"
                finished = start + timedelta(minutes=self.rng.randint(8, 40))
            rows.append(
                Deployment(
                    release_id=pk,
                    service_id=service_id,
                    environment=self.envs["production"],
                    version=version,
                    state=prod_state,
                    started_at=start,
                    finished_at=finished,
                    created_at=start,
                )
            )
            if prod_state == "failed":  # fixed by a second attempt
                rows.append(
                    Deployment(
                        release_id=pk,
                        service_id=service_id,
                        environment=self.envs["production"],
                        version=version,
                        state="succeeded",
                        started_at=finished + timedelta(minutes=30),
                        finished_at=finished + timedelta(minutes=30 + self.rng.randint(8, 90)),
                        created_at=finished + timedelta(minutes=30),
                    )
                )
        for chunk in batched(iter(rows)):
            made.extend(Deployment.objects.bulk_create(chunk, batch_size=BATCH))
        return made

    def _runs(self, ids: list[int], count: int) -> None:
        """CI runs as CI produces them: each release version is built by a few runs on main
        (started one hour to nine days before its window: the lead times), and most runs
        are pull-request builds of the same services in between, whose versions no release
        carries. Inserted with executemany: a million model instances through bulk_create
        would take ten minutes."""
        if not count:
            return
        n = len(ids)
        rng = self.rng
        release_builds = min(count, 3 * n)

        def build() -> Iterator[dict[str, Any]]:
            for i in range(count):
                pk = ids[i % n]
                _, _, start, _, version, _, _ = self.release_rows[pk]
                begun = start - timedelta(minutes=rng.randint(60, 60 * 24 * 9))
                on_main = i < release_builds
                yield {
                    "service_id": self.release_service[pk],
                    "provider": "github_actions",
                    "external_id": f"{PREFIX}-{pk}-{i}",
                    "status": "failed" if rng.random() < 0.12 else "succeeded",
                    "commit_sha": f"{rng.getrandbits(160):040x}",
                    "ref": "refs/heads/main" if on_main else f"refs/pull/{i % 5000}/merge",
                    "version": version if on_main else f"{version}-pr.{i}",
                    "started_at": begun,
                    "finished_at": begun + timedelta(minutes=rng.randint(4, 25)),
                    "created_at": begun,
                    "updated_at": begun,
                }

        fast_insert(PipelineRun, build())

    def _incidents(self, deployments: list[Deployment]) -> None:
        production = self.envs["production"].pk
        rows = []
        for d in deployments:
            if d.environment_id != production or d.state not in ("succeeded", "rolled_back"):
                continue
            if d.state == "rolled_back" or self.rng.random() < 0.04:
                begun = d.finished_at + timedelta(minutes=self.rng.randint(5, 180))
                resolved = begun + timedelta(minutes=self.rng.randint(10, 600))
                rows.append(
                    Incident(
                        deployment_id=d.pk,
                        service_id=d.service_id,
                        fingerprint=f"{PREFIX}-{d.pk}",
                        alertname=self.rng.choice(["HighErrorRate", "LatencyP99", "PodCrashLoop"]),
                        summary="Generated by seed_scale.",
                        status="resolved" if resolved < self.now else "open",
                        started_at=begun,
                        resolved_at=resolved if resolved < self.now else None,
                    )
                )
        Incident.objects.bulk_create(rows, batch_size=BATCH)

    # --- governance: gates, approval requests, CAB meetings, freezes ----------------------

    def _governance(self, ids: list[int]) -> None:
        release_type = ContentType.objects.get_for_model(Release)
        key_id = audit_keys.current_key_id()
        secret = audit_keys.secret(key_id)
        gates, events, heads = [], [], []
        for pk in ids:
            _, state, start, _, version, approved_at, planned_at = self.release_rows[pk]
            if approved_at:
                requested = approved_at - timedelta(minutes=self.rng.randint(30, 60 * 48))
                # The first link of the release's audit chain (core.audit):
                # same key, sequence and hash as audit_record would write, so the chain
                # verifies.
                event = AuditEvent(
                    created_at=requested,
                    actor_label=f"{PREFIX}-rm",
                    action="release.request_approval",
                    target_type=release_type,
                    target_id=str(pk),
                    target_repr=f"release {pk}",
                    release_id=pk,
                    from_state="in_progress",
                    to_state="awaiting_approval",
                    chain_key=f"release:{pk}",
                    chain_seq=1,
                    prev_hash="",
                    key_id=key_id,
                )
                event.hash = audit_event_hash(event, secret=secret)
                events.append(event)
                heads.append(AuditChainHead(key=event.chain_key, seq=1, hash=event.hash))
            if state in ("draft", "cancelled") or planned_at is None:
                continue
            index = ORDER.index(state) if state in ORDER else len(ORDER)
            for position, (key, stage, kind, label, role) in enumerate(GATES):
                done = index >= 4 or (index == 3 and kind != "manual") or self.rng.random() < 0.3
                if stage == "pre_deployment":
                    done = index >= 5
                gates.append(
                    GateCheck(
                        release_id=pk,
                        policy_name="Standard",
                        policy_version=1,
                        key=key,
                        position=position,
                        stage=stage,
                        kind=kind,
                        label=label,
                        role=role,
                        requirement={"key": key, "kind": kind, "stage": stage},
                        status="passed" if done else "pending",
                        decided_at=planned_at + timedelta(days=2) if done else None,
                        pending_since=planned_at,
                        created_at=planned_at,
                    )
                )
        GateCheck.objects.bulk_create(gates, batch_size=BATCH)
        AuditEvent.objects.bulk_create(events, batch_size=BATCH)
        AuditChainHead.objects.bulk_create(heads, batch_size=BATCH, ignore_conflicts=True)
        if not CABMeeting.objects.exists():
            monday = (self.now - timedelta(days=self.now.weekday())).replace(hour=10)
            CABMeeting.objects.bulk_create(
                CABMeeting(
                    title=f"Weekly CAB {(monday + timedelta(weeks=w)):%d %b}",
                    scheduled_at=monday + timedelta(weeks=w, days=1),
                    state="closed" if w < 0 else "scheduled",
                )
                for w in range(-12, 8)
            )
        if not FreezeWindow.objects.exists():
            FreezeWindow.objects.create(
                name="Weekend freeze",
                reason="Nobody on call for rollbacks at weekends.",
                kind="cron",
                cron="0 18 * * FRI",
                end_time="08:00",
                end_weekday=0,
                tz="Europe/Berlin",
            )
            year_end = self.now.replace(month=12, day=20, hour=0)
            FreezeWindow.objects.create(
                name="Year-end freeze",
                reason="Peak trading and reduced staffing.",
                kind="once",
                start=year_end,
                end=year_end + timedelta(days=14),
            )
