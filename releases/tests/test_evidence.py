"""Evidence packs: captured at deployment and on demand, with the audit chain head."""

from __future__ import annotations

import io
import json
import zipfile
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction

from core.audit_checkpoints import document_is_signed
from core.models import AuditChainHead, AuditCheckpoint, AuditEvent, audit_event_hash
from releases import evidence, services
from releases.choices import ReleaseState
from releases.models import EvidencePack
from releases.postrelease import services as postrelease
from tests.factories import ReleaseFactory, force_state, make_ready

PARTS = {
    "release",
    "scope",
    "risk_register",
    "risk_assessment",
    "rollback_plan",
    "gates",
    "change_requests",
    "freeze_exceptions",
    "break_glass",
    "artefacts",
    "deployments",
    "incidents",
    "verification_samples",
    "validation",
    "retrospective",
    "impact_assessment",
    "audit_events",
    "audit_chain_head",
}


@pytest.fixture
def deploying(service, release_manager):
    release = make_ready(ReleaseFactory(services=[service], owner=release_manager))
    services.release_plan(release=release, actor=release_manager)
    return force_state(release, ReleaseState.DEPLOYING)


@pytest.mark.django_db
def test_a_pack_is_frozen_when_the_release_is_deployed(deploying, release_manager):
    services.release_mark_deployed(release=deploying, actor=release_manager)
    pack = EvidencePack.objects.get(release=deploying)
    assert pack.trigger == "deployment"
    head = AuditChainHead.objects.get(key=f"release:{deploying.pk}")
    assert (pack.chain_head_seq, pack.chain_head_hash) == (head.seq, head.hash)
    assert pack.snapshot["audit_events"][-1]["action"] == "release.mark_deployed"
    assert set(pack.snapshot) >= PARTS


