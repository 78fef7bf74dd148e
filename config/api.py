"""DRF glue: every error is JSON with a message (and field errors where there are some)."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from core.errors import DomainError


def _first_message(detail) -> str:
    if isinstance(detail, dict):
        for key, value in detail.items():
            return (
                f"{key}: {_first_message(value)}"
                if key != "non_field_errors"
                else (_first_message(value))
            )
    if isinstance(detail, list) and detail:
        return _first_message(detail[0])
    return str(detail)


def exception_handler(exc, context):
    if isinstance(exc, DomainError):
        body = {"detail": exc.message, "code": exc.code}
        if isinstance(exc.details, dict):
            body["errors"] = exc.details
        elif exc.details is not None:
            body["blockers"] = list(exc.details)
        return Response(body, status=exc.status_code)
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else exc.messages
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound("Not found.")
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        response.data = {
            "detail": "Invalid input: " + _first_message(exc.detail),
            "code": "invalid",
            "errors": exc.detail,
        }
        response.status_code = status.HTTP_400_BAD_REQUEST
    elif isinstance(response.data, dict) and "detail" in response.data:
        response.data = {
            "detail": str(response.data["detail"]),
            "code": getattr(exc, "default_code", "error"),
        }
    return response


ERROR_SCHEMA = {
    "type": "object",
    "description": "Every error: a message for people, a code for programs, and the field "
    "errors or blockers where there are some.",
    "properties": {
        "detail": {"type": "string"},
        "code": {"type": "string"},
        "errors": {"type": "object", "additionalProperties": True},
        "blockers": {"type": "array", "items": {}},
    },
    "required": ["detail"],
}
_ERROR_TEXT = {
    "400": "Invalid input: the message names the field or parameter.",
    "401": "No credentials, or a token that is unknown or revoked.",
    "403": "Authenticated, but this user or token may not do this.",
    "404": "No such object, one the caller may not see, or a page past the last.",
    "413": "The body is larger than the limit.",
    "415": "The body is not JSON.",
    "429": "Too many requests for this token; retry after the Retry-After header.",
}


def document_error_responses(result, generator, request, public):
    """drf-spectacular post-processing hook: document on every operation the error replies
    the API's own layers can give it (authentication, permissions, throttling, the JSON
    parser, lookups by id), with the one error body they all share, so that a client, and
    the schemathesis run in the test suite, meet no undocumented status code."""
    components = result.setdefault("components", {}).setdefault("schemas", {})
    components.setdefault("Error", ERROR_SCHEMA)
    ref = {"$ref": "#/components/schemas/Error"}
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            codes = ["401", "403", "429"]
            params = operation.get("parameters", [])
            if "{" in path or any(p.get("name") == "page" for p in params):
                codes.append("404")  # an id no one may see, or a page past the last
            if operation.get("requestBody") or any(p.get("in") == "query" for p in params):
                codes.append("400")
            if operation.get("requestBody"):
                codes += ["413", "415"]
            responses = operation.setdefault("responses", {})
            for code in codes:
                responses.setdefault(
                    code,
                    {
                        "description": _ERROR_TEXT[code],
                        "content": {"application/json": {"schema": ref}},
                    },
                )
    return result


def _wants_json(request) -> bool:
    return request.path.startswith("/api/")


def page_not_found(request, exception=None):
    """404 for a URL no route matches: JSON under /api/ (a CI client parses it), the HTML
    page elsewhere."""
    if _wants_json(request):
        from django.http import JsonResponse

        return JsonResponse({"detail": "Not found.", "code": "not_found"}, status=404)
    from django.views.defaults import page_not_found as html_page_not_found

    return html_page_not_found(request, exception)


def server_error(request):
    """500 under /api/ as JSON too (the details stay in the server log)."""
    if _wants_json(request):
        from django.http import JsonResponse

        return JsonResponse({"detail": "Server error.", "code": "error"}, status=500)
    from django.views.defaults import server_error as html_server_error

    return html_server_error(request)
