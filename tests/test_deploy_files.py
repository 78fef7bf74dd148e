"""docker-compose.yml and the env example stay consistent with the settings.

No Docker engine runs on the CI machines, so this checks the file's structure (the part
`docker compose config` would reject) rather than running it."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def test_compose_has_every_service_with_health_checks():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "redis", "web", "worker", "beat"} <= set(services)
    for name in ("postgres", "redis", "web", "worker"):
        assert "healthcheck" in services[name], name
    assert "gunicorn" in " ".join(services["web"]["command"])
    for name in ("web", "worker", "beat"):
        env = services[name]["environment"]
        assert env["DJANGO_SETTINGS_MODULE"] == "config.settings.production"
        assert env["DATABASE_URL"].startswith("postgres://")
        assert env["REDIS_URL"].startswith("redis://")


def test_env_example_names_the_required_production_variables():
    text = (ROOT / ".env.example").read_text()
    for name in ("DJANGO_SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL", "REDIS_URL"):
        assert f"{name}=" in text


def test_healthz_answers(client, db):
    resp = client.get("/healthz/")
    assert resp.status_code == 200 and resp.json() == {"status": "ok"}
