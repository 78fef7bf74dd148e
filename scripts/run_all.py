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
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
GRACE_SECONDS = 10
SETTLE_SECONDS = 4


def _commands(host: str, port: int, web: str, log_level: str = "warning") -> dict[str, list[str]]:
    python = sys.executable
    quiet = [] if log_level == "info" else ["--quiet"]  # no start-up banners after ours
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
        "worker": [
            python,
            "-m",
            "celery",
            "-A",
            "config",
            *quiet,
            "worker",
            "-l",
            log_level,
            "--pool=solo",
        ],
        "beat": [python, "-m", "celery", "-A", "config", *quiet, "beat", "-l", log_level],
    }


def _prepare_broker_folders() -> None:
    """kombu's filesystem transport lists its folders but never creates them."""
    from django.conf import settings

    options = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {}) or {}
    for key in ("data_folder_in", "data_folder_out", "processed_folder"):
        if options.get(key):
            Path(options[key]).mkdir(parents=True, exist_ok=True)


def site_url(host: str, port: int) -> str:
    """The address links in e-mails and feeds should use: the one the server listens on."""
    shown = "localhost" if host in ("0.0.0.0", "::", "") else host
    return f"http://{shown}:{port}"


def port_is_free(host: str, port: int) -> bool:
    """True when nothing listens on host:port (an old server would answer our readiness poll)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def wait_until_serving(url: str, timeout: float = 60.0) -> bool:
    """Poll the liveness probe until the web server answers, so the banner comes last."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/healthz/", timeout=2) as response:
                if response.status == 200:
                    return True
        except (OSError, ValueError):
            pass
        time.sleep(0.3)
    return False


def _banner(host: str, port: int) -> str:
    url = site_url(host, port)
    lines = ["", f"Releasegate is running on {url}/", ""]
    try:
        from demo.users import demo_logins

        lines.append(demo_logins())
    except Exception as error:  # the banner must never stop the servers from starting
        lines.append(f"(could not list the demo logins: {error})")
    lines += [
        "",
        "Demo e-mails are written to var/mail/ (and listed in each user's in-app notifications).",
        "Press Ctrl-C to stop the web server, the worker and beat (--verbose shows their logs).",
        "",
    ]
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
    parser.add_argument("--verbose", action="store_true", help="worker and beat log at INFO level")
    args = parser.parse_args(argv)

    os.chdir(BASE_DIR)
    sys.path.insert(0, str(BASE_DIR))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    # Links in the demo's e-mails point at this server, whatever HOST and PORT say.
    os.environ.setdefault("SITE_URL", site_url(args.host, args.port))
    import django

    django.setup()
    _prepare_broker_folders()
    if not port_is_free(args.host, args.port):
        print(
            f"[run_all] {args.host}:{args.port} is already in use; "
            "stop the other server or set PORT."
        )
        return 1

    stopping = {"signal": None}

    def on_signal(signum, _frame):
        stopping["signal"] = signum

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    children: dict[str, subprocess.Popen] = {}
    log_level = "info" if args.verbose else "warning"
    child_env = dict(os.environ)
    if not args.verbose:
        # Celery warns when a developer's container runs it as root; the demo does not need to.
        child_env.setdefault(
            "PYTHONWARNINGS", "ignore:You're running the worker with superuser privileges"
        )
    for name, cmd in _commands(args.host, args.port, args.web, log_level).items():
        # Own process group: a terminal's Ctrl-C reaches only us, and we stop the children
        # in order, instead of all of them racing to exit at once.
        children[name] = subprocess.Popen(cmd, cwd=BASE_DIR, start_new_session=True, env=child_env)
        print(f"[run_all] started {name} (pid {children[name].pid}): {' '.join(cmd)}", flush=True)

    # The URL and the logins come last, once the server answers and the worker and beat have
    # said what they say at start-up, not buried under it.
    started = time.monotonic()
    if wait_until_serving(site_url(args.host, args.port)):
        time.sleep(max(0.0, SETTLE_SECONDS - (time.monotonic() - started)))
        print(_banner(args.host, args.port), flush=True)
    else:
        print(
            "[run_all] the web server did not answer within 60 s; see its output above.", flush=True
        )

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
