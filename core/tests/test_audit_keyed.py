"""The keyed, anchored audit trail: HMAC chain hashes with a key the database does not hold,
signed checkpoints exported outside the database, key rotation, and re-anchoring of an
unkeyed trail. Each tamper test acts as someone who owns the table (around the append-only
trigger on PostgreSQL) and recomputes every hash it can."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from core import audit_checkpoints, audit_keys
from core.audit import audit_record
from core.audit_chain import verify_chains
from core.models import AuditChainHead, AuditCheckpoint, AuditEvent, audit_event_hash
from releases import services
from tests.factories import ReleaseFactory, TeamFactory, make_ready

K1 = b"k1-secret-for-the-audit-tests-32-bytes-at-least"
K2 = b"k2-secret-for-the-audit-tests-32-bytes-at-least"
WRONG = b"a-key-the-attacker-guessed-32-bytes-at-least!!"


@pytest.fixture
def keys(settings):
    """Two keys, k1 current."""
    settings.AUDIT_CHAIN_KEYS = {"k1": K1, "k2": K2}
    settings.AUDIT_CHAIN_KEY_ID = "k1"
    return settings


@pytest.fixture
def history(keys, service, release_manager):
    """A release with three events (one chain)."""
    release = make_ready(ReleaseFactory(services=[service], owner=release_manager))
    services.release_plan(release=release, actor=release_manager)
    services.release_update(release=release, actor=release_manager, changes={"name": "X"})
    services.release_start_work(release=release, actor=release_manager)
    return release


def _events(release) -> list[AuditEvent]:
    return list(
        AuditEvent.objects.select_related("target_type")
        .filter(release_id=release.pk)
        .order_by("chain_seq")
    )


def _tamper(statements: list[tuple[str, list]]) -> None:
    """Rewrite rows as the table's owner would: on PostgreSQL, around the append-only trigger
    (the test connects as the owner, who may disable it)."""
    tables = ("governance_auditevent", "core_auditcheckpoint")
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            for table in tables:
                cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
        for sql, params in statements:
            cursor.execute(sql, params)
        if connection.vendor == "postgresql":
            for table in tables:
                cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")


def _rewrite_and_rehash(events, index: int, *, key_id: str, secret: bytes | None) -> None:
    """Change the reason of ``events[index]`` and recompute the hash and link of it and every
    later event, and the chain head: with ``secret`` (an HMAC key, recorded as ``key_id``), or
    with the old unkeyed SHA-256 when ``key_id`` is empty."""
    statements = []
    prev = events[index - 1].hash if index else ""
    for position, event in enumerate(events[index:]):
        if position == 0:
            event.reason = "nothing to see here"
        event.prev_hash, event.key_id = prev, key_id
        event.hash = audit_event_hash(event, secret=secret)
        prev = event.hash
        statements.append(
            (
                "UPDATE governance_auditevent SET reason = %s, prev_hash = %s, hash = %s, "
                "key_id = %s WHERE id = %s",
                [event.reason, event.prev_hash, event.hash, key_id, event.pk],
            )
        )
    statements.append(
        (
            "UPDATE governance_auditchainhead SET hash = %s WHERE key = %s",
            [prev, events[0].chain_key],
        )
    )
    _tamper(statements)


def _verify() -> tuple[bool, str]:
    out, err = StringIO(), StringIO()
    try:
        call_command("verify_audit", "--all-problems", stdout=out, stderr=err)
    except CommandError:
        return False, err.getvalue()
    return True, out.getvalue()


# --- keyed hashes ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_every_event_records_its_key_and_an_hmac_no_unkeyed_hash(history):
    events = _events(history)
    assert {e.key_id for e in events} == {"k1"}
    for event in events:
        assert event.hash == audit_event_hash(event, secret=K1)
        assert event.hash != audit_event_hash(event, secret=WRONG)
    unkeyed = _events(history)[0]
    unkeyed.key_id = ""
    assert audit_event_hash(unkeyed) != events[0].hash
    assert _verify()[0]


@pytest.mark.django_db
def test_an_audit_write_costs_no_more_queries_than_before(keys, django_assert_num_queries):
    """Upsert the head, insert the event, store the head's hash: keying adds no query."""
    team = TeamFactory()
    with transaction.atomic():
        audit_record(actor=None, action="team.note", target=team)  # warms the content type
        with django_assert_num_queries(3):
            audit_record(actor=None, action="team.note", target=team)


# --- the acceptance: a rewrite recomputed without the key --------------------------------------


