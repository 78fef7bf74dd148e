"""Helpers shared by the worker tests: provider response shapes (as documented by GitHub,
GitLab and Jenkins), polled integrations, deployments with verification specs."""

from __future__ import annotations

import copy
import json
from datetime import timedelta
from pathlib import Path

from django.utils import timezone

from pipelines.models import Integration, IntegrationPollState

FIXTURES = Path(__file__).parent / "fixtures"


def github_run(**overrides) -> dict:
    """A workflow run object as GET /repos/{owner}/{repo}/actions/runs lists it (the same
    object the workflow_run webhook carries)."""
    run = copy.deepcopy(
        json.loads((FIXTURES / "github_workflow_run_completed.json").read_text())["workflow_run"]
    )
    run.update(overrides)
    return run


def github_runs_page(*runs: dict) -> dict:
    return {"total_count": len(runs), "workflow_runs": list(runs)}


def gitlab_list_item(pid: int, status: str = "success", updated="2026-11-20T10:07:12.000Z"):
    """An item of GET /projects/:id/pipelines."""
    return {
        "id": pid,
        "iid": pid - 1000,
        "project_id": 7,
        "sha": "a91957a858320c0e17f3a0eca7cfacbff50ea29a",
        "ref": "main",
        "status": status,
        "source": "push",
        "created_at": "2026-11-20T10:00:00.000Z",
        "updated_at": updated,
        "web_url": f"https://gitlab.example.com/acme/shop/-/pipelines/{pid}",
    }


def gitlab_detail(pid: int, status: str = "success") -> dict:
    """GET /projects/:id/pipelines/:pipeline_id."""
    finished = status in ("success", "failed", "canceled", "skipped")
    return {
        **gitlab_list_item(pid, status),
        "name": "Build pipeline",
        "before_sha": "0000000000000000000000000000000000000000",
        "tag": False,
        "yaml_errors": None,
        "user": {"id": 1, "username": "root"},
        "started_at": "2026-11-20T10:00:30.000Z",
        "finished_at": "2026-11-20T10:06:30.000Z" if finished else None,
        "committed_at": None,
        "duration": 360 if finished else None,
        "queued_duration": 0.01,
        "coverage": "87.5",
        "detailed_status": {"icon": f"status_{status}", "text": status, "label": status},
    }


def jenkins_job(*builds: dict) -> dict:
    """GET /job/NAME/api/json?tree=builds[…]."""
    return {"_class": "org.jenkinsci.plugins.workflow.job.WorkflowJob", "builds": list(builds)}


def jenkins_build(number: int, result="SUCCESS", building=False, version="2.4.0") -> dict:
    return {
        "_class": "org.jenkinsci.plugins.workflow.job.WorkflowRun",
        "number": number,
        "result": None if building else result,
        "building": building,
        "timestamp": 1_795_000_000_000 + number * 1000,
        "duration": 0 if building else 420_000,
        "url": f"https://jenkins.example.com/job/shop/{number}/",
        "actions": [
            {"_class": "hudson.model.CauseAction"},
            {
                "_class": "hudson.model.ParametersAction",
                "parameters": [{"name": "VERSION", "value": version}],
            },
            {
                "_class": "hudson.plugins.git.util.BuildData",
                "lastBuiltRevision": {
                    "SHA1": "5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e",
                    "branch": [{"name": "origin/main"}],
                },
            },
        ],
    }


def polled_integration(
    service, provider: str, base_url: str, target: str, *, name: str = "", **fields
) -> IntegrationPollState:
    integration = Integration.objects.create(
        provider=provider, name=name or f"{provider}-{target}"[:100]
    )
    integration.services.add(service)
    return IntegrationPollState.objects.create(
        integration=integration,
        service=service,
        base_url=base_url,
        target=target,
        next_poll_at=timezone.now() - timedelta(seconds=1),
        **fields,
    )


# --- real processes: Celery workers, Redis checks ---------------------------------------------

BASE_DIR = Path(__file__).resolve().parents[2]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, *, timeout: float, interval: float = 0.2, what: str = "condition"):
    """Poll ``predicate`` until it returns something truthy; fail the test after ``timeout``."""
    import time

    import pytest

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"Timed out after {timeout:g}s waiting for {what}.")


def redis_url_or_skip() -> str:
    """REDIS_URL, reachable; skip without it, fail when REQUIRE_SERVICES=1 (CI)."""
    import os

    import pytest
    import redis

    url = os.environ.get("REDIS_URL", "")
    required = os.environ.get("REQUIRE_SERVICES") == "1"
    if not url:
        if required:
            pytest.fail("REQUIRE_SERVICES=1 but REDIS_URL is not set.")
        pytest.skip("needs Redis (set REDIS_URL)")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        if required:
            pytest.fail(f"Redis at {url} does not answer: {exc}")
        pytest.skip(f"Redis at {url} does not answer")
    return url


def shared_database_url() -> str:
    """A DATABASE_URL for the pytest test database, for a worker in another process."""
    from urllib.parse import quote

    from django.db import connection

    s = connection.settings_dict
    if connection.vendor != "postgresql":
        import pytest

        pytest.skip("a worker process needs a database it can share: PostgreSQL")
    auth = quote(s.get("USER") or "")
    if s.get("PASSWORD"):
        auth += ":" + quote(s["PASSWORD"])
    return f"postgres://{auth}@{s.get('HOST') or '127.0.0.1'}:{s.get('PORT') or 5432}/{s['NAME']}"


class WorkerProcess:
    """``celery -A config worker --pool=solo`` against the test database, in its own process
    group so it can be killed (SIGKILL included) without touching anything else."""

    def __init__(self, broker_url: str, log_path: Path, **env: str):
        self.broker_url = broker_url
        self.log_path = log_path
        self.env = env
        self.proc = None

    def start(self) -> WorkerProcess:
        import os
        import subprocess
        import sys
        import uuid

        env = os.environ.copy()
        env.update(
            DATABASE_URL=shared_database_url(),
            REDIS_URL=self.broker_url,
            CELERY_BROKER_URL=self.broker_url,
            DJANGO_SETTINGS_MODULE="config.settings.test",
            PYTHONUNBUFFERED="1",
            **self.env,
        )
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed by the process's end
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "--pool=solo",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "--loglevel=INFO",
                "-n",
                f"test-{uuid.uuid4().hex[:8]}@%h",
            ],
            cwd=BASE_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def kill(self, sig=None) -> None:
        import os
        import signal

        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, sig or signal.SIGKILL)
        except ProcessLookupError:
            return
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM (warm shutdown), then SIGKILL after a few seconds."""
        import signal
        import subprocess

        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            import os

            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=8)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


def use_broker(url: str) -> None:
    """Point this process's Celery app at ``url`` (dropping pooled connections)."""
    from config.celery import app

    # kombu keeps one pool per broker URL in a global registry: drop only our references.
    app.conf.broker_url = url
    app._pool = None
    app.amqp._producer_pool = None
