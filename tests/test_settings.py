"""Settings: production refuses to start without its secret and passes the deploy checks."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
AUDIT_KEYS = (
    "k2:" + base64.b64encode(b"2" * 32).decode() + ",k1:" + base64.b64encode(b"1" * 32).decode()
)


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    base = {
        k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "ALLOWED_", "AUDIT_"))
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_settings_refuse_to_start_without_a_secret():
    result = _manage("check", DJANGO_SETTINGS_MODULE="config.settings.production")
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr


def test_production_settings_pass_the_deploy_checks_with_zero_findings():
    result = _manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DJANGO_SETTINGS_MODULE="config.settings.production",
        DJANGO_SECRET_KEY="k" * 20 + "x9!Q-" * 10,
        ALLOWED_HOSTS="releasegate.example.com",
        AUDIT_CHAIN_KEYS=AUDIT_KEYS,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_settings_refuse_to_start_without_the_audit_keys():
    production = {
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "DJANGO_SECRET_KEY": "k" * 20 + "x9!Q-" * 10,
        "ALLOWED_HOSTS": "releasegate.example.com",
    }
    result = _manage("check", **production)
    assert result.returncode != 0
    assert "The environment variable AUDIT_CHAIN_KEYS is required" in result.stderr
    result = _manage("check", **production, AUDIT_CHAIN_KEYS="k1:c2hvcnQ=")
    assert result.returncode != 0 and "use at least 32" in result.stderr
    result = _manage("check", **production, AUDIT_CHAIN_KEYS=AUDIT_KEYS, AUDIT_CHAIN_KEY_ID="k9")
    assert result.returncode != 0 and "AUDIT_CHAIN_KEY_ID is 'k9'" in result.stderr


def test_a_bad_boolean_fails_loudly():
    result = _manage("check", DJANGO_DEBUG="maybe")
    assert result.returncode != 0
    assert "DJANGO_DEBUG must be a boolean" in result.stderr


def test_a_group_map_naming_an_unknown_role_fails_loudly():
    result = _manage("check", OIDC_GROUP_ROLE_MAP='{"rg-cab": ["cab_member", "approver"]}')
    assert result.returncode != 0
    assert "OIDC_GROUP_ROLE_MAP maps 'rg-cab' to 'approver', which is not a role" in result.stderr
    result = _manage("check", OIDC_GROUP_TEAM_MAP="rg-payments=payments")
    assert result.returncode != 0 and "OIDC_GROUP_TEAM_MAP must be a JSON object" in result.stderr


def test_production_with_single_sign_on_passes_the_deploy_checks_and_lets_the_idp_in():
    env = {
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "DJANGO_SECRET_KEY": "k" * 20 + "x9!Q-" * 10,
        "ALLOWED_HOSTS": "releasegate.example.com",
        "OIDC_SERVER_URL": "https://sso.example.com/realms/acme",
        "OIDC_CLIENT_ID": "releasegate",
        "OIDC_GROUP_ROLE_MAP": '{"rg-cab": ["cab_member"]}',
        "LOCAL_PASSWORDS_ENABLED": "false",
        "AUDIT_CHAIN_KEYS": AUDIT_KEYS,
    }
    result = _manage("check", "--deploy", "--fail-level", "WARNING", **env)
    assert result.returncode == 0, result.stdout + result.stderr
    result = _manage(
        "shell",
        "-c",
        "from django.conf import settings as s; "
        "print(s.CONTENT_SECURITY_POLICY['DIRECTIVES']['form-action'], s.MFA_REQUIRED_ROLES)",
        **env,
    )
    assert "'https://sso.example.com'" in result.stdout, result.stderr
    assert "'administrator'" in result.stdout and "stakeholder" not in result.stdout
