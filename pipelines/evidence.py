"""Pipelines' sections of a release's evidence pack (``releases.evidence``): the artefacts
of its version, the incidents its deployments raised, and their verification samples.
Registered in PipelinesConfig.ready(), at the positions the pack has always listed them."""

from __future__ import annotations

from releases import evidence
from releases.evidence import iso, plain
from releases.models import Release

from .models import Artefact, Incident, VerificationSample


def artefacts(release: Release) -> list[dict]:
    """The artefacts the release's version names, each with every version naming its
    digest (``tags``: an rc promoted to the release keeps both)."""
    found = Artefact.objects.filter(
        service_id__in=release.services.values("pk"), tags__version=release.version
    ).prefetch_related("tags")
    return [
        {
            "service_id": a.service_id,
            "name": a.name,
            "version": release.version,
            "digest": a.digest,
            "uri": a.uri,
            "tags": [t.version for t in a.tags.all()],
        }
        for a in found
    ]


def incidents(release: Release) -> list[dict]:
    found = Incident.objects.filter(deployment__release=release).order_by("started_at")
    return [
        {
            "alertname": i.alertname,
            "status": i.status,
            "started_at": iso(i.started_at),
            "resolved_at": iso(i.resolved_at),
        }
        for i in found
    ]


def verification_samples(release: Release) -> list[dict]:
    """Every field of every deployment verification sample, as stored."""
    samples = VerificationSample.objects.filter(run__deployment__release=release).order_by("pk")
    return [
        {field.name: plain(getattr(s, field.attname)) for field in s._meta.concrete_fields}
        for s in samples
    ]


def register() -> None:
    evidence.register_section("artefacts", artefacts, position=90)
    evidence.register_section("incidents", incidents, position=110)
    evidence.register_section("verification_samples", verification_samples, position=120)
