"""A Celery worker's own /metrics (CELERY_METRICS_PORT): a real prefork worker with two pool
processes and PROMETHEUS_MULTIPROC_DIR, on the real Redis broker (REDIS_URL) and the test's
PostgreSQL database, evaluates the gates of runs posted through the API; its endpoint adds
up the verdicts of both pool processes and asks for the metrics token. Port 18142-18149."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from governance.models import GatePolicy
from pipelines.tests.conftest import CI, make_token, run_body
from pipelines.tests.worker_support import (
    redis_url_or_skip,
    shared_database_url,
    use_broker,
    wait_for,
)
from releases import services as release_services
from tests.factories import ReleaseFactory, make_ready

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "worker-metrics-token-0123456789"
VERDICTS = 'releasegate_gate_evaluations_total{changed="true",kind="ci_green",verdict="passed"}'

pytestmark = [pytest.mark.services, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _free_port() -> int:
    for port in range(18142, 18150):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 127.0.0.1:18142-18149")


def _get(port: int, token: str | None = TOKEN) -> tuple[int, str]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def _samples(text: str) -> dict[str, float]:
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}"] = sample.value
    return samples


@pytest.fixture
def prefork_worker(tmp_path):
    broker = redis_url_or_skip()
    use_broker(broker)
    from config.celery import app

    app.control.purge()
    port = _free_port()
    folder = tmp_path / "prometheus"
    log = tmp_path / "worker.log"
    env = {
        **os.environ,
        "DATABASE_URL": shared_database_url(),
        "REDIS_URL": broker,
        "CELERY_BROKER_URL": broker,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "PROMETHEUS_MULTIPROC_DIR": str(folder),
        "CELERY_METRICS_PORT": str(port),
        "CELERY_METRICS_ADDRESS": "127.0.0.1",
        "METRICS_TOKEN": TOKEN,
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            ["timeout", "-s", "KILL", "240", sys.executable, "-m", "celery", "-A", "config"]
            + ["worker", "--pool=prefork", "--concurrency=2", "--without-gossip"]
            + ["--without-mingle", "--without-heartbeat", "--loglevel=INFO"]
            + ["-n", f"metrics-{uuid.uuid4().hex[:8]}@%h"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:

        def up():
            try:
                return _get(port)[0] == 200
            except OSError:
                return False

        wait_for(up, timeout=60, what=f"the worker's /metrics:\n{log.read_text()[-3000:]}")
        yield port, log
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        use_broker(broker)


def test_a_worker_serves_its_pool_processes_counts(
    prefork_worker, settings, service, release_manager
):
    port, log = prefork_worker
    assert _get(port, token=None)[0] == 401
    assert _get(port, token="wrong-token-0123456789")[0] == 401
    settings.PIPELINES_GATE_BATCH_SECONDS = 0  # one task per run, published by the request
    GatePolicy.objects.create(
        name="CI", requirements=[{"stage": "pre_approval", "kind": "ci_green"}], priority=1
    )
    release = make_ready(ReleaseFactory(services=[service], owner=release_manager))
    release_services.release_plan(release=release, actor=release_manager)
    ci = CI(make_token("ci-payments", [service]))
    for i in range(4):  # four builds of the version: each decides the gate anew
        assert ci.run(run_body(external_id=str(i), version=release.version)).status_code == 201

    def all_counted():
        return _samples(_get(port)[1]).get(VERDICTS) == 4

    wait_for(all_counted, timeout=90, what=f"4 verdicts on /metrics:\n{log.read_text()[-3000:]}")
    samples = _samples(_get(port)[1])
    latency = 'releasegate_gate_verdict_latency_seconds_count{kind="ci_green"}'
    assert samples[latency] == 4
    # The worker's answer holds its counters only: the gauges are the web's.
    assert not any(name.startswith("releasegate_releases{") for name in samples)
