"""Gate latency: the time from a CI post to the release's gate verdict, idle and under a steady
background ingest load (docs/benchmarks-ingest.md, "Gate latency").

    make bench-gate-latency      # or: .venv/bin/python benchmarks/gate_latency.py --help

All on loopback and bounded in time:

1. (Re)creates a dedicated PostgreSQL database (default ``rg_bench_gates``), migrated with the
   production settings; a service with ``--releases`` open releases, each with automated gates
   (CI green, tests passed), and a CI token. Redis database 13 is the cache and the broker.
2. Starts gunicorn (2 workers × 4 threads, gthread, as the ingest benchmark) and a Celery
   worker as docker-compose runs it (prefork, ``--concurrency``).
3. Measures the ingest capacity (``--capacity-seconds`` of 32 clients posting runs that concern
   no release), then runs ``--idle-seconds`` of probes alone, then ``--load-seconds`` of
   background load at ``--load-share`` of that capacity. A tenth of all posted runs (the
   ``--probe-share``) are probes: runs of an open release's version, whose gates they decide.
4. A probe's latency runs from sending its POST to the moment its gate evaluation has been
   stored (the run's ``gates_pending`` flag is cleared in the same task, after the verdicts are
   recorded), read by polling the database every 20 ms.
5. Prints p50 / p95 / max per 30 s window and for the idle phase, the Celery queue length
   sampled every second, the load average, and whether the targets hold: p95 ≤ 1 s idle and
   ≤ 2 s in every loaded window, the last window within 20% of the first, and the queue
   bounded (its last 30 s no longer than its first 30 s plus 50). Exits non-zero otherwise.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from dbhygiene import vacuum_analyze
from ingest import free_port, gunicorn_argv, load_average, redis_available, wait_for

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
SERVICE = "bench-gates"
REDIS_DB = "13"
WINDOW = 30.0


def body(external_id: str, version: str, commit: str) -> bytes:
    return json.dumps(
        {
            "service": SERVICE,
            "provider": "github_actions",
            "external_id": external_id,
            "attempt": 1,
            "status": "succeeded",
            "commit_sha": commit,
            "ref": "refs/heads/main",
            "version": version,
            "url": f"https://ci.example/run/{external_id}",
            "started_at": "2026-11-20T10:00:00Z",
            "finished_at": "2026-11-20T10:07:12Z",
            "checks": [
                {"kind": "tests", "status": "passed", "passed": 812, "failed": 0, "skipped": 4},
                {"kind": "security_scan", "status": "passed", "critical": 0, "high": 1},
                {"kind": "coverage", "status": "passed", "percent": 87.5},
            ],
        }
    ).encode()


@dataclass
class Probes:
    """Probes in flight (external id -> send time) and their measured latencies."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    sent: dict[str, float] = field(default_factory=dict)
    done: list[tuple[float, float]] = field(default_factory=list)  # (sent at, latency)

    def add(self, key: str, at: float) -> None:
        with self.lock:
            self.sent[key] = at


class Poster:
    """Posts at a fixed rate (open loop) from ``threads`` keep-alive connections."""

    def __init__(self, port: int, token: str, probes: Probes, releases: list[tuple[str, str]]):
        self.port, self.token, self.probes, self.releases = port, token, probes, releases
        self.counter = 0
        self.lock = threading.Lock()
        self.errors = 0
        self.posted = 0

    def next_run(self, probe_share: float) -> tuple[str, bytes, bool]:
        with self.lock:
            self.counter += 1
            n = self.counter
        probe = probe_share > 0 and n % max(1, round(1 / probe_share)) == 0
        if probe:
            version, commit = self.releases[n % len(self.releases)]
            key = f"probe-{n}"
            return key, body(key, version, commit), True
        key = f"bg-{n}"
        return key, body(key, f"9.{n // 1000}.{n % 1000}-unreleased", f"{n:040x}"), False

    def run(self, rate: float, seconds: float, probe_share: float, threads: int = 16) -> None:
        stop = time.perf_counter() + seconds
        per_thread = rate / threads

        def worker(index: int) -> None:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            headers = {
                "Content-Type": "application/json",
                "Authorization": f"Bearer {self.token}",
            }
            due = time.perf_counter() + index / rate  # spread the threads' phases
            while due < stop and time.perf_counter() < stop:
                now = time.perf_counter()
                if due > now:
                    time.sleep(due - now)
                key, payload, probe = self.next_run(probe_share)
                sent = time.perf_counter()
                try:
                    conn.request("POST", "/api/v1/pipeline-runs/", body=payload, headers=headers)
                    response = conn.getresponse()
                    response.read()
                    ok = response.status == 201
                except (OSError, http.client.HTTPException):
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                    ok = False
                with self.lock:
                    self.posted += 1
                    self.errors += not ok
                if ok and probe:
                    self.probes.add(key, sent)
                due += 1 / per_thread
            conn.close()

        pool = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()


