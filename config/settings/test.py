"""Test settings: fast hashing, in-memory email, eager nothing (tests queue on commit)."""

import tempfile
from pathlib import Path

from config.env import env_bool, env_list, env_str

from .base import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
DEBUG = False
# Stub servers (webhooks, pollers, Prometheus) listen on 127.0.0.1; the guard's own tests turn
# this off with override_settings.
OUTBOUND_ALLOW_PRIVATE = env_bool("OUTBOUND_ALLOW_PRIVATE", True)
# Tests load the demo (seed_demo) like `make run` does.
INSTALLED_APPS = [*INSTALLED_APPS, "demo"]  # noqa: F405
# Audit checkpoints a test run exports go to a temporary directory, not var/ (conftest.py
# gives every database test a directory of its own).
AUDIT_CHECKPOINT_DIR = Path(
    env_str("AUDIT_CHECKPOINT_DIR") or tempfile.mkdtemp(prefix="rg-audit-checkpoints-")
)
# The personas of the existing tests sign in without a second factor; the MFA tests set the
# roles that require one.
MFA_REQUIRED_ROLES = env_list("MFA_REQUIRED_ROLES", [])
