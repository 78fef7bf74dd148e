"""Signed checkpoints of the audit trail's chain heads (core.models.AuditCheckpoint): the
only writer of checkpoints, and their export outside the database. Imports no project app.

A checkpoint is written by the beat task ``core.audit_checkpoint`` (the heads that moved
since the last periodic one), into every evidence pack (its release's head), and once by
``manage.py reanchor_audit`` (the final heads of the unkeyed trail). Each is signed with
the current audit key (core.audit_keys) and exported as ``<name>.json`` to
``AUDIT_CHECKPOINT_DIR``, written atomically (a temporary file in the same directory,
fsynced, then renamed), so a reader never sees half a file. Periodic and anchor heads are
read as committed, and their file is written inside the transaction that stores the row (a
failed export refuses the checkpoint); an evidence pack's head includes its own transaction's
events, so its file is written after that transaction commits (``checkpoint_write``).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import tempfile
from collections.abc import Iterator
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from . import audit_keys
from .models import AuditChainHead, AuditCheckpoint, CheckpointKind

logger = logging.getLogger(__name__)

FORMAT = "releasegate-audit-checkpoint"
VERSION = 1
# A head that has not moved is stated again by a periodic checkpoint after this long.
RESTATE_AFTER = timedelta(days=7)


def checkpoint_body(checkpoint: AuditCheckpoint) -> dict[str, Any]:
    """What the signature covers: everything but the signature itself."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "name": checkpoint.name,
        "created_at": checkpoint.created_at.astimezone(UTC).isoformat(timespec="microseconds"),
        "kind": checkpoint.kind,
        "key_id": checkpoint.key_id,
        "heads": {key: [int(seq), str(h)] for key, (seq, h) in sorted(checkpoint.heads.items())},
    }


def _message(body: dict[str, Any]) -> bytes:
    fields = {k: v for k, v in body.items() if k != "signature"}
    return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()


def checkpoint_document(checkpoint: AuditCheckpoint) -> dict[str, Any]:
    """The checkpoint as exported and as embedded in an evidence pack: body and signature."""
    return {**checkpoint_body(checkpoint), "signature": checkpoint.signature}


def document_is_signed(document: dict[str, Any]) -> bool:
    """Whether an exported or embedded checkpoint carries a valid signature of its body."""
    signature, key_id = document.get("signature"), document.get("key_id")
    if not isinstance(signature, str) or not isinstance(key_id, str):
        return False
    return audit_keys.matches(signature, key_id, _message(document))


def checkpoint_dir() -> Path:
    return Path(settings.AUDIT_CHECKPOINT_DIR)


def current_heads(chains: list[str] | None = None) -> dict[str, list]:
    """The committed head of every chain (or of ``chains``), as ``{key: [seq, hash]}``."""
    heads = AuditChainHead.objects.exclude(seq=0)
    if chains is not None:
        heads = heads.filter(key__in=chains)
    return {key: [seq, h] for key, seq, h in heads.values_list("key", "seq", "hash").iterator()}


def checkpoint_write(
    *, kind: str, heads: dict[str, list], after_commit: bool = False
) -> AuditCheckpoint:
    """Sign ``heads`` with the current key, store the checkpoint and export its file.

    By default the heads are committed ones (read outside any change), and the file is
    written before the row commits: a failed export refuses the checkpoint. With
    ``after_commit`` (evidence packs, whose head includes events of the caller's own
    transaction) the file is written once that transaction commits — never for heads that
    roll back — and a failed export is logged instead of undoing a deployment: the row
    stays, and verify_audit reports it without its file until someone looks."""
    now = timezone.now()
    checkpoint = AuditCheckpoint(
        name=f"{now:%Y%m%dT%H%M%S%fZ}-{kind}-{secrets.token_hex(4)}",
        created_at=now,
        kind=kind,
        heads=heads,
        key_id=audit_keys.current_key_id(),
    )
    checkpoint.signature = audit_keys.sign(checkpoint.key_id, _message(checkpoint_body(checkpoint)))
    with transaction.atomic():
        checkpoint.save()
        if after_commit:
            transaction.on_commit(lambda: _export_or_log(checkpoint))
        else:
            export(checkpoint)
    return checkpoint


