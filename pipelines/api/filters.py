"""Query filters of the pipeline-run and deployment read endpoints.

Names follow the releases API (``service`` is a slug, ranges are ``<field>_from`` and
``<field>_to``); a malformed value is a 400 naming the parameter, never a 500.
"""

from __future__ import annotations

import django_filters

from releases.api.filters import IdFilter, UtcIsoDateTimeFilter
from releases.choices import DeploymentState
from releases.models import Deployment

from ..models import Artefact, PipelineRun, Provider, RunStatus


class _Finished(django_filters.FilterSet):
    finished_from = UtcIsoDateTimeFilter(
        field_name="finished_at",
        lookup_expr="gte",
        help_text="Finished at or after this ISO 8601 time.",
    )
    finished_to = UtcIsoDateTimeFilter(
        field_name="finished_at",
        lookup_expr="lte",
        help_text="Finished at or before this ISO 8601 time.",
    )


class PipelineRunFilter(_Finished):
    service = django_filters.CharFilter(field_name="service__slug", help_text="Service slug.")
    provider = django_filters.MultipleChoiceFilter(choices=Provider.choices)
    status = django_filters.MultipleChoiceFilter(choices=RunStatus.choices)
    version = django_filters.CharFilter(max_length=64)
    commit_sha = django_filters.CharFilter(max_length=64, help_text="The full SHA as reported.")
    ref = django_filters.CharFilter(max_length=255)
    external_id = django_filters.CharFilter(max_length=200)

    class Meta:
        model = PipelineRun
        fields = ["service", "provider", "status", "version", "commit_sha", "ref", "external_id"]


class DeploymentFilter(_Finished):
    release = IdFilter(field_name="release_id", help_text="Release id.")
    service = django_filters.CharFilter(field_name="service__slug", help_text="Service slug.")
    environment = django_filters.CharFilter(
        field_name="environment__slug", help_text="Environment slug."
    )
    status = django_filters.MultipleChoiceFilter(
        field_name="state", choices=DeploymentState.choices, help_text="Deployment state."
    )
    version = django_filters.CharFilter(max_length=64)
    provider = django_filters.CharFilter(max_length=40)
    external_id = django_filters.CharFilter(max_length=200)

    class Meta:
        model = Deployment
        fields = ["release", "service", "environment", "status", "version", "provider"]


class ArtefactFilter(django_filters.FilterSet):
    service = django_filters.CharFilter(field_name="service__slug", help_text="Service slug.")
    name = django_filters.CharFilter(max_length=200)
    digest = django_filters.CharFilter(max_length=100)
    version = django_filters.CharFilter(
        field_name="tags__version", max_length=64, help_text="Any version or tag naming it."
    )

    class Meta:
        model = Artefact
        fields = ["service", "name", "digest", "version"]
