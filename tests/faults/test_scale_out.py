"""Scale-out under faults, for real: two web replicas behind a load-balancing nginx, two
Celery workers and one beat, on PostgreSQL and a redis-server this test starts itself.

While threads post pipeline runs through nginx with an API token (each keeping every run the
server acknowledged), the test SIGKILLs one web replica (master and worker: a pod killed),
SIGKILLs one Celery worker, and kills and restarts Redis, which comes back empty (no
persistence: Redis holds no state a restart must bring back). It then asserts:

- every acknowledged run is stored exactly once, with its checks once;
- every run of an open release's service and version recorded its gate result;
- every notification reached the HTTP sink once (one request per idempotency key);
- beat fired each schedule once per interval (never twice in one).

Only 127.0.0.1 and ports 8160-8164 are used; every process runs under ``timeout -s KILL``
and in its own process group, killed at teardown, so nothing outlives the test.
``SCALE_LOAD_SECONDS`` lengthens the load (docs/operations.md, "Capacity").
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.db import transaction
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from core.models import Notification, NotificationAttempt, NotificationPreference
from core.notifications import notification_enqueue
from governance.models import GateCheck
from pipelines.models import PipelineCheck, PipelineRun
from pipelines.services import api_token_create
from pipelines.tests.worker_support import shared_database_url, use_broker, wait_for
from tests.factories import ReleaseFactory, ServiceFactory, UserFactory, force_state

pytestmark = [
    pytest.mark.faults,
    pytest.mark.services,
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
]

ROOT = Path(__file__).resolve().parents[2]
NGINX = Path("/usr/sbin/nginx")
PROXY_PORT, REDIS_PORT, WEB_PORTS, SINK_PORT = 8160, 8161, (8162, 8163), 8164
LOAD_SECONDS = float(os.environ.get("SCALE_LOAD_SECONDS", "30"))
LOAD_THREADS = 4
RELEASES = 10
# The beat schedules of the test (seconds) and the kwargs they run with.
SCHEDULES = {
    "scale: deliver due notifications": ("pipelines.deliver_due_notifications", 3, {}),
    "scale: evaluate pending gates": (
        "pipelines.evaluate_pending_gates",
        4,
        {"older_than_seconds": 3},
    ),
}
HARD_LIMIT = 240  # seconds any process of the test may live


def _require(binary: str) -> str:
    path = next(
        (
            str(Path(d) / binary)
            for d in [*os.environ["PATH"].split(":"), "/usr/sbin"]
            if (Path(d) / binary).exists()
        ),
        None,
    )
    if path is None:
        message = f"{binary} is missing (apt-get install nginx redis-server)"
        if os.environ.get("REQUIRE_SERVICES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return path


class Proc:
    """A process in its own group under ``timeout -s KILL``, its output in a log file."""

    def __init__(self, name: str, argv: list[str], log_dir: Path, env: dict | None = None):
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

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        self.kill(signal.SIGTERM)

    def tail(self) -> str:
        try:
            return f"--- {self.name} ---\n" + self.log_path.read_text(errors="replace")[-3000:]
        except FileNotFoundError:
            return f"--- {self.name}: no log ---"


def _http(port: int, method: str, path: str, body: bytes = b"", headers=None, timeout=10):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body or None, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _wait_http(port: int, proc: Proc, *, timeout: float = 60) -> None:
    def up():
        if proc.proc.poll() is not None:
            pytest.fail(f"{proc.name} exited with {proc.proc.returncode}\n{proc.tail()}")
        with contextlib.suppress(OSError):
            return _http(port, "GET", "/healthz/", timeout=2)[0] == 200
        return False

    wait_for(up, timeout=timeout, what=f"{proc.name} on :{port}")


def _nginx_conf(tmp: Path) -> str:
    """The deploy config (deploy/nginx/releasegate.conf) with its upstream replaced by the
    two replicas and its machine-specific lines swapped, as tests/test_reverse_proxy.py
    does; a line gone from the deploy file fails the test."""
    from tests.test_reverse_proxy import _render_nginx_conf

    text = _render_nginx_conf(tmp, PROXY_PORT, WEB_PORTS[0])
    single = f"server 127.0.0.1:{WEB_PORTS[0]};"
    assert text.count(single) == 1
    # A replica refusing connections is retried on the other one (nginx does that even for
    # a POST, since the request never reached the dead one) and left out for 3 s.
    both = "\n        ".join(
        f"server 127.0.0.1:{p} max_fails=1 fail_timeout=3s;" for p in WEB_PORTS
    )
    return text.replace(single, both)


class Sink(BaseHTTPRequestHandler):
    """The Slack-compatible webhook the notifications go to: counts each idempotency key."""

    keys: Counter = Counter()
    lock = threading.Lock()

    def do_POST(self):  # noqa: N802 - http.server's name
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with self.lock:
            self.keys[self.headers.get("X-Releasegate-Idempotency-Key", "")] += 1
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):  # quiet
        pass


def _run_body(service: str, external_id: str, version: str, sha: str) -> bytes:
    now = timezone.now().isoformat()
    return json.dumps(
        {
            "service": service,
            "provider": "github_actions",
            "external_id": external_id,
            "attempt": 1,
            "status": "succeeded",
            "commit_sha": sha,
            "ref": "refs/heads/main",
            "version": version,
            "url": f"https://ci.example/run/{external_id}",
            "started_at": now,
            "finished_at": now,
            "checks": [{"kind": "tests", "status": "passed", "passed": 10, "failed": 0}],
        }
    ).encode()


class Load:
    """Threads posting runs through nginx like CI jobs do: each run is retried on a 5xx or a
    dropped connection (same body), and kept as acknowledged once a 200/201 came back."""

    def __init__(self, token: str, services: list[str]):
        self.token, self.services = token, services
        self.acknowledged: set[str] = set()
        self.attempted: set[str] = set()
        self.requests = 0
        self.failures = 0
        self.lock = threading.Lock()
        self.stop = threading.Event()

    def post(self, external_id: str, service: str, version: str, sha: str) -> bool:
        body = _run_body(service, external_id, version, sha)
        headers = {
            "Authorization": f"Bearer {self.token}",
            "Content-Type": "application/json",
            "Host": "127.0.0.1",
        }
        with self.lock:
            self.attempted.add(external_id)
        for attempt in range(20):
            try:
                status, _ = _http(PROXY_PORT, "POST", "/api/v1/pipeline-runs/", body, headers)
            except (OSError, http.client.HTTPException):
                status = 0  # refused, reset or cut short: not acknowledged
            with self.lock:
                self.requests += 1
                if status in (200, 201):
                    self.acknowledged.add(external_id)
                    return True
                self.failures += 1
            time.sleep(min(0.2 * (attempt + 1), 1.5))
        return False

    def worker(self, n: int) -> None:
        i = 0
        while not self.stop.is_set():
            i += 1
            service = self.services[i % len(self.services)]
            self.post(f"load-{n}-{i}", service, f"0.{n}.{i}", f"{n:02x}{i:038x}")


def _schedules() -> None:
    """Only the test's schedules are enabled in beat, at seconds intervals."""
    PeriodicTask.objects.update(enabled=False)
    for name, (task, every, kwargs) in SCHEDULES.items():
        interval, _ = IntervalSchedule.objects.get_or_create(every=every, period="seconds")
        PeriodicTask.objects.update_or_create(
            name=name,
            defaults={
                "task": task,
                "interval": interval,
                "kwargs": json.dumps(kwargs),
                "enabled": True,
                "last_run_at": None,
            },
        )


