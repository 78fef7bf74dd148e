"""The releases app's scrape-time gauges (core.metrics), registered in ReleasesConfig.ready()."""

from __future__ import annotations

from django.db.models import Count
from prometheus_client.core import GaugeMetricFamily

from .choices import ReleaseState
from .models import Release


def release_gauges():
    """Releases by state: one GROUP BY on the (state, …) index; every state is named, 0 when
    no release is in it, so a rate or an alert never sees a series vanish."""
    counts = dict(Release.objects.values_list("state").annotate(n=Count("id")).order_by())
    family = GaugeMetricFamily(
        "releasegate_releases", "Releases by lifecycle state.", labels=["state"]
    )
    for state in ReleaseState:
        family.add_metric([state.value], counts.get(state.value, 0))
    return [family]