@pytest.mark.django_db
def test_a_rewrite_recomputed_with_the_old_unkeyed_algorithm_is_named(history):
    events = _events(history)
    _rewrite_and_rehash(events, 1, key_id="", secret=None)
    ok, message = _verify()
    assert not ok
    assert f"BROKEN: audit event #{events[1].pk} (chain release:{history.pk}, link 2)" in message
    assert "unkeyed" in message


@pytest.mark.django_db
def test_a_rewrite_recomputed_with_a_wrong_key_is_named(history):
    events = _events(history)
    _rewrite_and_rehash(events, 1, key_id="k1", secret=WRONG)
    ok, message = _verify()
    assert not ok
    assert f"audit event #{events[1].pk} " in message and "no longer match its hash" in message


@pytest.mark.postgres
@pytest.mark.django_db
def test_on_postgresql_the_owner_disables_the_trigger_and_is_still_caught(
    require_postgres, history
):
    events = _events(history)
    refused = "UPDATE governance_auditevent SET reason = 'x' WHERE id = %s"
    with (
        connection.cursor() as cursor,
        pytest.raises(Exception, match="append-only"),
        transaction.atomic(),
    ):
        cursor.execute(refused, [events[0].pk])
    _rewrite_and_rehash(events, 1, key_id="", secret=None)
    with connection.cursor() as cursor:
        cursor.execute("SELECT reason FROM governance_auditevent WHERE id = %s", [events[1].pk])
        assert cursor.fetchone()[0] == "nothing to see here"  # the rewrite did land
    ok, message = _verify()
    assert not ok and f"audit event #{events[1].pk} " in message


# --- checkpoints -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_periodic_checkpoint_signs_the_heads_that_moved_and_exports_them(history, settings):
    checkpoint = audit_checkpoints.checkpoint_periodic()
    head = AuditChainHead.objects.get(key=f"release:{history.pk}")
    assert checkpoint.heads == {head.key: [head.seq, head.hash]}
    files = sorted(settings.AUDIT_CHECKPOINT_DIR.iterdir())
    assert [f.name for f in files] == [f"{checkpoint.name}.json"]  # no temporary file left
    document = json.loads(files[0].read_text())
    assert document["signature"] == checkpoint.signature and document["key_id"] == "k1"
    assert audit_checkpoints.document_is_signed(document)
    assert audit_checkpoints.checkpoint_periodic() is None  # nothing moved since
    team = TeamFactory()
    with transaction.atomic():
        audit_record(actor=None, action="team.note", target=team)
    other = f"releases.team:{team.pk}"
    assert list(audit_checkpoints.checkpoint_periodic().heads) == [other]
    services.release_update(release=history, actor=history.owner, changes={"name": "Y"})
    assert list(audit_checkpoints.checkpoint_periodic().heads) == [head.key]
    assert audit_checkpoints.checkpoint_periodic() is None
    ok, out = _verify()
    assert ok and "3 signed checkpoints, 3 exported checkpoint files" in out
    # A head that has not moved for a week is stated again.
    _tamper(
        [("UPDATE core_auditcheckpoint SET created_at = %s", [timezone.now() - timedelta(days=8)])]
    )
    assert set(audit_checkpoints.checkpoint_periodic().heads) == {head.key, other}


@pytest.mark.django_db
def test_the_checkpoint_task_is_scheduled_by_beat(history):
    from config.celery import app

    entry = PeriodicTask.objects.get(task="core.audit_checkpoint")
    assert entry.enabled and entry.interval.every == 60
    import core.tasks  # noqa: F401 - what autodiscovery imports

    task = app.tasks["core.audit_checkpoint"]
    assert task.time_limit and task.soft_time_limit < task.time_limit
    name = task.apply().get()
    assert AuditCheckpoint.objects.get(name=name).kind == "periodic"
    assert task.apply().get() == ""  # run twice: nothing new


@pytest.mark.django_db
def test_a_rewrite_that_also_rewrites_the_database_checkpoints_is_caught_by_the_files(history):
    """The attacker holds the key itself (leaked) and re-signs every row and checkpoint in the
    database: only the exported files still say what the chain was."""
    audit_checkpoints.checkpoint_periodic()
    events = _events(history)
    _rewrite_and_rehash(events, 1, key_id="k1", secret=K1)
    new_head = AuditChainHead.objects.get(key=f"release:{history.pk}")
    for checkpoint in AuditCheckpoint.objects.all():
        checkpoint.heads = {new_head.key: [new_head.seq, new_head.hash]}
        checkpoint.signature = audit_keys.sign(
            "k1", audit_checkpoints._message(audit_checkpoints.checkpoint_body(checkpoint))
        )
        _tamper(
            [
                (
                    "UPDATE core_auditcheckpoint SET heads = %s, signature = %s WHERE id = %s",
                    [json.dumps(checkpoint.heads), checkpoint.signature, checkpoint.pk],
                )
            ]
        )
    report = verify_chains(stop_at_first=False)
    assert [p.event_id for p in report.problems] == [events[2].pk]
    assert "exported checkpoint" in report.problems[0].message
    ok, message = _verify()
    assert not ok and f"audit event #{events[2].pk} " in message


