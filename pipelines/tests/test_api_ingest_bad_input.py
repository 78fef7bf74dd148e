"""Every bad input to the ingestion endpoints gets a clear JSON 4xx and writes nothing."""

from __future__ import annotations

import json

import pytest
from django.core.cache import cache

from core.models import AuditEvent
from pipelines.models import Artefact, PipelineCheck, PipelineRun

from .conftest import CI, make_token, run_body

pytestmark = pytest.mark.django_db


def assert_nothing_written():
    assert PipelineRun.objects.count() == 0
    assert PipelineCheck.objects.count() == 0
    assert Artefact.objects.count() == 0
    assert not AuditEvent.objects.filter(action__startswith="pipeline_run").exists()


def check_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["detail"]
    if code:
        assert body["code"] == code
    return body


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"{",
        b"not json",
        b'{"service": "payments-api",}',
        b"\xff\xfe\x00garbage",
        b'{"a": NaN}',
        b"[" * 100_000 + b"]" * 100_000,
    ],
    ids=["empty", "truncated", "text", "trailing-comma", "binary", "nan", "deep-nesting"],
)
def test_malformed_json_is_a_400(ci, raw):
    check_error(ci.run(raw), 400, "parse_error")
    assert_nothing_written()


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"attempt": "one"}, "attempt"),
        ({"attempt": 0}, "attempt"),
        ({"attempt": 2**40}, "attempt"),
        ({"attempt": True}, "attempt"),
        ({"status": "done"}, "status"),
        ({"status": None}, "status"),
        ({"external_id": 9001}, "external_id"),
        ({"provider": "circleci"}, "provider"),
        ({"started_at": "yesterday"}, "started_at"),
        ({"started_at": "2026-11-20T10:00:00"}, "started_at"),
        ({"finished_at": "2026-11-20T09:00:00Z"}, "finished_at"),
        ({"checks": {"kind": "tests"}}, "checks"),
        ({"checks": [{"kind": "fuzz", "status": "passed"}]}, "checks[0].kind"),
        ({"checks": [{"kind": "tests", "status": "passed", "extra": {"a": 1}}]}, None),
        ({"artefacts": [{"name": "x", "version": "1", "digest": "md5"}]}, None),
        ({"url": "javascript:alert(1)"}, "url"),
        ({"commit_sha": "not-a-sha"}, "commit_sha"),
        ({"service": "../etc"}, "service"),
    ],
)
def test_wrong_types_and_values_are_a_400_naming_the_field(ci, overrides, field):
    body = check_error(ci.run(run_body(**overrides)), 400, "invalid")
    if field:
        assert field in body["errors"], body
    assert_nothing_written()


def test_an_infinite_number_is_a_400(ci):
    raw = json.dumps(run_body(checks=[{"kind": "coverage", "status": "passed", "percent": 1}]))
    raw = raw.replace('"percent": 1', '"percent": 1e400').encode()
    body = check_error(ci.run(raw), 400, "invalid")
    assert "checks[0].percent" in body["errors"]
    assert_nothing_written()


def test_a_body_that_is_not_an_object_is_a_400(ci):
    check_error(ci.run(b"[1, 2, 3]"), 400, "invalid")
    assert_nothing_written()


@pytest.mark.parametrize("field", ["external_id", "ref", "version", "name"])
def test_nul_characters_are_a_400(ci, field):
    body = check_error(ci.run(run_body(**{field: "abc\u0000def"})), 400)
    assert field in body["errors"]
    assert_nothing_written()


def test_lone_surrogates_are_a_400(ci):
    raw = json.dumps(run_body()).replace('"9001"', '"\\ud800"').encode()
    check_error(ci.run(raw), 400)
    assert_nothing_written()


def test_nul_in_a_metric_is_a_400(ci):
    check = {"kind": "tests", "status": "passed", "note": "a\u0000b"}
    check_error(ci.run(run_body(checks=[check])), 400)
    assert_nothing_written()


