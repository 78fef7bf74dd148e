"""Fixtures of the pipelines tests: CI tokens and an API client that posts JSON as CI does."""

from __future__ import annotations

import json

import pytest
from rest_framework.test import APIClient

from pipelines.services import api_token_create


@pytest.fixture(autouse=True)
def _gate_dispatch_in_the_request(settings):
    """Publish gate evaluation on commit, in the request, so tests see it synchronously."""
    settings.PIPELINES_GATE_BATCH_SECONDS = 0


def make_token(name: str, services, scopes=None) -> str:
    _, raw = api_token_create(
        actor=None, name=name, service_slugs=[s.slug for s in services], scopes=scopes
    )
    return raw


@pytest.fixture
def ci_token(service):
    """A CI token for payments-api with runs:write and deployments:write."""
    return make_token("ci-payments", [service])


class CI:
    """Posts like a CI job: raw JSON bytes with a bearer token."""

    def __init__(self, token: str | None):
        self.client = APIClient()
        self.token = token

    def post(self, path: str, body, *, token: str | None = None, **extra):
        data = body if isinstance(body, bytes | str) else json.dumps(body)
        headers = {}
        if token or self.token:
            headers["HTTP_AUTHORIZATION"] = f"Bearer {token or self.token}"
        headers.update(extra)
        return self.client.generic("POST", path, data, content_type="application/json", **headers)

    def run(self, body, **kwargs):
        return self.post("/api/v1/pipeline-runs/", body, **kwargs)

    def deployment(self, body, **kwargs):
        return self.post("/api/v1/deployments/", body, **kwargs)


@pytest.fixture
def ci(ci_token):
    return CI(ci_token)


def open_release(service, version: str = "2.4.0", state: str = "planned"):
    """A release of ``service`` whose gates runs of ``version`` decide (state set directly)."""
    from releases.models import Release
    from tests.factories import ReleaseFactory

    release = ReleaseFactory(services=[service], version=version)
    Release.objects.filter(pk=release.pk).update(state=state)
    return release


@pytest.fixture
def release_of_run(service):
    """An open release of payments-api 2.4.0: the example run concerns its gates."""
    return open_release(service)


def run_body(**overrides) -> dict:
    """The example run of docs/ingestion.md, with overrides."""
    body = {
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
                "digest": "sha256:" + "ab" * 32,
                "uri": "registry.example/payments-api:2.4.0",
            }
        ],
    }
    body.update(overrides)
    return body
