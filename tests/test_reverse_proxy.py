"""nginx in front of gunicorn, for real: deploy/nginx/releasegate.conf and
deploy/gunicorn.conf.py, the files docker-compose.yml runs, serving this project.

gunicorn runs the project against the test session's database (PostgreSQL's test database,
or a file copy of SQLite's in-memory one) on 127.0.0.1; nginx runs the deploy config with
only its ports, paths, user and header timeout substituted (docs/operations.md). Every
socket has a timeout and both processes are killed at teardown.

Without /usr/sbin/nginx the tests are skipped with the reason, unless REQUIRE_SERVICES=1
(CI), where a missing nginx is a failure.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import select
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path

import pytest
from django.db import connection

NGINX = Path("/usr/sbin/nginx")
ROOT = Path(__file__).resolve().parent.parent
HEADER_TIMEOUT = 3  # seconds, substituted for the deploy config's client_header_timeout
SLOW_CLIENTS = 8
PORTS = range(18500, 18600)

# django_db makes pytest-django create the test database, which the module's gunicorn
# serves; the tests themselves write nothing, so no transaction is ever committed.
pytestmark = [pytest.mark.services, pytest.mark.django_db]


def _free_port(taken: set[int]) -> int:
    for port in PORTS:
        if port in taken:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            taken.add(port)
            return port
    raise RuntimeError("no free port in 127.0.0.1:18500-18599")


def _database_url(target: Path) -> str:
    """The test session's database as a DATABASE_URL another process can open."""
    settings = connection.settings_dict
    if connection.vendor == "postgresql":
        user = urllib.parse.quote(settings["USER"] or "", safe="")
        password = urllib.parse.quote(settings["PASSWORD"] or "", safe="")
        auth = f"{user}:{password}@" if password else f"{user}@"
        host, port = settings["HOST"] or "127.0.0.1", settings["PORT"] or 5432
        return f"postgres://{auth}{host}:{port}/{settings['NAME']}"
    assert connection.vendor == "sqlite", connection.vendor
    if not connection.is_in_memory_db():
        return f"sqlite:///{settings['NAME']}"
    # In memory: copy it, migrations and all, to a file the subprocess can open.
    connection.ensure_connection()
    copy = sqlite3.connect(target)
    try:
        connection.connection.backup(copy)
    finally:
        copy.close()
    return f"sqlite:///{target}"


def _render_nginx_conf(tmp: Path, listen: int, upstream: int) -> str:
    """The deploy config with each machine-specific line swapped; a line that is no longer
    in the deploy file fails the test instead of being silently left alone."""
    text = (ROOT / "deploy" / "nginx" / "releasegate.conf").read_text()
    user = f"user {pwd.getpwuid(os.geteuid()).pw_name};" if os.geteuid() == 0 else ""
    temp_paths = "".join(
        f"    {kind}_temp_path {tmp / kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    for old, new in (
        ("user nginx;", user),
        ("worker_processes auto;", "worker_processes 1;"),
        ("pid /var/run/nginx.pid;", f"pid {tmp / 'nginx.pid'};"),
        ("error_log /dev/stderr warn;", f"error_log {tmp / 'error.log'} info;"),
        ("access_log /dev/stdout;\n", f"access_log {tmp / 'access.log'};\n{temp_paths}"),
        ("client_header_timeout 10s;", f"client_header_timeout {HEADER_TIMEOUT}s;"),
        ("server web:8000;", f"server 127.0.0.1:{upstream};"),
        ("listen 80;", f"listen 127.0.0.1:{listen};"),
    ):
        assert text.count(old) == 1, f"{old!r} is no longer in the deploy config"
        text = text.replace(old, new)
    return text


def _wait_for_http(port: int, process: subprocess.Popen, log: Path, deadline_s: float):
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(OSError):
            status, _, _ = _get(port, "/healthz/", timeout=2)
            if status == 200:
                return
        time.sleep(0.2)
    pytest.fail(f"no answer on 127.0.0.1:{port} within {deadline_s}s:\n{log.read_text()[-3000:]}")


def _get(port: int, path: str, *, timeout: float) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 GET on a fresh connection: status, headers (lower-cased), body."""
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    return _exchange(port, request.encode(), timeout=timeout)


def _exchange(port: int, request: bytes, *, timeout: float):
    """Reads the answer up to its Content-Length (or the close): after a 413, nginx keeps
    the connection open a while to drain the body the client never sends."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        received = b""
        while b"\r\n\r\n" not in received and (chunk := sock.recv(65536)):
            received += chunk
        head, _, body = received.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", -1))
        while (length < 0 or len(body) < length) and (chunk := sock.recv(65536)):
            body += chunk
    return int(status_line.split()[1]), headers, body


def _stop(process: subprocess.Popen):
    if process.poll() is None:
        os.killpg(process.pid, 15)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait(timeout=10)


