"""The ingestion contract, described for the OpenAPI schema (``/api/schema/``).

These serializers document; ``validation.py`` validates (it is several times faster on the
hot path). ``pipelines/tests/test_api_contract.py`` keeps both in step.
"""

from __future__ import annotations

from django.core.exceptions import ObjectDoesNotExist
from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from releases.choices import DeploymentState
from releases.models import Deployment, Release

from ..models import CheckKind, CheckStatus, PipelineRun, Provider, RunStatus, VerificationStatus
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


# --- reads ------------------------------------------------------------------------------------


def _absolute(serializer: serializers.Serializer, name: str, pk: int) -> str:
    path = reverse(name, kwargs={"pk": pk})
    request = serializer.context.get("request")
    return request.build_absolute_uri(path) if request is not None else path


class PipelineRunLinksSerializer(serializers.Serializer):
    self = serializers.URLField()


class PipelineRunSerializer(serializers.ModelSerializer):
    """A recorded run as the read endpoints show it (the POST answer without created and
    changed, with its timestamps). ``artefacts`` are those this run first recorded: an
    artefact is one immutable record, and a later attempt reporting the same digest does not
    record it again."""

    service = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    provider = serializers.ChoiceField(choices=Provider.choices, read_only=True)
    status = serializers.ChoiceField(choices=RunStatus.choices, read_only=True)
    url = serializers.CharField(read_only=True, help_text="The run on the CI system.")
    checks = CheckOutputSerializer(many=True, read_only=True)
    artefacts = ArtefactOutputSerializer(many=True, read_only=True)
    links = serializers.SerializerMethodField()

    class Meta:
        model = PipelineRun
        fields = [
            "id",
            "service",
            "provider",
            "external_id",
            "attempt",
            "status",
            "commit_sha",
            "ref",
            "version",
            "url",
            "name",
            "repository",
            "started_at",
            "finished_at",
            "created_at",
            "updated_at",
            "checks",
            "artefacts",
            "links",
        ]
        read_only_fields = fields

    @extend_schema_field(PipelineRunLinksSerializer)
    def get_links(self, run: PipelineRun) -> dict:
        return {"self": _absolute(self, "pipeline-run-detail", run.pk)}


class ReleaseReferenceSerializer(serializers.ModelSerializer):
    class Meta:
        model = Release
        fields = ["id", "name", "version", "state"]
        read_only_fields = fields


class VerificationSummarySerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=VerificationStatus.choices)
    started_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    detail = serializers.CharField(allow_blank=True)


class DeploymentLinksSerializer(serializers.Serializer):
    self = serializers.URLField()
    release = serializers.URLField(allow_null=True)


class DeploymentSerializer(serializers.ModelSerializer):
    """A recorded deployment as the read endpoints show it. ``status`` is the deployment's
    state, named as in the POST body; ``verification`` is null until a verification ran."""

    service = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    environment = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    status = serializers.ChoiceField(
        source="state", choices=DeploymentState.choices, read_only=True
    )
    release = ReleaseReferenceSerializer(read_only=True, allow_null=True)
    url = serializers.CharField(read_only=True, help_text="The deployment on the CD system.")
    verification = serializers.SerializerMethodField()
    links = serializers.SerializerMethodField()

    class Meta:
        model = Deployment
        fields = [
            "id",
            "release",
            "service",
            "environment",
            "version",
            "status",
            "strategy",
            "provider",
            "external_id",
            "url",
            "started_at",
            "finished_at",
            "created_at",
            "verification",
            "links",
        ]
        read_only_fields = fields

    @extend_schema_field(VerificationSummarySerializer(allow_null=True))
    def get_verification(self, deployment: Deployment) -> dict | None:
        try:
            verification = deployment.verification  # joined by the selector
        except ObjectDoesNotExist:
            return None
        return VerificationSummarySerializer(verification).data

    @extend_schema_field(DeploymentLinksSerializer)
    def get_links(self, deployment: Deployment) -> dict:
        release_id = deployment.release_id
        return {
            "self": _absolute(self, "deployment-detail", deployment.pk),
            "release": _absolute(self, "release-detail", release_id) if release_id else None,
        }
