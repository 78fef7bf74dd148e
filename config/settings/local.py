"""Local development and the embedded `make run` default."""

from config.env import env_bool, env_list, env_networks, env_str

from .base import *  # noqa: F403

DEBUG = env_bool("DJANGO_DEBUG", True)
# The demo's and a developer's services (Prometheus, Jenkins, webhooks) listen on localhost.
OUTBOUND_ALLOW_PRIVATE = env_bool("OUTBOUND_ALLOW_PRIVATE", True)
# The demo data and its seed_demo command (`make run` loads it); production has neither.
INSTALLED_APPS = [*INSTALLED_APPS, "demo"]  # noqa: F405
# Demo e-mails go to files under var/mail/, not to the terminal `make run` shows its URL in.
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.filebased.EmailBackend")
# `make run`: this machine may read /metrics without a token.
METRICS_ALLOWED_NETWORKS = env_networks("METRICS_ALLOWED_NETWORKS") or ["127.0.0.1/32", "::1/128"]
EMAIL_FILE_PATH = env_str("EMAIL_FILE_PATH", str(VAR_DIR / "mail"))  # noqa: F405
# The demo logins sign in with a password alone; set MFA_REQUIRED_ROLES to try enrolment.
MFA_REQUIRED_ROLES = env_list("MFA_REQUIRED_ROLES", [])
# Security keys on http://localhost.
MFA_WEBAUTHN_ALLOW_INSECURE_ORIGIN = env_bool("MFA_WEBAUTHN_ALLOW_INSECURE_ORIGIN", True)
