"""``/metrics``: Prometheus's scrape of this process group (core.metrics holds the metrics and
the access rule; docs/operations.md, "Metrics")."""

from __future__ import annotations

from django.http import HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

# The classic text format every Prometheus version reads (2.x included).
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4 as CONTENT_TYPE

from core import metrics


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
    return HttpResponse(metrics.exposition(), content_type=CONTENT_TYPE)
