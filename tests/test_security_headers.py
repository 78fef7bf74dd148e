"""Headers a browser enforces: a strict Content-Security-Policy and Permissions-Policy on every
page, and API answers that no browser or shared cache stores."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_pages_carry_a_strict_content_security_policy(client, viewer):
    client.force_login(viewer)
    for path in ("/", "/releases/", "/calendar/", "/accounts/login/"):
        response = client.get(path, follow=True)
        policy = response.headers["Content-Security-Policy"]
        assert "default-src 'self'" in policy and "script-src 'self'" in policy, path
        assert "unsafe-eval" not in policy and "unsafe-inline" not in policy, path
        assert "frame-ancestors 'none'" in policy, path
        assert "camera=()" in response.headers["Permissions-Policy"], path


def test_api_answers_are_never_stored(client, viewer):
    client.force_login(viewer)
    for path in ("/api/v1/releases/", "/api/v1/releases/999999/", "/api/schema/"):
        assert "no-store" in client.get(path).headers["Cache-Control"], path


def test_pages_keep_their_own_caching(client, viewer):
    client.force_login(viewer)
    assert "no-store" not in client.get("/releases/").headers.get("Cache-Control", "")
