"""Artefacts named by versions (issue 19): one artefact per digest, any number of versions
pointing at it, none of which ever moves to another digest; everything acknowledged reads
back through the run and the artefacts API."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from rest_framework.test import APIClient

from core.models import AuditEvent
from pipelines.models import Artefact, ArtefactTag, PipelineRun

from .conftest import CI, make_token, run_body

pytestmark = pytest.mark.django_db

DIGEST_C = "sha256:" + "cc" * 32
DIGEST_D = "sha256:" + "dd" * 32
ARTEFACTS = "/api/v1/artefacts/"


def img(version: str, digest: str = DIGEST_C, **extra) -> dict:
    return {"name": "img", "version": version, "digest": digest, **extra}


def post(ci, external_id: str, *artefacts, **overrides):
    return ci.run(run_body(external_id=external_id, artefacts=list(artefacts), **overrides))


def read(ci, path: str) -> dict:
    response = ci.client.get(path, HTTP_AUTHORIZATION=f"Bearer {ci.token}")
    assert response.status_code == 200, response.content
    return response.json()


def test_a_digest_reported_under_a_new_version_is_stored_with_both_versions(ci):
    """The reproduction of issue 19: the second post answered 201 and stored nothing."""
    first = post(ci, "9001", img("2.0.1"))
    second = post(ci, "9002", img("2.0.2"))
    assert first.status_code == 201 and second.status_code == 201
    assert second.json()["ignored"] == []

    (artefact,) = read(ci, f"{ARTEFACTS}?digest={DIGEST_C}")["results"]
    assert artefact["version"] == "2.0.1"  # the version it was first reported under
    assert [t["version"] for t in artefact["tags"]] == ["2.0.1", "2.0.2"]
    assert [t["run"] for t in artefact["tags"]] == [first.json()["id"], second.json()["id"]]
    assert {t["reported_by"] for t in artefact["tags"]} == {"token:ci-payments"}
    # The second run reads back the version it reported, with the digest's other versions.
    (reported,) = read(ci, f"/api/v1/pipeline-runs/{second.json()['id']}/")["artefacts"]
    assert (reported["version"], reported["digest"]) == ("2.0.2", DIGEST_C)
    assert [t["version"] for t in reported["tags"]] == ["2.0.1", "2.0.2"]
    assert Artefact.objects.count() == 1 and ArtefactTag.objects.count() == 2


def test_one_post_may_name_a_digest_twice(ci):
    response = post(ci, "9001", img("2.0.2"), img("latest"))
    assert response.status_code == 201
    artefact = Artefact.objects.get()
    assert artefact.version == "2.0.2"
    assert sorted(artefact.tags.values_list("version", flat=True)) == ["2.0.2", "latest"]


def test_a_version_never_moves_to_another_digest_even_a_recorded_one(ci):
    post(ci, "9001", img("2.0.1"))
    post(ci, "9002", img("2.0.2", DIGEST_D))
    response = post(ci, "9003", img("2.0.1", DIGEST_D))
    assert response.status_code == 409
    assert response.json()["errors"] == {"artefacts": ["img 2.0.1: digest mismatch."]}
    assert not PipelineRun.objects.filter(external_id="9003").exists()
    assert ArtefactTag.objects.get(version="2.0.1").artefact.digest == DIGEST_C
    event = AuditEvent.objects.get(action="artefact.digest_mismatch")
    assert (event.before["digest"], event.after["digest"]) == (DIGEST_C, DIGEST_D)


def test_a_version_twice_in_one_post_is_refused(ci):
    response = post(ci, "9001", img("2.0.1"), img("2.0.1", DIGEST_D))
    assert response.status_code == 400
    assert "artefacts[1]" in response.json()["errors"]
    assert not PipelineRun.objects.exists()


def test_a_later_report_of_a_run_adds_its_versions_and_is_audited(ci):
    post(ci, "9001", status="running", finished_at=None)
    response = post(ci, "9001", img("2.0.1"), img("2.0.1-rc.1"))
    assert response.status_code == 200 and response.json()["changed"] is True
    event = AuditEvent.objects.get(action="pipeline_run.status")
    assert event.after["artefacts"] == ["img:2.0.1", "img:2.0.1-rc.1"]
    # Adding a version of an artefact already recorded changes the run too.
    response = post(ci, "9001", img("2.0.1"), img("2.0.1-rc.1"), img("latest"))
    assert response.json()["changed"] is True
    assert AuditEvent.objects.get(action="pipeline_run.update").after == {
        "artefacts": ["img:latest"]
    }


def test_a_retry_reporting_the_same_versions_reads_them_back_where_they_were_first_reported(
    ci,
):
    first = post(ci, "9001", img("2.0.1"))
    retry = post(ci, "9001", img("2.0.1"), attempt=2)
    assert retry.status_code == 201 and retry.json()["ignored"] == []
    assert read(ci, f"/api/v1/pipeline-runs/{retry.json()['id']}/")["artefacts"] == []
    (tag,) = read(ci, f"{ARTEFACTS}?version=2.0.1")["results"][0]["tags"]
    assert tag["run"] == first.json()["id"]


def test_another_uri_for_a_recorded_version_is_named_as_ignored(ci):
    post(ci, "9001", img("2.0.1", uri="registry.example/img:2.0.1"))
    for attempt in (1, 2):  # the same run again, then a new attempt
        response = post(ci, "9001", img("2.0.1", uri="mirror.example/img:2.0.1"), attempt=attempt)
        assert response.status_code in (200, 201)
        (ignored,) = response.json()["ignored"]
        assert ignored["field"] == "artefacts[img 2.0.1].uri"
        assert "registry.example/img:2.0.1" in ignored["reason"]
    assert ArtefactTag.objects.get().uri == "registry.example/img:2.0.1"


def test_the_artefacts_api_filters_and_reads_like_the_runs(ci, service, other_service):
    post(ci, "9001", img("2.0.1"))
    post(ci, "9002", {"name": "db", "version": "2.0.1", "digest": DIGEST_D})
    post(ci, "9003", img("2.0.2"))
    results = read(ci, ARTEFACTS)["results"]
    assert [a["name"] for a in results] == ["db", "img"]  # newest first
    assert read(ci, f"{ARTEFACTS}?version=2.0.2")["count"] == 1
    assert read(ci, f"{ARTEFACTS}?name=db&service=payments-api")["count"] == 1
    detail = read(ci, results[1]["links"]["self"])
    assert detail["digest"] == DIGEST_C and len(detail["tags"]) == 2
    stranger = APIClient()
    stranger.credentials(HTTP_AUTHORIZATION="Bearer " + make_token("ci-id", [other_service]))
    assert stranger.get(ARTEFACTS).json()["count"] == 0
    assert stranger.get(f"{ARTEFACTS}{detail['id']}/").status_code == 404


def test_the_evidence_pack_lists_every_version_of_the_release_s_artefacts(ci, service):
    from releases.evidence import collect_evidence
    from tests.factories import ReleaseFactory

    post(ci, "9001", img("2.4.0-rc.1"))
    post(ci, "9002", img("2.4.0"))
    release = ReleaseFactory(services=[service], version="2.4.0")
    (artefact,) = collect_evidence(release)["artefacts"]
    assert artefact["version"] == "2.4.0" and artefact["digest"] == DIGEST_C
    assert artefact["tags"] == ["2.4.0-rc.1", "2.4.0"]


@pytest.mark.django_db(transaction=True)
def test_the_migration_makes_each_artefact_s_version_its_first_tag(service, ci_token):
    executor = MigrationExecutor(connection)
    executor.migrate([("pipelines", "0009_move_to_core")])
    apps = executor.loader.project_state([("pipelines", "0009_move_to_core")]).apps
    OldRun = apps.get_model("pipelines", "PipelineRun")
    OldArtefact = apps.get_model("pipelines", "Artefact")
    run = OldRun.objects.create(
        service_id=service.pk, provider="jenkins", external_id="job#1", status="succeeded"
    )
    old = OldArtefact.objects.create(
        service_id=service.pk, name="img", version="1.0.0", digest=DIGEST_C, first_run=run
    )
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
    tag = ArtefactTag.objects.get()
    assert (tag.artefact_id, tag.version, tag.run_id) == (old.pk, "1.0.0", run.pk)
    assert (tag.created_at, tag.reported_by) == (old.created_at, "system")
    # The same digest under a new version is now accepted next to it.
    assert post(CI(ci_token), "9001", img("1.0.1")).status_code == 201
    assert sorted(Artefact.objects.get().tags.values_list("version", flat=True)) == [
        "1.0.0",
        "1.0.1",
    ]
