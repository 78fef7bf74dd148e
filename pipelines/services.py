"""Writes of the pipelines app: API tokens, pipeline runs (with checks and artefacts),
deployments reported by CD systems, integrations and what their webhooks report.

Every service follows the project's order: atomic → lock → permission → change → audit →
side effects on commit.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, replace

from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django_fsm import ConcurrentTransition

from governance.services import audit_record
from releases.choices import DeploymentState, ReleaseState
from releases.errors import (
    Conflict,
    DomainError,
    InvalidInput,
    NotFound,
    PermissionDenied,
    TransitionNotAllowed,
)
from releases.models import Deployment, Environment, Release, Service

from .adapters.types import AlertEvent, RunEvent
from .authentication import DeploymentReporter, IntegrationPrincipal, forget_token
from .models import (
    FINISHED_RUN_STATUSES,
    ApiToken,
    Artefact,
    Incident,
    IncidentStatus,
    Integration,
    IntegrationProvider,
    IntegrationSecret,
    PipelineCheck,
    PipelineRun,
    RunStatus,
    TokenScope,
    WebhookDelivery,
    hash_token,
)
from .reports import ArtefactReport, CheckReport, DeploymentReport, report_hash

DEFAULT_SCOPES = (TokenScope.RUNS_WRITE.value, TokenScope.DEPLOYMENTS_WRITE.value)


def api_token_create(
    *, actor, name: str, service_slugs: Iterable[str], scopes: Iterable[str] | None = None
) -> tuple[ApiToken, str]:
    """Create a token and return it with its raw value, which is never stored or shown again."""
    name = name.strip()
    if not name:
        raise InvalidInput("A token needs a name.")
    slugs = sorted(set(service_slugs))
    services = list(Service.objects.filter(slug__in=slugs))
    missing = set(slugs) - {s.slug for s in services}
    if missing:
        raise NotFound(f"Unknown service(s): {', '.join(sorted(missing))}.")
    scopes = sorted(set(scopes or DEFAULT_SCOPES))
    unknown = set(scopes) - set(TokenScope.values)
    if unknown:
        raise InvalidInput(
            f"Unknown scope(s): {', '.join(sorted(unknown))}. "
            f"Known: {', '.join(TokenScope.values)}."
        )
    raw = ApiToken.generate_raw()
    with transaction.atomic():
        if ApiToken.objects.filter(name=name).exists():
            raise InvalidInput(f"A token named {name!r} already exists.")
        token = ApiToken.objects.create(
            name=name,
            key_hash=hash_token(raw),
            key_hint=raw[:8],
            scopes=scopes,
            created_by=actor if getattr(actor, "pk", None) else None,
        )
        token.services.set(services)
        audit_record(
            actor=actor,
            action="api_token.create",
            target=token,
            after={"name": name, "services": slugs, "scopes": scopes},
        )
    return token, raw


def api_token_revoke(*, actor, name: str, reason: str = "") -> ApiToken:
    """Revoke a token by name; revoking twice is a no-op that says so."""
    with transaction.atomic():
        token = ApiToken.objects.select_for_update().filter(name=name).first()
        if token is None:
            raise NotFound(f"No token named {name!r}.")
        if token.revoked_at is not None:
            return token
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        # Forget the cached token now and again after commit (a request in between could
        # have cached it once more).
        forget_token(token.key_hash)
        transaction.on_commit(lambda: forget_token(token.key_hash))
        audit_record(actor=actor, action="api_token.revoke", target=token, reason=reason)
    return token


# --- pipeline runs ----------------------------------------------------------------------------

RUN_STATUS_RANK = {
    RunStatus.QUEUED: 0,
    RunStatus.RUNNING: 1,
    RunStatus.SUCCEEDED: 2,
    RunStatus.FAILED: 2,
    RunStatus.CANCELLED: 2,
}
# Text fields a later report may fill in or correct (an out-of-order one only fills blanks).
_RUN_TEXT_FIELDS = ("commit_sha", "ref", "version", "url", "name", "repository")


@dataclass
class RunUpsertResult:
    """What ``pipeline_run_upsert`` did: created the run, changed it, or nothing at all."""

    run: PipelineRun
    created: bool
    changed: bool
    checks: list[PipelineCheck | CheckReport] | None = None


class ArtefactTampered(Conflict):
    """An artefact name+version arrived with another digest than the recorded one."""

    def __init__(self, *, existing: Artefact, offered: ArtefactReport, run_key: str):
        super().__init__(
            f"Artefact {offered.name} {offered.version} is recorded with digest "
            f"{existing.digest}; a different digest ({offered.digest}) was reported. "
            "Artefacts are immutable: publish the rebuild under a new version.",
            details={"artefacts": [f"{offered.name} {offered.version}: digest mismatch."]},
        )
        self.existing = existing
        self.offered = offered
        self.run_key = run_key


def _service_id(service: Service | int) -> int:
    return service if isinstance(service, int) else service.pk


def authorise_report(actor, service_id: int, scope: str, service_label: str = "") -> None:
    """Machines report only for their services and within their scopes; the system (pollers,
    ``actor=None``) and superusers may report for any service."""
    if actor is None:
        return
    if getattr(actor, "is_machine", False):
        if not actor.has_scope(scope):
            raise PermissionDenied(f"This token lacks the {scope!r} scope.")
        if service_id not in actor.service_ids:
            raise PermissionDenied(
                f"This token may not report for service {service_label or service_id!r}."
            )
        return
    if getattr(actor, "is_superuser", False):
        return
    raise PermissionDenied("Only CI/CD tokens and integrations report pipeline activity.")


def audit_actor(actor):
    """The actor to write in the audit trail: integrations are recorded as the system, with
    the integration named in the reason (the trail's actor is a user or a token)."""
    return None if getattr(actor, "integration", None) is not None else actor


def _via(actor) -> str:
    integration = getattr(actor, "integration", None)
    return _via_integration(integration) if integration is not None else ""


# Identity fields must fit (a truncated id would merge different runs); descriptive ones are
# shortened, so a long workflow name does not lose a webhook delivery.
_RUN_KEY_FIELDS = ("external_id", "commit_sha", "version")
_RUN_TRUNCATED_FIELDS = ("ref", "url", "name", "repository", "raw_status")


def _storable(event: RunEvent) -> RunEvent:
    """Refuse what the database cannot store (NUL characters, lone surrogates, over-long
    ids) with a 400 instead of a database error; webhook payloads reach here unvalidated."""
    changes = {}
    errors: dict[str, list[str]] = {}
    for name in (*_RUN_KEY_FIELDS, *_RUN_TRUNCATED_FIELDS):
        value = getattr(event, name)
        if "\x00" in value or _has_surrogates(value):
            errors[name] = ["Contains characters that cannot be stored (NUL or surrogates)."]
            continue
        limit = PipelineRun._meta.get_field(name).max_length
        if len(value) > limit:
            if name in _RUN_KEY_FIELDS:
                errors[name] = [f"Must be at most {limit} characters."]
            else:
                changes[name] = value[:limit]
    if errors:
        raise InvalidInput("The run cannot be recorded: " + ", ".join(errors), details=errors)
    return replace(event, **changes) if changes else event


def _has_surrogates(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _insert_run_if_absent(values: dict) -> int | None:
    """INSERT … ON CONFLICT DO NOTHING RETURNING id: the new run's id, or None when the run
    exists. One round trip, and safe under concurrency: a concurrent insert of the same key
    waits for the first one to commit and then returns nothing (PostgreSQL and SQLite ≥ 3.35).
    """
    meta = PipelineRun._meta
    fields = [meta.get_field(name) for name in values]
    qn = connection.ops.quote_name
    sql = (
        f"INSERT INTO {qn(meta.db_table)} ({', '.join(qn(f.column) for f in fields)}) "
        f"VALUES ({', '.join(['%s'] * len(fields))}) "
        "ON CONFLICT (provider, external_id, attempt) DO NOTHING RETURNING id"
    )
    params = [f.get_db_prep_save(values[f.name], connection) for f in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return row[0] if row else None


def _register_artefacts(
    *, service_id: int, run: PipelineRun, artefacts: tuple[ArtefactReport, ...]
) -> None:
    """Record the run's artefacts. The same (name, digest) is one record; the same (name,
    version) with another digest is refused (ArtefactTampered). Insert first and verify after,
    so a concurrent post of a different digest cannot slip between a read and a write."""
    if not artefacts:
        return
    Artefact.objects.bulk_create(
        [
            Artefact(
                service_id=service_id,
                name=a.name,
                version=a.version,
                digest=a.digest,
                uri=a.uri,
                first_run_id=run.pk,
            )
            for a in artefacts
        ],
        ignore_conflicts=True,
    )
    _verify_artefacts(service_id=service_id, run=run, artefacts=artefacts)


def _verify_artefacts(
    *, service_id: int, run: PipelineRun, artefacts: tuple[ArtefactReport, ...]
) -> None:
    """Refuse an artefact whose name+version is recorded with another digest."""
    stored = Artefact.objects.filter(
        service_id=service_id,
        name__in={a.name for a in artefacts},
        version__in={a.version for a in artefacts},
    ).only("id", "name", "version", "digest")
    by_version = {(s.name, s.version): s for s in stored}
    for offered in artefacts:
        existing = by_version.get((offered.name, offered.version))
        if existing is not None and existing.digest != offered.digest:
            raise ArtefactTampered(
                existing=existing,
                offered=offered,
                run_key=f"{run.provider}#{run.external_id}.{run.attempt}",
            )
        # existing None: the digest was already recorded under another version tag; the
        # (service, name, digest) record stands and the extra tag is not an artefact of its own.


_run_columns_sql: dict[tuple[str, ...], str] = {}


def _run_columns(names: tuple[str, ...]) -> str:
    """``(col, …) SELECT %s, …`` for these run fields, built once per process."""
    sql = _run_columns_sql.get(names)
    if sql is None:
        qn = connection.ops.quote_name
        meta = PipelineRun._meta
        columns = ", ".join(qn(meta.get_field(name).column) for name in names)
        sql = _run_columns_sql[names] = f"({columns}) SELECT {', '.join(['%s'] * len(names))}"
    return sql


def _insert_run_tree_postgresql(
    values: dict, checks: tuple[CheckReport, ...], artefacts: tuple[ArtefactReport, ...]
) -> tuple[int | None, int, bool]:
    """The create path in one statement (PostgreSQL): the run, its checks and its artefacts
    through data-modifying CTEs, guarded so that nothing is inserted when an artefact name and
    version is already recorded with another digest. Returns (run id or None when the run
    exists or was refused, artefacts inserted, refused for a digest mismatch).

    This is the hottest write of the application; being one statement it needs no explicit
    transaction either (one round trip instead of six: see docs/benchmarks-ingest.md).
    """
    qn = connection.ops.quote_name
    columns = _run_columns(tuple(values))
    params: list = []
    sql = ["WITH "]
    if artefacts:
        rows = ", ".join(["(%s, %s, %s, %s)"] * len(artefacts))
        sql.append(
            f"v(name, version, digest, uri) AS (VALUES {rows}), "
            f"bad AS (SELECT 1 FROM {qn(Artefact._meta.db_table)} a JOIN v "
            "ON a.service_id = %s AND a.name = v.name AND a.version = v.version "
            "AND a.digest <> v.digest LIMIT 1), "
        )
        for a in artefacts:
            params += [a.name, a.version, a.digest, a.uri]
        params.append(values["service"])
    sql.append(
        f"run AS (INSERT INTO {qn(PipelineRun._meta.db_table)} {columns} "
        + ("WHERE NOT EXISTS (SELECT 1 FROM bad) " if artefacts else "")
        + "ON CONFLICT (provider, external_id, attempt) DO NOTHING RETURNING id)"
    )
    # Plain Python values (str, int, bool, None, aware datetime): psycopg2 adapts them as the
    # fields' get_db_prep_save would, without a model-field call per column.
    params += values.values()
    if checks:
        rows = ", ".join(["(%s, %s, %s, %s::jsonb)"] * len(checks))
        sql.append(
            f", chk AS (INSERT INTO {qn(PipelineCheck._meta.db_table)} "
            "(run_id, kind, name, status, metrics) "
            "SELECT run.id, c.kind, c.name, c.status, c.metrics FROM run, "
            f"(VALUES {rows}) AS c(kind, name, status, metrics))"
        )
        for c in checks:
            params += [c.kind, c.name, c.status, json.dumps(c.metrics)]
    if artefacts:
        sql.append(
            f", art AS (INSERT INTO {qn(Artefact._meta.db_table)} "
            "(service_id, name, version, digest, uri, first_run_id, created_at) "
            "SELECT %s, v.name, v.version, v.digest, v.uri, run.id, %s FROM run, v "
            "ON CONFLICT DO NOTHING RETURNING 1)"
            " SELECT (SELECT id FROM run), (SELECT count(*) FROM art), "
            "EXISTS (SELECT 1 FROM bad)"
        )
        params += [values["service"], values["created_at"]]
    else:
        sql.append(" SELECT (SELECT id FROM run), 0, false")
    with connection.cursor() as cursor:
        cursor.execute("".join(sql), params)
        run_id, inserted, refused = cursor.fetchone()
    return run_id, inserted, refused


def _audit_tampering(actor, exc: ArtefactTampered) -> None:
    """Record a refused artefact in its own transaction, so the record survives the refusal."""
    with transaction.atomic():
        audit_record(
            actor=audit_actor(actor),
            action="artefact.digest_mismatch",
            target=exc.existing,
            reason=(
                f"Refused: {exc.offered.name} {exc.offered.version} reported with digest "
                f"{exc.offered.digest} by run {exc.run_key}; recorded digest is "
                f"{exc.existing.digest}. {_via(actor)}"
            ).strip(),
            before={"digest": exc.existing.digest},
            after={"digest": exc.offered.digest, "uri": exc.offered.uri, "run": exc.run_key},
        )


def _on_commit_enqueue(task_name: str, object_id: int) -> None:
    """Queue a task after commit. Robust: the record is committed whatever happens to the
    broker; a failed enqueue is logged and must not turn an accepted post into a 500."""

    def enqueue() -> None:
        from . import tasks

        getattr(tasks, task_name).delay(object_id)

    transaction.on_commit(enqueue, robust=True)


def _queue_gate_evaluation(run_id: int) -> None:
    """After commit, hand the run to the gate dispatcher (batched Celery task; the run's
    gates_pending flag, written with the change, is the durable record of the work)."""
    from .gate_dispatch import dispatcher

    def dispatch() -> None:
        dispatcher.add(run_id)

    transaction.on_commit(dispatch, robust=True)


def pipeline_run_upsert(
    *,
    actor,
    service: Service | int,
    event: RunEvent,
    checks: tuple[CheckReport, ...] = (),
    artefacts: tuple[ArtefactReport, ...] = (),
) -> RunUpsertResult:
    """Record a CI run (one attempt) with its checks and artefacts: the one write path for the
    REST endpoint, the webhooks and the pollers.

    Permissions: a token with ``runs:write`` for the service, an integration of the service,
    or the system. Idempotent on (provider, external_id, attempt): the same report again reads
    one row and writes nothing; a finished run never goes back to queued or running (an
    out-of-order event only fills blanks). After commit the automated gates of that service's
    releases are re-evaluated (batched Celery task, see gate_dispatch).

    Audit: every change to a recorded run (status, corrections, late details, checks) and
    every refused artefact is an audit event. The first report of a run is not: it is a
    machine-reported fact, append-only in its own table, with its provenance on the row
    (reported_by_token / reported_by_integration, created_at) — auditing it would triple the
    writes of the hottest path and double the audit table for no decision recorded. The
    decisions runs lead to (gate results) are audited by governance.
    Raises PermissionDenied, Conflict (run of another service) or ArtefactTampered (409, whose
    audit event is committed on its own).
    """
    service_id = _service_id(service)
    authorise_report(actor, service_id, TokenScope.RUNS_WRITE, getattr(service, "slug", ""))
    event = _storable(event)
    digest = report_hash(event, checks, artefacts)
    try:
        if connection.vendor == "postgresql":
            created = _run_create_postgresql(actor, service_id, event, checks, artefacts, digest)
            if created is not None:
                return created
        with transaction.atomic():
            return _run_upsert(actor, service_id, event, checks, artefacts, digest)
    except ArtefactTampered as exc:
        _audit_tampering(actor, exc)
        raise


def _run_values(actor, service_id: int, event: RunEvent, digest: str, now) -> dict:
    finished = event.status in FINISHED_RUN_STATUSES
    return {
        "service": service_id,
        "provider": event.provider,
        "external_id": event.external_id,
        "attempt": event.attempt,
        "status": event.status,
        "commit_sha": event.commit_sha,
        "ref": event.ref,
        "version": event.version,
        "url": event.url,
        "name": event.name,
        "repository": event.repository,
        "raw_status": event.raw_status,
        "waiting_approval": event.waiting_approval,
        "started_at": event.started_at,
        "finished_at": (event.finished_at or now) if finished else None,
        "report_hash": digest,
        "gates_pending": True,
        "reported_by_token": getattr(getattr(actor, "token", None), "pk", None),
        "reported_by_integration": getattr(getattr(actor, "integration", None), "pk", None),
        "created_at": now,
        "updated_at": now,
    }


def _created_run(run_id: int, values: dict) -> PipelineRun:
    values = dict(values)
    for fk in ("service", "reported_by_token", "reported_by_integration"):
        values[f"{fk}_id"] = values.pop(fk)
    run = PipelineRun(id=run_id, **values)
    run._state.adding = False
    return run


def _run_create_postgresql(
    actor, service_id, event, checks, artefacts, digest
) -> RunUpsertResult | None:
    """Try the create path as one autocommitted statement; None when the run exists."""
    now = timezone.now()
    values = _run_values(actor, service_id, event, digest, now)
    run_id, inserted, refused = _insert_run_tree_postgresql(values, checks, artefacts)
    if refused:
        probe = PipelineRun(
            provider=event.provider, external_id=event.external_id, attempt=event.attempt
        )
        _verify_artefacts(service_id=service_id, run=probe, artefacts=artefacts)
    if run_id is None:
        return None
    run = _created_run(run_id, values)
    if inserted < len(artefacts):
        # Recorded already: the same digest (one record, fine) — or, if a concurrent post
        # slipped a different digest in after our guard read, refused: undo the run.
        try:
            _verify_artefacts(service_id=service_id, run=run, artefacts=artefacts)
        except ArtefactTampered:
            with transaction.atomic():
                PipelineRun.objects.filter(pk=run_id).delete()
            raise
    _queue_gate_evaluation(run_id)
    # The checks as reported are the checks stored (same kind, name, status, metrics).
    return RunUpsertResult(run=run, created=True, changed=True, checks=list(checks))


def _run_upsert(
    actor,
    service_id: int,
    event: RunEvent,
    checks: tuple[CheckReport, ...],
    artefacts: tuple[ArtefactReport, ...],
    digest: str,
) -> RunUpsertResult:
    now = timezone.now()
    if connection.vendor != "postgresql":
        values = _run_values(actor, service_id, event, digest, now)
        run_id = _insert_run_if_absent(values)
        if run_id is not None:
            run = _created_run(run_id, values)
            new_checks = PipelineCheck.objects.bulk_create(
                [
                    PipelineCheck(
                        run_id=run_id, kind=c.kind, name=c.name, status=c.status, metrics=c.metrics
                    )
                    for c in checks
                ]
            )
            _register_artefacts(service_id=service_id, run=run, artefacts=artefacts)
            _queue_gate_evaluation(run_id)
            return RunUpsertResult(run=run, created=True, changed=True, checks=new_checks)

    key = {"provider": event.provider, "external_id": event.external_id, "attempt": event.attempt}
    run = PipelineRun.objects.filter(**key).first()
    if run is None:  # removed between our insert attempt and this read (a refused artefact)
        raise TransitionNotAllowed("The run changed while it was being recorded; retry.")
    if run.service_id != service_id:
        raise Conflict(
            f"Run {event.provider} #{event.external_id} attempt {event.attempt} is recorded "
            "for another service.",
            details={"external_id": ["Already used by a run of another service."]},
        )
    if run.report_hash == digest:
        return RunUpsertResult(run=run, created=False, changed=False)
    run = PipelineRun.objects.select_for_update().get(pk=run.pk)
    if run.report_hash == digest:  # an identical report committed while we waited
        return RunUpsertResult(run=run, created=False, changed=False)
    return _run_merge(actor, run, event, checks, artefacts, digest, now)


def _run_merge(actor, run, event, checks, artefacts, digest, now) -> RunUpsertResult:
    stale = RUN_STATUS_RANK[event.status] < RUN_STATUS_RANK[run.status]
    before: dict = {}
    after: dict = {}

    def put(field: str, value) -> None:
        current = getattr(run, field)
        if current != value:
            before[field], after[field] = current, value
            setattr(run, field, value)

    if not stale:
        put("status", event.status)
        if event.raw_status:
            put("raw_status", event.raw_status)
        put("waiting_approval", event.waiting_approval)
    for field in _RUN_TEXT_FIELDS:
        value = getattr(event, field)
        if value and (not stale or not getattr(run, field)):
            put(field, value)
    # Times are facts: the first one known is kept (Jenkins' FINALIZED times, for one, are
    # shifted by post-build steps; its COMPLETED ones are exact).
    if run.started_at is None and event.started_at is not None:
        put("started_at", event.started_at)
    if run.status in FINISHED_RUN_STATUSES and run.finished_at is None:
        put("finished_at", event.finished_at or now)

    existing = {(c.kind, c.name): c for c in run.checks.all()}
    check_changes: dict[str, str] = {}
    to_create, to_update = [], []
    for c in checks:
        current = existing.get((c.kind, c.name))
        label = f"{c.kind}:{c.name}".rstrip(":")
        if current is None:
            current = PipelineCheck(
                run=run, kind=c.kind, name=c.name, status=c.status, metrics=c.metrics
            )
            to_create.append(current)
            existing[(c.kind, c.name)] = current
            check_changes[label] = c.status
        elif not stale and (current.status != c.status or current.metrics != c.metrics):
            current.status, current.metrics = c.status, c.metrics
            to_update.append(current)
            check_changes[label] = c.status
    _register_artefacts(service_id=run.service_id, run=run, artefacts=artefacts)

    if not after and not check_changes:
        # A different body that adds nothing (for instance a late "running" event for a
        # finished run that repeats what is known): no write, no audit, no re-evaluation.
        return RunUpsertResult(
            run=run, created=False, changed=False, checks=list(existing.values())
        )
    if to_create:
        PipelineCheck.objects.bulk_create(to_create)
    if to_update:
        PipelineCheck.objects.bulk_update(to_update, ["status", "metrics"])
    run.report_hash = digest
    run.updated_at = now
    run.gates_pending = True
    run.save(update_fields=[*after.keys(), "report_hash", "gates_pending", "updated_at"])
    if check_changes:
        after["checks"] = check_changes
    reason = " ".join(
        part
        for part in (
            "Out-of-order event: only missing details were filled in." if stale else "",
            _via(actor),
        )
        if part
    )
    audit_record(
        actor=audit_actor(actor),
        action="pipeline_run.status" if "status" in after else "pipeline_run.update",
        target=run,
        from_state=before.get("status", ""),
        to_state=after.get("status", ""),
        reason=reason,
        before=before,
        after=after,
    )
    _queue_gate_evaluation(run.pk)
    return RunUpsertResult(run=run, created=False, changed=True, checks=list(existing.values()))


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
    service_id = _service_id(service)
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
            reason=_via(actor),
            after={
                "environment": environment.slug,
                "version": deployment.version,
                "status": report.status,
                **changed_fields,
            },
        )
        _on_commit_enqueue("evaluate_gates_for_deployment", deployment.pk)
    refusal = _sync_release(actor, deployment, environment, record_refusal=changed)
    return DeploymentResult(
        deployment=deployment, created=created, changed=changed, refusal=refusal
    )


def _sync_release(actor, deployment, environment, *, record_refusal: bool) -> DomainError | None:
    """Move the release along with its production deployment, through the release services
    (which check permission, readiness and governance: freeze windows, the window)."""
    from releases import services as release_services

    release = deployment.release
    if release is None or not environment.is_production or actor is None:
        return None
    reporter = DeploymentReporter(actor) if getattr(actor, "token", None) else actor
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


# --- integrations and their webhooks ----------------------------------------------------------


def integration_create(
    *, actor, provider: str, name: str, service_slugs: Iterable[str], secret: str
) -> Integration:
    """Configure a webhook sender for some services, with its first secret. Administrators
    (and management commands, actor=None). Audited; the secret is never written to the trail.
    """
    _require_admin(actor)
    name = name.strip()
    if provider not in IntegrationProvider.values:
        raise InvalidInput(
            f"Unknown provider {provider!r}. Known: {', '.join(IntegrationProvider.values)}."
        )
    if not name or len(name) > 100:
        raise InvalidInput("An integration needs a name of at most 100 characters.")
    _check_secret(secret)
    slugs = sorted(set(service_slugs))
    services = list(Service.objects.filter(slug__in=slugs))
    missing = set(slugs) - {s.slug for s in services}
    if missing or not slugs:
        raise NotFound(f"Unknown service(s): {', '.join(sorted(missing)) or '(none given)'}.")
    with transaction.atomic():
        if Integration.objects.filter(name=name).exists():
            raise InvalidInput(f"An integration named {name!r} already exists.")
        integration = Integration.objects.create(provider=provider, name=name)
        integration.services.set(services)
        IntegrationSecret.objects.create(integration=integration, secret=secret)
        audit_record(
            actor=actor,
            action="integration.create",
            target=integration,
            after={"provider": provider, "name": name, "services": slugs},
        )
    return integration


def integration_secret_add(
    *, actor, integration: Integration | int, secret: str
) -> IntegrationSecret:
    """Add a secret (rotation): old and new both verify until the old one is revoked."""
    _require_admin(actor)
    _check_secret(secret)
    with transaction.atomic():
        integration = Integration.objects.select_for_update().get(
            pk=integration.pk if isinstance(integration, Integration) else integration
        )
        added = IntegrationSecret.objects.create(integration=integration, secret=secret)
        audit_record(
            actor=actor,
            action="integration.secret_add",
            target=integration,
            after=_secret_hint(added),
        )
    return added


def integration_secret_revoke(*, actor, secret: IntegrationSecret | int) -> IntegrationSecret:
    """Revoke a secret; deliveries signed with it are refused from now on."""
    _require_admin(actor)
    with transaction.atomic():
        secret = IntegrationSecret.objects.select_for_update().get(
            pk=secret.pk if isinstance(secret, IntegrationSecret) else secret
        )
        if secret.revoked_at is None:
            secret.revoked_at = timezone.now()
            secret.save(update_fields=["revoked_at"])
            audit_record(
                actor=actor,
                action="integration.secret_revoke",
                target=secret.integration,
                before=_secret_hint(secret),
            )
    return secret


def integration_admin_saved(
    *,
    actor,
    integration: Integration,
    created: bool,
    changed_fields: Iterable[str],
    secrets_added: Iterable[IntegrationSecret],
    secrets_replaced: Iterable[IntegrationSecret],
    secrets_deleted: Iterable[IntegrationSecret],
) -> None:
    """Audit what the Django admin just saved of an integration (its form and its secrets'
    inline), inside the admin's own transaction: ``integration.create`` or ``.update`` with
    the fields changed (nothing when none changed), and one ``.secret_add``,
    ``.secret_replace`` or ``.secret_delete`` per secret row, by its hint only."""
    changed_fields = list(changed_fields)
    if created or changed_fields:
        audit_record(
            actor=actor,
            action="integration.create" if created else "integration.update",
            target=integration,
            reason="Added in the admin."
            if created
            else "Changed in the admin: " + ", ".join(changed_fields),
            after=_integration_state(integration),
        )
    for action, secrets in (
        ("integration.secret_add", secrets_added),
        ("integration.secret_replace", secrets_replaced),
    ):
        for secret in secrets:
            audit_record(actor=actor, action=action, target=integration, after=_secret_hint(secret))
    for secret in secrets_deleted:
        audit_record(
            actor=actor,
            action="integration.secret_delete",
            target=integration,
            before=_secret_hint(secret),
        )


def integration_delete(*, actor, integration: Integration) -> None:
    """Delete an integration and its secrets: its deliveries are refused from now on.
    Administrators. Audited with what it was (``integration.delete``)."""
    _require_admin(actor)
    with transaction.atomic():
        audit_record(
            actor=actor,
            action="integration.delete",
            target=integration,
            before=_integration_state(integration),
        )
        integration.delete()


def _integration_state(integration: Integration) -> dict:
    return {
        "provider": integration.provider,
        "name": integration.name,
        "enabled": integration.enabled,
        "services": sorted(integration.services.values_list("slug", flat=True)),
    }


def _secret_hint(secret: IntegrationSecret) -> dict:
    return {"secret_hint": secret.hint + "…"}


def _require_admin(actor) -> None:
    if actor is None or getattr(actor, "is_superuser", False):
        return
    if getattr(actor, "is_machine", False) or not actor.has_perm("pipelines.add_integration"):
        raise PermissionDenied("Only administrators configure integrations.")


def _check_secret(secret: str) -> None:
    if not secret or len(secret) > 200 or "\x00" in secret:
        raise InvalidInput("A secret must be 1 to 200 characters.")


def integrations_verifying(provider: str, verify) -> Integration | None:
    """The enabled integration of this provider with an active secret that ``verify`` accepts
    (``verify`` gets the list of an integration's secrets, so rotation overlaps verify)."""
    by_integration: dict[int, tuple[Integration, list[str]]] = {}
    for secret in IntegrationSecret.objects.filter(
        integration__provider=provider, integration__enabled=True, revoked_at__isnull=True
    ).select_related("integration"):
        entry = by_integration.setdefault(secret.integration_id, (secret.integration, []))
        entry[1].append(secret.secret)
    for integration, secrets in by_integration.values():
        if verify(secrets):
            return integration
    return None


def service_for_repository(integration: Integration, repository: str) -> Service:
    """Map a payload's repository (``owner/name``, a GitLab path, a Jenkins job) to one of the
    integration's services: its only service, else by Service.repository_url, else by slug."""
    services = list(integration.services.all())
    if len(services) == 1:
        return services[0]
    repo = repository.strip("/").lower().removesuffix(".git")
    for service in services:
        url = service.repository_url.lower().rstrip("/").removesuffix(".git")
        if url and repo and url.endswith("/" + repo):
            return service
    parts = set(repo.split("/"))
    for service in services:
        if service.slug.lower() in parts:
            return service
    raise InvalidInput(
        f"Repository {repository!r} is not mapped to a service of integration "
        f"{integration.name!r}: set the service's repository URL.",
        details={"repository": [f"Not mapped: {repository!r}."]},
    )


@dataclass
class DeliveryResult:
    duplicate: bool
    run: PipelineRun | None = None
    created: bool = False
    changed: bool = False


def webhook_run_receive(
    *, integration: Integration, delivery_id: str, event_name: str, event: RunEvent
) -> DeliveryResult:
    """Record a verified CI webhook delivery and upsert its run, in one transaction.

    The delivery row (unique per provider and delivery id) is written first, so the same
    delivery sent twice — or fifty times at once — is processed once: the others wait on the
    unique index and find it taken. A delivery whose processing fails is rolled back with it,
    so the provider's redelivery is processed. Without a delivery id the run upsert's own
    idempotency applies.
    """
    service = service_for_repository(integration, event.repository)
    principal = IntegrationPrincipal(
        integration, frozenset(integration.services.values_list("id", flat=True))
    )
    with transaction.atomic():
        delivery = None
        if delivery_id:
            try:
                with transaction.atomic():
                    delivery = WebhookDelivery.objects.create(
                        provider=integration.provider,
                        delivery_id=delivery_id,
                        integration=integration,
                        event=event_name[:50],
                    )
            except IntegrityError:
                return DeliveryResult(duplicate=True)
        result = pipeline_run_upsert(actor=principal, service=service, event=event)
        if delivery is not None:
            WebhookDelivery.objects.filter(pk=delivery.pk).update(run=result.run.pk)
    return DeliveryResult(
        duplicate=False, run=result.run, created=result.created, changed=result.changed
    )


@dataclass
class AlertsResult:
    opened: int = 0
    resolved: int = 0
    ignored: int = 0


def alerts_receive(*, integration: Integration, alerts: list[AlertEvent]) -> AlertsResult:
    """Turn Alertmanager alerts into incidents on production deployments.

    A firing alert for a service (of this integration) and a production environment opens an
    incident on the latest deployment of that service there that started before the alert
    (the alert fired during or after it); resolved closes it. One incident per alert
    occurrence (fingerprint + startsAt), so repeated notifications change nothing. Alerts
    without such a deployment are ignored (counted). Audited; incidents feed change failure
    rate and time to restore.
    """
    result = AlertsResult()
    services = dict(integration.services.values_list("slug", "id"))
    environments = {e.slug: e for e in Environment.objects.filter(is_production=True)}
    for alert in alerts:
        service_id = services.get(alert.service)
        if alert.environment:
            environment = environments.get(alert.environment)
            env_ids = [environment.pk] if environment else []
        else:
            env_ids = [e.pk for e in environments.values()]
        if service_id is None or not env_ids:
            result.ignored += 1
            continue
        with transaction.atomic():
            if alert.status == "firing":
                opened = _incident_open(integration, service_id, env_ids, alert)
                result.opened += opened
                result.ignored += 1 - opened
            else:
                resolved = _incident_resolve(integration, alert)
                result.resolved += resolved
                result.ignored += 1 - resolved
    return result


def _text(value: str, limit: int) -> str:
    """Alert labels are free text: drop what the database cannot store, cut to the column."""
    return value.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")[:limit]


def _incident_open(integration, service_id, env_ids, alert: AlertEvent) -> int:
    started = alert.starts_at or timezone.now()
    deployment = (
        Deployment.objects.filter(
            service_id=service_id,
            environment_id__in=env_ids,
            started_at__lte=started,
            state__in=[
                DeploymentState.IN_PROGRESS,
                DeploymentState.SUCCEEDED,
                DeploymentState.ROLLED_BACK,
            ],
        )
        .order_by("-started_at", "-id")
        .first()
    )
    if deployment is None:
        return 0
    try:
        with transaction.atomic():
            incident = Incident.objects.create(
                deployment=deployment,
                service_id=service_id,
                fingerprint=_text(alert.fingerprint, 64),
                alertname=_text(alert.alertname, 200),
                summary=_text(alert.annotations.get("summary", ""), 500),
                url=_text(alert.generator_url, 500),
                started_at=started,
            )
    except IntegrityError:
        return 0  # this occurrence is already open (or resolved)
    audit_record(
        actor=None,
        action="incident.open",
        target=incident,
        release=deployment.release,
        to_state=incident.status,
        reason=f"Alert {_text(alert.alertname or alert.fingerprint, 200)} fired. "
        f"{_via_integration(integration)}",
        after={"fingerprint": incident.fingerprint, "deployment": deployment.pk},
    )
    return 1


def _incident_resolve(integration, alert: AlertEvent) -> int:
    incident = (
        Incident.objects.select_for_update()
        .select_related("deployment")
        .filter(fingerprint=_text(alert.fingerprint, 64), status=IncidentStatus.OPEN)
        .filter(**({"started_at": alert.starts_at} if alert.starts_at else {}))
        .first()
    )
    if incident is None:
        return 0
    incident.status = IncidentStatus.RESOLVED
    incident.resolved_at = alert.ends_at or timezone.now()
    incident.save(update_fields=["status", "resolved_at"])
    audit_record(
        actor=None,
        action="incident.resolve",
        target=incident,
        release=incident.deployment.release,
        from_state=IncidentStatus.OPEN,
        to_state=IncidentStatus.RESOLVED,
        reason=f"Alert {_text(alert.alertname or alert.fingerprint, 200)} resolved. "
        f"{_via_integration(integration)}",
    )
    return 1


def _via_integration(integration) -> str:
    return f"Reported by the {integration.provider} integration {integration.name!r}."
