"""GET /api/v1/pipeline-runs/ and /api/v1/deployments/: reading back what CI/CD reported.

Lists and details, filters, pagination, who sees what (users by role, tokens by service and
scope), bad filters, and a query count that does not grow with the rows. The POST side on the
same URLs is covered by test_api_pipeline_runs.py and test_api_deployments.py.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.pagination import PageNumberPagination
from rest_framework.test import APIClient

from pipelines.models import (
    Artefact,
    ArtefactTag,
    PipelineCheck,
    PipelineRun,
    VerificationRun,
    VerificationSpec,
)
from releases.models import Deployment
from tests.factories import DeploymentFactory, PipelineRunFactory, ReleaseFactory

from .conftest import CI, make_token, run_body

pytestmark = pytest.mark.django_db

RUNS = "/api/v1/pipeline-runs/"
DEPLOYMENTS = "/api/v1/deployments/"


def as_user(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def as_token(raw: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def make_run(service, **fields) -> PipelineRun:
    run = PipelineRunFactory(service=service, **fields)
    PipelineCheck.objects.create(
        run=run, kind="tests", status="passed", metrics={"passed": 10, "failed": 0}
    )
    PipelineCheck.objects.create(run=run, kind="coverage", status="passed", metrics={"percent": 90})
    artefact = Artefact.objects.create(
        service=service,
        name=service.slug,
        version=run.version,
        digest=f"sha256:{run.pk:064x}",
        uri=f"registry.example/{service.slug}:{run.version}",
        first_run=run,
    )
    for tag in (f"{run.version}-{run.pk}", f"latest-{run.pk}"):
        ArtefactTag.objects.create(
            artefact=artefact, service=service, name=artefact.name, version=tag, run=run
        )
    return run


@pytest.fixture
def runs(service, other_service):
    """Three runs of payments-api (oldest first) and one of identity-api."""
    now = timezone.now()
    return [
        make_run(service, created_at=now - timedelta(hours=3), status="failed", ref="refs/a"),
        make_run(service, created_at=now - timedelta(hours=2), commit_sha="ab" * 20),
        make_run(service, created_at=now - timedelta(hours=1), provider="gitlab"),
        make_run(other_service, created_at=now - timedelta(hours=1)),
    ]


@pytest.fixture
def deployments(service, other_service, production, staging):
    now = timezone.now()
    release = ReleaseFactory(services=[service], version="2.4.0", name="Payments 2.4")
    return {
        "staging": DeploymentFactory(
            service=service,
            environment=staging,
            version="2.4.0",
            release=release,
            created_at=now - timedelta(days=2),
            started_at=now - timedelta(days=2),
            finished_at=now - timedelta(days=2) + timedelta(minutes=5),
        ),
        "production": DeploymentFactory(
            service=service,
            environment=production,
            version="2.4.0",
            release=release,
            state="in_progress",
            finished_at=None,
            created_at=now - timedelta(hours=1),
            provider="argo-cd",
            external_id="deploy-77",
        ),
        "other": DeploymentFactory(
            service=other_service, environment=production, created_at=now - timedelta(hours=2)
        ),
    }


# --- pipeline runs ----------------------------------------------------------------------------


def test_a_viewer_lists_every_run_newest_first(viewer, runs):
    response = as_user(viewer).get(RUNS)
    assert response.json()["count"] == 4
    newest_first = sorted(runs, key=lambda r: (r.created_at, r.pk), reverse=True)
    assert ids(response) == [r.pk for r in newest_first]


def test_a_run_reads_back_as_it_was_posted(ci):
    posted = ci.run(run_body())
    assert posted.status_code == 201
    response = ci.client.get(
        f"{RUNS}{posted.json()['id']}/", HTTP_AUTHORIZATION=f"Bearer {ci.token}"
    )
    assert response.status_code == 200
    body = response.json()
    for key in ("id", "service", "provider", "external_id", "attempt", "status", "commit_sha"):
        assert body[key] == posted.json()[key]
    assert {c["kind"] for c in body["checks"]} == {"tests", "security_scan", "coverage"}
    (artefact,) = body["artefacts"]
    assert {k: artefact[k] for k in ("name", "version", "digest", "uri")} == (
        posted.json()["artefacts"][0]
    )
    assert [t["version"] for t in artefact["tags"]] == ["2.4.0"]
    assert artefact["tags"][0]["run"] == body["id"]
    assert artefact["tags"][0]["reported_by"] == "token:ci-payments"
    assert body["links"]["self"].endswith(f"{RUNS}{body['id']}/")


def test_runs_filter_by_service_provider_status_version_commit_and_ref(viewer, runs):
    client = as_user(viewer)
    assert set(ids(client.get(RUNS, {"service": "identity-api"}))) == {runs[3].pk}
    assert ids(client.get(RUNS, {"provider": "gitlab"})) == [runs[2].pk]
    assert ids(client.get(RUNS, {"status": "failed"})) == [runs[0].pk]
    assert len(ids(client.get(RUNS, {"status": ["failed", "succeeded"]}))) == 4
    assert ids(client.get(RUNS, {"version": runs[1].version})) == [runs[1].pk]
    assert ids(client.get(RUNS, {"commit_sha": "ab" * 20})) == [runs[1].pk]
    assert ids(client.get(RUNS, {"ref": "refs/a"})) == [runs[0].pk]
    assert ids(client.get(RUNS, {"service": "unknown"})) == []


def test_runs_filter_by_finish_time(viewer, service):
    now = timezone.now()
    early = make_run(service, started_at=now - timedelta(days=3))
    late = make_run(service, started_at=now - timedelta(hours=1))
    client = as_user(viewer)
    cut = (now - timedelta(days=1)).isoformat()
    assert ids(client.get(RUNS, {"finished_from": cut})) == [late.pk]
    assert ids(client.get(RUNS, {"finished_to": cut})) == [early.pk]


def test_runs_are_paginated(viewer, service, monkeypatch):
    for _ in range(3):
        make_run(service)
    # The page size is read into the class when DRF is imported; PAGE_SIZE is 50.
    monkeypatch.setattr(PageNumberPagination, "page_size", 2)
    client = as_user(viewer)
    first = client.get(RUNS).json()
    assert first["count"] == 3 and len(first["results"]) == 2 and first["next"]
    second = client.get(first["next"]).json()
    assert len(second["results"]) == 1 and second["next"] is None
    assert client.get(RUNS, {"page": 9}).status_code == 404


@pytest.mark.parametrize(
    "params",
    [
        {"finished_from": "yesterday"},
        {"finished_to": "2026-13-45T99:00:00Z"},
        {"finished_to": "9999-12-31T23:59:59-23:59"},  # no such time in UTC
        {"status": "exploded"},
        {"provider": "travis"},
        {"version": "v" * 65},
        {"page": "x"},
    ],
)
def test_a_bad_run_filter_is_a_400_naming_it(viewer, runs, params):
    response = as_user(viewer).get(RUNS, params)
    if "page" in params:  # DRF's page-number pagination answers an invalid page with 404
        assert response.status_code == 404
        return
    assert response.status_code == 400, response.content
    body = response.json()
    (name,) = params
    assert body["code"] == "invalid" and name in body["errors"]
    assert body["detail"].startswith(f"Invalid input: {name}:")


def test_times_with_any_valid_offset_are_compared_in_utc(viewer, runs):
    """Python takes offsets up to ±23:59, PostgreSQL only to ±15:59 (schemathesis found the
    500): the filters convert to UTC first, on both the runs and the releases endpoints."""
    client = as_user(viewer)
    far = client.get(RUNS, {"finished_from": "5000-10-27T00:43:46+21:42"})
    assert far.status_code == 200 and far.json()["count"] == 0
    early = client.get(RUNS, {"finished_to": "2902-09-23T23:19:56-17:03"})
    assert early.status_code == 200 and early.json()["count"] == len(runs)
    releases = client.get("/api/v1/releases/", {"window_from": "2026-01-01T00:00:00+21:42"})
    assert releases.status_code == 200


def test_an_outsider_sees_no_runs_and_gets_404(outsider, runs):
    client = as_user(outsider)
    response = client.get(RUNS)
    assert response.json()["count"] == 0
    assert client.get(f"{RUNS}{runs[0].pk}/").status_code == 404


def test_anonymous_reads_are_refused_with_401():
    response = APIClient().get(RUNS)
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_a_token_reads_only_the_runs_of_its_services(service, runs):
    client = as_token(make_token("ci-payments", [service]))
    assert set(ids(client.get(RUNS))) == {r.pk for r in runs[:3]}
    assert client.get(f"{RUNS}{runs[0].pk}/").status_code == 200
    assert client.get(f"{RUNS}{runs[3].pk}/").status_code == 404
    assert ids(client.get(RUNS, {"service": "identity-api"})) == []


@pytest.mark.parametrize(
    ("scopes", "sees"),
    [
        (["runs:write"], True),
        (["releases:read"], True),
        (["deployments:write"], False),
        (["releases:write"], False),
    ],
)
def test_a_token_reads_runs_with_runs_write_or_releases_read(service, runs, scopes, sees):
    client = as_token(make_token("script", [service], scopes=scopes))
    assert bool(ids(client.get(RUNS))) is sees
    assert client.get(f"{RUNS}{runs[0].pk}/").status_code == (200 if sees else 404)


def test_detail_of_an_unknown_or_malformed_id_is_a_404(viewer):
    client = as_user(viewer)
    assert client.get(f"{RUNS}999999/").status_code == 404
    assert client.get(f"{RUNS}99999999999999999999999/").status_code == 404
    assert client.get(f"{RUNS}abc/").status_code == 404


def _count_queries(client, url) -> tuple[int, dict]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return len(captured.captured_queries), response.json()


def test_run_list_queries_do_not_grow_with_the_rows(viewer, service, django_assert_num_queries):
    client = as_user(viewer)
    for _ in range(2):
        make_run(service)
    small, body = _count_queries(client, RUNS)
    assert body["count"] == 2
    for _ in range(20):
        make_run(service)
    # session, user, roles, count, page, checks, artefact versions, all versions of their
    # digests: the same at 2 rows and at 22.
    with django_assert_num_queries(small):
        body = client.get(RUNS).json()
    assert body["count"] == 22 and len(body["results"]) == 22


def test_run_list_queries_for_a_token_do_not_grow_with_the_rows(service, django_assert_num_queries):
    client = as_token(make_token("ci-payments", [service]))
    make_run(service)
    client.get(RUNS)  # the first request looks the token up and marks it used; later ones not
    small, _ = _count_queries(client, RUNS)
    for _ in range(15):
        make_run(service)
    with django_assert_num_queries(small):
        assert client.get(RUNS).json()["count"] == 16


def test_posting_still_upserts_on_the_list_url(ci):
    assert ci.run(run_body()).status_code == 201
    again = ci.run(run_body())
    assert again.status_code == 200 and again.json()["changed"] is False
    assert PipelineRun.objects.count() == 1


def test_a_session_cannot_post_runs(release_manager):
    # Ingestion stays bearer-token only; a logged-in user reads but does not post.
    response = as_user(release_manager).post(RUNS, run_body(), format="json")
    assert response.status_code == 401
    assert PipelineRun.objects.count() == 0


# --- deployments ------------------------------------------------------------------------------


def test_a_viewer_lists_every_deployment_newest_first(viewer, deployments):
    expected = [deployments[k].pk for k in ("production", "other", "staging")]
    assert ids(as_user(viewer).get(DEPLOYMENTS)) == expected


def test_a_deployment_shows_its_release_environment_and_links(viewer, deployments):
    deployment = deployments["production"]
    body = as_user(viewer).get(f"{DEPLOYMENTS}{deployment.pk}/").json()
    release = deployment.release
    assert body["release"] == {
        "id": release.pk,
        "name": "Payments 2.4",
        "version": "2.4.0",
        "state": release.state,
    }
    assert body["service"] == "payments-api" and body["environment"] == "production"
    assert body["status"] == "in_progress" and body["finished_at"] is None
    assert body["provider"] == "argo-cd" and body["external_id"] == "deploy-77"
    assert body["verification"] is None
    assert body["links"]["self"].endswith(f"{DEPLOYMENTS}{deployment.pk}/")
    assert body["links"]["release"].endswith(f"/api/v1/releases/{release.pk}/")
    without = as_user(viewer).get(f"{DEPLOYMENTS}{deployments['other'].pk}/").json()
    assert without["release"] is None and without["links"]["release"] is None


def test_a_deployment_shows_its_verification_summary(viewer, deployments, service, production):
    deployment = deployments["production"]
    spec = VerificationSpec.objects.create(
        service=service, environment=production, prometheus_url="http://prom.example"
    )
    VerificationRun.objects.create(
        deployment=deployment,
        spec=spec,
        status="failed",
        ends_at=timezone.now(),
        detail="error rate 7% over 5%",
    )
    body = as_user(viewer).get(f"{DEPLOYMENTS}{deployment.pk}/").json()
    assert body["verification"]["status"] == "failed"
    assert body["verification"]["detail"] == "error rate 7% over 5%"


def test_deployments_filter_by_release_service_environment_status_version_and_time(
    viewer, deployments
):
    client = as_user(viewer)
    d = deployments
    release_id = d["production"].release_id
    assert ids(client.get(DEPLOYMENTS, {"release": release_id})) == [
        d["production"].pk,
        d["staging"].pk,
    ]
    assert ids(client.get(DEPLOYMENTS, {"service": "identity-api"})) == [d["other"].pk]
    assert ids(client.get(DEPLOYMENTS, {"environment": "staging"})) == [d["staging"].pk]
    assert ids(client.get(DEPLOYMENTS, {"status": "in_progress"})) == [d["production"].pk]
    assert ids(client.get(DEPLOYMENTS, {"version": "2.4.0", "environment": "production"})) == [
        d["production"].pk
    ]
    assert ids(client.get(DEPLOYMENTS, {"provider": "argo-cd"})) == [d["production"].pk]
    cut = (timezone.now() - timedelta(days=1)).isoformat()
    assert ids(client.get(DEPLOYMENTS, {"finished_to": cut})) == [d["staging"].pk]
    assert ids(client.get(DEPLOYMENTS, {"finished_from": cut})) == [d["other"].pk]
    assert ids(client.get(DEPLOYMENTS, {"release": 999999})) == []


@pytest.mark.parametrize(
    "params",
    [
        {"release": "abc"},
        {"release": "1.5"},
        {"release": "9" * 30},  # past any id the database can hold
        {"version": "2.4.0\x00"},
        {"status": "deployed"},
        {"finished_from": "2026-11-20T25:00"},
        {"finished_to": "not-a-date"},
    ],
)
def test_a_bad_deployment_filter_is_a_400_naming_it(viewer, deployments, params):
    response = as_user(viewer).get(DEPLOYMENTS, params)
    assert response.status_code == 400, response.content
    (name,) = params
    assert name in response.json()["errors"]


def test_an_outsider_sees_no_deployments_and_gets_404(outsider, deployments):
    client = as_user(outsider)
    assert client.get(DEPLOYMENTS).json()["count"] == 0
    assert client.get(f"{DEPLOYMENTS}{deployments['production'].pk}/").status_code == 404


@pytest.mark.parametrize(
    ("scopes", "sees"),
    [
        (["deployments:write"], True),
        (["releases:read"], True),
        (["runs:write"], False),
        (["releases:write"], False),
    ],
)
def test_a_token_reads_its_services_deployments_with_deployments_write_or_releases_read(
    service, deployments, scopes, sees
):
    client = as_token(make_token("cd", [service], scopes=scopes))
    expected = {deployments["production"].pk, deployments["staging"].pk} if sees else set()
    assert set(ids(client.get(DEPLOYMENTS))) == expected
    assert client.get(f"{DEPLOYMENTS}{deployments['other'].pk}/").status_code == 404
    own = client.get(f"{DEPLOYMENTS}{deployments['production'].pk}/")
    assert own.status_code == (200 if sees else 404)


def test_deployment_list_queries_do_not_grow_with_the_rows(
    viewer, service, production, django_assert_num_queries
):
    def batch(n: int) -> None:
        for _ in range(n):
            release = ReleaseFactory(services=[service])
            deployment = DeploymentFactory(service=service, environment=production, release=release)
            spec, _ = VerificationSpec.objects.get_or_create(
                service=service,
                environment=production,
                defaults={"prometheus_url": "http://prom.example"},
            )
            VerificationRun.objects.create(deployment=deployment, spec=spec, ends_at=timezone.now())

    client = as_user(viewer)
    batch(2)
    small, _ = _count_queries(client, DEPLOYMENTS)
    batch(20)
    with django_assert_num_queries(small):
        body = client.get(DEPLOYMENTS).json()
    assert body["count"] == 22
    assert all(row["release"] and row["verification"] for row in body["results"])


def test_reporting_a_deployment_still_works_on_the_list_url(ci, production):
    body = {
        "service": "payments-api",
        "environment": "production",
        "version": "9.9.9",
        "status": "succeeded",
        "provider": "argo-cd",
        "external_id": "deploy-1",
    }
    created = ci.deployment(body)
    assert created.status_code == 201, created.content
    assert ci.deployment(body).status_code == 200
    assert Deployment.objects.count() == 1
    read = ci.client.get(
        f"{DEPLOYMENTS}{created.json()['id']}/", HTTP_AUTHORIZATION=f"Bearer {ci.token}"
    ).json()
    assert read["status"] == "succeeded" and read["version"] == "9.9.9"


def test_a_token_without_read_rights_posts_but_reads_nothing(service, production):
    # A runs:write-only token reports runs; it has no business reading deployments.
    raw = make_token("ci-only", [service], scopes=["runs:write"])
    assert CI(raw).run(run_body()).status_code == 201
    assert ids(as_token(raw).get(DEPLOYMENTS)) == []
    assert len(ids(as_token(raw).get(RUNS))) == 1


def test_the_schema_documents_the_read_endpoints_and_their_filters(viewer):
    schema = as_user(viewer).get("/api/schema/?format=json").json()
    paths = schema["paths"]
    params = lambda path: {p["name"] for p in paths[path]["get"]["parameters"]}  # noqa: E731
    assert {"service", "provider", "status", "version", "commit_sha", "ref", "page"} <= params(RUNS)
    assert {"release", "service", "environment", "status", "finished_from", "page"} <= params(
        DEPLOYMENTS
    )
    assert paths[RUNS]["post"]["operationId"] == "pipeline_runs_upsert"
    assert paths[DEPLOYMENTS]["post"]["operationId"] == "deployments_report"
    assert paths[RUNS]["post"]["security"] == [{"bearerAuth": []}]
    assert "/api/v1/pipeline-runs/{id}/" in paths and "/api/v1/deployments/{id}/" in paths


@pytest.mark.parametrize(
    ("url", "params"),
    [
        (RUNS, {}),
        (RUNS, {"service": "payments-api"}),
        (DEPLOYMENTS, {}),
        (DEPLOYMENTS, {"service": "payments-api"}),
    ],
)
def test_a_list_page_walks_an_index_newest_first_instead_of_sorting_every_row(
    viewer, runs, deployments, url, params
):
    """At 1,000,000 runs the run list took 1.2 s to sort every run for one page; an index
    in list order (pipelines 0008, releases 0009) makes a page a walk down it (20 ms)."""
    if connection.vendor != "sqlite":
        pytest.skip("SQLite's EXPLAIN QUERY PLAN")
    with CaptureQueriesContext(connection) as ctx:
        assert as_user(viewer).get(url, params).status_code == 200
    table = "pipelines_pipelinerun" if url == RUNS else "releases_deployment"
    page = [q["sql"] for q in ctx.captured_queries if q["sql"].startswith(f'SELECT "{table}"."id"')]
    assert len(page) == 1, ctx.captured_queries
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN QUERY PLAN " + page[0])
        plan = [row[-1] for row in cursor.fetchall()]
    assert not any("TEMP B-TREE FOR ORDER BY" in step for step in plan), plan
    assert any("_newest" in step for step in plan), plan
