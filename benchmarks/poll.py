#!/usr/bin/env python
"""Benchmark of the polling sweep: N stub integrations answering in 50–500 ms with 5 % errors.

Runs the real sweep (claims, concurrent fetch with per-host limits, retries, upserts through
pipeline_run_upsert, health) against local threaded stub servers on loopback that answer
GitHub's list-workflow-runs shape, on a throw-away SQLite database (or --database-url).

Prints the sweep time against the ideal (the total server latency of every attempt divided
by the concurrency used) and the retry share (retries / requests). Targets: sweep ≤ 2× ideal,
retries ≤ 10 % of requests. Exit status 1 when a target is missed.

    .venv/bin/python benchmarks/poll.py [--integrations 500] [--hosts 10] [--concurrency 50]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


class Stub:
    """One provider host: every path answers after 50–500 ms; 5 % of attempts get a 500."""

    def __init__(self, seed: int, error_rate: float, lo: float, hi: float):
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.latency = 0.0
        self.attempts = 0
        self.errors = 0
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's API
                with stub.lock:
                    delay = stub.rng.uniform(lo, hi)
                    failed = stub.rng.random() < error_rate
                    stub.latency += delay
                    stub.attempts += 1
                    stub.errors += failed
                time.sleep(delay)
                repo = self.path.split("/")[3] if self.path.count("/") > 3 else "r"
                if failed:
                    body, status = b'{"message": "Server Error"}', 500
                else:
                    body, status = json.dumps(_page(repo)).encode(), 200
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        ThreadingHTTPServer.request_queue_size = 256
        ThreadingHTTPServer.daemon_threads = True
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _page(repo: str) -> dict:
    run_id = abs(hash(repo)) % 10**9
    return {
        "total_count": 1,
        "workflow_runs": [
            {
                "id": run_id,
                "name": "Build",
                "head_branch": "main",
                "head_sha": "3f1c0d9e8b7a6f5e4d3c2b1a09f8e7d6c5b4a392",
                "status": "completed",
                "conclusion": "success",
                "run_attempt": 1,
                "html_url": f"https://github.com/bench/{repo}/actions/runs/{run_id}",
                "created_at": "2026-11-20T10:00:00Z",
                "updated_at": "2026-11-20T10:07:12Z",
                "run_started_at": "2026-11-20T10:00:00Z",
                "repository": {"full_name": f"bench/{repo}"},
            }
        ],
    }


def _django(database_url: str | None, var_dir: str) -> None:
    sys.path.insert(0, str(BASE_DIR))
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.test"
    os.environ["RELEASEGATE_VAR_DIR"] = var_dir
    os.environ.pop("REDIS_URL", None)
    os.environ.pop("CELERY_BROKER_URL", None)
    if database_url:
        os.environ["DATABASE_URL"] = database_url
    else:
        os.environ.pop("DATABASE_URL", None)
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    for key in ("data_folder_in", "processed_folder"):
        folder = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get(key)
        if folder:
            Path(folder).mkdir(parents=True, exist_ok=True)
    call_command("migrate", verbosity=0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--integrations", type=int, default=500)
    parser.add_argument("--hosts", type=int, default=10, help="stub provider hosts (ports)")
    parser.add_argument("--concurrency", type=int, default=50, help="sweep threads")
    parser.add_argument("--per-host", type=int, default=8, help="requests at once per host")
    parser.add_argument("--error-rate", type=float, default=0.05)
    parser.add_argument("--database-url", default=None, help="default: a temporary SQLite")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    with tempfile.TemporaryDirectory(prefix="rg-bench-poll-") as var_dir:
        _django(args.database_url, var_dir)
        logging.getLogger("httpx").setLevel(logging.WARNING)
        from django.utils import timezone

        from pipelines.models import Integration, IntegrationPollState, PipelineRun
        from pipelines.polling.sweep import poll_due
        from releases.models import Service, Team

        stubs = [Stub(args.seed + i, args.error_rate, 0.05, 0.5) for i in range(args.hosts)]
        team, _ = Team.objects.get_or_create(slug="bench", defaults={"name": "Bench"})
        service, _ = Service.objects.get_or_create(
            slug="bench-api", defaults={"name": "bench-api", "team": team}
        )
        past = timezone.now() - timezone.timedelta(seconds=1)
        for n in range(args.integrations):
            integration = Integration.objects.create(provider="github", name=f"bench-{n}")
            IntegrationPollState.objects.create(
                integration=integration,
                service=service,
                base_url=f"http://127.0.0.1:{stubs[n % args.hosts].port}",
                target=f"bench/r{n}",
                next_poll_at=past,
            )

        from pipelines.polling import sweep

        recording = [0.0]
        record = sweep.record_outcome

        def timed_record(state, outcome):
            t = time.monotonic()
            record(state, outcome)
            recording[0] += time.monotonic() - t

        sweep.record_outcome = timed_record
        used = min(args.concurrency, args.integrations, args.hosts * args.per_host)
        print(
            f"{args.integrations} integrations on {args.hosts} stub hosts; concurrency used {used}"
        )
        print(f"(threads {args.concurrency}, per host {args.per_host}); ideal = latency / {used}")
        ok = True
        for label in ("first sweep (creates every run)", "second sweep (runs unchanged)"):
            IntegrationPollState.objects.update(next_poll_at=past)
            latency_before = sum(s.latency for s in stubs)
            recording[0] = 0.0
            started = time.monotonic()
            outcomes = poll_due(workers=args.concurrency, per_host=args.per_host)
            elapsed = time.monotonic() - started
            requests = sum(o.stats.requests for o in outcomes)
            attempts = sum(o.stats.attempts for o in outcomes)
            failed = sum(o.error is not None for o in outcomes)
            latency = sum(s.latency for s in stubs) - latency_before
            ideal = latency / used
            retry_share = (attempts - requests) / requests if requests else 0.0
            ratio = elapsed / ideal if ideal else float("inf")
            print(f"\n{label}")
            print(f"  integrations polled   {len(outcomes)} ({failed} failed after 3 attempts)")
            print(f"  requests / attempts   {requests} / {attempts}")
            print(f"  server latency (sum)  {latency:.1f} s")
            print(f"  ideal sweep           {ideal:.2f} s")
            print(f"  sweep                 {elapsed:.2f} s  ({ratio:.2f}× ideal; target ≤ 2×)")
            print(f"  database writes       {recording[0]:.2f} s on the sweep thread (overlapping)")
            print(f"  retry share           {retry_share:.1%}  (target ≤ 10%)")
            ok = ok and ratio <= 2.0 and retry_share <= 0.10
        print(f"\nruns recorded           {PipelineRun.objects.count()}")
        for stub in stubs:
            stub.close()
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
