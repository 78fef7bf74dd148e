"""Pages benchmark: calendar, board, release page and metrics at 1× and 100× data.

    make bench-pages             # or: .venv/bin/python benchmarks/pages.py --help

What it does:

1. For each scale (default 1 and 100) it prepares a dedicated database, seeded once with
   ``manage.py seed_scale --scale N`` (1× = 100 releases and 10,000 pipeline runs; 100× =
   10,000 releases and 1,000,000 runs) and reused by later runs while the seed parameters
   are unchanged (pending migrations are applied to it first, so new indexes reach it).
   SQLite files under var/bench-pages/ by default; with ``--postgres URL``
   (e.g. postgres://postgres@127.0.0.1:5432/rg_dash) one database per scale
   (``<name>_1x``, ``<name>_100x``) is created on that server.
2. Measures each scale in its own process (``--measure``) with the local settings and
   DEBUG off: Django's test client logged in as a release manager (the heaviest viewer: the
   board computes their "Move to…" menus) requests every page once to count its queries,
   warms up, then times requests of each page in turn. Server time = the whole request
   through middleware, view, selectors and template rendering (no network). The two scales
   are measured in ``--rounds`` alternating rounds (1×, 100×, 1×, 100×…) sharing the
   ``--repeat`` requests, and each page's times are pooled: a change in the machine's load
   during the run then weighs on both sides of the ratio.
3. Prints, for every page, median and p95 in milliseconds and the query count at each
   scale, the ratio 100×/1× of the medians, and checks the targets: identical query
   counts, ratio ≤ 1.5, p95 < 300 ms at 100×. Exits 1 when a target is missed (``--no-fail``
   to only report).

The release page is the same "shape" of release at both scales: the seed's own deployed
release near now (seed v5), on the same service at both scales.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from dbhygiene import vacuum_analyze

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
SEED_VERSION = "5"  # bump when seed_scale changes shape, to reseed the cached databases
TARGET_RATIO = 1.5
TARGET_P95_MS = 300.0


def _env_for(scale: int, args: argparse.Namespace) -> dict[str, str]:
    env = dict(os.environ)
    env["DJANGO_SETTINGS_MODULE"] = "config.settings.local"
    env["DJANGO_DEBUG"] = "0"
    env["CELERY_TASK_ALWAYS_EAGER"] = "1"
    var = Path(args.data_dir) / f"{scale}x"
    var.mkdir(parents=True, exist_ok=True)
    env["RELEASEGATE_VAR_DIR"] = str(var)
    if args.postgres:
        base, _, name = args.postgres.rpartition("/")
        env["DATABASE_URL"] = f"{base}/{name or 'rg_bench_pages'}_{scale}x"
    else:
        env.pop("DATABASE_URL", None)
    return env


def _prepare(scale: int, args: argparse.Namespace) -> None:
    env = _env_for(scale, args)
    marker = Path(env["RELEASEGATE_VAR_DIR"]) / (
        "seeded-" + ("pg" if args.postgres else "sqlite") + f"-v{SEED_VERSION}"
    )
    if marker.exists() and not args.reseed:
        # Seeded before: only bring the schema up to date (new indexes reach the cached
        # databases; a no-op when there is nothing to apply).
        subprocess.run([PYTHON, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
        _analyze(env)
        return
    if args.postgres:
        _recreate_postgres(env["DATABASE_URL"])
    else:
        for leftover in Path(env["RELEASEGATE_VAR_DIR"]).glob("releasegate.sqlite3*"):
            leftover.unlink()
    print(f"Seeding {scale}× data (once; cached in {env['RELEASEGATE_VAR_DIR']})…", flush=True)
    subprocess.run([PYTHON, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    subprocess.run(
        [PYTHON, "manage.py", "seed_scale", "--scale", str(scale)], cwd=ROOT, env=env, check=True
    )
    marker.touch()
    _analyze(env)


def _analyze(env: dict) -> None:
    sqlite = str(Path(env["RELEASEGATE_VAR_DIR"]) / "releasegate.sqlite3")
    took = vacuum_analyze(env.get("DATABASE_URL"), sqlite_path=sqlite)
    print(f"VACUUM ANALYZE / ANALYZE after seeding: {took:.1f} s", flush=True)


def _recreate_postgres(url: str) -> None:
    import psycopg2

    base, _, name = url.rpartition("/")
    conn = psycopg2.connect(f"{base}/postgres")
    conn.autocommit = True
    with conn.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
        cursor.execute(f'CREATE DATABASE "{name}"')
    conn.close()


def _summarise(run: dict) -> dict:
    """Median and p95 of each page's pooled request times."""
    for data in run["pages"].values():
        times = sorted(data.pop("times"))
        data["median_ms"] = statistics.median(times)
        data["p95_ms"] = times[max(0, int(round(0.95 * len(times))) - 1)]
    return run


