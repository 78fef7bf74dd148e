"""The ingestion contract, described for the OpenAPI schema (``/api/schema/``).

These serializers document; ``validation.py`` validates (it is several times faster on the
hot path). ``pipelines/tests/test_api_contract.py`` keeps both in step.
"""

from __future__ import annotations

from django.core.exceptions import ObjectDoesNotExist
from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from releases.choices import DeploymentState, DeploymentStrategy
from releases.models import Deployment, Release

from ..models import (
    Artefact,
    ArtefactTag,
    CheckKind,
    CheckStatus,
    PipelineRun,
    Provider,
    RunStatus,
    VerificationStatus,
)
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
    skipped, critical, high, percent…). Unknown keys are not stored; the answer lists them
    in ``ignored``."""

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


class IgnoredSerializer(serializers.Serializer):
    field = serializers.CharField(
        help_text="The reported field, as a path: status, checks[tests], "
        "artefacts[img 2.0.1].uri, artefacts[0].tag, build.parameters.VERSION…"
    )
    reason = serializers.CharField(help_text="Why it was not stored.")


IGNORED_HELP = (
    "What the report held that is not stored, and why (unknown fields, a late status, a time "
    "already known, a shortened text…); empty when everything reported is stored."
)


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
    ignored = IgnoredSerializer(many=True, help_text=IGNORED_HELP)


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
    strategy = serializers.ChoiceField(
        choices=DeploymentStrategy.choices,
        required=False,
        help_text="The rollout; all_at_once when never reported.",
    )
    canary_stages = serializers.ListField(
        child=serializers.FloatField(min_value=0, max_value=100),
        required=False,
        max_length=20,
        help_text="A canary's traffic percentages, rising, e.g. [5, 25, 100].",
    )


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
    strategy = serializers.ChoiceField(choices=DeploymentStrategy.choices)
    canary_stages = serializers.ListField(child=serializers.FloatField())
    release = serializers.IntegerField(allow_null=True)
    release_state = serializers.CharField(allow_null=True)
    created = serializers.BooleanField()
    changed = serializers.BooleanField()
    ignored = IgnoredSerializer(many=True, help_text=IGNORED_HELP)


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
    ignored = IgnoredSerializer(many=True, required=False, help_text=IGNORED_HELP)
    gate_request = serializers.IntegerField(
        required=False,
        allow_null=True,
        help_text="The held deployment recorded (GitHub deployment_protection_rule, GitLab "
        "blocked deployment): Releasegate answers it through the provider's API.",
    )


class CDEventResultSerializer(WebhookResultSerializer):
    """What a CDEvent became: a run, a deployment (as ``POST /api/v1/deployments/`` answers
    it), incidents, or nothing (202, ``ignored`` says why)."""

    recorded = serializers.BooleanField()
    type = serializers.CharField(help_text="The CloudEvent's type, as received.")
    mode = serializers.ChoiceField(choices=[("binary", "binary"), ("structured", "structured")])
    deployment = DeploymentOutputSerializer(required=False)


# --- reads ------------------------------------------------------------------------------------


def _absolute(serializer: serializers.Serializer, name: str, pk: int) -> str:
    path = reverse(name, kwargs={"pk": pk})
    request = serializer.context.get("request")
    return request.build_absolute_uri(path) if request is not None else path


class PipelineRunLinksSerializer(serializers.Serializer):
    self = serializers.URLField()


class ArtefactTagSerializer(serializers.ModelSerializer):
    """A version (or tag) naming an artefact's digest, with its first report."""

    reported_at = serializers.DateTimeField(source="created_at", read_only=True)

    class Meta:
        model = ArtefactTag
        fields = ["version", "uri", "run", "reported_by", "reported_at"]
        read_only_fields = fields


class RunArtefactSerializer(serializers.Serializer):
    """An artefact version a run reported first, with every version naming its digest."""

    name = serializers.CharField(read_only=True)
    version = serializers.CharField(read_only=True)
    digest = serializers.CharField(source="artefact.digest", read_only=True)
    uri = serializers.CharField(allow_blank=True, read_only=True)
    tags = ArtefactTagSerializer(source="artefact.tags", many=True, read_only=True)


class PipelineRunSerializer(serializers.ModelSerializer):
    """A recorded run as the read endpoints show it (the POST answer without created and
    changed, with its timestamps). ``artefacts`` are the versions this run reported first,
    each with its digest and ``tags`` (every version naming that digest): a version is one
    immutable record, so a later attempt reporting the same one lists none — it reads back
    through ``/api/v1/artefacts/``."""

    service = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    provider = serializers.ChoiceField(choices=Provider.choices, read_only=True)
    status = serializers.ChoiceField(choices=RunStatus.choices, read_only=True)
    url = serializers.CharField(read_only=True, help_text="The run on the CI system.")
    checks = CheckOutputSerializer(many=True, read_only=True)
    artefacts = RunArtefactSerializer(source="artefact_tags", many=True, read_only=True)
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


class ArtefactSerializer(serializers.ModelSerializer):
    """An artefact: one immutable digest of a service's build output. ``version`` is the one
    it was first reported under; ``tags`` are all the versions naming it, oldest first."""

    service = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    tags = ArtefactTagSerializer(many=True, read_only=True)
    links = serializers.SerializerMethodField()

    class Meta:
        model = Artefact
        fields = [
            "id",
            "service",
            "name",
            "version",
            "digest",
            "uri",
            "first_run",
            "created_at",
            "tags",
            "links",
        ]
        read_only_fields = fields

    @extend_schema_field(PipelineRunLinksSerializer)
    def get_links(self, artefact: Artefact) -> dict:
        return {"self": _absolute(self, "artefact-detail", artefact.pk)}


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
            "canary_stages",
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
