"""Native webhooks: GitHub Actions, GitLab CI, Jenkins, Alertmanager, CDEvents; and the
deployments GitHub (custom deployment protection rules) and GitLab (deployment approvals) hold
until Releasegate answers.

Each view reads the raw body (size-limited), verifies it against the active secrets of the
provider's enabled integrations (constant time; two secrets verify during a rotation),
parses it with the pure adapters, and hands the normalised event to the same services as
the REST endpoint. Bad input is a JSON 4xx; events we do not track are acknowledged (200)
so that providers do not disable the hook.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, status
from rest_framework.parsers import JSONParser
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from .. import services
from ..adapters import (
    AdapterError,
    cdevents,
    parse_alertmanager,
    parse_deployment_hook,
    parse_notification,
    parse_pipeline_hook,
    parse_protection_rule,
    parse_workflow_run,
    verify_any,
    verify_secret,
    verify_token,
)
from ..models import IntegrationProvider
from ..services import scm
from . import validation
from .serializers import CDEventResultSerializer, ErrorSerializer, WebhookResultSerializer
from .views import deployment_body, read_body


class SecretInURL(exceptions.AuthenticationFailed):
    default_detail = (
        "A secret in the URL (?token=) is refused, since access logs keep URLs: send it in "
        "the X-Releasegate-Token header or as Authorization: Bearer."
    )
    default_code = "secret_in_url"


class BadSignature(exceptions.AuthenticationFailed):
    default_detail = "The delivery is not signed with an active secret of an enabled integration."
    default_code = "bad_signature"


def _responses() -> dict:
    error = ErrorSerializer
    return {
        200: OpenApiResponse(
            WebhookResultSerializer, description="Processed, duplicate or ignored."
        ),
        400: OpenApiResponse(error, description="Malformed payload."),
        401: OpenApiResponse(error, description="Missing or wrong signature/secret."),
        403: OpenApiResponse(error, description="The integration may not report for it."),
        409: OpenApiResponse(error, description="Conflicts with what is recorded."),
        413: OpenApiResponse(error, description="The body is over the configured size."),
    }


class WebhookView(APIView):
    """Verified by the integration's secret, not by a token or a session."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    parser_classes = [JSONParser]
    provider = ""

    def integration_for(self, request, body: bytes):
        raise NotImplementedError

    def parse(self, body: bytes):
        return validation.parse_json(body)

    def get_authenticate_header(self, request) -> str:
        # Without it DRF turns a failed verification into a 403; it is a 401.
        return 'Signature realm="releasegate-webhooks"'

    def receive_run(self, integration, event, *, delivery_id: str, event_name: str) -> Response:
        if event is None:
            return Response({"detail": f"Ignored: {event_name or 'event'} is not a run."})
        result = services.webhook_run_receive(
            integration=integration, delivery_id=delivery_id, event_name=event_name, event=event
        )
        if result.duplicate:
            return Response({"detail": "Duplicate delivery: already processed.", "duplicate": True})
        return Response(
            {
                "detail": "Run recorded." if result.changed else "Run unchanged.",
                "duplicate": False,
                "run": result.run.pk,
                "status": result.run.status,
                "ignored": [i.as_dict() for i in result.ignored],
            }
        )

    def receive_gate(self, integration, event, *, delivery_id: str) -> Response:
        """A held deployment: recorded once; the answer goes back through the provider's API
        (pipelines/services/scm.py), not in this response."""
        if event is None:
            return Response({"detail": "Ignored: nothing to answer."})
        result = scm.deployment_gate_receive(
            integration=integration, delivery_id=delivery_id, event=event
        )
        request = result.request
        if result.duplicate:
            return Response(
                {
                    "detail": "Duplicate: this deployment is already being answered.",
                    "duplicate": True,
                    "gate_request": request.pk if request is not None else None,
                }
            )
        return Response(
            {
                "detail": "Recorded: Releasegate answers through the API once it has decided.",
                "duplicate": False,
                "gate_request": request.pk,
            }
        )

    def shared_secret(self, request) -> str | None:
        """X-Releasegate-Token or a bearer Authorization. A secret in the query string
        (``?token=``) is refused: it would be written to every access log on the way."""
        if "token" in request.query_params:
            raise SecretInURL()
        header = request.META.get("HTTP_X_RELEASEGATE_TOKEN")
        if header:
            return header
        auth = request.META.get("HTTP_AUTHORIZATION", "")
        if auth.lower().startswith("bearer "):
            return auth[7:].strip()
        return None

    def integration_by_shared_secret(self, request, provider: str, verifier):
        """The enabled integration of ``provider`` whose secrets accept the presented one."""
        presented = self.shared_secret(request)
        integration = presented and services.integrations_verifying(
            provider, lambda secrets: verifier(secrets, presented)
        )
        if not integration:
            raise BadSignature()
        return integration


SHARED_SECRET_PARAMETERS = [
    OpenApiParameter("X-Releasegate-Token", str, OpenApiParameter.HEADER),
]


