"""Capacity: what one web replica and one Celery worker hold on this machine, and how replicas
add up (docs/operations.md, "Capacity").

    make bench-scale             # or: .venv/bin/python benchmarks/scale.py --help

All on loopback and bounded in time, in the shape of the scale-out fault test
(tests/faults/test_scale_out.py), without the faults:

1. (Re)creates a dedicated PostgreSQL database (default ``rg_scale_bench``), migrates it with
   the production settings, creates a service, an API token and a user whose notifications go
   to a local HTTP sink. Starts its own redis-server (cache, rate-limit counters, broker).
2. Web: nginx (the deploy config, upstream swapped) in front of one gunicorn replica
   (``--web-workers`` × ``--threads``), then two; ``--clients`` threads post unique runs, a
   new connection per request like CI jobs, for ``--seconds`` after a warm-up. Prints the
   acknowledged runs per second and the 1-minute load average.
3. Workers (``--pool=solo``, as deployed): ``--tasks`` notification deliveries to the sink and
   as many gate evaluations of a posted run are queued, and the time one worker, then two,
   takes to drain them gives tasks per second (with the load average).

The machine may be shared: the load average printed beside each figure says how busy it was.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from tempfile import TemporaryDirectory

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
SERVICE = "bench-scale"
PROXY_PORT, REDIS_PORT, WEB_PORTS, SINK_PORT = 8160, 8161, (8162, 8163), 8164
HARD_LIMIT = 900  # seconds any process started here may live


class Sink(BaseHTTPRequestHandler):
    received = 0
    lock = threading.Lock()

    def do_POST(self):  # noqa: N802 - http.server's name
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with self.lock:
            Sink.received += 1
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


def start(argv: list[str], log: Path, env: dict | None = None) -> subprocess.Popen:
    with log.open("ab") as out:
        return subprocess.Popen(
            ["timeout", "-s", "KILL", str(HARD_LIMIT), *argv],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def wait_http(port: int, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        with contextlib.suppress(OSError, http.client.HTTPException):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz/", headers={"Host": "127.0.0.1"})
            if conn.getresponse().status == 200:
                return
        time.sleep(0.3)
    raise SystemExit(f"nothing answers on 127.0.0.1:{port}")


def nginx_conf(tmp: Path, ports: list[int]) -> str:
    text = (ROOT / "deploy" / "nginx" / "releasegate.conf").read_text()
    upstream = "\n        ".join(f"server 127.0.0.1:{p};" for p in ports)
    temp = "".join(
        f"    {k}_temp_path {tmp / k};\n"
        for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    for old, new in (
        ("user nginx;", ""),
        ("worker_processes auto;", "worker_processes 1;"),
        ("pid /var/run/nginx.pid;", f"pid {tmp / 'nginx.pid'};"),
        ("error_log /dev/stderr warn;", f"error_log {tmp / 'nginx-error.log'} warn;"),
        ("access_log /dev/stdout;\n", f"access_log off;\n{temp}"),
        ("server web:8000;", upstream),
        ("listen 80;", f"listen 127.0.0.1:{PROXY_PORT};"),
    ):
        if text.count(old) != 1:
            raise SystemExit(f"{old!r} is no longer in deploy/nginx/releasegate.conf")
        text = text.replace(old, new)
    return text


def drive(token: str, clients: int, seconds: float, tag: str) -> tuple[int, int]:
    """(acknowledged, failed) posts of ``clients`` threads during ``seconds``."""
    counts = {"ok": 0, "failed": 0}
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def client(index: int) -> None:
        n = 0
        while time.monotonic() < stop_at:
            n += 1
            body = json.dumps(
                {
                    "service": SERVICE,
                    "provider": "github_actions",
                    "external_id": f"{tag}-{index}-{n}",
                    "status": "succeeded",
                    "commit_sha": f"{index:02x}{n:038x}",
                    "version": f"1.{index}.{n}-{tag}",
                    "started_at": "2026-11-20T10:00:00Z",
                    "finished_at": "2026-11-20T10:07:12Z",
                    "checks": [{"kind": "tests", "status": "passed", "passed": 10, "failed": 0}],
                }
            )
            ok = False
            with contextlib.suppress(OSError, http.client.HTTPException):
                conn = http.client.HTTPConnection("127.0.0.1", PROXY_PORT, timeout=30)
                conn.request(
                    "POST",
                    "/api/v1/pipeline-runs/",
                    body=body,
                    headers={
                        "Authorization": f"Bearer {token}",
                        "Content-Type": "application/json",
                        "Host": "127.0.0.1",
                    },
                )
                response = conn.getresponse()
                response.read()
                ok = response.status == 201
                conn.close()
            with lock:
                counts["ok" if ok else "failed"] += 1

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return counts["ok"], counts["failed"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/rg_scale_bench"
        ),
    )
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup-seconds", type=float, default=3.0)
    parser.add_argument("--web-workers", type=int, default=1, help="gunicorn workers a replica")
    parser.add_argument("--threads", type=int, default=4, help="gthread threads per worker")
    parser.add_argument("--tasks", type=int, default=300, help="tasks of each kind per round")
    args = parser.parse_args()

    broker = f"redis://127.0.0.1:{REDIS_PORT}/0"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "DJANGO_SECRET_KEY": "benchmark-throwaway-" + os.urandom(16).hex(),
        "AUDIT_CHAIN_KEYS": "bench:" + base64.b64encode(os.urandom(32)).decode(),
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "0",
        "DATABASE_URL": args.database_url,
        "INGEST_RATE_LIMIT": "100000000",
        "OUTBOUND_ALLOW_PRIVATE": "1",  # the notification sink is on loopback
        "LOG_LEVEL": "WARNING",
        "REDIS_URL": broker,
        "CELERY_BROKER_URL": broker,
        "GUNICORN_WORKERS": str(args.web_workers),
        "GUNICORN_THREADS": str(args.threads),
        "PYTHONUNBUFFERED": "1",
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

    sink = ThreadingHTTPServer(("127.0.0.1", SINK_PORT), Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    procs: list[subprocess.Popen] = []
    rows: list[tuple[str, str, float]] = []
    with TemporaryDirectory(prefix="rg-scale-") as tmp_name:
        tmp = Path(tmp_name)
        try:
            redis_argv = ["redis-server", "--port", str(REDIS_PORT), "--bind", "127.0.0.1"]
            redis_argv += ["--save", "", "--appendonly", "no", "--dir", str(tmp)]
            procs.append(start(redis_argv, tmp / "redis.log"))

            import django

            django.setup()
            from django.core.management import call_command
            from django.db import connection, transaction

            call_command("migrate", verbosity=0)
            from django.contrib.auth import get_user_model
            from django_celery_beat.models import PeriodicTask

            from core.models import Notification, NotificationPreference
            from core.notifications import notification_enqueue
            from pipelines.models import PipelineRun
            from pipelines.services import api_token_create
            from pipelines.tasks import evaluate_gates_for_runs
            from releases.models import Service, Team

            PeriodicTask.objects.update(enabled=False)  # no beat here, but say so
            team = Team.objects.create(name="Bench", slug="bench")
            Service.objects.create(name=SERVICE, slug=SERVICE, team=team)
            _, token = api_token_create(actor=None, name="bench-ci", service_slugs=[SERVICE])
            user = get_user_model().objects.create_user("bench-oncall", "oncall@example.com")
            NotificationPreference.objects.create(
                user=user,
                channels={"deployment_failed": ["slack"]},
                slack_webhook_url=f"http://127.0.0.1:{SINK_PORT}/hook",
            )
            connection.close()

            # --- web: one replica, then two -----------------------------------------------------
            gunicorn = [PYTHON, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py"]
            gunicorn += ["config.wsgi:application"]
            webs = []
            for replicas in (1, 2):
                n = replicas - 1
                web_env = {**env, "GUNICORN_BIND": f"127.0.0.1:{WEB_PORTS[n]}"}
                webs.append(start(gunicorn, tmp / f"web{n}.log", web_env))
                procs.append(webs[-1])
                wait_http(WEB_PORTS[n])
                conf = tmp / f"nginx{replicas}.conf"
                conf.write_text(nginx_conf(tmp, list(WEB_PORTS[:replicas])))
                nginx = start(
                    ["nginx", "-p", str(tmp), "-c", str(conf), "-g", "daemon off;"],
                    tmp / "nginx.log",
                )
                procs.append(nginx)
                wait_http(PROXY_PORT)
                drive(token, args.clients, args.warmup_seconds, f"warm{replicas}")
                ok, failed = drive(token, args.clients, args.seconds, f"web{replicas}")
                load = os.getloadavg()[0]
                rows.append(
                    (
                        f"web, {replicas} replica{'s' if replicas > 1 else ''}",
                        f"{ok / args.seconds:.1f} runs/s acknowledged ({failed} failed)",
                        load,
                    )
                )
                print(rows[-1], flush=True)
                stop(nginx)
            for web in webs:
                stop(web)

            # --- workers: one, then two -------------------------------------------------------
            # What the web rounds queued for gate evaluation would run first: drop it.
            subprocess.run(["redis-cli", "-p", str(REDIS_PORT), "FLUSHALL"], check=True)
            run_ids = list(PipelineRun.objects.values_list("pk", flat=True)[: args.tasks * 2])
            worker = [PYTHON, "-m", "celery", "-A", "config", "worker", "--pool=solo"]
            worker += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
            worker += ["--loglevel=WARNING"]
            workers = []
            for count in (1, 2):
                n = count - 1
                workers.append(start([*worker, "-n", f"bench{n}@%h"], tmp / f"w{n}.log", env))
                procs.append(workers[-1])
                time.sleep(6)  # start-up, outside the measurement
                before = Sink.received
                began = time.monotonic()
                with transaction.atomic():
                    notification_enqueue(
                        event="deployment_failed",
                        recipients=[user],
                        subject="bench",
                        idempotency_key=f"bench-{count}",
                    )
                for i in range(args.tasks - 1):
                    with transaction.atomic():
                        notification_enqueue(
                            event="deployment_failed",
                            recipients=[user],
                            subject="bench",
                            idempotency_key=f"bench-{count}-{i}",
                        )
                deadline = time.monotonic() + 600
                while Sink.received - before < args.tasks and time.monotonic() < deadline:
                    time.sleep(0.1)
                spent = time.monotonic() - began
                rows.append(
                    (
                        f"worker, {count}: notifications",
                        f"{(Sink.received - before) / spent:.1f} deliveries/s",
                        os.getloadavg()[0],
                    )
                )
                print(rows[-1], flush=True)
                batch = run_ids[n * args.tasks : (n + 1) * args.tasks]
                PipelineRun.objects.filter(pk__in=batch).update(gates_pending=True)
                began = time.monotonic()
                for run_id in batch:
                    evaluate_gates_for_runs.delay([run_id])
                while (
                    PipelineRun.objects.filter(pk__in=batch, gates_pending=True).exists()
                    and time.monotonic() < deadline
                ):
                    time.sleep(0.1)
                spent = time.monotonic() - began
                rows.append(
                    (
                        f"worker, {count}: gate evaluations",
                        f"{len(batch) / spent:.1f} runs/s (one task each)",
                        os.getloadavg()[0],
                    )
                )
                print(rows[-1], flush=True)
            delivered = Notification.objects.filter(status="delivered").count()
            print(f"notifications delivered: {delivered}, sink received: {Sink.received}")
        finally:
            for proc in reversed(procs):
                stop(proc)
            sink.shutdown()
    print(f"\n{os.cpu_count()} CPUs; the machine may be shared: see the load averages.")
    print(f"{'what':<36} {'figure':<44} load avg (1 min)")
    for what, figure, load in rows:
        print(f"{what:<36} {figure:<44} {load:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
