"""Production: secrets are required, connections persist, cookies and headers are strict.

`DJANGO_SECRET_KEY`, `ALLOWED_HOSTS` and `AUDIT_CHAIN_KEYS` must be set or the process refuses
to start.
"""

from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_int, env_list, env_required, env_secret_keys, env_str
from core.logs import logging_config

from .base import *  # noqa: F403
from .base import DATABASES, LOG_LEVEL

SECRET_KEY = env_required("DJANGO_SECRET_KEY")
DEBUG = False
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS") or [env_required("ALLOWED_HOSTS")]
# The audit trail's keys never default in production: without them the chain hashes would be
# computable by anyone who can read the code.
env_required("AUDIT_CHAIN_KEYS")
AUDIT_CHAIN_KEYS = env_secret_keys("AUDIT_CHAIN_KEYS")
AUDIT_CHAIN_KEY_ID = env_str("AUDIT_CHAIN_KEY_ID") or next(iter(AUDIT_CHAIN_KEYS))
if AUDIT_CHAIN_KEY_ID not in AUDIT_CHAIN_KEYS:
    raise ImproperlyConfigured(
        f"AUDIT_CHAIN_KEY_ID is {AUDIT_CHAIN_KEY_ID!r}, which AUDIT_CHAIN_KEYS does not list."
    )

# Opening a PostgreSQL connection costs more than a typical API request: keep them open and
# check them before reuse so a restarted database does not break the next request.
DATABASES["default"]["CONN_MAX_AGE"] = env_int("DB_CONN_MAX_AGE", 600)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
X_FRAME_OPTIONS = "DENY"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# One JSON object per line for the log pipeline (docs/operations.md, "Logs").
LOG_FORMAT = env_str("LOG_FORMAT", "json")
if LOG_FORMAT not in ("json", "text"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be json or text, got {LOG_FORMAT!r}.")
LOGGING = logging_config(LOG_FORMAT, LOG_LEVEL)