def _adapter(call, *args):
    try:
        return call(*args)
    except AdapterError as exc:
        raise exceptions.ValidationError({"payload": [str(exc)]}) from None


class GitHubWebhookView(WebhookView):
    @extend_schema(
        operation_id="webhooks_github",
        summary="GitHub webhook: workflow_run, deployment_protection_rule",
        description=(
            "`workflow_run` deliveries are recorded as pipeline runs. A "
            "`deployment_protection_rule` delivery (action `requested`) holds a deployment "
            "until Releasegate answers it through GitHub's API with the deployment check's "
            "decision (docs/deployment-checks.md). Other events are acknowledged and ignored."
        ),
        request={"application/json": {"type": "object"}},
        parameters=[
            OpenApiParameter("X-Hub-Signature-256", str, OpenApiParameter.HEADER, required=True),
            OpenApiParameter("X-GitHub-Event", str, OpenApiParameter.HEADER),
            OpenApiParameter("X-GitHub-Delivery", str, OpenApiParameter.HEADER),
        ],
        responses=_responses(),
        tags=["webhooks"],
    )
    def post(self, request):
        body = read_body(request)
        signature = request.META.get("HTTP_X_HUB_SIGNATURE_256")
        if not signature:
            raise BadSignature("X-Hub-Signature-256 is missing.")
        integration = services.integrations_verifying(
            IntegrationProvider.GITHUB, lambda secrets: verify_any(secrets, body, signature)
        )
        if integration is None:
            raise BadSignature()
        event_name = request.META.get("HTTP_X_GITHUB_EVENT", "")
        if event_name == "ping":
            return Response({"detail": "pong"})
        delivery_id = request.META.get("HTTP_X_GITHUB_DELIVERY", "")[:200]
        if event_name == "deployment_protection_rule":
            gate = _adapter(parse_protection_rule, self.parse(body))
            return self.receive_gate(integration, gate, delivery_id=delivery_id)
        if event_name and event_name != "workflow_run":
            return Response({"detail": f"Ignored: {event_name} events are not tracked."})
        event = _adapter(parse_workflow_run, self.parse(body))
        return self.receive_run(
            integration, event, delivery_id=delivery_id, event_name=event_name or "workflow_run"
        )


class GitLabWebhookView(WebhookView):
    @extend_schema(
        operation_id="webhooks_gitlab",
        summary="GitLab webhook: Pipeline Hook, Deployment Hook",
        description=(
            "Pipeline Hook deliveries are recorded as pipeline runs. A Deployment Hook "
            "delivery with status `blocked` (a deployment to a protected environment waiting "
            "for approval) is answered through GitLab's deployment approvals API with the "
            "deployment check's decision (docs/deployment-checks.md); other statuses are "
            "acknowledged and ignored."
        ),
        request={"application/json": {"type": "object"}},
        parameters=[
            OpenApiParameter("X-Gitlab-Token", str, OpenApiParameter.HEADER, required=True),
            OpenApiParameter("X-Gitlab-Event", str, OpenApiParameter.HEADER),
            OpenApiParameter("X-Gitlab-Event-UUID", str, OpenApiParameter.HEADER),
        ],
        responses=_responses(),
        tags=["webhooks"],
    )
    def post(self, request):
        body = read_body(request)
        presented = request.META.get("HTTP_X_GITLAB_TOKEN")
        if not presented:
            raise BadSignature("X-Gitlab-Token is missing.")
        integration = services.integrations_verifying(
            IntegrationProvider.GITLAB, lambda secrets: verify_token(secrets, presented)
        )
        if integration is None:
            raise BadSignature()
        data = self.parse(body)
        delivery_id = request.META.get("HTTP_X_GITLAB_EVENT_UUID", "")[:200]
        if isinstance(data, dict) and data.get("object_kind") == "deployment":
            gate = _adapter(parse_deployment_hook, data)
            if gate is None:
                return Response({"detail": "Ignored: only blocked deployments are answered."})
            return self.receive_gate(integration, gate, delivery_id=delivery_id)
        event = _adapter(parse_pipeline_hook, data)
        return self.receive_run(
            integration,
            event,
            delivery_id=delivery_id,
            event_name=request.META.get("HTTP_X_GITLAB_EVENT", "Pipeline Hook"),
        )


class JenkinsWebhookView(WebhookView):
    @extend_schema(
        operation_id="webhooks_jenkins",
        summary="Jenkins Notification plugin",
        request={"application/json": {"type": "object"}},
        parameters=SHARED_SECRET_PARAMETERS,
        responses=_responses(),
        tags=["webhooks"],
    )
    def post(self, request):
        body = read_body(request)
        integration = self.integration_by_shared_secret(
            request, IntegrationProvider.JENKINS, verify_secret
        )
        event = _adapter(parse_notification, self.parse(body))
        return self.receive_run(integration, event, delivery_id="", event_name="notification")


