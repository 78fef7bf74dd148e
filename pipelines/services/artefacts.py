"""Artefacts reported with pipeline runs: one immutable record per (service, name, digest),
named by any number of versions and tags (``ArtefactTag``), none of which ever moves to
another digest.

The create path of a run on PostgreSQL records its artefacts inside the run's own statement
(``runs._insert_run_tree_postgresql``); every other path (SQLite, a later report of a known
run, a race on PostgreSQL) goes through ``artefacts_register`` here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import connection, transaction

from core.audit import audit_record
from core.errors import Conflict

from ..adapters.types import Ignored
from ..models import Artefact, ArtefactTag
from ..reports import ArtefactReport
from ._common import audit_actor, via


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


@dataclass
class ArtefactsRecorded:
    """What ``artefacts_register`` did: the versions it tagged for the first time
    (``name:version``) and what of the report it did not store."""

    new_tags: list[str] = field(default_factory=list)
    ignored: list[Ignored] = field(default_factory=list)


def reporter_label(actor) -> str:
    """Who reported, as ArtefactTag.reported_by names it: ``token:…``, ``integration:…``, a
    user name, or ``system`` for the pollers."""
    return actor.get_username() if actor is not None else "system"


def run_key(run) -> str:
    return f"{run.provider}#{run.external_id}.{run.attempt}"


def artefacts_register(
    *, service_id: int, run, artefacts: tuple[ArtefactReport, ...], reporter: str, now
) -> ArtefactsRecorded:
    """Record a run's artefacts and their versions, inside the caller's transaction.

    Three statements at most, whatever the number of artefacts: insert the new digests,
    insert the new versions (``INSERT … SELECT`` joining the digests, ``RETURNING`` what was
    new), and — only when some version was known already — read those back to refuse one
    bound to another digest (ArtefactTampered) and to name a differing URI as ignored. Insert
    first and verify after, so a concurrent post of another digest cannot slip between a
    read and a write.
    """
    if not artefacts:
        return ArtefactsRecorded()
    first_of_digest: dict[tuple[str, str], ArtefactReport] = {}
    for a in artefacts:
        first_of_digest.setdefault((a.name, a.digest), a)
    Artefact.objects.bulk_create(
        [
            Artefact(
                service_id=service_id,
                name=a.name,
                version=a.version,
                digest=a.digest,
                uri=a.uri,
                first_run_id=run.pk,
                created_at=now,
            )
            # In one order for every post, so that concurrent posts lock rows alike.
            for _, a in sorted(first_of_digest.items())
        ],
        ignore_conflicts=True,
    )
    new = _insert_tags(service_id, run.pk, artefacts, reporter, now)
    recorded = ArtefactsRecorded(new_tags=sorted(f"{name}:{version}" for name, version in new))
    if len(new) < len(artefacts):
        recorded.ignored = artefacts_verify(
            service_id=service_id,
            run_key=run_key(run),
            artefacts=tuple(a for a in artefacts if (a.name, a.version) not in new),
        )
    return recorded


def _insert_tags(
    service_id: int, run_id: int, artefacts: tuple[ArtefactReport, ...], reporter: str, now
) -> set[tuple[str, str]]:
    """INSERT the versions not recorded yet, each pointing at its digest's artefact; returns
    the (name, version) pairs inserted. One statement on PostgreSQL and SQLite alike (a CTE
    names the VALUES' columns; ``WHERE true`` lets SQLite parse the upsert clause), in
    (name, version) order like every post, so concurrent posts cannot deadlock on them."""
    qn = connection.ops.quote_name
    tag_table = qn(ArtefactTag._meta.db_table)
    artefact_table = qn(Artefact._meta.db_table)
    rows = ", ".join(["(%s, %s, %s, %s)"] * len(artefacts))
    sql = (
        f"WITH v(name, version, digest, uri) AS (VALUES {rows}) "
        f"INSERT INTO {tag_table} "
        "(artefact_id, service_id, name, version, uri, run_id, reported_by, created_at) "
        "SELECT a.id, a.service_id, v.name, v.version, v.uri, %s, %s, %s "
        f"FROM v JOIN {artefact_table} a ON a.service_id = %s AND a.name = v.name "
        "AND a.digest = v.digest WHERE true ORDER BY v.name, v.version "
        "ON CONFLICT (service_id, name, version) DO NOTHING RETURNING name, version"
    )
    params: list = []
    for a in artefacts:
        params += [a.name, a.version, a.digest, a.uri]
    created_at = ArtefactTag._meta.get_field("created_at").get_db_prep_save(now, connection)
    params += [run_id, reporter, created_at, service_id]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {(name, version) for name, version in cursor.fetchall()}


def artefacts_verify(
    *, service_id: int, run_key: str, artefacts: tuple[ArtefactReport, ...]
) -> list[Ignored]:
    """Check reported versions that were recorded already: one bound to another digest is
    refused (ArtefactTampered); one recorded with another URI keeps it (ignored). A version
    not recorded at all — a concurrent insert this transaction cannot see — is a 409 to
    retry, never a silent 2xx. One query."""
    if not artefacts:
        return []
    stored = {
        (t.name, t.version): t
        for t in ArtefactTag.objects.filter(
            service_id=service_id,
            name__in={a.name for a in artefacts},
            version__in={a.version for a in artefacts},
        ).select_related("artefact")
    }
    ignored = []
    for offered in artefacts:
        tag = stored.get((offered.name, offered.version))
        if tag is None:
            raise Conflict(
                f"Artefact {offered.name} {offered.version} was being recorded concurrently; "
                "retry.",
                details={"artefacts": [f"{offered.name} {offered.version}: retry."]},
            )
        if tag.artefact.digest != offered.digest:
            raise ArtefactTampered(existing=tag.artefact, offered=offered, run_key=run_key)
        if offered.uri and offered.uri != tag.uri:
            ignored.append(uri_ignored(offered, tag.uri))
    return ignored


def uri_ignored(offered: ArtefactReport, recorded_uri: str) -> Ignored:
    return Ignored(
        f"artefacts[{offered.name} {offered.version}].uri",
        f"This version is recorded with URI {recorded_uri!r}; a recorded version is "
        "immutable and keeps its first URI.",
    )


def audit_tampering(actor, exc: ArtefactTampered) -> None:
    """Record a refused artefact in its own transaction, so the record survives the refusal."""
    with transaction.atomic():
        audit_record(
            actor=audit_actor(actor),
            action="artefact.digest_mismatch",
            target=exc.existing,
            reason=(
                f"Refused: {exc.offered.name} {exc.offered.version} reported with digest "
                f"{exc.offered.digest} by run {exc.run_key}; recorded digest is "
                f"{exc.existing.digest}. {via(actor)}"
            ).strip(),
            before={"digest": exc.existing.digest},
            after={"digest": exc.offered.digest, "uri": exc.offered.uri, "run": exc.run_key},
        )