@pytest.mark.django_db
def test_removed_or_altered_checkpoints_are_reported(history, settings):
    kept = audit_checkpoints.checkpoint_periodic()
    services.release_update(release=history, actor=history.owner, changes={"name": "Y"})
    gone = audit_checkpoints.checkpoint_periodic()
    # An unsigned edit of a stored checkpoint, a stored one deleted, a file deleted.
    _tamper(
        [
            ("UPDATE core_auditcheckpoint SET heads = '{}' WHERE id = %s", [kept.pk]),
            ("DELETE FROM core_auditcheckpoint WHERE id = %s", [gone.pk]),
        ]
    )
    (settings.AUDIT_CHECKPOINT_DIR / f"{kept.name}.json").unlink()
    ok, message = _verify()
    assert not ok
    assert f"checkpoint {kept.name} in the database does not carry a valid signature" in message
    assert f"checkpoint {kept.name} has no exported file" in message
    assert f"checkpoint {gone.name} was exported" in message
    assert "missing from the database" in message


@pytest.mark.django_db
def test_events_removed_from_the_end_with_the_head_rewound_are_caught_by_a_checkpoint(history):
    audit_checkpoints.checkpoint_periodic()
    events = _events(history)
    _tamper(
        [
            ("DELETE FROM governance_auditevent WHERE id = %s", [events[2].pk]),
            (
                "UPDATE governance_auditchainhead SET seq = 2, hash = %s WHERE key = %s",
                [events[1].hash, events[0].chain_key],
            ),
        ]
    )
    ok, message = _verify()
    assert not ok and "records link 3, but the trail ends at link 2" in message


# --- key rotation ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_after_a_rotation_old_events_verify_with_their_recorded_key(history, settings):
    audit_checkpoints.checkpoint_periodic()  # signed with k1
    settings.AUDIT_CHAIN_KEYS = {"k2": K2, "k1": K1}
    settings.AUDIT_CHAIN_KEY_ID = "k2"
    services.release_update(release=history, actor=history.owner, changes={"name": "Y"})
    audit_checkpoints.checkpoint_periodic()  # signed with k2
    events = _events(history)
    assert [e.key_id for e in events] == ["k1", "k1", "k1", "k2"]
    assert events[3].prev_hash == events[2].hash
    assert list(AuditCheckpoint.objects.values_list("key_id", flat=True)) == ["k1", "k2"]
    ok, out = _verify()
    assert ok, out
    # Dropping a key still needed makes its events unverifiable, and says so.
    settings.AUDIT_CHAIN_KEYS = {"k2": K2}
    ok, message = _verify()
    assert not ok and f"audit event #{events[0].pk} " in message and "'k1'" in message


# --- the migration path for an unkeyed trail ----------------------------------------------------


def _unkeyed_trail(team, count: int = 3) -> list[AuditEvent]:
    """A chain written the old way (plain SHA-256, no key id), as before the upgrade."""
    with transaction.atomic():
        for n in range(count):
            audit_record(actor=None, action=f"team.step{n}", target=team)
    events = list(AuditEvent.objects.select_related("target_type").order_by("chain_seq"))
    statements, prev = [], ""
    for event in events:
        event.key_id, event.prev_hash = "", prev
        event.hash = prev = audit_event_hash(event)
        statements.append(
            (
                "UPDATE governance_auditevent SET key_id = '', prev_hash = %s, hash = %s "
                "WHERE id = %s",
                [event.prev_hash, event.hash, event.pk],
            )
        )
    statements.append(
        (
            "UPDATE governance_auditchainhead SET hash = %s WHERE key = %s",
            [prev, events[0].chain_key],
        )
    )
    _tamper(statements)
    return events


