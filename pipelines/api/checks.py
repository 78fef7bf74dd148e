"""POST /api/v1/deployment-checks/: may this version deploy to this environment now?

A thin view: a small input serializer, ``evaluate_deployment_check``, the stored answer read
back. Asking needs a bearer token with the ``deployments:check`` scope for the service;
reading a check back (GET) is like every read endpoint (a session or a token).
"""

from __future__ import annotations

import re

from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

# The words of "why is this blocked?", and the break-glass as the release page shows it.
from governance.api.serializers import BlockerSerializer, BreakGlassNoteSerializer

from .. import selectors
from ..authentication import BearerTokenAuthentication
from ..models import CheckDecision, DeploymentCheck
from ..services.checks import check_break_glass, evaluate_deployment_check
from .throttling import IngestRateThrottle
from .views import ERRORS, READ_ERRORS, _error

SLUG = re.compile(r"^[-a-zA-Z0-9_]+$")
SHA = re.compile(r"^[0-9a-fA-F]{7,64}$")


class DeploymentCheckInputSerializer(serializers.Serializer):
    """The question: a service and an environment by slug, a version, optionally the commit
    and the CD system's own id of the deployment it is about to run."""

    service = serializers.CharField(max_length=100)
    version = serializers.CharField(max_length=64)
    environment = serializers.CharField(max_length=50)
    commit_sha = serializers.CharField(max_length=64, required=False, allow_blank=True)
    external_id = serializers.CharField(max_length=200, required=False, allow_blank=True)

    def validate_service(self, value: str) -> str:
        if not SLUG.match(value):
            raise serializers.ValidationError("A service slug: letters, digits, - and _.")
        return value

    def validate_environment(self, value: str) -> str:
        if not SLUG.match(value):
            raise serializers.ValidationError("An environment slug: letters, digits, - and _.")
        return value

    def validate_commit_sha(self, value: str) -> str:
        if value and not SHA.match(value):
            raise serializers.ValidationError("A hexadecimal commit SHA of 7 to 64 digits.")
        return value.lower()


class CheckReleaseSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    version = serializers.CharField()
    state = serializers.CharField()
    url = serializers.CharField()


class CheckChangeRequestSerializer(serializers.Serializer):
    number = serializers.IntegerField()
    state = serializers.CharField()


class DeploymentCheckSerializer(serializers.Serializer):
    """The answer as stored: the decision, its blockers in the words of "why is this
    blocked?", when time alone clears them, and the governing release and change request."""

    id = serializers.IntegerField()
    decision = serializers.ChoiceField(choices=CheckDecision.choices)
    blockers = BlockerSerializer(many=True)
    resume_at = serializers.DateTimeField(allow_null=True)
    service = serializers.CharField()
    version = serializers.CharField()
    environment = serializers.CharField()
    commit_sha = serializers.CharField()
    external_id = serializers.CharField()
    release = CheckReleaseSerializer(allow_null=True)
    change_request = CheckChangeRequestSerializer(allow_null=True)
    source = serializers.CharField()
    checked_at = serializers.DateTimeField()
    break_glass = BreakGlassNoteSerializer(
        many=True,
        help_text="Not a blocker: the break-glass in force for this release and environment "
        "when the check was answered, and the freezes it lifted.",
    )


def check_body(check: DeploymentCheck, request=None) -> dict:
    release = check.release
    release_body = None
    if release is not None:
        url = release.get_absolute_url()
        release_body = {
            "id": release.pk,
            "name": release.name,
            "version": release.version,
            "state": release.state,
            "url": request.build_absolute_uri(url) if request is not None else url,
        }
    cr = check.change_request
    return {
        "id": check.pk,
        "decision": check.decision,
        "blockers": check.blockers,
        "resume_at": check.resume_at.isoformat() if check.resume_at else None,
        "service": check.service_slug,
        "version": check.version,
        "environment": check.environment_slug,
        "commit_sha": check.commit_sha,
        "external_id": check.external_id,
        "release": release_body,
        "change_request": {"number": cr.number, "state": cr.state} if cr else None,
        "source": check.source,
        "checked_at": check.created_at.isoformat(),
        "break_glass": check_break_glass(check),
    }


CHECK_EXAMPLE = OpenApiExample(
    "Before deploying payments-api 2.4.0 to production",
    request_only=True,
    value={
        "service": "payments-api",
        "version": "2.4.0",
        "environment": "production",
        "commit_sha": "3f1c0d9e8b7a6f5e4d3c2b1a09f8e7d6c5b4a392",
        "external_id": "deploy-77",
    },
)


class DeploymentCheckViewSet(mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Deployment checks: POST asks (and records the answer); GET reads one back.

    Who reads what: users holding any role read every check; a token with
    ``deployments:check`` or ``releases:read`` reads the checks of its services.
    """

    permission_classes = [IsAuthenticated]
    serializer_class = DeploymentCheckSerializer

    def get_queryset(self):
        return selectors.visible_deployment_checks(viewer=self.request.user)

    def _asking(self) -> bool:
        request = getattr(self, "request", None)
        return request is not None and request.method == "POST"

    def get_authenticators(self):
        if self._asking():
            return [BearerTokenAuthentication()]
        return super().get_authenticators()

    def get_throttles(self):
        if self._asking():
            return [IngestRateThrottle()]
        return super().get_throttles()

    @extend_schema(
        operation_id="deployment_checks_create",
        summary="Ask whether a deployment may proceed now (allow, deny or wait)",
        description=(
            "Judged by the same readiness, freeze and policy code as the release page and the "
            "board: for production the blockers of the release's deployment (gates, window, "
            "freezes, releases deploying the same service, promotion order and soak), for an "
            "earlier environment the promotion order and soak towards it. `allow` when "
            "nothing blocks; `wait` when only time blocks (a freeze ends, the window opens, "
            "a soak completes), with `resume_at`; `deny` otherwise, including an unknown "
            "service, environment or version and any internal error (fail closed). Every "
            "check is recorded and audited."
        ),
        request=DeploymentCheckInputSerializer,
        examples=[CHECK_EXAMPLE],
        responses={
            201: OpenApiResponse(DeploymentCheckSerializer, description="The answer, recorded."),
            400: ERRORS[400],
            401: ERRORS[401],
            403: _error(
                "The token lacks the deployments:check scope or may not ask about this service."
            ),
            429: ERRORS[429],
        },
        tags=["deployment checks"],
    )
    def create(self, request):
        data = DeploymentCheckInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        result = evaluate_deployment_check(
            service=values["service"],
            version=values["version"],
            environment=values["environment"],
            commit_sha=values.get("commit_sha") or None,
            external_id=values.get("external_id") or None,
            actor=request.user,
            source="api",
        )
        return Response(check_body(result.check, request), status=status.HTTP_201_CREATED)

    @extend_schema(
        operation_id="deployment_checks_retrieve",
        summary="One deployment check, as it was answered",
        responses={
            200: DeploymentCheckSerializer,
            401: READ_ERRORS[401],
            404: _error("No such check, or not visible to the caller."),
        },
        tags=["deployment checks"],
    )
    def retrieve(self, request, pk=None):
        return Response(check_body(self.get_object(), request))
