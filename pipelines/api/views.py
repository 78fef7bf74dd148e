"""Pipeline runs and deployments over REST.

POST on a list URL is machine ingestion: a thin view that parses, validates, calls one
service, answers. The request body is read raw (its size checked first) and validated by
``validation.py``; no serializer runs on the hot path. GET reads them back like every other
read endpoint (selectors choose the joins and the visibility). Errors are JSON
(config.api.exception_handler).
"""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import exceptions, mixins, status, viewsets
from rest_framework.parsers import JSONParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from core.errors import PermissionDenied
from releases.models import Environment, Service

from .. import selectors, services
from ..adapters.types import Ignored
from ..authentication import BearerTokenAuthentication
from ..models import TokenScope
from ..reports import DeploymentReport
from . import validation
from .filters import ArtefactFilter, DeploymentFilter, PipelineRunFilter
from .serializers import (
    ArtefactSerializer,
    DeploymentInputSerializer,
    DeploymentOutputSerializer,
    DeploymentSerializer,
    ErrorSerializer,
    PipelineRunInputSerializer,
    PipelineRunOutputSerializer,
    PipelineRunSerializer,
)
from .throttling import IngestRateThrottle


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "too_large"


def read_body(request) -> bytes:
    """The raw body, refused with 413 beyond INGEST_MAX_BODY_BYTES before it is read."""
    limit = settings.INGEST_MAX_BODY_BYTES
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > limit:
        raise PayloadTooLarge(f"The request body is {length} bytes; the limit is {limit} bytes.")
    environ = request._request.META
    if not length and environ.get("wsgi.input_terminated"):
        # A chunked body (no Content-Length): Django reads nothing without a length, but a
        # server that de-chunks and marks the stream terminated (gunicorn) lets it be read
        # to its end. One byte past the limit tells "over the limit" from "at it".
        body = environ["wsgi.input"].read(limit + 1)
    else:
        body = request._request.body
    if len(body) > limit:
        raise PayloadTooLarge(f"The request body is over the limit of {limit} bytes.")
    return body


RUN_EXAMPLE = OpenApiExample(
    "A finished GitHub Actions run",
    request_only=True,
    value={
        "service": "payments-api",
        "provider": "github_actions",
        "external_id": "9001",
        "attempt": 1,
        "status": "succeeded",
        "commit_sha": "3f1c0d9e8b7a6f5e4d3c2b1a09f8e7d6c5b4a392",
        "ref": "refs/heads/main",
        "version": "2.4.0",
        "url": "https://ci.example/run/9001",
        "started_at": "2026-11-20T10:00:00Z",
        "finished_at": "2026-11-20T10:07:12Z",
        "checks": [
            {"kind": "tests", "status": "passed", "passed": 812, "failed": 0, "skipped": 4},
            {"kind": "security_scan", "status": "passed", "critical": 0, "high": 1},
            {"kind": "coverage", "status": "passed", "percent": 87.5},
        ],
        "artefacts": [
            {
                "name": "payments-api",
                "version": "2.4.0",
                "digest": "sha256:9b2c0f3a4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8",
                "uri": "registry.example/payments-api:2.4.0",
            }
        ],
    },
)
DEPLOYMENT_EXAMPLE = OpenApiExample(
    "A production deployment in progress",
    request_only=True,
    value={
        "service": "payments-api",
        "environment": "production",
        "version": "2.4.0",
        "status": "in_progress",
        "provider": "argo-cd",
        "external_id": "deploy-77",
        "url": "https://cd.example/deploy/77",
        "started_at": "2026-11-20T11:00:00Z",
        "strategy": "canary",
        "canary_stages": [5, 25, 100],
    },
)


def _error(description: str) -> OpenApiResponse:
    return OpenApiResponse(ErrorSerializer, description=description)


ERRORS = {
    400: _error("Malformed JSON or invalid fields (errors names each field)."),
    401: _error("Missing, invalid or revoked token."),
    403: _error("The token lacks the scope or may not report for this service."),
    409: _error("Conflicts with what is recorded (artefact digest, run of another service)."),
    413: _error("The body is over the configured size."),
    429: _error("Too many requests for this token; see Retry-After."),
}


READ_ERRORS = {
    400: _error("A malformed filter (errors names each parameter)."),
    401: _error("Not authenticated: no session, or a missing, invalid or revoked token."),
}
LIST_ERRORS = {
    **READ_ERRORS,
    404: _error("Invalid page: not a page number, or past the last page."),
}


class ReadOrIngestViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """GET reads like every read endpoint: a session or a token, paginated, filtered, not
    throttled. POST on the list URL (``create``) is the ingestion, as it was on its own view:
    a bearer token only, rate-limited per token, the body size-checked before it is read and
    parsed by ``validation.py``, never by ``request.data``."""

    # Declared for the schema; the body is parsed by validation.parse_json, never request.data.
    parser_classes = [JSONParser]
    permission_classes = [IsAuthenticated]
    required_scope = ""

    def _ingesting(self) -> bool:
        # self.request is set (to the Django request, or spectacular's mock) before DRF asks
        # for the authenticators, so the method is known here.
        request = getattr(self, "request", None)
        return request is not None and request.method == "POST"

    def get_authenticators(self):
        if self._ingesting():
            return [BearerTokenAuthentication()]
        return super().get_authenticators()

    def get_throttles(self):
        if self._ingesting():
            return [IngestRateThrottle()]
        return super().get_throttles()

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if self._ingesting():
            self.body = read_body(request)

    def service_id(self, slug: str) -> int:
        """The id of a service this token may report for (403/400 otherwise, no write)."""
        principal = self.request.user
        if not principal.has_scope(self.required_scope):
            raise PermissionDenied(f"This token lacks the {self.required_scope!r} scope.")
        service_id = principal.service_slugs.get(slug)
        if service_id is None:
            if not Service.objects.filter(slug=slug).exists():
                raise exceptions.ValidationError({"service": [f"Unknown service {slug!r}."]})
            raise PermissionDenied(f"This token may not report for service {slug!r}.")
        return service_id


def run_body(result: services.RunUpsertResult, slug: str, artefacts) -> dict:
    run = result.run
    checks = result.checks if result.checks is not None else list(run.checks.all())
    return {
        "id": run.pk,
        "service": slug,
        "provider": run.provider,
        "external_id": run.external_id,
        "attempt": run.attempt,
        "status": run.status,
        "commit_sha": run.commit_sha,
        "ref": run.ref,
        "version": run.version,
        "url": run.url,
        "name": run.name,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "created": result.created,
        "changed": result.changed,
        "checks": [
            {"kind": c.kind, "name": c.name, "status": c.status, "metrics": c.metrics}
            for c in checks
        ],
        "artefacts": [
            {"name": a.name, "version": a.version, "digest": a.digest, "uri": a.uri}
            for a in artefacts
        ],
        "ignored": [i.as_dict() for i in result.ignored],
    }


def read_schema(prefix: str, serializer, *, list_summary: str, one_summary: str, missing: str):
    """The OpenAPI description of a read-only list and retrieve pair."""
    return extend_schema_view(
        list=extend_schema(
            operation_id=f"{prefix}_list",
            summary=list_summary,
            responses={200: serializer(many=True), **LIST_ERRORS},
        ),
        retrieve=extend_schema(
            operation_id=f"{prefix}_retrieve",
            summary=one_summary,
            responses={200: serializer, 401: READ_ERRORS[401], 404: _error(missing)},
        ),
    )


@read_schema(
    "pipeline_runs",
    PipelineRunSerializer,
    list_summary="List pipeline runs, newest first",
    one_summary="One pipeline run, with its checks and artefacts",
    missing="No such run, or not visible to the caller.",
)
class PipelineRunViewSet(ReadOrIngestViewSet):
    """Pipeline runs: POST reports one (upsert); GET lists and reads them back.

    Who reads what: users holding any role (those who read releases) see every run; users
    without a role see none (an empty list, 404 on a run). A token reads the runs of its own
    services if it has ``runs:write`` (a CI job reads back what it posted) or
    ``releases:read`` (a script reading what stands behind the releases it may read); any
    other token sees none.
    """

    required_scope = TokenScope.RUNS_WRITE
    serializer_class = PipelineRunSerializer
    filterset_class = PipelineRunFilter

    def get_queryset(self):
        return selectors.visible_pipeline_runs(viewer=self.request.user)

    @extend_schema(
        operation_id="pipeline_runs_upsert",
        summary="Report a CI run (upsert on provider, external_id, attempt)",
        request=PipelineRunInputSerializer,
        examples=[RUN_EXAMPLE],
        responses={
            201: OpenApiResponse(PipelineRunOutputSerializer, description="Created."),
            200: OpenApiResponse(
                PipelineRunOutputSerializer, description="Updated, or unchanged (changed=false)."
            ),
            **ERRORS,
        },
        tags=["ingestion"],
    )
    def create(self, request):
        slug, event, checks, artefacts = validation.run_report(validation.parse_json(self.body))
        result = services.pipeline_run_upsert(
            actor=request.user,
            service=self.service_id(slug),
            event=event,
            checks=checks,
            artefacts=artefacts,
        )
        return Response(
            run_body(result, slug, artefacts),
            status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK,
        )


def deployment_body(
    result: services.DeploymentResult, report: DeploymentReport, environment
) -> dict:
    deployment = result.deployment
    release = deployment.release
    return {
        "id": deployment.pk,
        "service": report.service,
        "environment": environment.slug,
        "version": deployment.version,
        "status": deployment.state,
        "provider": deployment.provider,
        "external_id": deployment.external_id,
        "url": deployment.url,
        "started_at": deployment.started_at,
        "finished_at": deployment.finished_at,
        "strategy": deployment.strategy,
        "canary_stages": deployment.canary_stages,
        "release": release.pk if release else None,
        "release_state": release.state if release else None,
        "created": result.created,
        "changed": result.changed,
        "ignored": [i.as_dict() for i in deployment_ignored(result.deployment, report)],
    }


