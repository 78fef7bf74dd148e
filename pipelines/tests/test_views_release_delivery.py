"""The release page's delivery panel: runs, artefacts with digests, deployments per
environment; readable by whoever reads the release, in a constant number of queries."""

from __future__ import annotations

import pytest
from django.urls import reverse

from pipelines.models import Artefact, ArtefactTag, PipelineCheck, PipelineRun
from releases.models import Deployment
from tests.factories import ReleaseFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def release(service):
    return ReleaseFactory(services=[service], version="2.4.0")


def add_run(service, n: int) -> PipelineRun:
    run = PipelineRun.objects.create(
        service=service,
        provider="github_actions",
        external_id=str(9000 + n),
        status="succeeded",
        version="2.4.0",
        commit_sha="3f1c0d9e8b",
        url=f"https://ci.example/run/{9000 + n}",
    )
    PipelineCheck.objects.create(run=run, kind="tests", status="passed", metrics={"passed": 8})
    artefact = Artefact.objects.create(
        service=service, name=f"img{n}", version="2.4.0", digest=f"sha256:{n:064x}", first_run=run
    )
    for version in ("2.4.0", f"2.4.0-rc.{n}"):
        ArtefactTag.objects.create(
            artefact=artefact, service=service, name=artefact.name, version=version, run=run
        )
    return run


def add_deployment(service, environment, n: int) -> Deployment:
    return Deployment.objects.create(
        service=service,
        environment=environment,
        version="2.4.0",
        provider="argo-cd",
        external_id=f"d{n}",
    )


def test_the_panel_shows_runs_artefacts_and_deployments(
    client, viewer, release, service, production
):
    add_run(service, 1)
    add_deployment(service, production, 1)
    client.force_login(viewer)
    response = client.get(reverse("pipelines:release_delivery", args=[release.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert "https://ci.example/run/9001" in html
    assert "sha256:" + f"{1:064x}" in html
    assert "img1:2.4.0" in html and "2.4.0, 2.4.0-rc.1" in html  # every version of the digest
    assert "production" in html and "Pending" in html


def test_the_release_page_loads_the_panel(client, viewer, release):
    client.force_login(viewer)
    html = client.get(release.get_absolute_url()).content.decode()
    assert reverse("pipelines:release_delivery", args=[release.pk]) in html


def test_an_outsider_gets_a_404(client, outsider, release):
    client.force_login(outsider)
    url = reverse("pipelines:release_delivery", args=[release.pk])
    assert client.get(url).status_code == 404


def test_the_query_count_does_not_grow_with_rows(
    client, viewer, release, service, production, staging, django_assert_max_num_queries
):
    client.force_login(viewer)
    url = reverse("pipelines:release_delivery", args=[release.pk])
    add_run(service, 1)
    add_deployment(service, production, 1)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as few:
        client.get(url)
    for n in range(2, 12):
        add_run(service, n)
        add_deployment(service, production if n % 2 else staging, n)
    with django_assert_max_num_queries(len(few.captured_queries)):
        client.get(url)


def test_the_panel_lists_the_latest_deployment_checks_and_the_rollout(
    client, viewer, release, service, production, staging
):
    from pipelines.services.checks import evaluate_deployment_check

    Deployment.objects.create(
        service=service,
        environment=staging,
        version="2.4.0",
        strategy="canary",
        canary_stages=[5, 50, 100],
        provider="argo-cd",
        external_id="canary-1",
    )
    evaluate_deployment_check(
        service="payments-api",
        version="2.4.0",
        environment="production",
        commit_sha="3f1c0d9e8b7a",
        source="cli",
    )
    client.force_login(viewer)
    html = client.get(reverse("pipelines:release_delivery", args=[release.pk])).content.decode()
    assert "Deployment checks" in html
    assert "payments-api 2.4.0 → production" in html
    assert "check-decision-deny" in html and "must be approved before it deploys" in html
    assert "3f1c0d9e8b" in html
    assert "canary 5% → 50% → 100%" in html