BEAT_LINE = re.compile(
    r"^\[(?P<at>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}): INFO/MainProcess\] "
    r"Scheduler: Sending due task (?P<name>.+?) \("
)


def _beat_sends(log: str) -> dict[str, list[datetime]]:
    sends: dict[str, list[datetime]] = {}
    for line in log.splitlines():
        match = BEAT_LINE.match(line)
        if match:
            at = datetime.strptime(match["at"], "%Y-%m-%d %H:%M:%S,%f")
            sends.setdefault(match["name"], []).append(at)
    return sends


def test_replicas_lose_nothing_when_a_web_replica_a_worker_and_redis_die(tmp_path):
    from django.conf import settings

    database_url = shared_database_url()  # skips on SQLite: the processes share PostgreSQL
    nginx_bin, redis_bin = _require("nginx"), _require("redis-server")
    _require("timeout")
    Sink.keys = Counter()
    sink = ThreadingHTTPServer(("127.0.0.1", SINK_PORT), Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()

    # --- the data: services, a token, open releases with a CI gate, a notified user --------
    services = [ServiceFactory(name=f"scale-{n}", slug=f"scale-{n}") for n in range(3)]
    _, token = api_token_create(
        actor=None, name="scale-ci", service_slugs=[s.slug for s in services]
    )
    releases = []
    for n in range(RELEASES):
        release = force_state(
            ReleaseFactory(version=f"8.{n}.0", services=[services[n % 3]]), "in_progress"
        )
        GateCheck.objects.create(
            release=release,
            policy_name="scale",
            policy_version=1,
            key="ci",
            stage="pre_approval",
            kind="ci_green",
            label="CI build green",
            requirement={},
        )
        releases.append(release)
    user = UserFactory(username="oncall")
    NotificationPreference.objects.create(
        user=user,
        channels={"deployment_failed": ["slack"]},
        slack_webhook_url=f"http://127.0.0.1:{SINK_PORT}/hook",
    )
    _schedules()

    # --- the processes -------------------------------------------------------------------------
    broker = f"redis://127.0.0.1:{REDIS_PORT}/0"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": database_url,
        "REDIS_URL": broker,
        "CELERY_BROKER_URL": broker,
        "PYTHONUNBUFFERED": "1",
        "INGEST_RATE_LIMIT": "1000000",
        "CELERY_VISIBILITY_TIMEOUT": "8",
        "NOTIFICATION_SEND_LEASE_SECONDS": "5",
        "GUNICORN_WORKERS": "1",
        "GUNICORN_THREADS": "4",
    }
    redis_argv = [redis_bin, "--port", str(REDIS_PORT), "--bind", "127.0.0.1", "--save", ""]
    redis_argv += ["--appendonly", "no", "--dir", str(tmp_path)]
    redis = Proc("redis", redis_argv, tmp_path)

    def web(n: int) -> Proc:
        argv = [sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py"]
        argv += ["config.wsgi:application"]
        return Proc(
            f"web{n}", argv, tmp_path, {**env, "GUNICORN_BIND": f"127.0.0.1:{WEB_PORTS[n]}"}
        )

    def worker(n: int) -> Proc:
        argv = [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=solo"]
        argv += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
        argv += ["--loglevel=INFO", "-n", f"scale{n}@%h"]
        return Proc(f"worker{n}", argv, tmp_path, env)

    beat_argv = [sys.executable, "-m", "celery", "-A", "config", "beat", "--loglevel=INFO"]
    beat_argv += ["-s", str(tmp_path / "beat-schedule")]
    conf = tmp_path / "nginx.conf"
    conf.write_text(_nginx_conf(tmp_path))
    nginx = Proc(
        "nginx", [nginx_bin, "-p", str(tmp_path), "-c", str(conf), "-g", "daemon off;"], tmp_path
    )
    webs = [web(0), web(1)]
    workers = [worker(0), worker(1)]
    beat = Proc("beat", beat_argv, tmp_path, env)
    everything = [redis, *webs, *workers, beat, nginx]
    original_broker = settings.CELERY_BROKER_URL
    load = Load(token, [s.slug for s in services])
    threads: list[threading.Thread] = []
    try:
        for proc in [redis, *webs, *workers]:
            proc.start()
        wait_for(lambda: _redis_ping(), timeout=20, what="redis-server")
        for n, proc in enumerate(webs):
            _wait_http(WEB_PORTS[n], proc)
        nginx.start()
        _wait_http(PROXY_PORT, nginx, timeout=20)
        beat_started = time.monotonic()
        beat.start()
        use_broker(broker)  # this process's notifications go to the same Redis

        # --- load, and the faults in the middle of it -----------------------------------------
        threads = [
            threading.Thread(target=load.worker, args=(n,), daemon=True)
            for n in range(LOAD_THREADS)
        ]
        for t in threads:
            t.start()
        released: dict[int, str] = {}
        notifications = 0
        step = LOAD_SECONDS / RELEASES
        killed: list[tuple[str, int]] = []

        def sigkill(proc: Proc) -> None:
            proc.kill()
            killed.append((proc.name, proc.proc.returncode))

        faults = {
            2: lambda: sigkill(webs[0]),  # a web replica dies, master and worker
            4: lambda: sigkill(workers[0]),  # a worker dies, maybe in the middle of a task
            5: lambda: sigkill(redis),  # Redis goes…
            6: lambda: redis.start(),  # …and comes back empty
            7: lambda: webs[0].start(),  # the replica is replaced
        }
        for n, release in enumerate(releases):
            if n in faults:
                faults[n]()
            external_id = f"release-{n}"
            sha = f"{n + 1:040x}"
            load.post(external_id, release.services.get().slug, release.version, sha)
            released[release.pk] = external_id
            with transaction.atomic():
                notification_enqueue(
                    event="deployment_failed",
                    recipients=[user],
                    subject=f"Deployment failed: scale {n}",
                    idempotency_key=f"scale:{n}",
                )
            notifications += 1
            time.sleep(step)
        load.stop.set()
        for t in threads:
            t.join(60)
        load_seconds = LOAD_SECONDS
        settle_started = time.monotonic()

        # --- everything settles ---------------------------------------------------------------
        def gates_decided():
            done = GateCheck.objects.filter(
                release_id__in=released, status="passed", run__isnull=False
            ).count()
            return done == RELEASES

        wait_for(gates_decided, timeout=90, what="the gate results of the release runs")
        wait_for(
            lambda: Notification.objects.filter(status="delivered").count() == notifications,
            timeout=90,
            what="every notification delivered",
        )
        wait_for(
            lambda: not PipelineRun.objects.filter(gates_pending=True).exists(),
            timeout=60,
            what="no run left with its gate evaluation pending",
        )
        time.sleep(4)  # a duplicate send, were there one, would have arrived by now
        beat_seconds = time.monotonic() - beat_started
        settled = time.monotonic() - settle_started
    except BaseException:
        for proc in everything:
            print(proc.tail())
        raise
    finally:
        load.stop.set()
        for proc in reversed(everything):
            proc.stop()
        sink.shutdown()
        sink.server_close()
        use_broker(original_broker)

    assert killed == [("web0", -9), ("worker0", -9), ("redis", -9)]
    # Every acknowledged run is stored exactly once, with its one check once.
    stored = Counter(
        PipelineRun.objects.filter(external_id__in=load.acknowledged).values_list(
            "external_id", flat=True
        )
    )
    assert set(stored) == load.acknowledged
    assert set(stored.values()) == {1}
    assert PipelineCheck.objects.filter(run__external_id__in=load.acknowledged).count() == len(
        load.acknowledged
    )
    # Nothing is stored that was never posted.
    assert set(PipelineRun.objects.values_list("external_id", flat=True)) <= load.attempted
    assert len(load.acknowledged) > 50 and set(released.values()) <= load.acknowledged

    # Every release run decided its release's gate.
    for release_id, external_id in released.items():
        gate = GateCheck.objects.select_related("run").get(release_id=release_id)
        assert gate.status == "passed" and gate.run.external_id == external_id

    # No notification went out twice.
    # (The key is the event's, the recipient's and the channel's: scale:<n>:<user>:slack.)
    assert len(Sink.keys) == notifications and set(Sink.keys.values()) == {1}, Sink.keys
    assert all(key.startswith("scale:") for key in Sink.keys)
    assert NotificationAttempt.objects.filter(ok=True).count() == notifications

    # Beat fired each schedule once per interval, never twice in one.
    sends = _beat_sends(beat.log_path.read_text(errors="replace"))
    for name, (_task, every, _kwargs) in SCHEDULES.items():
        times = sends.get(name, [])
        gaps = [(b - a).total_seconds() for a, b in zip(times, times[1:], strict=False)]
        assert len(times) >= beat_seconds / every / 2, (name, len(times), beat_seconds)
        assert len(times) <= beat_seconds / every + 2, (name, len(times), beat_seconds)
        assert min(gaps) >= every * 0.8, (name, gaps)

    print(
        f"\nscale-out: {len(load.acknowledged)} runs acknowledged in {load_seconds:.0f} s "
        f"({len(load.acknowledged) / load_seconds:.1f}/s) over {load.requests} requests, "
        f"{load.failures} refused or dropped and retried; settled in {settled:.0f} s; "
        f"load average "
        f"{os.getloadavg()[0]:.2f}"
    )


def _redis_ping() -> bool:
    import redis as redis_client

    try:
        return bool(redis_client.Redis(host="127.0.0.1", port=REDIS_PORT, socket_timeout=1).ping())
    except redis_client.RedisError:
        return False
