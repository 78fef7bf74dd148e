"""`make run` starts quietly: URL and logins last, e-mails to files, links follow PORT."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR / "scripts"))

import run_all  # noqa: E402


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _embedded_env(var_dir: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "SITE_URL")
    }
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.local",
        RELEASEGATE_VAR_DIR=str(var_dir),
        PYTHONUNBUFFERED="1",
    )
    return env


def test_site_url_follows_host_and_port():
    assert run_all.site_url("127.0.0.1", 8123) == "http://127.0.0.1:8123"
    assert run_all.site_url("0.0.0.0", 8080) == "http://localhost:8080"


def test_local_settings_keep_demo_mail_off_the_terminal(tmp_path):
    code = (
        "from django.conf import settings; "
        "print(settings.EMAIL_BACKEND); print(settings.EMAIL_FILE_PATH)"
    )
    out = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        cwd=BASE_DIR,
        env=_embedded_env(tmp_path),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert out[0] == "django.core.mail.backends.filebased.EmailBackend"
    assert out[1] == str(tmp_path / "mail")


def test_a_busy_port_is_refused_with_a_clear_message(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "scripts/run_all.py", "--port", str(port)],
            cwd=BASE_DIR,
            env=_embedded_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert f"127.0.0.1:{port} is already in use" in result.stdout


def test_the_url_and_logins_come_last(tmp_path):
    env = _embedded_env(tmp_path)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v0"], cwd=BASE_DIR, env=env, check=True
    )
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "scripts/run_all.py", "--port", str(port)],
        cwd=BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line.rstrip("\n"))
            if line.startswith("Press Ctrl-C"):
                break
        # Anything the worker or beat would print at start-up has had time to appear by now.
        time.sleep(3)
    finally:
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=30)
    output = "\n".join(lines)
    assert f"Releasegate is running on http://127.0.0.1:{port}/" in output
    assert "rita" in output and "var/mail/" in output
    before_stop = rest.split("[run_all] received signal")[0]
    assert before_stop.strip() == "", f"printed after the banner: {before_stop!r}"
    banner_at = output.index("Releasegate is running")
    assert "[run_all] started beat" in output[:banner_at]