class AlertmanagerWebhookView(WebhookView):
    @extend_schema(
        operation_id="webhooks_alertmanager",
        summary="Prometheus Alertmanager webhook (version 4)",
        request={"application/json": {"type": "object"}},
        parameters=SHARED_SECRET_PARAMETERS,
        responses=_responses(),
        tags=["webhooks"],
    )
    def post(self, request):
        body = read_body(request)
        integration = self.integration_by_shared_secret(
            request, IntegrationProvider.ALERTMANAGER, verify_token
        )
        alerts = _adapter(parse_alertmanager, self.parse(body))
        result = services.alerts_receive(integration=integration, alerts=alerts)
        return Response(
            {
                "detail": f"{len(alerts)} alert(s) received.",
                "incidents_opened": result.opened,
                "incidents_resolved": result.resolved,
                "ignored": [i.as_dict() for i in result.ignored],
            },
            status=status.HTTP_200_OK,
        )


class CDEventsWebhookView(WebhookView):
    """CDEvents v0.5 over CloudEvents HTTP, binary or structured mode
    (``pipelines/adapters/cdevents.py``), mapped by ``services.cdevent_receive``.

    Verified by the CDEvents integration's secret: an HMAC-SHA256 of the raw body in
    ``X-Releasegate-Signature-256: sha256=<hex>``, or the secret itself as a bearer token
    (or ``X-Releasegate-Token``), for senders that cannot sign."""

    @extend_schema(
        operation_id="webhooks_cdevents",
        summary="CDEvents (CloudEvents over HTTP, binary or structured mode)",
        request={
            "application/json": {"type": "object", "description": "Binary mode: the CDEvent."},
            cdevents.STRUCTURED: {
                "type": "object",
                "description": "Structured mode: the CloudEvent, its data the CDEvent.",
            },
        },
        parameters=[
            OpenApiParameter("X-Releasegate-Signature-256", str, OpenApiParameter.HEADER),
            *SHARED_SECRET_PARAMETERS,
            *(
                OpenApiParameter(f"ce-{name}", str, OpenApiParameter.HEADER)
                for name in ("specversion", "id", "source", "type", "time", "subject")
            ),
        ],
        responses={
            **_responses(),
            200: OpenApiResponse(
                CDEventResultSerializer, description="Recorded, unchanged or a duplicate."
            ),
            202: OpenApiResponse(
                CDEventResultSerializer,
                description="Accepted, nothing recorded: a type not read, or nothing to "
                "apply it to (``ignored`` says why).",
            ),
            409: OpenApiResponse(
                ErrorSerializer,
                description="Conflicts with what is recorded, or the deployment is recorded "
                "but governance refuses to move its release (``blockers``).",
            ),
            415: OpenApiResponse(ErrorSerializer, description="Not a CloudEvents mode read here."),
        },
        tags=["webhooks"],
    )
    def post(self, request):
        body = read_body(request)
        signature = request.META.get("HTTP_X_RELEASEGATE_SIGNATURE_256")
        if signature:
            integration = services.integrations_verifying(
                IntegrationProvider.CDEVENTS, lambda secrets: verify_any(secrets, body, signature)
            )
            if integration is None:
                raise BadSignature()
        else:
            integration = self.integration_by_shared_secret(
                request, IntegrationProvider.CDEVENTS, verify_token
            )
        headers = {
            f"ce-{name}": request.META[f"HTTP_CE_{name.upper()}"]
            for name in ("specversion", "id", "source", "type")
            if f"HTTP_CE_{name.upper()}" in request.META
        }
        content_type = request.META.get("CONTENT_TYPE", "")
        try:
            cdevents.check_media_type(content_type)
            event = cdevents.parse_cloudevent(headers, self.parse(body), content_type)
        except cdevents.UnsupportedMode as exc:
            raise exceptions.UnsupportedMediaType(content_type, detail=str(exc)) from None
        except AdapterError as exc:
            raise exceptions.ValidationError({"payload": [str(exc)]}) from None
        try:
            result = services.cdevent_receive(integration=integration, event=event)
        except AdapterError as exc:
            raise exceptions.ValidationError({"payload": [str(exc)]}) from None
        answer = {
            "detail": result.detail,
            "recorded": result.recorded,
            "duplicate": result.duplicate,
            "type": event.type,
            "mode": event.mode,
            "ignored": [i.as_dict() for i in result.ignored],
        }
        if result.run is not None:
            answer["run"] = result.run
        if result.incidents_opened or result.incidents_resolved:
            answer["incidents_opened"] = result.incidents_opened
            answer["incidents_resolved"] = result.incidents_resolved
        if result.deployment is not None:
            answer["deployment"] = deployment_body(
                result.deployment, result.report, result.environment
            )
            refusal = result.deployment.refusal
            if refusal is not None:
                refused = {
                    "detail": "Deployment recorded, but the release cannot move: "
                    + refusal.message,
                    "code": refusal.code,
                    "deployment": answer["deployment"],
                }
                if isinstance(refusal.details, dict):
                    refused["errors"] = refusal.details
                elif refusal.details is not None:
                    refused["blockers"] = list(refusal.details)
                return Response(refused, status=status.HTTP_409_CONFLICT)
        return Response(
            answer, status=status.HTTP_200_OK if result.recorded else status.HTTP_202_ACCEPTED
        )
