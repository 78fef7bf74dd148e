"""The backup and restore drill of docs/operations.md ("Backup and restore"), for real.

A database of the drill's own gets the demo portfolio (migrate, seed_demo), an API token, a
logged-in session and a CI report whose gate evaluation is still waiting in Redis. gunicorn
serves a few release pages and API answers from it; verify_audit says OK. Then the drill
dumps it with `pg_dump -Fc`, DROPS it, empties Redis, restores the dump into a fresh database
with `pg_restore`, and checks:

- `manage.py verify_audit` says OK, with the same number of events and chains;
- gunicorn on the restored database serves the same release pages to the same session
  cookie, and the same API answers to the same token (its cached lookup went with Redis);
- the gate evaluation that was queued in Redis is not lost: the beat sweep finds the run's
  `gates_pending` flag in the restored database and decides the gate.

Redis holds nothing a restore must bring back. Everything runs in subprocesses on 127.0.0.1
ports 18150 (gunicorn) and 18151 (a redis-server the drill starts without persistence), in
databases named after DATABASE_URL's with `_drill` and `_drill_restored` appended; each
process runs under `timeout -s KILL` and is stopped at teardown. About two minutes on a loaded
machine, most of it migrate and seed_demo. PostgreSQL only.
"""

from __future__ import annotations

import contextlib
import difflib
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import dj_database_url
import psycopg2
import pytest

pytestmark = [pytest.mark.postgres, pytest.mark.services, pytest.mark.drill]

ROOT = Path(__file__).resolve().parent.parent
WEB_PORT, REDIS_PORT = 18150, 18151
HARD_LIMIT = 300  # seconds any process of the drill may live

# Run in the seeded database: a token for the services of an open release whose CI gate is
# pending, a logged-in session of the administrator, and which pages to compare.
SETUP = """
import json
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client
from governance.models import GateCheck
from pipelines.services import api_token_create
from releases.models import Release

gate = (
    GateCheck.objects.filter(kind="ci_green", status="pending", release__state="in_progress")
    .select_related("release").order_by("release_id").first()
)
release = gate.release
services = [s.slug for s in release.services.order_by("slug")]
_, token = api_token_create(
    actor=None, name="restore-drill", service_slugs=services,
    scopes=["runs:write", "releases:read"],
)
client = Client()
client.force_login(get_user_model().objects.get(username="admin"))
others = list(
    Release.objects.exclude(pk=release.pk).order_by("-pk").values_list("pk", flat=True)[:3]
)
print(json.dumps({
    "token": token,
    "session": client.cookies[settings.SESSION_COOKIE_NAME].value,
    "cookie": settings.SESSION_COOKIE_NAME,
    "gate": gate.pk,
    "release": release.pk,
    "service": services[0],
    "version": release.version,
    "pages": ["/", f"/releases/{release.pk}/", *[f"/releases/{pk}/" for pk in others]],
}))
"""

GATE = """
import json
from governance.models import GateCheck
from pipelines.models import PipelineRun
gate = GateCheck.objects.get(pk=__GATE__)
print(json.dumps({
    "status": gate.status,
    "run": gate.run_id,
    "pending_runs": PipelineRun.objects.filter(gates_pending=True).count(),
}))
"""

# The minute sweep (recent runs), then the daily one (all runs: the demo's are backdated).
SWEEP = """
from pipelines.tasks import evaluate_pending_gates
recent = evaluate_pending_gates(older_than_seconds=0)
print(recent + evaluate_pending_gates(older_than_seconds=0, horizon_hours=0))
"""