def watch(database_url: str, probes: Probes, until: list[float]) -> None:
    """Every 20 ms: which probes have their gate evaluation stored; ends when none is in
    flight after ``until[0]`` (set once the posting ends) or at ``until[1]``."""
    import psycopg2

    conn = psycopg2.connect(database_url)
    conn.autocommit = True
    with conn.cursor() as cursor:
        while True:
            with probes.lock:
                keys = list(probes.sent)
            if keys:
                cursor.execute(
                    "SELECT external_id FROM pipelines_pipelinerun "
                    "WHERE external_id = ANY(%s) AND NOT gates_pending",
                    [keys],
                )
                now = time.perf_counter()
                with probes.lock:
                    for (key,) in cursor.fetchall():
                        sent = probes.sent.pop(key)
                        probes.done.append((sent, now - sent))
            now = time.perf_counter()
            if now > until[1] or (now > until[0] and not probes.sent):
                break
            time.sleep(0.02)
    conn.close()


def queue_length() -> int:
    out = subprocess.run(
        ["redis-cli", "-n", REDIS_DB, "LLEN", "celery"], capture_output=True, text=True
    )
    try:
        return int(out.stdout.strip() or 0)
    except ValueError:
        return -1


def summary(latencies: list[float]) -> str:
    if not latencies:
        return "no probes"
    ordered = sorted(latencies)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return (
        f"{len(ordered):>5} probes  p50 {statistics.median(ordered) * 1000:7.0f} ms  "
        f"p95 {p95 * 1000:7.0f} ms  max {ordered[-1] * 1000:7.0f} ms"
    )


def p95(latencies: list[float]) -> float:
    ordered = sorted(latencies)
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))] if ordered else float("nan")


