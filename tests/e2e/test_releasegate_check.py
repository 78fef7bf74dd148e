"""Runs scripts/releasegate-check as a CD job would, against a live server: exit 0 on allow,
1 on deny (and on a wait that outlasts --wait), 2 on an error."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from pipelines.models import DeploymentCheck
from pipelines.services import api_token_create
from tests.factories import (
    DeploymentFactory,
    EnvironmentFactory,
    ReleaseFactory,
    ServiceFactory,
    TeamFactory,
    force_state,
)

ROOT = Path(__file__).resolve().parent.parent.parent
SCRIPT = ROOT / "scripts" / "releasegate-check"

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def world():
    team = TeamFactory(name="Payments", slug="payments")
    service = ServiceFactory(name="payments-api", slug="payments-api", team=team)
    staging = EnvironmentFactory(name="staging", slug="staging", order=3)
    production = EnvironmentFactory(
        name="production", slug="production", order=4, is_production=True
    )
    now = timezone.now()
    release = ReleaseFactory(
        services=[service],
        version="2.4.0",
        window_start=now - timedelta(hours=1),
        window_end=now + timedelta(hours=2),
    )
    force_state(release, "approved")
    _, raw = api_token_create(
        actor=None, name="cd", service_slugs=["payments-api"], scopes=["deployments:check"]
    )
    return {"service": service, "staging": staging, "production": production, "token": raw}


def run(url: str, token: str | None, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELEASEGATE_")}
    if token is not None:
        env["RELEASEGATE_TOKEN"] = token
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--url", url, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


ARGS = ("--service", "payments-api", "--version", "2.4.0", "--environment", "production")


def test_it_exits_1_on_deny_and_prints_the_blockers(live_server, world):
    result = run(live_server.url, world["token"], *ARGS, "--commit-sha", "3f1c0d9e")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "DENY payments-api 2.4.0 → production" in result.stdout
    assert "has not yet succeeded in staging" in result.stdout
    assert DeploymentCheck.objects.get().commit_sha == "3f1c0d9e"


def test_it_exits_0_on_allow(live_server, world):
    DeploymentFactory(
        service=world["service"],
        environment=world["staging"],
        version="2.4.0",
        finished_at=timezone.now() - timedelta(hours=1),
    )
    result = run(live_server.url, world["token"], *ARGS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ALLOW payments-api 2.4.0 → production" in result.stdout


def test_a_wait_past_the_limit_exits_1_after_asking_again(live_server, world):
    world["staging"].soak_minutes = 60
    world["staging"].save()
    DeploymentFactory(
        service=world["service"],
        environment=world["staging"],
        version="2.4.0",
        finished_at=timezone.now() - timedelta(minutes=5),
    )
    result = run(live_server.url, world["token"], *ARGS, "--wait", "2", "--interval", "1")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "WAIT" in result.stdout and "soaks in staging" in result.stdout
    assert "still waiting" in result.stdout
    assert DeploymentCheck.objects.count() >= 2


def test_it_exits_2_on_errors(live_server, world):
    bad_token = run(live_server.url, "rg_not-a-token", *ARGS)
    assert bad_token.returncode == 2
    assert "HTTP 401" in bad_token.stderr
    bad_input = run(live_server.url, world["token"], *ARGS[:4], "--environment", "pro duction")
    assert bad_input.returncode == 2 and "HTTP 400" in bad_input.stderr
    no_token = run(live_server.url, None, *ARGS)
    assert no_token.returncode == 2 and "RELEASEGATE_TOKEN" in no_token.stderr
    unreachable = run("http://127.0.0.1:9", world["token"], *ARGS, "--timeout", "5")
    assert unreachable.returncode == 2 and "Cannot reach" in unreachable.stderr
