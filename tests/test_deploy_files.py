"""docker-compose.yml and the env example stay consistent with the settings, and the probes
answer as docs/operations.md says.

No Docker engine runs on the CI machines, so this checks the file's structure (the part
`docker compose config` would reject) rather than running it; tests/test_reverse_proxy.py
runs the nginx and gunicorn configurations for real."""

from __future__ import annotations

import re
import runpy
import socket
import time
from pathlib import Path

import yaml
from django.db import OperationalError
from django.db.migrations import Migration
from django.db.migrations.executor import MigrationExecutor

from config import health

ROOT = Path(__file__).resolve().parent.parent


def test_compose_has_every_service_with_health_checks():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "redis", "web", "worker", "beat"} <= set(services)
    for name in ("postgres", "redis", "web", "worker"):
        assert "healthcheck" in services[name], name
    assert services["web"]["command"] == [
        "gunicorn",
        "-c",
        "deploy/gunicorn.conf.py",
        "config.wsgi:application",
    ]
    assert "/healthz/" in " ".join(services["web"]["healthcheck"]["test"])
    for name in ("web", "worker", "beat"):
        env = services[name]["environment"]
        assert env["DJANGO_SETTINGS_MODULE"] == "config.settings.production"
        assert env["DATABASE_URL"].startswith("postgres://")
        assert env["REDIS_URL"].startswith("redis://")


def test_the_proxy_is_the_only_published_service():
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    published = {name for name, service in services.items() if service.get("ports")}
    assert published == {"proxy"}
    proxy, web = services["proxy"], services["web"]
    assert proxy["image"].startswith("nginx")
    assert "./deploy/nginx/releasegate.conf:/etc/nginx/nginx.conf:ro" in proxy["volumes"]
    assert proxy["depends_on"]["web"]["condition"] == "service_healthy"
    assert web["expose"] == ["8000"]


def test_the_nginx_config_guards_gunicorn():
    conf = (ROOT / "deploy" / "nginx" / "releasegate.conf").read_text()
    for directive in (
        "server_tokens off;",
        "client_header_timeout ",
        "client_body_timeout ",
        "send_timeout ",
        "keepalive_timeout ",
        "client_max_body_size 1m;",
        "proxy_request_buffering on;",
        "proxy_read_timeout ",
        "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
        "proxy_set_header X-Forwarded-Proto $scheme;",
        "server web:8000;",
    ):
        assert directive in conf, directive


def test_nginx_accepts_a_little_more_than_the_app(settings):
    """The app's own 413 (JSON, naming the limit) is what CI sees first; nginx's is a backstop."""
    conf = (ROOT / "deploy" / "nginx" / "releasegate.conf").read_text()
    limit = re.search(r"client_max_body_size (\d+)m;", conf)
    assert int(limit.group(1)) * 1024 * 1024 > settings.INGEST_MAX_BODY_BYTES


def test_gunicorn_config_uses_threads_and_reads_the_environment(monkeypatch):
    path = ROOT / "deploy" / "gunicorn.conf.py"
    monkeypatch.setenv("GUNICORN_WORKERS", "3")
    monkeypatch.delenv("GUNICORN_THREADS", raising=False)
    monkeypatch.delenv("GUNICORN_BIND", raising=False)
    conf = runpy.run_path(str(path))
    assert conf["worker_class"] == "gthread"
    assert (conf["workers"], conf["threads"]) == (3, 4)
    assert conf["bind"] == "0.0.0.0:8000"
    assert conf["max_requests"] > 0 and conf["max_requests_jitter"] > 0
    assert conf["graceful_timeout"] > 0 and conf["keepalive"] > 0
    assert conf["timeout"] < 60  # below nginx's proxy_read_timeout


def test_env_example_names_the_required_production_variables():
    text = (ROOT / ".env.example").read_text()
    for name in (
        "DJANGO_SECRET_KEY",
        "ALLOWED_HOSTS",
        "DATABASE_URL",
        "REDIS_URL",
        "AUDIT_CHAIN_KEYS",
    ):
        assert f"{name}=" in text


def test_env_example_and_docs_name_every_gunicorn_knob():
    knobs = set(
        re.findall(r'_env_int\("(\w+)"', (ROOT / "deploy" / "gunicorn.conf.py").read_text())
    )
    assert "GUNICORN_WORKERS" in knobs
    env_example = (ROOT / ".env.example").read_text()
    operations = (ROOT / "docs" / "operations.md").read_text()
    for knob in knobs:
        assert f"# {knob}=" in env_example, knob
        assert knob in operations, knob


def test_healthz_answers_without_touching_the_database(client):
    """Liveness only: no `db` fixture, so any database access here would fail the test."""
    resp = client.get("/healthz/")
    assert resp.status_code == 200 and resp.json() == {"status": "ok"}
    assert "no-cache" in resp["Cache-Control"]


def test_readyz_is_ok_when_every_dependency_answers(client, db):
    resp = client.get("/readyz/")
    body = resp.json()
    assert resp.status_code == 200, body
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "cache", "broker", "migrations"}
    assert body["checks"]["database"]["status"] == "ok"
    assert body["checks"]["migrations"]["status"] == "ok"
    for check in body["checks"].values():
        assert check["status"] in ("ok", "skipped"), body


def _closed_loopback_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_readyz_is_degraded_but_200_when_the_broker_is_down(client, db, settings):
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{_closed_loopback_port()}/0"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {}
    started = time.monotonic()
    resp = client.get("/readyz/")
    assert time.monotonic() - started < 3
    body = resp.json()
    assert resp.status_code == 200, body
    assert body["status"] == "degraded"
    assert body["checks"]["broker"]["status"] == "failed"
    assert body["checks"]["database"]["status"] == "ok"


def test_readyz_is_503_when_a_migration_is_pending(client, db, monkeypatch):
    pending = Migration("0999_not_applied", "releases")
    monkeypatch.setattr(
        MigrationExecutor, "migration_plan", lambda self, targets: [(pending, False)]
    )
    resp = client.get("/readyz/")
    body = resp.json()
    assert resp.status_code == 503
    assert body["status"] == "unavailable"
    assert body["checks"]["migrations"]["status"] == "failed"
    assert body["checks"]["migrations"]["pending"] == ["releases.0999_not_applied"]
    assert body["checks"]["database"]["status"] == "ok"


def test_readyz_is_503_when_the_database_is_down(client, db, monkeypatch):
    def refuse():
        raise OperationalError("connection refused")

    monkeypatch.setattr(health, "_check_database_and_migrations", refuse)
    resp = client.get("/readyz/")
    body = resp.json()
    assert resp.status_code == 503 and body["status"] == "unavailable"
    assert body["checks"]["database"] == {
        "status": "failed",
        "error": "OperationalError",
        "ms": body["checks"]["database"]["ms"],
    }
    assert body["checks"]["migrations"]["status"] == "failed"


def test_a_hung_check_never_hangs_the_probe(client, db, monkeypatch):
    monkeypatch.setattr(health, "CHECK_TIMEOUT_SECONDS", 0.3)
    monkeypatch.setattr(health, "_check_cache", lambda: time.sleep(5))
    started = time.monotonic()
    resp = client.get("/readyz/")
    assert time.monotonic() - started < 2
    body = resp.json()
    assert resp.status_code == 200 and body["status"] == "degraded"
    assert body["checks"]["cache"]["status"] == "failed"
    assert body["checks"]["cache"]["error"] == "timeout"