def _require(binary: str) -> str:
    path = shutil.which(binary) or shutil.which(binary, path="/usr/sbin:/usr/lib/postgresql")
    if path is None:
        message = f"{binary} is missing (apt-get install postgresql-client redis-server)"
        if os.environ.get("REQUIRE_SERVICES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return path


class Proc:
    """A long-running process in its own group under ``timeout -s KILL``, logged to a file."""

    def __init__(self, name: str, argv: list[str], log_dir: Path, env: dict):
        self.name, self.argv, self.env = name, argv, env
        self.log_path = log_dir / f"{name}.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> Proc:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                ["timeout", "-s", "KILL", str(HARD_LIMIT), *self.argv],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def tail(self) -> str:
        try:
            return f"--- {self.name} ---\n" + self.log_path.read_text(errors="replace")[-3000:]
        except FileNotFoundError:
            return f"--- {self.name}: no log ---"


def _http(method: str, path: str, *, body: bytes = b"", headers=None, timeout: float = 30):
    conn = http.client.HTTPConnection("127.0.0.1", WEB_PORT, timeout=timeout)
    try:
        conn.request(method, path, body=body or None, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def _wait(predicate, *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    pytest.fail(f"timed out waiting for {what}")


# What may differ between two renderings of the same data: the CSRF token (new per request),
# the CSP nonce, and durations ("waiting 2 hours, 59 minutes", "3 minutes ago") as the clock
# moves on between the two captures.
_UNIT = r"(?:years?|months?|weeks?|days?|hours?|minutes?|seconds?)"
_VOLATILE = [
    (re.compile(r'(name="csrfmiddlewaretoken" value=")[^"]*'), r"\1"),
    (re.compile(r'("?csrf[_-]?token"?\s*[:=]\s*["\'])[^"\']*', re.I), r"\1"),
    (re.compile(r'(nonce=")[^"]*'), r"\1"),
    (re.compile(rf"\b\d+\s+{_UNIT}(?:,\s*\d+\s+{_UNIT})*"), "…"),
    (re.compile(r"\bjust now\b"), "…"),
]


def _normalised(page: str) -> str:
    for pattern, replacement in _VOLATILE:
        page = pattern.sub(replacement, page)
    return re.sub(r"\s+", " ", page).strip()


def _difference(before: str, after: str) -> str:
    """The lines that differ between two normalised pages, for a readable failure."""
    lines = difflib.unified_diff(
        _normalised(before).replace("> <", ">\n<").splitlines(),
        _normalised(after).replace("> <", ">\n<").splitlines(),
        "before",
        "after",
        n=1,
        lineterm="",
    )
    return "\n".join(list(lines)[:60])


class Drill:
    def __init__(self, tmp: Path):
        base = dj_database_url.parse(os.environ["DATABASE_URL"])
        self.base = base
        self.source = f"{base['NAME']}_drill"
        self.restored = f"{base['NAME']}_drill_restored"
        self.tmp = tmp
        self.procs: list[Proc] = []
        (tmp / "var").mkdir()
        self.redis_url = f"redis://127.0.0.1:{REDIS_PORT}/0"

    # --- PostgreSQL ------------------------------------------------------------------------
    def url(self, name: str) -> str:
        b = self.base
        auth = b["USER"] + (f":{b['PASSWORD']}" if b.get("PASSWORD") else "")
        return f"postgres://{auth}@{b['HOST'] or '127.0.0.1'}:{b['PORT'] or 5432}/{name}"

    def admin(self, *statements: str) -> None:
        conn = psycopg2.connect(self.url("postgres"))
        conn.autocommit = True
        try:
            with conn.cursor() as cursor:
                for statement in statements:
                    cursor.execute(statement)
        finally:
            conn.close()

    def exists(self, name: str) -> bool:
        conn = psycopg2.connect(self.url("postgres"))
        try:
            with conn.cursor() as cursor:
                cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
                return cursor.fetchone() is not None
        finally:
            conn.close()

    def drop(self, name: str) -> None:
        self.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def pg_env(self) -> dict:
        b = self.base
        env = {**os.environ, "PGHOST": b["HOST"] or "127.0.0.1", "PGPORT": str(b["PORT"] or 5432)}
        env["PGUSER"] = b["USER"]
        if b.get("PASSWORD"):
            env["PGPASSWORD"] = b["PASSWORD"]
        return env

    # --- the application -------------------------------------------------------------------
    def env(self, database: str) -> dict:
        return {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "DATABASE_URL": self.url(database),
            "REDIS_URL": self.redis_url,
            "CELERY_BROKER_URL": self.redis_url,
            "RELEASEGATE_VAR_DIR": str(self.tmp / "var"),
            # The audit checkpoints exported outside the database: one directory for every
            # process of the drill, kept across the restore as a deployment keeps it.
            "AUDIT_CHECKPOINT_DIR": str(self.tmp / "audit-checkpoints"),
            "PYTHONDONTWRITEBYTECODE": "1",
        }

    def manage(self, database: str, *args: str, timeout: float = 180) -> str:
        result = subprocess.run(
            ["timeout", "-s", "KILL", str(timeout), sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env(database),
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, f"manage.py {args[0]}:\n{result.stdout}\n{result.stderr}"
        return result.stdout

    def shell(self, database: str, code: str) -> dict:
        out = self.manage(database, "shell", "--no-imports", "-c", code)
        return json.loads(out.strip().splitlines()[-1])

    def start(self, name: str, argv: list[str], env: dict) -> Proc:
        proc = Proc(name, argv, self.tmp, env).start()
        self.procs.append(proc)
        return proc

    def serve(self, database: str) -> Proc:
        env = {
            **self.env(database),
            "GUNICORN_BIND": f"127.0.0.1:{WEB_PORT}",
            "GUNICORN_WORKERS": "1",
            "GUNICORN_THREADS": "4",
            "GUNICORN_MAX_REQUESTS": "0",
        }
        web = self.start(
            f"web-{database}",
            [sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py", "config.wsgi"],
            env,
        )

        def up():
            if web.proc.poll() is not None:
                pytest.fail(f"gunicorn exited with {web.proc.returncode}\n{web.tail()}")
            with contextlib.suppress(OSError):
                return _http("GET", "/healthz/", timeout=2)[0] == 200
            return False

        _wait(up, timeout=120, what="gunicorn")
        return web

    def stop_all(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()


@pytest.fixture
def drill(tmp_path):
    if not os.environ.get("DATABASE_URL", "").startswith(("postgres", "postgresql")):
        pytest.skip("the restore drill needs PostgreSQL (set DATABASE_URL)")
    for binary in ("pg_dump", "pg_restore", "redis-server", "timeout"):
        _require(binary)
    drill = Drill(tmp_path)
    for name in (drill.source, drill.restored):
        drill.drop(name)
    yield drill
    drill.stop_all()
    for name in (drill.source, drill.restored):
        drill.drop(name)


def _capture(setup: dict) -> dict:
    """What the drill compares: the pages as the session sees them, the API as the token
    sees it."""
    cookie = {"Cookie": f"{setup['cookie']}={setup['session']}"}
    token = {"Authorization": f"Bearer {setup['token']}"}
    captured = {}
    for path in setup["pages"]:
        status, body = _http("GET", path, headers=cookie)
        assert status == 200, f"{path}: {status}"
        assert "/accounts/logout/" in body, f"{path}: not the logged-in page"
        captured[path] = body
    for path in (
        "/api/v1/releases/?ordering=id",
        f"/api/v1/pipeline-runs/?service={setup['service']}",
    ):
        status, body = _http("GET", path, headers=token)
        assert status == 200, f"{path}: {status} {body[:300]}"
        captured[path] = json.loads(body)
    return captured


def test_dump_drop_restore_keeps_the_audit_trail_pages_tokens_and_pending_gates(drill):
    import redis

    source, restored = drill.source, drill.restored
    redis_server = drill.start(
        "redis",
        [
            _require("redis-server"),
            "--port",
            str(REDIS_PORT),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],  # fmt: skip
        drill.env(source),
    )
    broker = redis.Redis(host="127.0.0.1", port=REDIS_PORT)
    _wait(lambda: _ping(broker), timeout=20, what="redis-server")

    # --- a portfolio in a database of the drill's own -----------------------------------------
    drill.admin(f'CREATE DATABASE "{source}"')
    drill.manage(source, "migrate", "--noinput", "-v0")
    drill.manage(source, "seed_demo", "-v0")
    setup = drill.shell(source, SETUP)

    web = drill.serve(source)
    # CI reports the build of the release whose gate is pending; no worker runs, so its
    # evaluation waits in Redis (and the run carries gates_pending in the database).
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    report = {
        "service": setup["service"],
        "provider": "github_actions",
        "external_id": "restore-drill-1",
        "attempt": 1,
        "status": "succeeded",
        "commit_sha": "d" * 40,
        "ref": "refs/heads/main",
        "version": setup["version"],
        "url": "https://ci.example/run/restore-drill-1",
        "started_at": now,
        "finished_at": now,
        "checks": [{"kind": "tests", "status": "passed", "passed": 12, "failed": 0}],
    }
    status, body = _http(
        "POST",
        "/api/v1/pipeline-runs/",
        body=json.dumps(report).encode(),
        headers={
            "Authorization": f"Bearer {setup['token']}",
            "Content-Type": "application/json",
        },
    )
    assert status == 201, body
    # Celery's default queue is a Redis list named "celery".
    _wait(lambda: broker.llen("celery") > 0, timeout=60, what="the gate evaluation in Redis")
    before = _capture(setup)
    web.stop()
    gate_before = drill.shell(source, GATE.replace("__GATE__", str(setup["gate"])))
    assert gate_before["status"] == "pending" and gate_before["pending_runs"] >= 1
    audit_before = drill.manage(source, "verify_audit").strip()
    assert audit_before.startswith("OK:"), audit_before

    # --- dump, drop, lose Redis, restore into a fresh database --------------------------------
    dump = drill.tmp / "releasegate.dump"
    subprocess.run(
        ["pg_dump", "--format=custom", "--file", str(dump), source],
        env=drill.pg_env(), check=True, timeout=120,
    )  # fmt: skip
    drill.drop(source)
    assert not drill.exists(source)
    broker.flushall()  # the drill's own redis-server: its queue, cache and counters are gone
    assert broker.dbsize() == 0 and broker.llen("celery") == 0

    drill.admin(f'CREATE DATABASE "{restored}"')
    subprocess.run(
        ["pg_restore", "--exit-on-error", "--dbname", restored, str(dump)],
        env=drill.pg_env(), check=True, timeout=180,
    )  # fmt: skip

    # --- the restored database is the same -----------------------------------------------------
    audit_after = drill.manage(restored, "verify_audit").strip()
    assert audit_after == audit_before
    drill.manage(restored, "migrate", "--check")  # the schema is complete

    drill.serve(restored)
    after = _capture(setup)
    assert after.keys() == before.keys()
    for key in before:
        if key.startswith("/api/"):
            assert after[key] == before[key], key
        else:
            same = _normalised(before[key]) == _normalised(after[key])
            assert same, f"{key} differs:\n{_difference(before[key], after[key])}"

    # The gate evaluation queued in the lost Redis is done by the beat sweep, from the flag
    # the run carries in the database.
    assert drill.shell(restored, GATE.replace("__GATE__", str(setup["gate"]))) == gate_before
    assert int(drill.manage(restored, "shell", "--no-imports", "-c", SWEEP).split()[-1]) >= 1
    gate_after = drill.shell(restored, GATE.replace("__GATE__", str(setup["gate"])))
    assert gate_after["status"] == "passed", gate_after
    assert gate_after["run"] is not None and gate_after["pending_runs"] == 0
    assert drill.manage(restored, "verify_audit").startswith("OK:")
    redis_server.stop()


def _ping(client) -> bool:
    try:
        return bool(client.ping())
    except Exception:  # noqa: BLE001 - not up yet
        return False
