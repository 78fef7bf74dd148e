"""Audit checkpoints copied to an S3-compatible bucket: a local S3 server (moto's) started
by the test on a loopback port, reached over HTTP by boto3 like any S3 endpoint."""

from __future__ import annotations

from io import StringIO

import boto3
import pytest
from django.core.management import CommandError, call_command
from moto.server import ThreadedMotoServer

from core import audit_checkpoints, audit_keys, tasks
from core.models import AuditChainHead, AuditCheckpoint, AuditEvent
from core.tests.test_audit_keyed import K1, _rewrite_and_rehash, _tamper
from releases import services
from tests.factories import ReleaseFactory, make_ready

PORT = 18171
BUCKET = "audit-copy"


@pytest.fixture(scope="module")
def s3_server():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=PORT, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{PORT}"
    server.stop()


@pytest.fixture
def bucket(s3_server, settings, monkeypatch):
    for name, value in (
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
    ):
        monkeypatch.setenv(name, value)
    settings.AUDIT_CHAIN_KEYS = {"k1": K1}
    settings.AUDIT_CHAIN_KEY_ID = "k1"
    settings.AUDIT_CHECKPOINT_S3_BUCKET = BUCKET
    settings.AUDIT_CHECKPOINT_S3_PREFIX = "rg/"
    settings.AUDIT_CHECKPOINT_S3_ENDPOINT_URL = s3_server
    client = boto3.client("s3", endpoint_url=s3_server)
    client.create_bucket(Bucket=BUCKET)
    yield client
    for item in client.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        client.delete_object(Bucket=BUCKET, Key=item["Key"])
    client.delete_bucket(Bucket=BUCKET)


@pytest.fixture
def release(bucket, service, release_manager):
    release = make_ready(ReleaseFactory(services=[service], owner=release_manager))
    services.release_plan(release=release, actor=release_manager)
    services.release_update(release=release, actor=release_manager, changes={"name": "X"})
    services.release_start_work(release=release, actor=release_manager)
    return release


def _keys(client) -> list[str]:
    return sorted(i["Key"] for i in client.list_objects_v2(Bucket=BUCKET).get("Contents", []))


@pytest.mark.django_db
def test_the_beat_task_copies_every_exported_checkpoint_to_the_bucket_once(bucket, release):
    name = tasks.audit_checkpoint()
    assert _keys(bucket) == [f"rg/{name}.json"]
    body = bucket.get_object(Bucket=BUCKET, Key=f"rg/{name}.json")["Body"].read()
    assert body == (audit_checkpoints.checkpoint_dir() / f"{name}.json").read_bytes()
    assert tasks.audit_checkpoint() == "" and len(_keys(bucket)) == 1  # nothing new
    out = StringIO()
    call_command("verify_audit", stdout=out)
    assert "1 checkpoints in the S3 bucket" in out.getvalue()


@pytest.mark.django_db
def test_a_rewrite_that_also_rewrites_the_local_files_is_caught_by_the_bucket(bucket, release):
    """The attacker holds the key and the app host: re-signs the rows, the checkpoints in the
    database and the exported files. The bucket's copy still says what the chain was."""
    tasks.audit_checkpoint()
    events = list(
        AuditEvent.objects.select_related("target_type")
        .filter(release_id=release.pk)
        .order_by("chain_seq")
    )
    _rewrite_and_rehash(events, 1, key_id="k1", secret=K1)
    head = AuditChainHead.objects.get(key=f"release:{release.pk}")
    for checkpoint in AuditCheckpoint.objects.all():
        checkpoint.heads = {head.key: [head.seq, head.hash]}
        checkpoint.signature = audit_keys.sign(
            "k1", audit_checkpoints._message(audit_checkpoints.checkpoint_body(checkpoint))
        )
        _tamper(
            [
                (
                    "UPDATE core_auditcheckpoint SET heads = %s, signature = %s WHERE id = %s",
                    [
                        f'{{"{head.key}": [{head.seq}, "{head.hash}"]}}',
                        checkpoint.signature,
                        checkpoint.pk,
                    ],
                )
            ]
        )
        audit_checkpoints.export(checkpoint)  # overwrites the local file, re-signed
    err = StringIO()
    with pytest.raises(CommandError):
        call_command("verify_audit", "--all-problems", stdout=StringIO(), stderr=err)
    message = err.getvalue()
    assert f"audit event #{events[2].pk} " in message
    assert f"s3://{BUCKET}/rg/" in message
    assert message.count("BROKEN") == 1
