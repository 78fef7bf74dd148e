"""The ingestion contract, described for the OpenAPI schema (``/api/schema/``).

These serializers document; ``validation.py`` validates (it is several times faster on the
hot path). ``pipelines/tests/test_api_contract.py`` keeps both in step.
"""

from __future__ import annotations

from rest_framework import serializers

from ..models import CheckKind, CheckStatus, Provider, RunStatus
from .validation import DEPLOYMENT_STATUSES, MAX_ARTEFACTS, MAX_ATTEMPT, MAX_CHECKS


class CheckInputSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=CheckKind.choices)
    status = serializers.ChoiceField(choices=CheckStatus.choices)
    name = serializers.CharField(max_length=100, required=False, allow_blank=True)

    class Meta:
        ref_name = "PipelineCheckInput"


class ArtefactInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    version = serializers.CharField(max_length=64)
    digest = serializers.RegexField(
        r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{8,}$",
        max_length=100,
        help_text="Content digest, e.g. sha256:…; immutable per name and version.",
    )
    uri = serializers.CharField(max_length=500, required=False, allow_blank=True)


class PipelineRunInputSerializer(serializers.Serializer):
    """A CI run (one attempt). Extra keys of a check are its metrics (passed, failed,
    skipped, critical, high, percent…). Unknown top-level keys are ignored."""

    service = serializers.RegexField(r"^[-a-zA-Z0-9_]+$", max_length=100)
    provider = serializers.ChoiceField(choices=Provider.choices)
    external_id = serializers.CharField(max_length=200)
    attempt = serializers.IntegerField(min_value=1, max_value=MAX_ATTEMPT, default=1)
    status = serializers.ChoiceField(choices=RunStatus.choices)
    commit_sha = serializers.RegexField(
        r"^[0-9a-fA-F]{7,64}$", max_length=64, required=False, allow_blank=True
    )
    ref = serializers.CharField(max_length=255, required=False, allow_blank=True)
    version = serializers.CharField(max_length=64, required=False, allow_blank=True)
    url = serializers.URLField(max_length=500, required=False, allow_blank=True)
    name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    repository = serializers.CharField(max_length=255, required=False, allow_blank=True)
    started_at = serializers.DateTimeField(required=False, allow_null=True)
    finished_at = serializers.DateTimeField(required=False, allow_null=True)
    checks = CheckInputSerializer(many=True, required=False, max_length=MAX_CHECKS)
    artefacts = ArtefactInputSerializer(many=True, required=False, max_length=MAX_ARTEFACTS)


class CheckOutputSerializer(serializers.Serializer):
    kind = serializers.CharField()
    name = serializers.CharField(allow_blank=True)
    status = serializers.CharField()
    metrics = serializers.DictField()


class ArtefactOutputSerializer(serializers.Serializer):
    name = serializers.CharField()
    version = serializers.CharField()
    digest = serializers.CharField()
    uri = serializers.CharField(allow_blank=True)


class PipelineRunOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    service = serializers.CharField()
    provider = serializers.CharField()
    external_id = serializers.CharField()
    attempt = serializers.IntegerField()
    status = serializers.ChoiceField(choices=RunStatus.choices)
    commit_sha = serializers.CharField(allow_blank=True)
    ref = serializers.CharField(allow_blank=True)
    version = serializers.CharField(allow_blank=True)
    url = serializers.CharField(allow_blank=True)
    name = serializers.CharField(allow_blank=True)
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    created = serializers.BooleanField(help_text="True when this post created the run.")
    changed = serializers.BooleanField(help_text="False when the post changed nothing.")
    checks = CheckOutputSerializer(many=True)
    artefacts = ArtefactOutputSerializer(many=True)


class DeploymentInputSerializer(serializers.Serializer):
    """A deployment of a service's version to an environment, as a CD system reports it."""

    service = serializers.RegexField(r"^[-a-zA-Z0-9_]+$", max_length=100)
    environment = serializers.RegexField(r"^[-a-zA-Z0-9_]+$", max_length=50)
    version = serializers.CharField(max_length=64)
    status = serializers.ChoiceField(choices=[(s, s) for s in DEPLOYMENT_STATUSES])
    provider = serializers.CharField(max_length=40)
    external_id = serializers.CharField(max_length=200)
    url = serializers.URLField(max_length=500, required=False, allow_blank=True)
    started_at = serializers.DateTimeField(required=False, allow_null=True)
    finished_at = serializers.DateTimeField(required=False, allow_null=True)


class DeploymentOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    service = serializers.CharField()
    environment = serializers.CharField()
    version = serializers.CharField()
    status = serializers.ChoiceField(choices=[(s, s) for s in DEPLOYMENT_STATUSES])
    provider = serializers.CharField()
    external_id = serializers.CharField()
    url = serializers.CharField(allow_blank=True)
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    release = serializers.IntegerField(allow_null=True)
    release_state = serializers.CharField(allow_null=True)
    created = serializers.BooleanField()
    changed = serializers.BooleanField()


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
    code = serializers.CharField()
    errors = serializers.DictField(required=False)
    blockers = serializers.ListField(child=serializers.DictField(), required=False)


class WebhookResultSerializer(serializers.Serializer):
    detail = serializers.CharField()
    duplicate = serializers.BooleanField(required=False)
    run = serializers.IntegerField(required=False, allow_null=True)
    status = serializers.CharField(required=False)
    incidents_opened = serializers.IntegerField(required=False)
    incidents_resolved = serializers.IntegerField(required=False)
