"""Probes for load balancers, orchestrators and docker-compose (docs/operations.md).

``/healthz/`` is liveness: the process answers HTTP. It touches nothing else, so a database
or Redis outage never makes an orchestrator restart healthy web processes.

``/readyz/`` is readiness: the database answers and has no unapplied migrations (else 503,
"unavailable": the app cannot serve), and Redis and the Celery broker answer (else 200,
"degraded": CI reports are still accepted, background work waits). Each check runs in its
own daemon thread bounded by ``CHECK_TIMEOUT_SECONDS``, so a hung dependency never hangs the
probe. Answers name the failing exception's class only; the message goes to the log.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid

from django.conf import settings
from django.core.cache import cache
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from kombu import Connection

logger = logging.getLogger(__name__)

CHECK_TIMEOUT_SECONDS = 1.0
# Broker transports that are folders or process memory: nothing to connect to.
LOCAL_BROKERS = ("filesystem", "memory")
# Checks the app cannot serve without (503); the others only degrade it (200).
REQUIRED_CHECKS = ("database", "migrations")


@never_cache
def healthz(request):
    return JsonResponse({"status": "ok"})


@never_cache
def readyz(request):
    checks = run_checks()
    if any(checks[name]["status"] == "failed" for name in REQUIRED_CHECKS):
        overall, status = "unavailable", 503
    elif any(check["status"] == "failed" for check in checks.values()):
        overall, status = "degraded", 200
    else:
        overall, status = "ok", 200
    return JsonResponse({"status": overall, "checks": checks}, status=status)


def run_checks() -> dict[str, dict]:
    """Every check at once, each in its own thread, all within one deadline."""
    probes = {
        "database": _Probe(_check_database_and_migrations, database=True),
        "cache": _Probe(_check_cache),
        "broker": _Probe(_check_broker),
    }
    deadline = time.monotonic() + CHECK_TIMEOUT_SECONDS
    for probe in probes.values():
        probe.start()
    for probe in probes.values():
        probe.join(max(0.0, deadline - time.monotonic()))
    database = probes["database"].result()
    migrations = database.pop("migrations", None)
    if migrations is None:
        migrations = {"status": "failed", "error": "database unavailable"}
    return {
        "database": database,
        "cache": probes["cache"].result(),
        "broker": probes["broker"].result(),
        "migrations": migrations,
    }


class _Probe:
    """One check in a daemon thread: a dependency that hangs leaves the thread behind (it
    ends with the hung call) instead of holding the request or blocking process exit."""

    def __init__(self, check, *, database: bool = False):
        self._check = check
        self._database = database
        self._outcome: dict = {}
        self._started = 0.0
        self._thread = threading.Thread(target=self._run, daemon=True, name="readyz")

    def start(self):
        self._started = time.monotonic()
        self._thread.start()

    def join(self, timeout: float):
        self._thread.join(timeout)

    def result(self) -> dict:
        if self._thread.is_alive():
            return {"status": "failed", "error": "timeout", "ms": self._elapsed_ms()}
        return dict(self._outcome)

    def _elapsed_ms(self) -> int:
        return round((time.monotonic() - self._started) * 1000)

    def _run(self):
        try:
            outcome = {"status": "ok", **self._check()}
        except Exception as exc:  # every failure is an answer, never a 500
            logger.warning("readyz: %s failed: %s", self._check.__name__, exc)
            outcome = {"status": "failed", "error": type(exc).__name__}
        finally:
            if self._database:
                # The thread's own connection: close it rather than leave it to the GC.
                connections[DEFAULT_DB_ALIAS].close()
        outcome["ms"] = self._elapsed_ms()
        self._outcome = outcome


def _check_database_and_migrations() -> dict:
    """SELECT 1, then the migration plan on the same connection (one connect per probe)."""
    connection = connections[DEFAULT_DB_ALIAS]
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    started = time.monotonic()
    executor = MigrationExecutor(connection)
    pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    ms = round((time.monotonic() - started) * 1000)
    if pending:
        names = [f"{migration.app_label}.{migration.name}" for migration, _ in pending]
        migrations = {"status": "failed", "pending": names[:10], "pending_count": len(names)}
    else:
        migrations = {"status": "ok"}
    return {"migrations": {**migrations, "ms": ms}}


def _check_cache() -> dict:
    backend = settings.CACHES["default"]["BACKEND"].rsplit(".", 1)[-1]
    if "Redis" not in backend:
        return {"status": "skipped", "backend": backend}
    key, value = f"readyz:{uuid.uuid4().hex}", "1"
    cache.set(key, value, timeout=10)
    if cache.get(key) != value:
        raise LookupError("the value just written was not read back")
    cache.delete(key)
    return {"backend": backend}


def _check_broker() -> dict:
    url = settings.CELERY_BROKER_URL
    transport = url.split(":", 1)[0]
    if transport in LOCAL_BROKERS:
        return {"transport": transport}
    with Connection(
        url,
        connect_timeout=CHECK_TIMEOUT_SECONDS,
        transport_options=settings.CELERY_BROKER_TRANSPORT_OPTIONS,
    ) as broker:
        broker.ensure_connection(
            max_retries=1, interval_start=0, interval_step=0, timeout=CHECK_TIMEOUT_SECONDS
        )
    return {"transport": transport}
