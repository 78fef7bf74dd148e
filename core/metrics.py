"""Prometheus metrics: the counters the code paths update, the gauges read at scrape time, and
who may read them (docs/operations.md, "Metrics"). Imports no project app.

- **Counters and histograms** are module-level objects here, so every app (core upwards) can
  count in its own code path: ``metrics.RUNS_INGESTED.labels(...).inc()``. They cost a few
  microseconds and no query. Under gunicorn they are written to memory-mapped files in
  ``PROMETHEUS_MULTIPROC_DIR`` (deploy/gunicorn.conf.py sets it up), so a scrape that lands
  on any worker adds up every worker's counts.
- **Gauges** (releases by state, the outbox's depth and age, …) are facts of the database,
  not of a process: each app registers a provider in its ``AppConfig.ready()``
  (``register_gauges``), and ``/metrics`` calls them all at scrape time, in the scraping
  process only, caching their answer for ``METRICS_GAUGES_CACHE_SECONDS`` so that several
  Prometheus servers scraping every few seconds cost a bounded number of cheap queries.
- **Access**: ``/metrics`` answers only when ``METRICS_TOKEN`` (a bearer token) and/or
  ``METRICS_ALLOWED_NETWORKS`` (CIDRs matched against the connecting address) is set, and
  only to callers that satisfy every one that is set (``access_status``).
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable

from django.conf import settings
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

# --- counters and histograms, updated in the code paths --------------------------------------

RUNS_INGESTED = Counter(
    "releasegate_runs_ingested",
    "CI/CD run reports received (REST, webhooks, pollers), by provider, the run's status as "
    "reported and what the report did: created a run, updated one, changed nothing, refused.",
    ["provider", "status", "outcome"],
)
GATE_EVALUATIONS = Counter(
    "releasegate_gate_evaluations",
    "Verdicts that pipeline runs gave automated gates, by gate kind and verdict, and whether "
    "the verdict changed the gate.",
    ["kind", "verdict", "changed"],
)
GATE_VERDICT_LATENCY = Histogram(
    "releasegate_gate_verdict_latency_seconds",
    "From the CI report a gate's new verdict comes from (its run's last change) to the "
    "verdict being recorded.",
    ["kind"],
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900, 1800, 3600),
)
TASK_FAILURES = Counter(
    "releasegate_celery_task_failures",
    "Celery tasks that failed for good (raised with no retry left), by task name.",
    ["task"],
)
TASK_RETRIES = Counter(
    "releasegate_celery_task_retries",
    "Celery task attempts that were scheduled again, by task name.",
    ["task"],
)


# --- gauges, read at scrape time -------------------------------------------------------------

GaugeProvider = Callable[[], Iterable[Metric]]
_providers: dict[str, GaugeProvider] = {}


def register_gauges(name: str, provider: GaugeProvider) -> None:
    """Add a provider of gauges, called at scrape time (a few cheap aggregate queries at
    most, whatever the data's size). ``name`` labels its health metric; registering a name
    again replaces the provider."""
    _providers[name] = provider


class GaugeCollector(Collector):
    """Every registered provider's gauges, cached for METRICS_GAUGES_CACHE_SECONDS in this
    process. A provider that fails is left out of the answer (its ``up`` is 0 and the error is
    logged): one broken query never costs the HTTP metrics."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cached: list[Metric] = []
        self._expires = 0.0

    def collect(self) -> Iterable[Metric]:
        with self._lock:  # one scrape computes; a concurrent one waits for its answer
            now = time.monotonic()
            if now >= self._expires:
                self._cached = self._compute()
                self._expires = now + settings.METRICS_GAUGES_CACHE_SECONDS
            return list(self._cached)

    def invalidate(self) -> None:
        with self._lock:
            self._expires = 0.0

    def _compute(self) -> list[Metric]:
        up = GaugeMetricFamily(
            "releasegate_metrics_provider_up",
            "1 when the provider of these gauges answered at the last computation, else 0.",
            labels=["provider"],
        )
        seconds = GaugeMetricFamily(
            "releasegate_metrics_provider_duration_seconds",
            "How long the provider took to compute its gauges.",
            labels=["provider"],
        )
        families: list[Metric] = []
        for name, provider in sorted(_providers.items()):
            started = time.monotonic()
            try:
                families.extend(provider())
                up.add_metric([name], 1)
            except Exception:  # noqa: BLE001 - a scrape always answers
                logger.exception("metrics: the %s gauges could not be computed", name)
                up.add_metric([name], 0)
            seconds.add_metric([name], time.monotonic() - started)
        return [*families, up, seconds]


gauges = GaugeCollector()
_gauge_registry = CollectorRegistry(auto_describe=False)
_gauge_registry.register(gauges)


def exposition(*, with_gauges: bool = True) -> bytes:
    """The text the scrape returns: this process's counters (every gunicorn worker's, in
    multiprocess mode) followed by the gauges (the web's answer; a Celery worker's leaves
    them out, they are the same facts)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    text = generate_latest(registry)
    return text + generate_latest(_gauge_registry) if with_gauges else text


# --- access ---------------------------------------------------------------------------------


def access_status(remote_addr: str | None, authorization: str | None) -> int | None:
    """None when the caller may read the metrics, else the HTTP status to answer: 404 when
    neither a token nor networks are configured (the endpoint is off), 403 for an address
    outside METRICS_ALLOWED_NETWORKS, 401 without the right ``Bearer`` METRICS_TOKEN."""
    token = settings.METRICS_TOKEN
    networks = settings.METRICS_ALLOWED_NETWORKS
    if not token and not networks:
        return 404
    if networks and not _address_allowed(remote_addr, networks):
        return 403
    if token:
        scheme, _, offered = (authorization or "").partition(" ")
        offered = offered.strip()
        if scheme.lower() != "bearer" or not offered:
            return 401
        if not hmac.compare_digest(offered.encode(), token.encode()):
            return 401
    return None


def _address_allowed(remote_addr: str | None, networks: list[str]) -> bool:
    try:
        address = ipaddress.ip_address((remote_addr or "").strip())
    except ValueError:
        return False
    if address.version == 6 and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in ipaddress.ip_network(cidr, strict=False) for cidr in networks)


ACCESS_MESSAGES = {
    401: "A bearer token is required (METRICS_TOKEN).",
    403: "This address may not read the metrics (METRICS_ALLOWED_NETWORKS).",
    404: "Not found.",
}


# --- Celery ---------------------------------------------------------------------------------


def _on_task_failure(sender=None, **_):
    TASK_FAILURES.labels(getattr(sender, "name", "unknown")).inc()


def _on_task_retry(sender=None, **_):
    TASK_RETRIES.labels(getattr(sender, "name", "unknown")).inc()


def connect_celery_signals() -> None:
    from celery import signals

    signals.task_failure.connect(_on_task_failure, weak=False, dispatch_uid="rg-metrics-failure")
    signals.task_retry.connect(_on_task_retry, weak=False, dispatch_uid="rg-metrics-retry")


# --- a Celery worker's own /metrics -----------------------------------------------------------
# Gate verdicts, their latency and task failures are counted where tasks run: in the workers,
# usually other pods than the web's. A worker started with CELERY_METRICS_PORT serves its
# counters (every pool process's, when PROMETHEUS_MULTIPROC_DIR is set for prefork) on that
# port, behind the same token and network rule as the web's /metrics.


def _worker_app(environ, start_response):
    status = access_status(environ.get("REMOTE_ADDR"), environ.get("HTTP_AUTHORIZATION"))
    if environ.get("PATH_INFO", "/") not in ("/metrics", "/metrics/"):
        status = 404
    if status is not None:
        reason = {401: "Unauthorized", 403: "Forbidden", 404: "Not Found"}[status]
        headers = [("Content-Type", "text/plain; charset=utf-8")]
        if status == 401:
            headers.append(("WWW-Authenticate", 'Bearer realm="metrics"'))
        start_response(f"{status} {reason}", headers)
        return [ACCESS_MESSAGES[status].encode() + b"\n"]
    from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

    start_response("200 OK", [("Content-Type", CONTENT_TYPE_PLAIN_0_0_4)])
    return [exposition(with_gauges=False)]


def serve_worker_metrics(address: str, port: int):
    """Serve a worker's /metrics from a daemon thread; returns the server."""
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, format, *args):  # noqa: A002 - the base class's name
            pass

    server = make_server(address, port, _worker_app, handler_class=QuietHandler)
    threading.Thread(target=server.serve_forever, name="worker-metrics", daemon=True).start()
    logger.info("Worker metrics on %s:%s/metrics", address, port)
    return server


def clear_multiprocess_dir() -> None:
    """At a worker's start: a previous run's files would add its counts to this one's."""
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        os.makedirs(folder, exist_ok=True)
        for name in os.listdir(folder):
            if name.endswith(".db"):
                os.remove(os.path.join(folder, name))


def mark_this_process_dead() -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(os.getpid())