@pytest.mark.parametrize("field, size", [("external_id", 201), ("version", 65), ("ref", 256)])
def test_over_long_strings_are_a_400(ci, field, size):
    body = check_error(ci.run(run_body(**{field: "x" * size})), 400)
    assert "at most" in body["errors"][field][0]
    assert_nothing_written()


def test_a_missing_field_is_a_400(ci):
    body = run_body()
    del body["status"]
    assert "status" in check_error(ci.run(body), 400)["errors"]
    assert_nothing_written()


def test_an_unknown_service_is_a_400(ci):
    body = check_error(ci.run(run_body(service="nope")), 400)
    assert "Unknown service" in body["errors"]["service"][0]
    assert_nothing_written()


def test_a_token_of_another_service_is_a_403(ci_token, service, other_service):
    other = CI(make_token("ci-identity", [other_service]))
    check_error(other.run(run_body()), 403, "permission_denied")
    assert_nothing_written()


def test_a_token_without_the_runs_scope_is_a_403(service):
    deployer = CI(make_token("cd-only", [service], scopes=["deployments:write"]))
    check_error(deployer.run(run_body()), 403, "permission_denied")
    assert_nothing_written()


@pytest.mark.parametrize("header", [None, "Bearer rg_nope", "Bearer", "Basic abc", "Bearer a b"])
def test_a_missing_or_wrong_token_is_a_401(service, header):
    client = CI(None)
    extra = {"HTTP_AUTHORIZATION": header} if header else {}
    response = client.run(run_body(), **extra)
    assert response.status_code in (401, 403)
    assert response.status_code == 401 or header == "Basic abc"
    assert_nothing_written()


def test_a_revoked_token_is_refused_at_once(ci, ci_token):
    from pipelines.services import api_token_revoke

    assert ci.run(run_body()).status_code == 201
    api_token_revoke(actor=None, name="ci-payments")
    check_error(ci.run(run_body(external_id="2")), 401)


def test_a_body_over_the_limit_is_a_413(ci, settings):
    settings.INGEST_MAX_BODY_BYTES = 2000
    body = run_body(
        name="x" * 150,
        checks=[{"kind": "custom", "name": f"c{i}", "status": "passed"} for i in range(40)],
    )
    check_error(ci.run(body), 413, "too_large")
    assert_nothing_written()


def test_too_many_requests_for_a_token_is_a_429_with_retry_after(ci, settings):
    cache.clear()
    settings.INGEST_RATE_LIMIT = 3
    for n in range(3):
        assert ci.run(run_body(external_id=str(n))).status_code == 201
    response = ci.run(run_body(external_id="overflow"))
    check_error(response, 429, "throttled")
    assert 1 <= int(response["Retry-After"]) <= settings.INGEST_RATE_WINDOW_SECONDS
    assert not PipelineRun.objects.filter(external_id="overflow").exists()


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_other_methods_are_a_405(ci, method):
    # GET lists the runs (the read endpoint); nothing else but POST is allowed.
    response = ci.client.generic(
        method, "/api/v1/pipeline-runs/", HTTP_AUTHORIZATION=f"Bearer {ci.token}"
    )
    assert response.status_code == 405


def _chunked(ci, body: bytes):
    """A request as gunicorn hands over a chunked body: no Content-Length, the stream
    de-chunked and marked terminated (the WSGI ``wsgi.input_terminated`` flag)."""
    import io

    return ci.client.generic(
        "POST",
        "/api/v1/pipeline-runs/",
        b"",
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {ci.token}",
        HTTP_TRANSFER_ENCODING="chunked",
        **{"wsgi.input": io.BytesIO(body), "wsgi.input_terminated": True},
    )


def test_a_chunked_body_without_content_length_is_read(ci):
    response = _chunked(ci, json.dumps(run_body()).encode())
    assert response.status_code == 201, response.json()
    assert PipelineRun.objects.get().external_id == "9001"


def test_a_chunked_body_over_the_limit_is_a_413(ci, settings):
    settings.INGEST_MAX_BODY_BYTES = 1024
    response = _chunked(ci, json.dumps(run_body(name="x" * 2000)).encode())
    assert response.status_code == 413
    assert not PipelineRun.objects.exists()
