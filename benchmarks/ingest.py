"""Ingest benchmark: POST /api/v1/pipeline-runs/ against a bare Django app and a baseline view.

    make bench-ingest            # or: .venv/bin/python benchmarks/ingest.py --help

What it does, all on loopback and bounded in time:

1. (Re)creates a dedicated PostgreSQL database (default ``rg_bench``), migrates it with the
   production settings and creates a service and an API token.
2. Starts gunicorn (2 workers, gthread, production settings, a throwaway secret,
   ALLOWED_HOSTS=127.0.0.1, SECURE_SSL_REDIRECT=0, RELEASEGATE_BENCHMARK_BASELINE=1 so the
   baseline view is mounted). With Redis on 127.0.0.1:6379 it uses a dedicated Redis
   database (cache, token cache, rate-limit counters and the Celery broker, as in production).
   A second gunicorn with the same flags serves ``benchmarks/bare_app.py``: a single-file
   Django app with its own settings, no middleware and one view doing one INSERT.
3. Drives 32 concurrent keep-alive clients (threads with http.client) posting realistic,
   unique runs (three checks and one artefact each, as in docs/ingestion.md) for (a) the real
   endpoint, (b) the project's baseline view that inserts the same pipeline-run row behind the
   project's whole stack, and (c) the bare app, after a warm-up, interleaved a, b, c, a, b, c…;
   prints requests/s, p50 and p99 for each round with the load average, the medians, the ratio
   a/c (the target: ≥ 0.6, with the ingest p99 ≤ 3 × its p50) and a/b.
4. Checks that every acknowledged post (201) is stored exactly once and prints the count;
   exits non-zero if any is missing, duplicated, a request failed or the target is missed.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from dbhygiene import vacuum_analyze

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
SERVICE = "bench-payments"


# The bare app's table (benchmarks/bare_app.py): a pipeline run's columns and unique key.
BARE_TABLE = """
CREATE TABLE IF NOT EXISTS bench_bare_run (
    id bigserial PRIMARY KEY,
    service_slug varchar(80) NOT NULL,
    provider varchar(32) NOT NULL,
    external_id varchar(200) NOT NULL,
    attempt integer NOT NULL,
    status varchar(16) NOT NULL,
    commit_sha varchar(64) NOT NULL,
    ref varchar(255) NOT NULL,
    version varchar(100) NOT NULL,
    url varchar(500) NOT NULL,
    started_at timestamptz NULL,
    finished_at timestamptz NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    UNIQUE (provider, external_id, attempt)
)
"""


@dataclass
class Round:
    label: str
    seconds: float
    latencies: list[float] = field(default_factory=list)
    acknowledged: list[str] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.seconds

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000


def run_body(kind: str, key: str, n: int) -> bytes:
    digest = f"{abs(hash((kind, key))) & (2**64 - 1):016x}" * 4
    version = f"3.{n // 1000}.{n % 1000}-{key}"
    return json.dumps(
        {
            "service": SERVICE,
            "provider": "github_actions" if kind == "a" else "generic",
            "external_id": f"{kind}-{key}",
            "attempt": 1,
            "status": "succeeded",
            "commit_sha": f"{n:040x}",
            "ref": "refs/heads/main",
            "version": version,
            "url": f"https://ci.example/run/{key}",
            "started_at": "2026-11-20T10:00:00Z",
            "finished_at": "2026-11-20T10:07:12Z",
            "checks": [
                {"kind": "tests", "status": "passed", "passed": 812, "failed": 0, "skipped": 4},
                {"kind": "security_scan", "status": "passed", "critical": 0, "high": 1},
                {"kind": "coverage", "status": "passed", "percent": 87.5},
            ],
            "artefacts": [
                {
                    "name": SERVICE,
                    "version": version,
                    "digest": f"sha256:{digest}",
                    "uri": f"registry.example/{SERVICE}:{version}",
                }
            ],
        }
    ).encode()


def drive(
    *, port: int, path: str, kind: str, token: str, clients: int, seconds: float, tag: str
) -> Round:
    """``clients`` threads, each on one keep-alive connection, posting unique runs."""
    result = Round(label=kind, seconds=seconds)
    lock = threading.Lock()
    start_gate = threading.Barrier(clients + 1)
    stop_at = [0.0]
    headers = {"Content-Type": "application/json", "Connection": "keep-alive"}
    if kind == "a":
        headers["Authorization"] = f"Bearer {token}"

    def client(index: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        latencies, acked, errors = [], [], {}
        n = 0
        start_gate.wait()
        while time.perf_counter() < stop_at[0]:
            n += 1
            key = f"{tag}-{index}-{n}"
            body = run_body(kind, key, index * 1_000_000 + n)
            began = time.perf_counter()
            try:
                conn.request("POST", path, body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                status = response.status
                if response.getheader("Connection", "").lower() == "close":
                    conn.close()
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                continue
            latencies.append(time.perf_counter() - began)
            if status == 201:
                acked.append(f"{kind}-{key}")
            else:
                errors[str(status)] = errors.get(str(status), 0) + 1
        conn.close()
        with lock:
            result.latencies.extend(latencies)
            result.acknowledged.extend(acked)
            for k, v in errors.items():
                result.errors[k] = result.errors.get(k, 0) + v

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    stop_at[0] = time.perf_counter() + seconds + 0.0
    began = time.perf_counter()
    start_gate.wait()
    stop_at[0] = began + seconds
    for t in threads:
        t.join()
    result.seconds = time.perf_counter() - began
    return result


def gunicorn_argv(app: str, port: int, *, workers: int = 2, threads: int = 4) -> list[str]:
    """gunicorn as the benchmarks run it: gthread, keep-alive clients, loopback only."""
    return [
        str(Path(PYTHON).parent / "gunicorn"),
        app,
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--worker-class",
        "gthread",
        "--threads",
        str(threads),
        "--keep-alive",
        "30",
        "--backlog",
        "256",
        "--log-level",
        "warning",
    ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(port: int, timeout: float = 30) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/api/v1/pipeline-runs/")  # a 401 once Django answers
            conn.getresponse().read()
            return
        except OSError:
            time.sleep(0.3)
    raise SystemExit("gunicorn did not answer in time")


def load_average() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def redis_available() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/rg_bench"),
    )
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--round-seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3, help="Rounds per endpoint (a,b,a,b…).")
    parser.add_argument("--warmup-seconds", type=float, default=4.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4, help="gthread threads per worker.")
    parser.add_argument("--no-redis", action="store_true", help="Do not use a local Redis.")
    args = parser.parse_args()

    redis_url = "" if args.no_redis or not redis_available() else "redis://127.0.0.1:6379/14"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "DJANGO_SECRET_KEY": "benchmark-throwaway-" + os.urandom(16).hex(),
        "AUDIT_CHAIN_KEYS": "bench:" + base64.b64encode(os.urandom(32)).decode(),
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "0",
        "DATABASE_URL": args.database_url,
        "RELEASEGATE_BENCHMARK_BASELINE": "1",
        "INGEST_RATE_LIMIT": "100000000",  # measured, but never reached
        "LOG_LEVEL": "WARNING",
        "REDIS_URL": redis_url,
    }
    if not redis_url:
        env.pop("REDIS_URL")
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))

    # --- the database: fresh, migrated, one service and one token ---------------------------
    import psycopg2

    dbname = args.database_url.rsplit("/", 1)[1]
    admin = psycopg2.connect(args.database_url.rsplit("/", 1)[0] + "/postgres")
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        cur.execute(f'CREATE DATABASE "{dbname}"')
    admin.close()
    if redis_url:
        subprocess.run(["redis-cli", "-n", "14", "FLUSHDB"], capture_output=True, check=False)

    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from django.db import connection

    from pipelines.models import PipelineRun
    from pipelines.services import api_token_create
    from releases.models import Service, Team

    team = Team.objects.create(name="Bench", slug="bench")
    Service.objects.create(name=SERVICE, slug=SERVICE, team=team)
    _, token = api_token_create(actor=None, name="bench-ci", service_slugs=[SERVICE])
    connection.close()

    # --- the servers: the app, and the bare app beside it with the same flags -----------------
    def serve(app: str, port: int, extra_env: dict[str, str]) -> subprocess.Popen:
        return subprocess.Popen(
            gunicorn_argv(app, port, workers=args.workers, threads=args.threads),
            cwd=ROOT,
            env={**env, **extra_env},
            start_new_session=True,
        )

    with connection.cursor() as cursor:
        cursor.execute(BARE_TABLE)
    connection.close()
    vacuum_analyze(args.database_url)  # as production's autovacuum would have (dbhygiene.py)
    port, bare_port = free_port(), free_port()
    servers = [
        serve("config.wsgi:application", port, {}),
        serve("bare_app:application", bare_port, {"PYTHONPATH": str(ROOT / "benchmarks")}),
    ]
    targets = {
        "a": (port, "/api/v1/pipeline-runs/"),
        "b": (port, "/api/v1/_benchmark/baseline/"),
        "c": (bare_port, "/runs/"),
    }
    names = {"a": "ingest", "b": "baseline", "c": "bare"}
    try:
        wait_for(port)
        wait_for(bare_port)
        print(
            f"gunicorn {args.workers} workers × {args.threads} threads, {args.clients} keep-alive "
            f"clients, PostgreSQL {dbname}, cache/broker: {redis_url or 'local memory/filesystem'}"
        )
        print(f"load average before: {load_average()}")
        for kind in targets:
            drive(
                port=targets[kind][0],
                path=targets[kind][1],
                kind=kind,
                token=token,
                clients=args.clients,
                seconds=args.warmup_seconds,
                tag=f"warm{kind}",
            )
        rounds: list[Round] = []
        print(
            f"{'round':>5} {'endpoint':<10} {'requests':>9} {'req/s':>8} {'p50 ms':>8} "
            f"{'p99 ms':>8}  {'load avg':<16} errors"
        )
        for i in range(args.rounds):
            for kind in targets:
                r = drive(
                    port=targets[kind][0],
                    path=targets[kind][1],
                    kind=kind,
                    token=token,
                    clients=args.clients,
                    seconds=args.round_seconds,
                    tag=f"r{i}{kind}",
                )
                rounds.append(r)
                print(
                    f"{i + 1:>5} {names[kind]:<10} {len(r.latencies):>9} {r.rps:>8.0f} "
                    f"{r.percentile(50):>8.1f} {r.percentile(99):>8.1f}  {load_average():<16} "
                    f"{r.errors or ''}",
                    flush=True,
                )
    finally:
        for server in servers:
            os.killpg(server.pid, signal.SIGTERM)
        for server in servers:
            server.wait(timeout=30)

    by_kind = {kind: [r for r in rounds if r.label == kind] for kind in targets}
    med = {
        kind: (
            statistics.median(r.rps for r in rs),
            statistics.median(r.percentile(50) for r in rs),
            statistics.median(r.percentile(99) for r in rs),
        )
        for kind, rs in by_kind.items()
    }
    for kind in targets:
        print(
            f"median {names[kind] + ':':<9} {med[kind][0]:>6.0f} req/s, p50 {med[kind][1]:.1f} ms, "
            f"p99 {med[kind][2]:.1f} ms"
        )
    bare_ratio = med["a"][0] / med["c"][0]
    tail = med["a"][2] / med["a"][1]
    print(f"ratio ingest/bare:     {bare_ratio:.2f} (target ≥ 0.6)")
    print(f"ratio ingest/baseline: {med['a'][0] / med['b'][0]:.2f}")
    print(f"ratio baseline/bare:   {med['b'][0] / med['c'][0]:.2f}")
    print(f"ingest p99/p50:        {tail:.2f} (target ≤ 3)")
    print(f"load average after: {load_average()}")

    # --- every acknowledged post is stored exactly once -------------------------------------
    failures = 0
    for kind, rs in by_kind.items():
        acked = [key for r in rs for key in r.acknowledged]
        if kind == "c":
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT external_id FROM bench_bare_run WHERE external_id = ANY(%s)", [acked]
                )
                stored = [row[0] for row in cursor.fetchall()]
        else:
            stored = list(
                PipelineRun.objects.filter(external_id__in=acked).values_list(
                    "external_id", flat=True
                )
            )
        missing = len(set(acked) - set(stored))
        duplicated = len(stored) - len(set(stored))
        errors = sum(sum(r.errors.values()) for r in rs)
        failures += missing + duplicated + errors + (len(acked) - len(set(acked)))
        print(
            f"{names[kind]}: {len(acked)} acknowledged, {len(set(stored))} in the database "
            f"({missing} missing, {duplicated} duplicated, {errors} failed requests)"
        )
    connection.close()
    missed = bare_ratio < 0.6 or tail > 3
    if missed:
        print("target missed")
    return 1 if failures or missed else 0


if __name__ == "__main__":
    sys.exit(main())
