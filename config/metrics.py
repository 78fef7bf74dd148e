"""``/metrics``: Prometheus's scrape of this process group (core.metrics holds the metrics and
the access rule; docs/operations.md, "Metrics")."""

from __future__ import annotations

from django.http import HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client.core import GaugeMetricFamily

# The classic text format every Prometheus version reads (2.x included).
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4 as CONTENT_TYPE

from config.health import run_checks
from core import metrics


def readiness_gauges():
    """/readyz's checks as gauges, so an alert on readiness needs no blackbox prober: 1 when
    a check is ok (or skipped: the per-process cache), 0 when it failed or timed out."""
    family = GaugeMetricFamily(
        "releasegate_readiness_check_ok",
        "1 when the /readyz check passes, else 0 (database and migrations: the app cannot "
        "serve; cache and broker: it serves degraded).",
        labels=["check"],
    )
    for name, check in run_checks().items():
        family.add_metric([name], 0 if check["status"] == "failed" else 1)
    return [family]


# Registered here, with the view, rather than in an AppConfig: the checks are config's, and
# this module is loaded with MIDDLEWARE (MetricsMiddleware), before the first scrape.
metrics.register_gauges("readiness", readiness_gauges)


@never_cache
@require_GET
def metrics_view(request):
    status = metrics.access_status(
        request.META.get("REMOTE_ADDR"), request.META.get("HTTP_AUTHORIZATION")
    )
    if status is not None:
        response = HttpResponse(
            metrics.ACCESS_MESSAGES[status] + "\n", status=status, content_type="text/plain"
        )
        if status == 401:
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    body = metrics.exposition()
    response = HttpResponse(body, content_type=CONTENT_TYPE)
    # Answered ahead of CommonMiddleware (MetricsMiddleware), which would set it otherwise.
    response["Content-Length"] = str(len(body))
    return response


class MetricsMiddleware:
    """Answers ``/metrics`` before the host check and the HTTPS redirect: Prometheus scrapes
    each pod by its address (``Host: 10.1.2.3:8000``, never one of ALLOWED_HOSTS) over the pod
    network in plain HTTP, and cannot add headers to look like nginx. Nothing in the answer
    is built from the Host header, which is what ALLOWED_HOSTS protects; the token and
    network rule still apply. Placed right after the request-id middleware."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path_info == "/metrics":
            return metrics_view(request)
        return self.get_response(request)
