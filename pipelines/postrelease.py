"""What pipelines shows on a release's post-release panel: the incidents its deployments
raised. Registered with ``releases.postrelease.panel`` in PipelinesConfig.ready()."""

from __future__ import annotations

from releases.models import Release

from .models import Incident


def release_incidents(release: Release) -> list[Incident]:
    """The incidents of the release's deployments, oldest first."""
    return list(Incident.objects.filter(deployment__release=release).order_by("started_at"))
