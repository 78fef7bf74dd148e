"""KPI and DORA metrics, computed by the database.

Definitions (production = an environment with ``is_production``; a period is
[start_date 00:00, end_date + 1 day 00:00) in the current time zone, and a deployment
belongs to the period of its ``finished_at``):

- deployment frequency: successful production deployments (state succeeded, or rolled back
  later — the deployment itself succeeded), per bucket; the band uses deployments per day.
- lead time for changes: for each successful production deployment, from the start of the
  earliest pipeline run that built that service's version (the commit entering CI: runs
  carry no commit timestamp; runs pruned by the retention policy count through their day
  summaries) to the deployment's finish; median and p90.
- change failure rate: production deployments that failed, were rolled back or had an
  incident, over all finished production deployments.
- time to restore: for each such failure, from the failure (first incident start, else the
  deployment's finish) to its restoration (last incident resolution, else the next
  successful production deployment of the service); median.
- deployment success rate: finished deployments in every environment still succeeded, over
  all finished deployments.
- release cycle time: releases deployed in the period, planned_at → deployed_at; median.
- time waiting for approval: releases approved in the period, from the last "request
  approval" audit event to approved_at; median (reported apart from cycle time).

Modules: ``definitions`` (the metrics, the scope, the DORA bands), ``facts`` (durations from
the raw rows, the fact rows, the facts of a period), ``percentiles`` (the rankings and the
buckets), ``series`` (counts, a metric over time, trends) and ``page`` (the metrics page).

Percentiles are nearest-rank (the value at rank ceil(p·n)): on PostgreSQL the ordered-set
aggregate percentile_disc, which is that definition; on SQLite window functions (ROW_NUMBER
and COUNT over a partition, keeping the row whose rank is ceil(p·n)). Both give the same
figures; there is no Python fallback and no loop over rows (PostgreSQL's percentile_cont
would interpolate between two rows instead). Python only reshapes the aggregated rows (one
per bucket or group).
"""

from .definitions import BANDS, INTERVALS, METRICS, MetricInfo, MetricsScope, dora_band
from .facts import delivery_fact_rows, delivery_facts, release_fact_rows, release_facts
from .page import (
    GroupRow,
    MetricsPage,
    MetricValue,
    metrics_by_group,
    metrics_page,
    metrics_summary,
    metrics_trends,
)
from .percentiles import ByLink, bucket_dates, percentile_by, percentiles_by
from .series import counted_by, duration_source, duration_trends, metric_series, trend_point_rows

__all__ = [
    "BANDS",
    "INTERVALS",
    "METRICS",
    "ByLink",
    "GroupRow",
    "MetricInfo",
    "MetricValue",
    "MetricsPage",
    "MetricsScope",
    "bucket_dates",
    "counted_by",
    "delivery_fact_rows",
    "delivery_facts",
    "dora_band",
    "duration_source",
    "duration_trends",
    "metric_series",
    "metrics_by_group",
    "metrics_page",
    "metrics_summary",
    "metrics_trends",
    "percentile_by",
    "percentiles_by",
    "release_fact_rows",
    "release_facts",
    "trend_point_rows",
]
