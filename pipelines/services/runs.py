"""Pipeline runs with their checks and artefacts: the idempotent upsert behind
`POST /api/v1/pipeline-runs/`, the webhooks and the pollers."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, replace

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from core import metrics
from core.audit import audit_record
from core.errors import Conflict, InvalidInput, TransitionNotAllowed
from releases.models import Service

from ..adapters.types import Ignored, RunEvent
from ..gate_dispatch import dispatcher
from ..models import (
    FINISHED_RUN_STATUSES,
    Artefact,
    ArtefactTag,
    PipelineCheck,
    PipelineRun,
    RunStatus,
    TokenScope,
)
from ..reports import ArtefactReport, CheckReport, report_hash
from ..verdicts import RUN_RELEVANCE_SQL, run_may_affect_gates
from ._common import audit_actor, authorise_report, service_id_of, via
from ._prepared import execute_planned_once
from .artefacts import (
    ArtefactTampered,
    artefacts_register,
    artefacts_verify,
    audit_tampering,
    reporter_label,
    run_key,
    uri_ignored,
)

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
    # What the report held that the run does not (docs/ingestion.md, "Nothing acknowledged
    # is lost"): the answer names each value and why.
    ignored: list[Ignored] = dataclasses.field(default_factory=list)


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


_run_columns_sql: dict[tuple[str, ...], str] = {}


def _run_columns(names: tuple[str, ...]) -> str:
    """``(col, …) SELECT %s::type, …`` for these run fields, built once per process. The casts
    (to the column's type without its length, so an over-long value still fails instead of
    being cut) type the parameters of the prepared statement. ``gates_pending`` is decided in
    the statement: whether the run concerns an open release (``_run_params``)."""
    sql = _run_columns_sql.get(names)
    if sql is None:
        qn = connection.ops.quote_name
        fields = [PipelineRun._meta.get_field(name) for name in names]
        columns = ", ".join(qn(f.column) for f in fields)
        casts = ", ".join(
            RUN_RELEVANCE_SQL
            if f.name == "gates_pending"
            else f"%s::{f.db_type(connection).split('(')[0]}"
            for f in fields
        )
        sql = _run_columns_sql[names] = f"({columns}) SELECT {casts}"
    return sql


def _run_params(values: dict) -> list:
    """The parameters of ``_run_columns``: the values as they are (plain Python values that
    psycopg2 adapts as the fields' get_db_prep_save would, without a model-field call per
    column), and for ``gates_pending`` the five of ``RUN_RELEVANCE_SQL``."""
    params = []
    for name, value in values.items():
        if name == "gates_pending":
            version, commit = values["version"], values["commit_sha"]
            params += [values["service"], version, version, commit, commit]
        else:
            params.append(value)
    return params


def _insert_run_tree_postgresql(
    values: dict,
    checks: tuple[CheckReport, ...],
    artefacts: tuple[ArtefactReport, ...],
    reporter: str,
) -> tuple[int | None, bool, int, list]:
    """The create path in one statement (PostgreSQL): the run, its checks, its artefacts and
    their versions through data-modifying CTEs, guarded so that nothing is inserted when a
    reported artefact version is already recorded with another digest. Returns (run id or
    None when the run exists or was refused, whether it concerns an open release's gates,
    versions inserted, the reported versions that were recorded already as [name, version,
    digest, uri]). Raises IntegrityError, having
    written nothing, when a concurrent post inserted one of its digests or versions.

    This is the hottest write of the application; being one statement it needs no explicit
    transaction either (one round trip instead of six: see docs/benchmarks-ingest.md).
    """
    qn = connection.ops.quote_name
    columns = _run_columns(tuple(values))
    artefact_table = qn(Artefact._meta.db_table)
    tag_table = qn(ArtefactTag._meta.db_table)
    service = values["service"]
    params: list = []
    sql = ["WITH "]
    if artefacts:
        rows = ", ".join(["(%s::int, %s::text, %s::text, %s::text, %s::text)"] * len(artefacts))
        sql.append(
            f"v(i, name, version, digest, uri) AS (VALUES {rows}), "
            # Every look-up below is a LATERAL probe driven by the reported rows (v), its
            # LIMIT 1 (the key is unique) keeping the planner from flattening it: an index
            # seek on the full key whatever the table statistics say (a fresh or
            # never-analysed table otherwise got a scan of every row of the service).
            "known AS (SELECT k.name, k.version, k.digest, k.uri FROM v CROSS JOIN LATERAL "
            f"(SELECT t.name, t.version, a.digest, t.uri FROM {tag_table} t "
            f"JOIN {artefact_table} a ON a.id = t.artefact_id "
            "WHERE t.service_id = %s AND t.name = v.name AND t.version = v.version LIMIT 1) k), "
        )
        for i, a in enumerate(artefacts):
            params += [i, a.name, a.version, a.digest, a.uri]
        params.append(service)
    sql.append(
        f"run AS (INSERT INTO {qn(PipelineRun._meta.db_table)} {columns} "
        + (
            "WHERE NOT EXISTS (SELECT 1 FROM known JOIN v ON known.name = v.name "
            "AND known.version = v.version AND known.digest <> v.digest) "
            if artefacts
            else ""
        )
        + "ON CONFLICT (provider, external_id, attempt) DO NOTHING RETURNING id, gates_pending)"
    )
    params += _run_params(values)
    if checks:
        rows = ", ".join(["(%s::text, %s::text, %s::text, %s::jsonb)"] * len(checks))
        sql.append(
            f", chk AS (INSERT INTO {qn(PipelineCheck._meta.db_table)} "
            "(run_id, kind, name, status, metrics) "
            "SELECT run.id, c.kind, c.name, c.status, c.metrics FROM run, "
            f"(VALUES {rows}) AS c(kind, name, status, metrics))"
        )
        for c in checks:
            params += [c.kind, c.name, c.status, json.dumps(c.metrics)]
    if artefacts:
        # New digests and new versions are plain INSERTs of what the snapshot does not hold:
        # one a concurrent post inserts meanwhile fails the whole statement (IntegrityError),
        # and the caller records the report through the transactional path instead. A digest
        # reported under several versions is one artefact, carrying the first one.
        sql.append(
            f", art AS (INSERT INTO {artefact_table} "
            "(service_id, name, version, digest, uri, first_run_id, created_at) "
            "SELECT DISTINCT ON (v.name, v.digest) %s::bigint, v.name, v.version, v.digest, "
            "v.uri, run.id, %s::timestamptz FROM run, v LEFT JOIN LATERAL (SELECT 1 AS hit "
            f"FROM {artefact_table} a WHERE a.service_id = %s AND a.name = v.name "
            "AND a.digest = v.digest LIMIT 1) seen ON true WHERE seen.hit IS NULL "
            "ORDER BY v.name, v.digest, v.i RETURNING id, name, digest), "
            "ids AS (SELECT id, name, digest FROM art UNION ALL "
            "SELECT o.id, o.name, o.digest FROM (SELECT DISTINCT name, digest FROM v) d "
            f"CROSS JOIN LATERAL (SELECT a.id, a.name, a.digest FROM {artefact_table} a "
            "WHERE a.service_id = %s AND a.name = d.name AND a.digest = d.digest LIMIT 1) o), "
            f"tag AS (INSERT INTO {tag_table} "
            "(artefact_id, service_id, name, version, uri, run_id, reported_by, created_at) "
            "SELECT ids.id, %s::bigint, v.name, v.version, v.uri, run.id, %s::text, "
            "%s::timestamptz "
            "FROM run, v JOIN ids ON ids.name = v.name AND ids.digest = v.digest "
            "WHERE NOT EXISTS (SELECT 1 FROM known "
            "WHERE known.name = v.name AND known.version = v.version) "
            "ORDER BY v.name, v.version RETURNING 1)"
            " SELECT (SELECT id FROM run), (SELECT gates_pending FROM run), "
            "(SELECT count(*) FROM tag), "
            "(SELECT json_agg(json_build_array(name, version, digest, uri)) FROM known)"
        )
        created_at = values["created_at"]
        params += [service, created_at, service, service, service, reporter, created_at]
    else:
        sql.append(" SELECT (SELECT id FROM run), (SELECT gates_pending FROM run), 0, NULL")
    shape = (tuple(values), len(checks), len(artefacts))
    with connection.cursor() as cursor:
        if connection.in_atomic_block:
            # Inside a caller's transaction (a webhook), a failed statement must not doom
            # it: a savepoint. Alone (the REST endpoint) the statement is its own transaction.
            with transaction.atomic():
                execute_planned_once(cursor, shape, "".join(sql), params)
        else:
            execute_planned_once(cursor, shape, "".join(sql), params)
        run_id, pending, inserted, known = cursor.fetchone()
    return run_id, bool(pending), inserted, known or []


def _queue_gate_evaluation(run_id: int) -> None:
    """After commit, hand the run to the gate dispatcher (batched Celery task; the run's
    gates_pending flag, written with the change, is the durable record of the work)."""

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
    try:
        result = _pipeline_run_upsert(actor, service, event, checks, artefacts)
    except Exception:
        metrics.RUNS_INGESTED.labels(event.provider, event.status, "refused").inc()
        raise
    outcome = "created" if result.created else ("updated" if result.changed else "unchanged")
    metrics.RUNS_INGESTED.labels(event.provider, event.status, outcome).inc()
    return result


def _pipeline_run_upsert(actor, service, event, checks, artefacts) -> RunUpsertResult:
    service_id = service_id_of(service)
    authorise_report(actor, service_id, TokenScope.RUNS_WRITE, getattr(service, "slug", ""))
    reported, event = event, _storable(event)
    digest = report_hash(event, checks, artefacts)
    reporter = reporter_label(actor)
    try:
        result, create = None, connection.vendor != "postgresql"
        if not create:
            try:
                result = _run_create_postgresql(
                    actor, service_id, event, checks, artefacts, digest, reporter
                )
            except IntegrityError:  # a digest or version a concurrent post just inserted
                create = True
        if result is None:
            with transaction.atomic():
                result = _run_upsert(
                    actor, service_id, event, checks, artefacts, digest, reporter, create
                )
    except ArtefactTampered as exc:
        audit_tampering(actor, exc)
        raise
    result.ignored = [*_run_ignored(reported, result.run, checks, result.checks), *result.ignored]
    return result


def _run_ignored(
    reported: RunEvent, run: PipelineRun, checks: tuple[CheckReport, ...], stored_checks
) -> list[Ignored]:
    """What of this report the recorded run does not hold, and why: the report compared with
    the run as it stands after the upsert, so every path (created, merged, the same report
    again) answers alike. The merge rules that keep a recorded value are docs/ingestion.md's:
    statuses never move back, an out-of-order report only fills blanks, times once known
    are kept, a descriptive text too long for its column is shortened."""
    ignored = list(reported.ignored)
    out_of_order = (
        f"Out-of-order report: {reported.status} ranks below the recorded status "
        f"({run.status}); it only fills in details that are still blank."
    )
    if reported.status != run.status:
        ignored.append(Ignored("status", out_of_order))
    if reported.waiting_approval and not run.waiting_approval:
        ignored.append(Ignored("waiting_approval", out_of_order))
    for name in (*_RUN_TEXT_FIELDS, "raw_status"):
        value, stored = getattr(reported, name), getattr(run, name)
        if value and value != stored:
            limit = PipelineRun._meta.get_field(name).max_length
            shortened = len(value) > limit and stored == value[:limit]
            reason = f"Shortened to {limit} characters." if shortened else out_of_order
            ignored.append(Ignored(name, reason))
    for name in ("started_at", "finished_at"):
        value, stored = getattr(reported, name), getattr(run, name)
        if value is not None and value != stored:
            if stored is None and name == "finished_at":
                reason = f"Kept only once the run is finished; it is {run.status}."
            else:
                reason = f"Times, once known, are kept: recorded {stored.isoformat()}."
            ignored.append(Ignored(name, reason))
    by_key = {(c.kind, c.name): c for c in stored_checks or ()}
    for c in checks:
        stored = by_key.get((c.kind, c.name))
        if stored is not None and (stored.status, stored.metrics) != (c.status, c.metrics):
            label = f"{c.kind}:{c.name}".rstrip(":")
            ignored.append(Ignored(f"checks[{label}]", out_of_order))
    return ignored


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
    actor, service_id, event, checks, artefacts, digest, reporter
) -> RunUpsertResult | None:
    """Try the create path as one autocommitted statement; None when the run exists, and
    IntegrityError (nothing written) when a concurrent post inserted one of its digests or
    versions."""
    now = timezone.now()
    values = _run_values(actor, service_id, event, digest, now)
    run_id, pending, inserted, known = _insert_run_tree_postgresql(
        values, checks, artefacts, reporter
    )
    values["gates_pending"] = pending
    recorded = {(name, version): (digest, uri) for name, version, digest, uri in known}
    key = f"{event.provider}#{event.external_id}.{event.attempt}"
    _refuse_tampering(service_id, key, artefacts, recorded)
    if run_id is None:
        return None
    if pending:
        _queue_gate_evaluation(run_id)
    ignored = [
        uri_ignored(a, recorded[(a.name, a.version)][1])
        for a in artefacts
        if (a.name, a.version) in recorded and a.uri and a.uri != recorded[(a.name, a.version)][1]
    ]
    # The checks as reported are the checks stored (same kind, name, status, metrics); each
    # reported version was inserted or is among those recorded already (``known``).
    return RunUpsertResult(
        run=_created_run(run_id, values),
        created=True,
        changed=True,
        checks=list(checks),
        ignored=ignored,
    )


def _refuse_tampering(service_id: int, key: str, artefacts, recorded: dict) -> None:
    """Raise ArtefactTampered for the first reported version recorded with another digest
    (reading that artefact, the audit event's target)."""
    for offered in artefacts:
        digest = recorded.get((offered.name, offered.version), (offered.digest,))[0]
        if digest != offered.digest:
            existing = Artefact.objects.get(service_id=service_id, name=offered.name, digest=digest)
            raise ArtefactTampered(existing=existing, offered=offered, run_key=key)


def _run_upsert(
    actor,
    service_id: int,
    event: RunEvent,
    checks: tuple[CheckReport, ...],
    artefacts: tuple[ArtefactReport, ...],
    digest: str,
    reporter: str,
    create: bool,
) -> RunUpsertResult:
    """The transactional path: create the run (unless the PostgreSQL statement found it
    recorded already) or merge the report into it."""
    now = timezone.now()
    if create:
        values = _run_values(actor, service_id, event, digest, now)
        values["gates_pending"] = run_may_affect_gates(
            service_id=service_id, version=event.version, commit_sha=event.commit_sha
        )
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
            recorded = artefacts_register(
                service_id=service_id, run=run, artefacts=artefacts, reporter=reporter, now=now
            )
            if run.gates_pending:
                _queue_gate_evaluation(run_id)
            return RunUpsertResult(
                run=run, created=True, changed=True, checks=new_checks, ignored=recorded.ignored
            )

    key = {"provider": event.provider, "external_id": event.external_id, "attempt": event.attempt}
    run = PipelineRun.objects.filter(**key).first()
    if run is None:  # the fast path saw a run this transaction cannot: a concurrent change
        raise TransitionNotAllowed(
            "The run changed while it was being recorded; retry.",
            details={"external_id": ["Being recorded by a concurrent report; retry."]},
        )
    if run.service_id != service_id:
        raise Conflict(
            f"Run {event.provider} #{event.external_id} attempt {event.attempt} is recorded "
            "for another service.",
            details={"external_id": ["Already used by a run of another service."]},
        )
    if run.report_hash != digest:
        run = PipelineRun.objects.select_for_update().get(pk=run.pk)
        if run.report_hash != digest:  # not an identical report committed while we waited
            return _run_merge(actor, run, event, checks, artefacts, digest, reporter, now)
    # The same report again: nothing to write; its answer still names what it did not store.
    return RunUpsertResult(
        run=run,
        created=False,
        changed=False,
        checks=list(run.checks.all()),
        ignored=artefacts_verify(service_id=service_id, run_key=run_key(run), artefacts=artefacts),
    )


def _run_merge(actor, run, event, checks, artefacts, digest, reporter, now) -> RunUpsertResult:
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
    recorded = artefacts_register(
        service_id=run.service_id, run=run, artefacts=artefacts, reporter=reporter, now=now
    )

    if not after and not check_changes and not recorded.new_tags:
        # A different body that adds nothing (for instance a late "running" event for a
        # finished run that repeats what is known): no write, no audit, no re-evaluation.
        return RunUpsertResult(
            run=run,
            created=False,
            changed=False,
            checks=list(existing.values()),
            ignored=recorded.ignored,
        )
    if to_create:
        PipelineCheck.objects.bulk_create(to_create)
    if to_update:
        PipelineCheck.objects.bulk_update(to_update, ["status", "metrics"])
    run.report_hash = digest
    run.updated_at = now
    run.gates_pending = run.gates_pending or run_may_affect_gates(
        service_id=run.service_id, version=run.version, commit_sha=run.commit_sha
    )
    run.save(update_fields=[*after.keys(), "report_hash", "gates_pending", "updated_at"])
    if check_changes:
        after["checks"] = check_changes
    if recorded.new_tags:
        after["artefacts"] = recorded.new_tags
    reason = " ".join(
        part
        for part in (
            "Out-of-order event: only missing details were filled in." if stale else "",
            via(actor),
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
    if run.gates_pending:
        _queue_gate_evaluation(run.pk)
    return RunUpsertResult(
        run=run,
        created=False,
        changed=True,
        checks=list(existing.values()),
        ignored=recorded.ignored,
    )
