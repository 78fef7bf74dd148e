"""The base layout and login: navigation, who is logged in, local assets only."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_login_page_and_login(client, release_manager):
    page = client.get(reverse("login"))
    assert page.status_code == 200
    assert 'name="username"' in page.content.decode()
    response = client.post(reverse("login"), {"username": "rita", "password": "pw-for-tests"})
    assert response.status_code == 302
    assert response["Location"] == reverse("releases:list")


def test_wrong_password_is_explained(client, release_manager):
    response = client.post(reverse("login"), {"username": "rita", "password": "nope"})
    assert response.status_code == 200
    assert "alert-error" in response.content.decode()


def test_layout_shows_user_roles_nav_and_post_logout(client, release_manager):
    client.force_login(release_manager)
    body = client.get(reverse("releases:list")).content.decode()
    assert "Release manager" in body
    assert 'aria-current="page">Releases</a>' in body
    assert re.search(r'<form method="post" action="/accounts/logout/"', body)
    response = client.post(reverse("logout"))
    assert response.status_code == 302


def test_assets_are_served_locally_and_htmx_sends_csrf(client, viewer):
    client.force_login(viewer)
    body = client.get(reverse("releases:list")).content.decode()
    scripts = re.findall(r'<script[^>]+src="([^"]+)"', body)
    styles = re.findall(r'<link[^>]+rel="stylesheet"[^>]+href="([^"]+)"', body)
    assert any("htmx" in src for src in scripts)
    assert all(src.startswith("/static/") for src in scripts + styles), scripts + styles
    assert re.search(r"hx-headers='\{\"X-CSRFToken\": \"[^\"]+\"\}'", body)
