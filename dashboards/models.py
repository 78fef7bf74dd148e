"""The one thing the dashboards app stores: personal calendar-feed tokens.

The dashboards app holds read models only (docs/architecture.md). The iCal feed is the
exception: calendar clients (Outlook, Google Calendar, Apple Calendar) subscribe to a URL
and cannot log in, so the URL itself must carry a secret that identifies the subscriber.
That secret needs a row; it is written only by ``dashboards.services`` and every
(re)generation is audited.
"""

from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone

FEED_TOKEN_PREFIX = "cal_"


def hash_feed_token(raw: str) -> str:
    # 256-bit random tokens: a fast unsalted hash is safe and keeps the lookup one indexed
    # equality (same reasoning as pipelines.models.hash_token).
    return hashlib.sha256(raw.encode()).hexdigest()


class CalendarFeedToken(models.Model):
    """The secret of one user's personal iCal feed URL.

    Only the SHA-256 is stored; the raw token is shown once, when it is (re)generated.
    Regenerating replaces the hash, so every calendar subscribed with the old URL stops
    receiving updates (that is the point: it is how a leaked URL is revoked). The feed
    shows what the user may see *now* (permissions are checked on every fetch).
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="calendar_feed_token"
    )
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    key_hint = models.CharField(max_length=12, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "calendar feed token"

    def __str__(self) -> str:
        return f"Calendar feed of {self.user} ({self.key_hint}…)"

    @staticmethod
    def generate_raw() -> str:
        return FEED_TOKEN_PREFIX + secrets.token_urlsafe(32)


class DeliveryFact(models.Model):
    """One finished deployment as the metrics read it: a projection of Deployment,
    PipelineRun and Incident rows, refreshed by ``dashboards.services.metrics_facts_refresh``.

    Why a table: lead time and time to restore need correlated look-ups per deployment (the
    first CI run of the version, the next successful deployment, the incidents). Done at
    read time they cost seconds over 100× data; precomputed once per deployment, every
    metric is a window function over an indexed range of small rows. The projection is
    rebuilt for the last ``FACTS_REWINDOW`` on each refresh, because an incident or a fix can
    arrive after the deployment finished.
    """

    deployment = models.OneToOneField(
        "releases.Deployment", on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    service = models.ForeignKey("releases.Service", on_delete=models.CASCADE, related_name="+")
    team = models.ForeignKey("releases.Team", on_delete=models.CASCADE, related_name="+")
    is_production = models.BooleanField()
    finished_at = models.DateTimeField()
    succeeded = models.BooleanField(help_text="Still succeeded (not failed, not rolled back).")
    shipped = models.BooleanField(help_text="The deployment itself succeeded (maybe rolled back).")
    failed = models.BooleanField(help_text="Failed, rolled back, or followed by an incident.")
    lead_seconds = models.FloatField(null=True)
    restore_seconds = models.FloatField(null=True)
    # The chart buckets of finished_at in the server's time zone, stored so grouping by
    # day/week/month is a plain column (SQLite would call a Python function per row).
    finished_day = models.DateField(null=True)
    finished_week = models.DateField(null=True, help_text="Monday of the week.")
    finished_month = models.DateField(null=True, help_text="First day of the month.")

    class Meta:
        indexes = [
            models.Index(fields=["is_production", "finished_at"]),
            models.Index(fields=["service", "finished_at"]),
            models.Index(fields=["team", "finished_at"]),
            # Covering indexes: every metric query of a period reads only index entries (a
            # table look-up per fact otherwise). They end with the primary key (a bigint,
            # so not SQLite's rowid: the rankings order by it) and, for the partial one,
            # is_production (SQLite reads a partial index's WHERE column from the table
            # unless the index holds it). The partial one holds production facts only,
            # matching the bare ``is_production`` term Django writes for the DORA queries,
            # which a plain (is_production, …) index cannot seek on.
            models.Index(
                fields=[
                    "finished_at",
                    "lead_seconds",
                    "restore_seconds",
                    "failed",
                    "finished_day",
                    "finished_week",
                    "finished_month",
                    "service",
                    "team",
                    "is_production",
                    "deployment",
                ],
                condition=models.Q(is_production=True),
                name="dash_fact_prod_cover",
            ),
            # Every environment (success rate): a period is a range of this index, not a
            # scan of every fact (it replaces the plain finished_at index of migration 0004).
            models.Index(
                fields=[
                    "finished_at",
                    "is_production",
                    "shipped",
                    "failed",
                    "succeeded",
                    "finished_day",
                    "finished_week",
                    "finished_month",
                    "service",
                    "team",
                    "deployment",
                ],
                name="dash_fact_count_cover",
            ),
        ]

    def __str__(self) -> str:
        return f"Fact of deployment {self.deployment_id}"


class ReleaseFact(models.Model):
    """One release's cycle time and approval wait, projected like DeliveryFact."""

    release = models.OneToOneField(
        "releases.Release", on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    # Indexed by the covering indexes below (their first column).
    deployed_at = models.DateTimeField(null=True)
    approved_at = models.DateTimeField(null=True)
    cycle_seconds = models.FloatField(null=True)
    approval_wait_seconds = models.FloatField(null=True)
    deployed_day = models.DateField(null=True)
    deployed_week = models.DateField(null=True)
    deployed_month = models.DateField(null=True)
    approved_day = models.DateField(null=True)
    approved_week = models.DateField(null=True)
    approved_month = models.DateField(null=True)

    class Meta:
        indexes = [
            # Covering: the cycle-time and approval-wait percentiles of a period read only
            # index entries (see DeliveryFact).
            models.Index(
                fields=[
                    "deployed_at",
                    "cycle_seconds",
                    "deployed_day",
                    "deployed_week",
                    "deployed_month",
                    "release",
                ],
                name="dash_rfact_deploy_cover",
            ),
            models.Index(
                fields=[
                    "approved_at",
                    "approval_wait_seconds",
                    "approved_day",
                    "approved_week",
                    "approved_month",
                    "release",
                ],
                name="dash_rfact_approve_cover",
            ),
        ]

    def __str__(self) -> str:
        return f"Fact of release {self.release_id}"


class TrendPoint(models.Model):
    """One point of an organisation-wide duration trend: a metric's nearest-rank percentile
    over one whole day, week or month of facts, written by the facts refresh with the facts
    it ranks (the same transaction, so a point always matches the facts beside it).

    Why a table: a trend ranks every fact of the period per bucket (SQLite evaluates a
    window at ~1 µs a row), and the organisation-wide trend, the metrics page's default, is
    the one with the most facts. A whole bucket's value changes only when its facts do, so
    the refresh ranks the buckets it touched and the page reads the rest; buckets the
    period cuts are ranked live, as are trends narrowed to a service or team (a fraction
    of the facts). ``dashboards.selectors.metrics.trend_point_rows`` computes them.
    """

    metric = models.CharField(max_length=40)
    interval = models.CharField(max_length=8)
    bucket = models.DateField(help_text="First day of the day, week (Monday) or month.")
    value = models.FloatField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["interval", "metric", "bucket"], name="dash_trend_point_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.metric} {self.interval} {self.bucket}: {self.value:g}"


class FactsWatermark(models.Model):
    """When the metrics facts were last refreshed (one row)."""

    key = models.CharField(max_length=20, primary_key=True, default="metrics")
    refreshed_at = models.DateTimeField()
    trend_points_version = models.PositiveSmallIntegerField(
        default=0,
        help_text="Version of the TrendPoint rows last ranked in full; another version "
        "(0: a database from before them) ranks them all on the next refresh.",
    )

    def __str__(self) -> str:
        return f"{self.key} facts refreshed at {self.refreshed_at:%Y-%m-%d %H:%M}"