@pytest.fixture(scope="module")
def proxy(tmp_path_factory, django_db_setup, django_db_blocker):
    """nginx's port, with gunicorn behind it; both stopped at the end of the module."""
    if not NGINX.exists():
        message = f"{NGINX} is missing: apt-get install -y nginx"
        if os.environ.get("REQUIRE_SERVICES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    tmp = tmp_path_factory.mktemp("proxy")
    with django_db_blocker.unblock():
        database_url = _database_url(tmp / "db.sqlite3")
    taken: set[int] = set()
    upstream, listen = _free_port(taken), _free_port(taken)

    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": database_url,
        "GUNICORN_BIND": f"127.0.0.1:{upstream}",
        # Fewer threads than slow clients: were they to reach gunicorn, they would starve it.
        "GUNICORN_WORKERS": "1",
        "GUNICORN_THREADS": "4",
    }
    gunicorn_log = tmp / "gunicorn.log"
    with gunicorn_log.open("wb") as out:
        gunicorn = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py"]
            + ["config.wsgi:application"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    processes = [gunicorn]
    try:
        _wait_for_http(upstream, gunicorn, gunicorn_log, deadline_s=60)
        conf = tmp / "nginx.conf"
        conf.write_text(_render_nginx_conf(tmp, listen, upstream))
        nginx_log = tmp / "nginx-startup.log"
        with nginx_log.open("wb") as out:
            nginx = subprocess.Popen(
                [str(NGINX), "-p", str(tmp), "-c", str(conf), "-e", str(nginx_log)]
                + ["-g", "daemon off;"],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        processes.append(nginx)
        _wait_for_http(listen, nginx, nginx_log, deadline_s=20)
        yield {"port": listen, "gunicorn_log": gunicorn_log}
    finally:
        for process in reversed(processes):
            _stop(process)


class SlowClients:
    """Connections that send a partial request and then one header byte a second, forever;
    each records when the server closed it."""

    def __init__(self, port: int, count: int):
        self.sockets = []
        for _ in range(count):
            sock = socket.create_connection(("127.0.0.1", port), timeout=2)
            sock.sendall(b"GET /healthz/ HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            self.sockets.append(sock)
        self.opened = time.monotonic()
        self.closed_after: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._trickle, daemon=True)
        self._thread.start()

    def _trickle(self):
        while not self._stop.is_set() and len(self.closed_after) < len(self.sockets):
            for index, sock in enumerate(self.sockets):
                if index not in self.closed_after:
                    with contextlib.suppress(OSError):
                        sock.send(b"a")
            readable, _, _ = select.select(
                [s for i, s in enumerate(self.sockets) if i not in self.closed_after], [], [], 1
            )
            for sock in readable:
                try:
                    data = sock.recv(4096)
                except OSError:
                    data = b""
                if not data:
                    self.closed_after[self.sockets.index(sock)] = time.monotonic() - self.opened

    def close(self):
        self._stop.set()
        self._thread.join(timeout=5)
        for sock in self.sockets:
            sock.close()


@pytest.fixture
def slow_clients(proxy):
    clients = SlowClients(proxy["port"], SLOW_CLIENTS)
    yield clients
    clients.close()


def test_healthz_answers_through_nginx_while_slow_clients_hold_connections(proxy, slow_clients):
    for _ in range(3):
        started = time.monotonic()
        status, headers, body = _get(proxy["port"], "/healthz/", timeout=2)
        assert status == 200 and body == b'{"status": "ok"}'
        assert time.monotonic() - started < 2
        time.sleep(0.3)
    assert not slow_clients.closed_after, "the slow clients were still sending headers"
    # No version in the Server header.
    assert headers["server"] == "nginx"


def test_readyz_answers_through_nginx(proxy):
    status, _, body = _get(proxy["port"], "/readyz/", timeout=5)
    assert status == 200, body
    assert b'"database": {"status": "ok"' in body


def test_slow_clients_are_cut_off_after_the_header_timeout(proxy, slow_clients):
    deadline = time.monotonic() + HEADER_TIMEOUT + 5
    while len(slow_clients.closed_after) < SLOW_CLIENTS and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(slow_clients.closed_after) == SLOW_CLIENTS, slow_clients.closed_after
    for seconds in slow_clients.closed_after.values():
        assert HEADER_TIMEOUT - 0.5 <= seconds <= HEADER_TIMEOUT + 3
    # None of them ever reached gunicorn: it only logs complete requests.
    assert "X-Slow" not in proxy["gunicorn_log"].read_text()


def test_a_body_over_the_limit_gets_413_from_nginx_not_the_app(proxy):
    request = (
        b"POST /api/v1/pipeline-runs/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nContent-Length: 2000000\r\nConnection: close\r\n\r\n"
    )
    status, headers, body = _exchange(proxy["port"], request, timeout=5)
    assert status == 413
    assert b"413 Request Entity Too Large" in body and headers["server"] == "nginx"
    assert headers["content-type"].startswith("text/html")


def test_a_body_under_the_limit_reaches_the_app(proxy):
    """Between the app's 256 KiB and nginx's 1 MiB: nginx buffers it whole and passes it on;
    the app answers (here 401: no token), not nginx."""
    body = b"x" * (300 * 1024)
    request = (
        b"POST /api/v1/pipeline-runs/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
        % len(body)
    ) + body
    status, headers, _ = _exchange(proxy["port"], request, timeout=10)
    assert status in (401, 403)
    assert headers["content-type"] == "application/json"