@pytest.mark.django_db
def test_on_demand_pack_downloads_as_zip_with_summary_json_and_sums(
    client, deploying, release_manager
):
    services.release_mark_deployed(release=deploying, actor=release_manager)
    postrelease.retrospective_record(
        release=deploying, actor=release_manager, went_well="ok", went_badly="", to_change=""
    )
    client.force_login(release_manager)
    resp = client.post(f"/releases/{deploying.pk}/evidence/")
    assert resp.status_code == 200 and resp["Content-Type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(resp.content))
    assert sorted(archive.namelist()) == ["SHA256SUMS", "evidence.json", "summary.html"]
    data = json.loads(archive.read("evidence.json"))
    assert data["trigger"] == "on_demand" and data["retrospective"]["went_well"] == "ok"
    assert data["audit_chain_head"]["hash"] == data["audit_events"][-1]["hash"]
    summary = archive.read("summary.html").decode()
    assert deploying.name in summary and "Audit trail" in summary
    assert EvidencePack.objects.filter(release=deploying).count() == 2


@pytest.mark.django_db
def test_earlier_pack_is_downloadable_and_unchanged(client, deploying, release_manager):
    services.release_mark_deployed(release=deploying, actor=release_manager)
    pack = EvidencePack.objects.get()
    services.scope_item_add(
        release=force_state(deploying, "in_progress"), actor=release_manager, title="Later"
    )
    client.force_login(release_manager)
    resp = client.get(f"/releases/{deploying.pk}/evidence/{pack.pk}.zip")
    data = json.loads(zipfile.ZipFile(io.BytesIO(resp.content)).read("evidence.json"))
    assert "Later" not in [item["title"] for item in data["scope"]]


@pytest.mark.django_db
def test_outsider_cannot_capture_or_download(client, deploying, release_manager, outsider):
    services.release_mark_deployed(release=deploying, actor=release_manager)
    pack = EvidencePack.objects.get()
    client.force_login(outsider)
    assert client.post(f"/releases/{deploying.pk}/evidence/").status_code == 404
    assert client.get(f"/releases/{deploying.pk}/evidence/{pack.pk}.zip").status_code == 404


@pytest.mark.django_db
def test_stakeholder_may_capture_on_demand(deploying, viewer):
    pack = evidence.evidence_pack_capture(release=deploying, actor=viewer, trigger="on_demand")
    assert pack.created_by == viewer


# The pack's sections, in the order it lists them, whichever app registered them.
SECTION_ORDER = [
    "release",
    "scope",
    "risk_register",
    "risk_assessment",
    "rollback_plan",
    "gates",
    "change_requests",
    "freeze_exceptions",
    "break_glass",
    "artefacts",
    "deployments",
    "incidents",
    "verification_samples",
    "validation",
    "retrospective",
    "impact_assessment",
    "audit_events",
]


@pytest.mark.django_db
def test_sections_registered_by_every_app_come_in_the_pack_order(deploying):
    assert evidence.section_keys() == SECTION_ORDER
    snapshot = evidence.collect_evidence(deploying)
    assert list(snapshot) == ["format", "version", *SECTION_ORDER]
    assert set(SECTION_ORDER) | {"audit_chain_head"} == PARTS


def test_a_section_cannot_take_another_ones_key_or_place():
    with pytest.raises(ValueError):
        evidence.register_section("gates", lambda release: [], position=999)
    with pytest.raises(ValueError):
        evidence.register_section("elsewhere", lambda release: [], position=60)
    assert "elsewhere" not in evidence.section_keys()


@pytest.mark.django_db
def test_the_summary_shows_labels_and_the_governing_risk(client, deploying, release_manager):
    """Issue 15, item 7: no raw enum values, no empty risk value."""
    from releases.choices import RiskLevel
    from releases.risk import current_governing_level

    services.release_mark_deployed(release=deploying, actor=release_manager)
    client.force_login(release_manager)
    resp = client.post(f"/releases/{deploying.pk}/evidence/")
    archive = zipfile.ZipFile(io.BytesIO(resp.content))
    summary = archive.read("summary.html").decode()
    governing = RiskLevel(current_governing_level(deploying)).label
    assert f"state Deployed · risk {governing} ·" in summary
    assert "→ deployed" not in summary and "→ Deployed" in summary
    data = json.loads(archive.read("evidence.json"))
    for factor in (data.get("risk_assessment") or {}).get("factors", []):
        assert f"<td>{factor['value']}</td>" in summary


@pytest.mark.django_db
def test_a_pack_carries_a_signed_checkpoint_of_its_head_exported_as_a_file(
    deploying, release_manager, settings, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        services.release_mark_deployed(release=deploying, actor=release_manager)
    pack = EvidencePack.objects.get(release=deploying)
    document = pack.snapshot["audit_checkpoint"]
    assert document["kind"] == "evidence" and document_is_signed(document)
    assert document["heads"] == {pack.chain_key: [pack.chain_head_seq, pack.chain_head_hash]}
    exported = json.loads((settings.AUDIT_CHECKPOINT_DIR / f"{document['name']}.json").read_text())
    assert exported == document
    assert AuditCheckpoint.objects.get(name=document["name"]).signature == document["signature"]


@pytest.mark.django_db
def test_verify_audit_compares_the_trail_with_the_heads_frozen_into_packs(
    deploying, release_manager, settings
):
    """Someone holding the key rewrites the last event and removes the checkpoints, rows and
    files alike: the head the pack froze still disagrees, and verify_audit says which pack."""
    services.release_mark_deployed(release=deploying, actor=release_manager)
    pack = EvidencePack.objects.get(release=deploying)
    last = AuditEvent.objects.select_related("target_type").get(
        chain_key=pack.chain_key, chain_seq=pack.chain_head_seq
    )
    last.reason = "rewritten"
    last.hash = audit_event_hash(last)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE governance_auditevent DISABLE TRIGGER USER")
            cursor.execute("ALTER TABLE core_auditcheckpoint DISABLE TRIGGER USER")
        cursor.execute(
            "UPDATE governance_auditevent SET reason = %s, hash = %s WHERE id = %s",
            [last.reason, last.hash, last.pk],
        )
        cursor.execute(
            "UPDATE governance_auditchainhead SET hash = %s WHERE key = %s",
            [last.hash, pack.chain_key],
        )
        cursor.execute("DELETE FROM core_auditcheckpoint")
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE governance_auditevent ENABLE TRIGGER USER")
            cursor.execute("ALTER TABLE core_auditcheckpoint ENABLE TRIGGER USER")
    for path in settings.AUDIT_CHECKPOINT_DIR.iterdir():
        path.unlink()
    err = StringIO()
    with pytest.raises(CommandError):
        call_command("verify_audit", stdout=StringIO(), stderr=err)
    assert f"audit event #{last.pk} " in err.getvalue()
    assert f"evidence pack #{pack.pk}" in err.getvalue()


@pytest.mark.django_db
def test_a_checkpoint_that_cannot_be_exported_does_not_stop_the_deployment(
    deploying, release_manager, settings, tmp_path, django_capture_on_commit_callbacks
):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    settings.AUDIT_CHECKPOINT_DIR = blocker / "checkpoints"
    with django_capture_on_commit_callbacks(execute=True):
        services.release_mark_deployed(release=deploying, actor=release_manager)
    pack = EvidencePack.objects.get(release=deploying)
    name = pack.snapshot["audit_checkpoint"]["name"]
    err = StringIO()
    with pytest.raises(CommandError):
        call_command("verify_audit", stdout=StringIO(), stderr=err)
    assert f"checkpoint {name} has no exported file" in err.getvalue()


@pytest.mark.django_db
def test_a_capture_that_rolls_back_exports_no_checkpoint(
    deploying, release_manager, settings, django_capture_on_commit_callbacks
):
    """The pack's head includes its own transaction's events: a file written before the
    commit would state a head that never existed once the deployment rolled back."""
    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(RuntimeError), transaction.atomic():
            services.release_mark_deployed(release=deploying, actor=release_manager)
            raise RuntimeError("the deployment's transaction fails after the capture")
        assert not EvidencePack.objects.exists()
    assert list(settings.AUDIT_CHECKPOINT_DIR.glob("*.json")) == []
    call_command("verify_audit", stdout=StringIO())