def seed(token_name: str, releases: int) -> tuple[str, list[tuple[str, str]]]:
    """A service, open releases with automated gates, a CI token (through the services where
    one exists; the releases' state and gates are set directly, as a seed)."""
    from datetime import timedelta

    from django.utils import timezone

    from governance.models import GateCheck
    from pipelines.services import api_token_create
    from releases.models import Release, Service, Team

    team = Team.objects.create(name="Gates", slug="gates")
    service = Service.objects.create(name=SERVICE, slug=SERVICE, team=team)
    versions = []
    now = timezone.now()
    for i in range(releases):
        version, commit = f"5.{i}.0", f"{i + 1:x}".rjust(40, "c")
        release = Release.objects.create(
            name=f"Gates {version}",
            version=version,
            release_type="minor",
            risk_level="low",
            window_start=now,
            window_end=now + timedelta(hours=2),
        )
        release.services.add(service)
        Release.objects.filter(pk=release.pk).update(state="in_progress")
        for position, (kind, label) in enumerate(
            (("ci_green", "CI build green"), ("tests_passed", "Tests passed"))
        ):
            GateCheck.objects.create(
                release=release,
                policy_name="bench",
                policy_version=1,
                key=kind,
                position=position,
                stage="pre_approval",
                kind=kind,
                label=label,
                requirement={},
            )
        versions.append((version, commit))
    _, token = api_token_create(actor=None, name=token_name, service_slugs=[SERVICE])
    return token, versions


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "BENCH_GATES_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/rg_bench_gates"
        ),
    )
    parser.add_argument("--releases", type=int, default=20)
    parser.add_argument("--capacity-seconds", type=float, default=10.0)
    parser.add_argument("--idle-seconds", type=float, default=30.0)
    parser.add_argument("--idle-rate", type=float, default=5.0, help="Probes per second idle.")
    parser.add_argument("--load-seconds", type=float, default=120.0)
    parser.add_argument("--load-share", type=float, default=0.5, help="Of the ingest capacity.")
    parser.add_argument("--probe-share", type=float, default=0.1)
    parser.add_argument("--concurrency", type=int, default=4, help="Celery worker processes.")
    args = parser.parse_args()
    # Stopped from outside (timeout, Ctrl-C): still stop gunicorn and the worker (finally).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if not redis_available():
        raise SystemExit("Redis must answer on 127.0.0.1:6379 (the broker).")

    redis_url = f"redis://127.0.0.1:6379/{REDIS_DB}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "DJANGO_SECRET_KEY": "benchmark-throwaway-" + os.urandom(16).hex(),
        "AUDIT_CHAIN_KEYS": "bench:" + base64.b64encode(os.urandom(32)).decode(),
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "0",
        "DATABASE_URL": args.database_url,
        "INGEST_RATE_LIMIT": "100000000",
        "LOG_LEVEL": "WARNING",
        "REDIS_URL": redis_url,
    }
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))

    import psycopg2

    dbname = args.database_url.rsplit("/", 1)[1]
    admin = psycopg2.connect(args.database_url.rsplit("/", 1)[0] + "/postgres")
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        cur.execute(f'CREATE DATABASE "{dbname}"')
    admin.close()
    subprocess.run(["redis-cli", "-n", REDIS_DB, "FLUSHDB"], capture_output=True, check=False)

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    token, releases = seed("bench-gates-ci", args.releases)
    connection.close()
    vacuum_analyze(args.database_url)

    port = free_port()
    bin_dir = Path(PYTHON).parent
    web = subprocess.Popen(
        gunicorn_argv("config.wsgi:application", port),
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    worker = subprocess.Popen(
        [
            str(bin_dir / "celery"),
            "-A",
            "config",
            "worker",
            "-l",
            "warning",
            "--concurrency",
            str(args.concurrency),
        ],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    probes = Probes()
    poster = Poster(port, token, probes, releases)
    queue: list[tuple[float, int]] = []
    stop = threading.Event()
    try:
        wait_for(port)
        time.sleep(3)  # the worker connects to the broker
        print(f"load average before: {load_average()}", flush=True)

        # Capacity: 32 clients as fast as they go, runs that concern no release.
        began = time.perf_counter()
        poster.run(rate=100_000, seconds=args.capacity_seconds, probe_share=0, threads=32)
        capacity = poster.posted / (time.perf_counter() - began)
        rate = capacity * args.load_share
        print(
            f"ingest capacity {capacity:.0f} runs/s (load average {load_average()}); "
            f"background load {rate:.0f} runs/s, {args.probe_share:.0%} of them probes",
            flush=True,
        )
        time.sleep(5)  # let the queue drain

        until = [float("inf"), float("inf")]
        watcher = threading.Thread(
            target=watch, args=(args.database_url, probes, until), daemon=True
        )
        watcher.start()

        def sample_queue() -> None:
            while not stop.is_set():
                queue.append((time.perf_counter(), queue_length()))
                time.sleep(1)

        threading.Thread(target=sample_queue, daemon=True).start()

        idle_start = time.perf_counter()
        poster.run(rate=args.idle_rate, seconds=args.idle_seconds, probe_share=1.0, threads=2)
        load_start = time.perf_counter()
        poster.run(rate=rate, seconds=args.load_seconds, probe_share=args.probe_share)
        load_end = time.perf_counter()
        until[:] = [load_end, load_end + 30]  # the last probes get 30 s to be evaluated
        watcher.join(timeout=40)
        stop.set()
    finally:
        stop.set()
        for process in (web, worker):
            os.killpg(process.pid, signal.SIGTERM)
        for process in (web, worker):
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)

    idle = [lat for sent, lat in probes.done if idle_start <= sent < load_start]
    print(f"idle           {summary(idle)}")
    windows, failures = [], []
    start = load_start
    while start + WINDOW / 2 < load_end:
        end = min(start + WINDOW, load_end)
        latencies = [lat for sent, lat in probes.done if start <= sent < end]
        depth = [n for at, n in queue if start <= at < end]
        windows.append(latencies)
        print(
            f"load {start - load_start:>4.0f}-{end - load_start:<4.0f}s {summary(latencies)}  "
            f"queue max {max(depth, default=0):>4}"
        )
        start = end
    lost = len(probes.sent)
    print(
        f"posted {poster.posted} runs, {poster.errors} failed; {lost} probes never evaluated; "
        f"load average after: {load_average()}"
    )
    if p95(idle) > 1.0:
        failures.append("idle p95 > 1 s")
    for i, latencies in enumerate(windows):
        if not latencies or p95(latencies) > 2.0:
            failures.append(f"window {i + 1}: p95 > 2 s")
    if len(windows) >= 2 and p95(windows[-1]) > 1.2 * p95(windows[0]):
        failures.append("the last window is more than 20% worse than the first")
    first = [n for at, n in queue if load_start <= at < load_start + WINDOW]
    last = [n for at, n in queue if load_end - WINDOW <= at < load_end]
    if last and first and max(last) > max(first) + 50:
        failures.append(f"queue grew: {max(first)} -> {max(last)}")
    if lost or poster.errors:
        failures.append("probes lost or posts failed")
    print("targets met" if not failures else "targets missed: " + "; ".join(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
