#!/usr/bin/env python
"""Run the whole embedded Releasegate: web server, Celery worker and Celery beat.

Used by ``make run``. The three processes share the SQLite database and kombu's filesystem
broker under var/, so nothing else (Postgres, Redis) is needed; with DATABASE_URL /
REDIS_URL set they use those instead. The script prints the URL and the demo logins,
forwards Ctrl-C / SIGTERM to every child, and stops everything as soon as one child exits
(a half-running system — say, a web server without its worker — is worse than none).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
GRACE_SECONDS = 10


def _commands(host: str, port: int, web: str) -> dict[str, list[str]]:
    python = sys.executable
    if web == "gunicorn":
        web_cmd = [
            python,
            "-m",
            "gunicorn",
            "config.wsgi:application",
            "--bind",
            f"{host}:{port}",
            "--workers",
            "2",
            "--access-logfile",
            "-",
        ]
    else:
        web_cmd = [python, "manage.py", "runserver", f"{host}:{port}", "--noreload"]
    return {
        "web": web_cmd,
        # solo pool: one process, no forking; enough for the demo and friendly to SQLite.
        "worker": [python, "-m", "celery", "-A", "config", "worker", "-l", "info", "--pool=solo"],
        "beat": [python, "-m", "celery", "-A", "config", "beat", "-l", "info"],
    }


def _prepare_broker_folders() -> None:
    """kombu's filesystem transport lists its folders but never creates them."""
    from django.conf import settings

    options = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {}) or {}
    for key in ("data_folder_in", "data_folder_out", "processed_folder"):
        if options.get(key):
            Path(options[key]).mkdir(parents=True, exist_ok=True)


def _banner(host: str, port: int) -> str:
    lines = ["", f"Releasegate is starting on http://{host}:{port}/", ""]
    try:
        from demo.users import demo_logins

        lines.append(demo_logins())
    except Exception as error:  # the banner must never stop the servers from starting
        lines.append(f"(could not list the demo logins: {error})")
    lines += ["", "Press Ctrl-C to stop the web server, the worker and beat.", ""]
    return "\n".join(lines)


def _stop(children: dict[str, subprocess.Popen], sig: int = signal.SIGTERM) -> None:
    for proc in children.values():
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(sig)
    deadline = time.monotonic() + GRACE_SECONDS
    for proc in children.values():
        remaining = max(0.0, deadline - time.monotonic())
        try:
            proc.wait(timeout=remaining)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parser.add_argument("--web", choices=["runserver", "gunicorn"], default="runserver")
    args = parser.parse_args(argv)

    os.chdir(BASE_DIR)
    sys.path.insert(0, str(BASE_DIR))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    import django

    django.setup()
    _prepare_broker_folders()
    print(_banner(args.host, args.port), flush=True)

    stopping = {"signal": None}

    def on_signal(signum, _frame):
        stopping["signal"] = signum

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    children: dict[str, subprocess.Popen] = {}
    for name, cmd in _commands(args.host, args.port, args.web).items():
        # Own process group: a terminal's Ctrl-C reaches only us, and we stop the children
        # in order, instead of all of them racing to exit at once.
        children[name] = subprocess.Popen(cmd, cwd=BASE_DIR, start_new_session=True)
        print(f"[run_all] started {name} (pid {children[name].pid}): {' '.join(cmd)}", flush=True)

    exit_code = 0
    while True:
        if stopping["signal"] is not None:
            print(f"[run_all] received signal {stopping['signal']}, stopping…", flush=True)
            break
        dead = [(name, proc) for name, proc in children.items() if proc.poll() is not None]
        if dead:
            name, proc = dead[0]
            print(f"[run_all] {name} exited with code {proc.returncode}; stopping all.", flush=True)
            exit_code = proc.returncode or 1
            break
        time.sleep(0.5)

    _stop(children)
    print("[run_all] stopped.", flush=True)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
