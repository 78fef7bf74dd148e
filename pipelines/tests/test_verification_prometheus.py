"""End to end with a REAL Prometheus (Debian package ``prometheus``): started on a free
loopback port with a generated configuration that scrapes a tiny test exporter every second.
The verifier passes a healthy deployment and fails one whose query breaches its threshold;
the deployment and the post-deployment gate move accordingly."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from django.utils import timezone

from governance.models import GateCheck
from pipelines.models import (
    VerificationQuery,
    VerificationRun,
    VerificationSample,
    VerificationSpec,
)
from pipelines.verification import verify_due
from releases.models import Deployment
from tests.factories import ReleaseFactory, force_state

from .worker_support import free_port, wait_for

pytestmark = [pytest.mark.services, pytest.mark.django_db]

QUERY = 'max(rg_test_error_ratio{service="payments-api"})'


class Exporter:
    """Serves the text exposition format with a value the test controls."""

    def __init__(self):
        self.value = "0.001"
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's API
                body = (
                    "# HELP rg_test_error_ratio Error ratio of the fake service.\n"
                    "# TYPE rg_test_error_ratio gauge\n"
                    f'rg_test_error_ratio{{service="payments-api"}} {exporter.value}\n'
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory):
    binary = shutil.which("prometheus")
    if binary is None:
        if os.environ.get("REQUIRE_SERVICES") == "1":
            pytest.fail("REQUIRE_SERVICES=1 but the prometheus binary is not installed.")
        pytest.skip("needs the Debian package prometheus")
    exporter = Exporter()
    workdir = tmp_path_factory.mktemp("prometheus")
    config = workdir / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: rg_test\n    scrape_interval: 1s\n"
        f"    scrape_timeout: 1s\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{exporter.port}']\n"
    )
    port = free_port()
    log = open(workdir / "prometheus.log", "wb")  # noqa: SIM115 - closed at teardown
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--storage.tsdb.retention.time=1h",
            "--log.level=warn",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:

        def ready():
            try:
                return httpx.get(f"{url}/-/ready", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(ready, timeout=30, what="Prometheus to be ready")
        yield {"url": url, "exporter": exporter}
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        log.close()
        exporter.close()


def _shows(prom, value: str) -> bool:
    try:
        body = httpx.get(f"{prom['url']}/api/v1/query", params={"query": QUERY}, timeout=2).json()
    except httpx.HTTPError:
        return False
    result = body.get("data", {}).get("result", [])
    return bool(result) and float(result[0]["value"][1]) == float(value)


@pytest.fixture
def deployment(prometheus, service, production, release_manager):
    release = force_state(ReleaseFactory(services=[service], owner=release_manager), "deploying")
    spec = VerificationSpec.objects.create(
        service=service,
        environment=production,
        prometheus_url=prometheus["url"],
        interval_seconds=1,
        window_seconds=4,
        consecutive_breaches=2,
    )
    VerificationQuery.objects.create(
        spec=spec, name="error ratio", promql=QUERY, comparator="lt", threshold=0.01
    )
    GateCheck.objects.create(
        release=release,
        policy_name="standard",
        policy_version=1,
        key="verified",
        stage="post_deployment",
        kind="staging_validated",
        label="Deployment verified",
        requirement={},
    )
    return Deployment.objects.create(
        release=release,
        service=service,
        environment=production,
        version=release.version,
        state="in_progress",
        provider="argo",
        external_id=f"e2e-{time.monotonic_ns()}",
        started_at=timezone.now(),
    )


def _verify_until_done(deployment, timeout: float = 30) -> VerificationRun:
    # The deployment starts now: Prometheus' first scrapes may have taken longer than the
    # 4 s window, and a deployment older than its window is not verified.
    Deployment.objects.filter(pk=deployment.pk).update(started_at=timezone.now())

    def done():
        verify_due()
        run = VerificationRun.objects.first()
        return run if run and run.status != "running" else None

    return wait_for(done, timeout=timeout, interval=0.5, what="the verification to end")


def test_healthy_deployment_passes(prometheus, deployment):
    prometheus["exporter"].value = "0.001"
    wait_for(lambda: _shows(prometheus, "0.001"), timeout=20, what="Prometheus to scrape")
    run = _verify_until_done(deployment)
    assert run.status == "passed", run.detail
    values = set(VerificationSample.objects.filter(run=run).values_list("value", flat=True))
    assert values == {0.001}
    deployment.refresh_from_db()
    assert deployment.state == "in_progress"
    assert GateCheck.objects.get(release=deployment.release).status == "passed"


def test_breaching_deployment_fails(prometheus, deployment):
    prometheus["exporter"].value = "0.2"
    wait_for(lambda: _shows(prometheus, "0.2"), timeout=20, what="Prometheus to scrape")
    run = _verify_until_done(deployment)
    assert run.status == "failed"
    assert "error ratio = 0.2 breached" in run.detail
    deployment.refresh_from_db()
    assert deployment.state == "failed"
    assert GateCheck.objects.get(release=deployment.release).status == "failed"