def _run_scales(small: int, large: int, args: argparse.Namespace) -> dict[int, dict]:
    """Measure both scales in alternating rounds and pool each page's times, so a change
    in the machine's load during the run (a shared box) weighs on both sides of the ratio
    instead of on whichever scale happened to run second."""
    rounds = max(1, args.rounds)
    per_round = max(1, -(-args.repeat // rounds))  # ceil
    runs: dict[int, dict] = {}
    for _ in range(rounds):
        for scale in (small, large):
            result = _run_scale(scale, args, per_round)
            if scale not in runs:
                runs[scale] = result
                continue
            for name, data in result["pages"].items():
                runs[scale]["pages"][name]["times"] += data["times"]
    return {scale: _summarise(run) for scale, run in runs.items()}


def _run_scale(scale: int, args: argparse.Namespace, repeat: int) -> dict:
    env = _env_for(scale, args)
    out = subprocess.run(
        [PYTHON, __file__, "--measure", "--repeat", str(repeat)],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- inside one scale's process ----------------------------------------------------------------


def measure(repeat: int) -> dict:
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from releases.models import Release

    user = get_user_model().objects.get(username="scale-rm-payments")
    client = Client()
    client.force_login(user)
    now = timezone.now()
    # The seed's own deployed release near now (seed v5 writes one per live state first, on
    # the same service at every scale): the same shape of release, and the same viewer's
    # rights over it, at both scales.
    release = Release.objects.filter(state="deployed", window_start__lte=now).order_by("pk").first()
    pages = {
        "calendar (month)": "/dashboards/calendar/",
        "calendar (week)": "/dashboards/calendar/?view=week",
        "calendar (list)": "/dashboards/calendar/?view=list",
        "board": "/dashboards/board/",
        "release page": f"/releases/{release.pk}/" if release else "/",
        "metrics (90 days)": "/dashboards/metrics/",
    }
    result: dict[str, dict] = {}
    for name, url in pages.items():
        for _ in range(3):  # warm-up: caches, and a metrics-facts refresh if they are stale
            response = client.get(url)
            if response.status_code != 200:
                raise SystemExit(f"{url} answered {response.status_code}")
        with CaptureQueriesContext(connection) as ctx:
            client.get(url)
        result[name] = {"url": url, "queries": len(ctx.captured_queries), "times": []}
    for _ in range(repeat):
        for name, url in pages.items():
            started = time.perf_counter()
            client.get(url)
            result[name]["times"].append((time.perf_counter() - started) * 1000)
    return {
        "vendor": connection.vendor,
        "releases": Release.objects.count(),
        "pages": result,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--scales", type=int, nargs=2, default=[1, 100], metavar=("SMALL", "LARGE"))
    parser.add_argument("--repeat", type=int, default=30, help="Timed requests per page.")
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="Alternate the two scales this many times (the repeats are split between them).",
    )
    parser.add_argument("--postgres", help="PostgreSQL server URL; database name is a prefix.")
    parser.add_argument("--reseed", action="store_true", help="Seed again even if cached.")
    parser.add_argument(
        "--data-dir",
        default=str(ROOT / "var" / "bench-pages"),
        help="Where the seeded SQLite databases are kept (one folder per scale).",
    )
    parser.add_argument("--no-fail", action="store_true", help="Report only; exit 0.")
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.repeat)))
        return 0
    small, large = args.scales
    for scale in (small, large):
        _prepare(scale, args)
    runs = _run_scales(small, large, args)
    a, b = runs[small], runs[large]
    print(
        f"\nPages benchmark — {a['vendor']}, {a['releases']} vs {b['releases']} releases, "
        f"{args.repeat} timed requests per page in {args.rounds} alternating rounds\n"
    )
    header = (
        f"{'page':<20} {'1× med':>8} {'1× p95':>8} {'q':>4}   "
        f"{'100× med':>9} {'100× p95':>9} {'q':>4}   {'ratio':>6}  verdict"
    )
    print(header.replace("1×", f"{small}×").replace("100×", f"{large}×"))
    print("-" * len(header))
    failed = False
    for name, pa in a["pages"].items():
        pb = b["pages"][name]
        ratio = pb["median_ms"] / pa["median_ms"] if pa["median_ms"] else float("inf")
        problems = []
        if pa["queries"] != pb["queries"]:
            problems.append("queries differ")
        if ratio > TARGET_RATIO:
            problems.append(f"ratio > {TARGET_RATIO}")
        if pb["p95_ms"] >= TARGET_P95_MS:
            problems.append(f"p95 ≥ {TARGET_P95_MS:.0f} ms")
        failed |= bool(problems)
        print(
            f"{name:<20} {pa['median_ms']:>8.1f} {pa['p95_ms']:>8.1f} {pa['queries']:>4}   "
            f"{pb['median_ms']:>9.1f} {pb['p95_ms']:>9.1f} {pb['queries']:>4}   {ratio:>6.2f}  "
            + ("ok" if not problems else "MISSED: " + ", ".join(problems))
        )
    print(
        f"\nTargets: identical query counts, median ratio ≤ {TARGET_RATIO}, "
        f"p95 < {TARGET_P95_MS:.0f} ms at {large}×."
    )
    return 1 if failed and not args.no_fail else 0


if __name__ == "__main__":
    sys.exit(main())
