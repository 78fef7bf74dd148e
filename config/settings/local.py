"""Local development and the embedded `make run` default."""

from config.env import env_bool

from .base import *  # noqa: F403

DEBUG = env_bool("DJANGO_DEBUG", True)
# The demo's and a developer's services (Prometheus, Jenkins, webhooks) listen on localhost.
OUTBOUND_ALLOW_PRIVATE = env_bool("OUTBOUND_ALLOW_PRIVATE", True)
# The demo data and its seed_demo command (`make run` loads it); production has neither.
INSTALLED_APPS = [*INSTALLED_APPS, "demo"]  # noqa: F405
