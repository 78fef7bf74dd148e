"""What pipelines contributes to the releases app's seams: the incidents on a release's
post-release panel and its evidence pack."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from pipelines.models import Incident
from releases import evidence
from releases.choices import ReleaseState
from tests.factories import DeploymentFactory, ReleaseFactory, force_state, make_ready


@pytest.fixture
def incident(service, production, release_manager):
    release = force_state(
        make_ready(ReleaseFactory(services=[service], owner=release_manager)),
        ReleaseState.DEPLOYED,
    )
    deployment = DeploymentFactory(release=release, service=service, environment=production)
    return Incident.objects.create(
        deployment=deployment,
        service=service,
        fingerprint="f1",
        alertname="HighErrorRate",
        started_at=timezone.now() - timedelta(hours=1),
    )


@pytest.mark.django_db
def test_the_post_release_panel_lists_the_releases_incidents(client, incident, release_manager):
    client.force_login(release_manager)
    page = client.get(f"/releases/{incident.deployment.release_id}/post-release/")
    assert "HighErrorRate" in page.content.decode()


@pytest.mark.django_db
def test_the_evidence_pack_holds_the_releases_incidents(incident):
    snapshot = evidence.collect_evidence(incident.deployment.release)
    assert [i["alertname"] for i in snapshot["incidents"]] == ["HighErrorRate"]
    assert snapshot["artefacts"] == [] and snapshot["verification_samples"] == []