@pytest.mark.django_db
def test_reanchoring_signs_the_unkeyed_head_once_then_the_trail_is_keyed(keys, settings):
    team = TeamFactory()
    legacy = _unkeyed_trail(team)
    ok, message = _verify()
    assert not ok and "never re-anchored" in message
    out = StringIO()
    call_command("reanchor_audit", stdout=out)
    assert "Re-anchored 1 chains (3 unkeyed events)" in out.getvalue()
    anchor = AuditCheckpoint.objects.get(kind="anchor")
    assert anchor.heads == {legacy[0].chain_key: [3, legacy[2].hash]}
    assert (settings.AUDIT_CHECKPOINT_DIR / f"{anchor.name}.json").exists()
    with transaction.atomic():
        keyed = audit_record(actor=None, action="team.after", target=team)
    assert (keyed.chain_seq, keyed.prev_hash, keyed.key_id) == (4, legacy[2].hash, "k1")
    assert _verify()[0]
    with pytest.raises(CommandError, match="already re-anchored"):
        call_command("reanchor_audit", stdout=StringIO())
    # The old algorithm can no longer rewrite the anchored prefix unnoticed ...
    events = list(AuditEvent.objects.select_related("target_type").order_by("chain_seq"))
    _rewrite_and_rehash(events, 1, key_id="", secret=None)
    ok, message = _verify()
    assert not ok and f"audit event #{events[2].pk} " in message
    assert f"checkpoint {anchor.name}" in message


@pytest.mark.django_db
def test_reanchoring_refuses_a_trail_that_does_not_verify(keys):
    legacy = _unkeyed_trail(TeamFactory())
    _tamper([("UPDATE governance_auditevent SET reason = 'x' WHERE id = %s", [legacy[1].pk])])
    with pytest.raises(CommandError, match="does not verify"):
        call_command("reanchor_audit", stdout=StringIO(), stderr=StringIO())
    assert not AuditCheckpoint.objects.exists()


@pytest.mark.django_db
def test_reanchoring_a_keyed_trail_has_nothing_to_do(history):
    out = StringIO()
    call_command("reanchor_audit", stdout=out)
    assert "Nothing to re-anchor" in out.getvalue()


# --- settings ----------------------------------------------------------------------------------


def test_audit_keys_are_read_as_id_and_base64_pairs(monkeypatch):
    from django.core.exceptions import ImproperlyConfigured

    from config.env import env_secret_keys

    k1, k2 = base64.b64encode(K1).decode(), base64.urlsafe_b64encode(K2).decode()
    monkeypatch.setenv("X_KEYS", f"k2:{k2}, k1:{k1}")
    assert env_secret_keys("X_KEYS") == {"k2": K2, "k1": K1}
    for bad, words in (
        ("k1", "id:base64-secret pairs"),
        ("k1:not base64!", "not base64"),
        (f"k1:{base64.b64encode(b'short').decode()}", "at least 32"),
        (f"k1:{k1},k1:{k1}", "twice"),
    ):
        monkeypatch.setenv("X_KEYS", bad)
        with pytest.raises(ImproperlyConfigured, match=words):
            env_secret_keys("X_KEYS")
    monkeypatch.delenv("X_KEYS")
    assert env_secret_keys("X_KEYS") is None


@pytest.mark.django_db
def test_checkpoints_are_append_only(history):
    from core.models import AppendOnlyError

    checkpoint = audit_checkpoints.checkpoint_periodic()
    with pytest.raises(AppendOnlyError):
        checkpoint.save()
    with pytest.raises(AppendOnlyError):
        AuditCheckpoint.objects.filter(pk=checkpoint.pk).update(heads={})
    with pytest.raises(AppendOnlyError):
        AuditCheckpoint.objects.all().delete()
    if connection.vendor == "postgresql":  # the database refuses raw SQL too
        with (
            connection.cursor() as cursor,
            pytest.raises(Exception, match="append-only"),
            transaction.atomic(),
        ):
            cursor.execute("DELETE FROM core_auditcheckpoint")
    assert AuditCheckpoint.objects.count() == 1


@pytest.mark.django_db
def test_the_unkeyed_trail_is_anchored_once_even_by_concurrent_runs(keys):
    from django.db import IntegrityError

    audit_checkpoints.checkpoint_write(kind="anchor", heads={})
    with pytest.raises(IntegrityError), transaction.atomic():
        audit_checkpoints.checkpoint_write(kind="anchor", heads={})


@pytest.mark.django_db
def test_verify_reads_a_synced_copy_of_the_checkpoints(history, settings, tmp_path):
    audit_checkpoints.checkpoint_periodic()
    copy = tmp_path / "synced"
    copy.mkdir()
    for path in settings.AUDIT_CHECKPOINT_DIR.iterdir():
        path.rename(copy / path.name)
    assert not _verify()[0]  # the export directory is empty now
    out = StringIO()
    call_command("verify_audit", "--checkpoint-dir", str(copy), stdout=out)
    assert "1 signed checkpoints, 1 exported checkpoint files" in out.getvalue()
