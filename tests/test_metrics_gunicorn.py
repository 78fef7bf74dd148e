"""/metrics under real gunicorn with two workers (deploy/gunicorn.conf.py): a scrape that
lands on either worker adds up both workers' counts (prometheus_client's multiprocess mode),
a stale folder from an earlier run is cleared at start, and a worker killed with SIGKILL
keeps its counts in the sum after gunicorn replaces it (child_exit).

gunicorn serves the test session's database (a file copy of SQLite's in-memory one, or
PostgreSQL's test database) on 127.0.0.1, ports 18140-18149, and is killed at teardown.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.test_reverse_proxy import _database_url, _exchange, _stop

ROOT = Path(__file__).resolve().parent.parent
PORTS = range(18140, 18150)
TOKEN = "gunicorn-metrics-token-0123456789"
HEALTHZ = (
    "django_http_responses_total_by_status_view_method_total"
    '{method="GET",status="200",view="healthz"}'
)

pytestmark = [pytest.mark.services, pytest.mark.django_db]


def _free_port() -> int:
    for port in PORTS:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 127.0.0.1:18140-18149")


def _request(port: int, path: str, *headers: str) -> tuple[int, dict, bytes]:
    lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close", *headers]
    return _exchange(port, ("\r\n".join(lines) + "\r\n\r\n").encode(), timeout=10)


def _scrape(port: int) -> dict[str, float]:
    status, headers, body = _request(port, "/metrics", f"Authorization: Bearer {TOKEN}")
    assert status == 200, body[:2000]
    assert headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}"] = sample.value
    return samples


def _worker_pids(folder: Path) -> set[int]:
    """The processes that wrote counters: one file per worker and kind of metric."""
    return {
        int(m.group(1)) for p in folder.glob("*.db") if (m := re.search(r"_(\d+)\.db$", p.name))
    }


@pytest.fixture(scope="module")
def gunicorn(tmp_path_factory, django_db_setup, django_db_blocker):
    tmp = tmp_path_factory.mktemp("gunicorn-metrics")
    with django_db_blocker.unblock():
        database_url = _database_url(tmp / "db.sqlite3")
    folder = tmp / "prometheus"
    folder.mkdir()
    # A previous run's file (unreadable garbage): left there, it would break every scrape.
    (folder / "counter_1.db").write_bytes(b"stale")
    port = _free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": database_url,
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": "2",
        "GUNICORN_THREADS": "2",
        "PROMETHEUS_MULTIPROC_DIR": str(folder),
        "METRICS_TOKEN": TOKEN,
        "LOG_FORMAT": "json",
    }
    log = tmp / "gunicorn.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            ["timeout", "-s", "KILL", "300", sys.executable, "-m", "gunicorn"]
            + ["-c", "deploy/gunicorn.conf.py", "config.wsgi:application"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                pytest.fail(f"gunicorn exited:\n{log.read_text()[-3000:]}")
            try:  # /metrics, not /healthz/: the test counts every /healthz/ it sends
                if _request(port, "/metrics", f"Authorization: Bearer {TOKEN}")[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"gunicorn did not answer:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield port, folder, log
    finally:
        _stop(process)


def _hit_both_workers(port: int, folder: Path, at_least: int) -> int:
    """/healthz/ on fresh connections until both workers have served (the kernel hands each
    connection to one of them); returns how many were sent."""
    sent = 0
    while sent < at_least or len(_worker_pids(folder)) < 2:
        assert _request(port, "/healthz/")[0] == 200
        sent += 1
        assert sent < 500, f"one worker served everything: {_worker_pids(folder)}"
    return sent


def test_two_workers_add_up_and_a_killed_one_keeps_its_counts(gunicorn):
    port, folder, log = gunicorn
    assert not (folder / "counter_1.db").exists(), "the stale file was not cleared at start"
    sent = _hit_both_workers(port, folder, at_least=20)
    pids = _worker_pids(folder)
    assert len(pids) == 2, pids
    # Whichever worker a scrape lands on, it counts every worker's requests.
    for _ in range(6):
        assert _scrape(port)[HEALTHZ] == sent

    # SIGKILL one worker: gunicorn starts another, child_exit marks the dead one, and its
    # counts stay in the sum.
    victim = min(pids)
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while True:
        more = 0
        for _ in range(10):
            assert _request(port, "/healthz/")[0] == 200
            more += 1
        sent += more
        live = _worker_pids(folder) - {victim}
        if len(live) >= 2:
            break
        assert time.monotonic() < deadline, f"no replacement worker:\n{log.read_text()[-2000:]}"
    for _ in range(6):
        samples = _scrape(port)
        assert samples[HEALTHZ] == sent
    # The business gauges come from the database, once per scrape.
    assert samples['releasegate_metrics_provider_up{provider="releases"}'] == 1
    assert 'releasegate_releases{state="draft"}' in samples


def test_metrics_needs_the_token_under_gunicorn(gunicorn):
    port, _, _ = gunicorn
    status, headers, _ = _request(port, "/metrics")
    assert status == 401 and headers["www-authenticate"] == 'Bearer realm="metrics"'
    assert _request(port, "/metrics", "Authorization: Bearer nope-0123456789abcdef")[0] == 401


def test_gunicorn_and_the_app_log_json_lines(gunicorn):
    port, _, log = gunicorn
    status, headers, _ = _request(port, "/healthz/", "X-Request-ID: probe-0123456789")
    assert status == 200 and headers["x-request-id"] == "probe-0123456789"
    lines = []
    for raw in log.read_text().splitlines():
        assert raw.startswith("{"), f"not a JSON line: {raw!r}"
        lines.append(json.loads(raw))
    assert any(line["logger"] == "gunicorn.error" for line in lines)  # "Booting worker …"
    (probe,) = [line for line in lines if line.get("request_id") == "probe-0123456789"]
    assert (probe["logger"], probe["path"], probe["status"]) == (
        "releasegate.request",
        "/healthz/",
        200,
    )