def deployment_ignored(deployment, report: DeploymentReport) -> list[Ignored]:
    """What of a deployment report the recorded deployment does not hold, and why (the
    deployment's merge rules, docs/ingestion.md): it never moves back, and a URL or a time
    once recorded is kept."""
    ignored = list(report.ignored)
    if report.status != deployment.state:
        ignored.append(
            Ignored(
                "status",
                f"The deployment is {deployment.state}; a late {report.status} never moves "
                "it back.",
            )
        )
    if report.url and report.url != deployment.url:
        ignored.append(Ignored("url", "A recorded URL is kept."))
    if report.strategy and report.strategy != deployment.strategy:
        ignored.append(Ignored("strategy", f"A recorded strategy is kept: {deployment.strategy}."))
    if report.canary_stages and list(report.canary_stages) != deployment.canary_stages:
        ignored.append(Ignored("canary_stages", "Recorded canary stages are kept."))
    for name in ("started_at", "finished_at"):
        value, stored = getattr(report, name), getattr(deployment, name)
        if value is not None and value != stored:
            if stored is None:
                reason = f"Kept only once the deployment is finished; it is {deployment.state}."
            else:
                reason = f"Times, once known, are kept: recorded {stored.isoformat()}."
            ignored.append(Ignored(name, reason))
    return ignored


@read_schema(
    "deployments",
    DeploymentSerializer,
    list_summary="List deployments, newest first",
    one_summary="One deployment, with its release and verification",
    missing="No such deployment, or not visible to the caller.",
)
class DeploymentViewSet(ReadOrIngestViewSet):
    """Deployments: POST reports one (upsert); GET lists and reads them back.

    Who reads what: users holding any role see every deployment; users without a role see
    none (an empty list, 404 on a deployment). A token reads the deployments of its own
    services if it has ``deployments:write`` (a CD job reads back what it reported) or
    ``releases:read``; any other token sees none.
    """

    required_scope = TokenScope.DEPLOYMENTS_WRITE
    serializer_class = DeploymentSerializer
    filterset_class = DeploymentFilter

    def get_queryset(self):
        return selectors.visible_deployments(viewer=self.request.user)

    @extend_schema(
        operation_id="deployments_report",
        summary="Report a deployment (upsert on provider, external_id)",
        description=(
            "Drives the deployment's state machine and, for production, the release's "
            "(approved → deploying → deployed, rolled back). When governance refuses the "
            "release transition (freeze window, outside the window), the deployment is still "
            "recorded and the answer is 409 with the blockers and the recorded deployment."
        ),
        request=DeploymentInputSerializer,
        examples=[DEPLOYMENT_EXAMPLE],
        responses={
            201: OpenApiResponse(DeploymentOutputSerializer, description="Created."),
            200: OpenApiResponse(
                DeploymentOutputSerializer, description="Updated, or unchanged (changed=false)."
            ),
            **ERRORS,
        },
        tags=["ingestion"],
    )
    def create(self, request):
        report = validation.deployment_report(validation.parse_json(self.body))
        service_id = self.service_id(report.service)
        environment = Environment.objects.filter(slug=report.environment).first()
        if environment is None:
            raise exceptions.ValidationError(
                {"environment": [f"Unknown environment {report.environment!r}."]}
            )
        result = services.deployment_report_upsert(
            actor=request.user, service=service_id, environment=environment, report=report
        )
        body = deployment_body(result, report, environment)
        if result.refusal is not None:
            error = result.refusal
            refused = {
                "detail": "Deployment recorded, but the release cannot move: " + error.message,
                "code": error.code,
                "deployment": body,
            }
            if isinstance(error.details, dict):
                refused["errors"] = error.details
            elif error.details is not None:
                refused["blockers"] = list(error.details)
            return Response(refused, status=status.HTTP_409_CONFLICT)
        return Response(
            body, status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK
        )


@read_schema(
    "artefacts",
    ArtefactSerializer,
    list_summary="List artefacts (one per digest, with all their versions), newest first",
    one_summary="One artefact, with every version naming its digest",
    missing="No such artefact, or not visible to the caller.",
)
class ArtefactViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Artefacts as the runs reported them: where every reported (name, version, digest)
    reads back, whichever run reported it. Read like the runs (the same viewers and token
    scopes); written only through ``POST /api/v1/pipeline-runs/``."""

    serializer_class = ArtefactSerializer
    filterset_class = ArtefactFilter

    def get_queryset(self):
        return selectors.visible_artefacts(viewer=self.request.user)
