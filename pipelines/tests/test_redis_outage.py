"""Degraded, not down: with the shared cache (Redis) unreachable, a CI report is still
accepted and stored (tokens read from the database, the rate limit counted per process), and
its gate result is recorded once the sweep runs after Redis returns.

The Redis here is one this test starts on a free loopback port and stops; never the shared
one other tests use.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from unittest import mock

import pytest
from django.test import override_settings
from django.utils import timezone
from kombu.exceptions import OperationalError

from core import shared_cache
from governance.models import GatePolicy
from pipelines.models import PipelineRun
from pipelines.tasks import evaluate_pending_gates
from releases import services as release_services
from tests.factories import ReleaseFactory, make_ready

from .conftest import CI, make_token, run_body

pytestmark = [pytest.mark.django_db, pytest.mark.services]
REDIS_SERVER = shutil.which("redis-server")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class OwnRedis:
    def __init__(self) -> None:
        self.port = _free_port()
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
            + ["--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture
def own_redis():
    if REDIS_SERVER is None:
        if os.environ.get("REQUIRE_SERVICES") == "1":
            pytest.fail("redis-server is missing: apt-get install -y redis-server")
        pytest.skip("redis-server is missing")
    redis = OwnRedis()
    redis.start()
    cache = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{redis.port}/0",
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    }
    with override_settings(CACHES=cache, INGEST_RATE_LIMIT=600, API_TOKEN_CACHE_SECONDS=30):
        shared_cache.reset()
        yield redis
    redis.stop()
    shared_cache.reset()


def test_ci_reports_are_stored_while_redis_is_down_and_decided_when_it_returns(
    own_redis, service, release_manager
):
    GatePolicy.objects.create(
        name="CI", requirements=[{"stage": "pre_approval", "kind": "ci_green"}], priority=1
    )
    release = make_ready(ReleaseFactory(services=[service], owner=release_manager))
    release = release_services.release_plan(release=release, actor=release_manager)
    ci = CI(make_token("ci-payments", [service]))
    assert ci.run(run_body(external_id="1", version="9.9.9")).status_code == 201  # Redis up

    own_redis.stop()
    broker_down = OperationalError("Error 111 connecting to 127.0.0.1. Connection refused.")
    with mock.patch("pipelines.tasks.evaluate_gates_for_runs.delay", side_effect=broker_down):
        response = ci.run(run_body(external_id="2", version=release.version))
    assert response.status_code == 201, response.content
    assert response["Content-Type"] == "application/json"
    run = PipelineRun.objects.get(external_id="2")
    assert run.gates_pending is True
    assert release.gate_checks.get(kind="ci_green").status == "pending"

    own_redis.start()
    shared_cache.reset()

    PipelineRun.objects.filter(pk=run.pk).update(
        updated_at=timezone.now() - timezone.timedelta(minutes=1)
    )
    evaluate_pending_gates.run()
    gate = release.gate_checks.get(kind="ci_green")
    assert (gate.status, gate.run_id) == ("passed", run.pk)
    assert PipelineRun.objects.get(pk=run.pk).gates_pending is False
