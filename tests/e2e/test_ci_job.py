"""Runs tests/e2e/ci_job.sh — a CI job made of curl, openssl and the management commands —
against a live server on the PostgreSQL test database."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

from tests.factories import EnvironmentFactory, ServiceFactory, TeamFactory

ROOT = Path(__file__).resolve().parent.parent.parent

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_a_ci_job_with_curl_gets_the_contract(require_postgres, live_server, settings):
    settings.INGEST_RATE_LIMIT = 60  # low enough for the script to reach a 429
    team = TeamFactory(name="Payments", slug="payments")
    ServiceFactory(name="payments-api", slug="payments-api", team=team)
    EnvironmentFactory(name="production", slug="production", order=4, is_production=True)
    db = connection.settings_dict
    env = {
        **os.environ,
        "BASE_URL": live_server.url,
        "MANAGE": f"{sys.executable} manage.py",
        "DATABASE_URL": (
            f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST']}:{db['PORT'] or 5432}"
            f"/{db['NAME']}"
        ),
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "RATE_LIMIT_PROBE": "80",
    }
    result = subprocess.run(
        ["bash", "tests/e2e/ci_job.sh"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK:" in result.stdout