def _export_or_log(checkpoint: AuditCheckpoint) -> None:
    try:
        export(checkpoint)
    except OSError:
        logger.exception("Audit checkpoint %s could not be exported.", checkpoint.name)


def checkpoint_periodic() -> AuditCheckpoint | None:
    """Beat: sign the heads that moved since the periodic checkpoints of the last
    ``RESTATE_AFTER`` stated them (so every head is restated at least that often, and a
    window of recent files states them all). None when nothing moved. Safe to run twice:
    the second finds nothing new."""
    recent = AuditCheckpoint.objects.filter(
        kind=CheckpointKind.PERIODIC, created_at__gte=timezone.now() - RESTATE_AFTER
    ).order_by("id")
    seen: dict[str, list] = {}
    for stated in recent.values_list("heads", flat=True).iterator(chunk_size=50):
        seen.update(stated)
    heads = {k: v for k, v in current_heads().items() if seen.get(k) != v}
    if not heads:
        return None
    return checkpoint_write(kind=CheckpointKind.PERIODIC, heads=heads)


def export(checkpoint: AuditCheckpoint) -> Path:
    """Write ``<name>.json`` atomically into the checkpoint directory."""
    directory = checkpoint_dir()
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"{checkpoint.name}.json"
    data = json.dumps(checkpoint_document(checkpoint), sort_keys=True, indent=2).encode()
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{checkpoint.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # the rename itself survives a crash
    finally:
        os.close(dir_fd)
    return target


def exported_documents(
    directory: Path | None = None,
) -> Iterator[tuple[Path, dict[str, Any] | None]]:
    """Every exported checkpoint file (sorted by name) in ``directory`` (default: the
    export directory), parsed; None for one that is not a checkpoint document."""
    directory = Path(directory) if directory else checkpoint_dir()
    if not directory.is_dir():
        return
    for path in sorted(directory.glob("*.json")):
        try:
            document = json.loads(path.read_text())
        except (OSError, ValueError):
            yield path, None
            continue
        ok = isinstance(document, dict) and document.get("format") == FORMAT
        yield path, document if ok and isinstance(document.get("heads"), dict) else None


# --- the copy in an S3-compatible bucket (optional) ---------------------------------------------


def s3_enabled() -> bool:
    return bool(settings.AUDIT_CHECKPOINT_S3_BUCKET)


def _s3():
    import boto3  # only when a bucket is configured

    return boto3.client("s3", endpoint_url=settings.AUDIT_CHECKPOINT_S3_ENDPOINT_URL)


def _s3_keys(client) -> Iterator[str]:
    paginator = client.get_paginator("list_objects_v2")
    pages = paginator.paginate(
        Bucket=settings.AUDIT_CHECKPOINT_S3_BUCKET, Prefix=settings.AUDIT_CHECKPOINT_S3_PREFIX
    )
    for page in pages:
        for item in page.get("Contents", []):
            if item["Key"].endswith(".json"):
                yield item["Key"]


def sync_to_s3() -> int:
    """Copy every exported checkpoint file the bucket lacks into it; the number copied. A
    file already there is never overwritten (object lock on the bucket makes that final)."""
    if not s3_enabled():
        return 0
    client = _s3()
    present = set(_s3_keys(client))
    copied = 0
    for path in sorted(checkpoint_dir().glob("*.json")) if checkpoint_dir().is_dir() else []:
        key = f"{settings.AUDIT_CHECKPOINT_S3_PREFIX}{path.name}"
        if key in present:
            continue
        client.put_object(
            Bucket=settings.AUDIT_CHECKPOINT_S3_BUCKET,
            Key=key,
            Body=path.read_bytes(),
            ContentType="application/json",
        )
        copied += 1
    return copied


def s3_documents() -> Iterator[tuple[str, dict[str, Any] | None]]:
    """Every checkpoint in the bucket, as (s3:// address, parsed document or None)."""
    if not s3_enabled():
        return
    client = _s3()
    bucket = settings.AUDIT_CHECKPOINT_S3_BUCKET
    for key in _s3_keys(client):
        body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        try:
            document = json.loads(body)
        except ValueError:
            document = None
        ok = isinstance(document, dict) and document.get("format") == FORMAT
        yield (
            f"s3://{bucket}/{key}",
            (document if ok and isinstance(document.get("heads"), dict) else None),
        )
