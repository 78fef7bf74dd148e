"""What the metrics are: their definitions and labels, the period and service or team they
are about (``MetricsScope``), and the DORA performance bands. The definitions themselves
are the package's docstring (``dashboards.selectors.metrics``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.utils import timezone

from releases.choices import DeploymentState

INTERVALS = ("daily", "weekly", "monthly", "all")
FINISHED = [DeploymentState.SUCCEEDED, DeploymentState.FAILED, DeploymentState.ROLLED_BACK]
SHIPPED = [DeploymentState.SUCCEEDED, DeploymentState.ROLLED_BACK]
FAILED = [DeploymentState.FAILED, DeploymentState.ROLLED_BACK]

DAY = 86400.0


@dataclass(frozen=True)
class MetricInfo:
    key: str
    label: str
    unit: str  # "count" | "seconds" | "ratio"
    help: str
    lower_is_better: bool = False


METRICS: dict[str, MetricInfo] = {
    m.key: m
    for m in (
        MetricInfo(
            "deployment_frequency",
            "Deployment frequency",
            "count",
            "Successful production deployments.",
        ),
        MetricInfo(
            "lead_time_for_changes",
            "Lead time for changes (median)",
            "seconds",
            "From the first CI run of a version to its production deployment.",
            lower_is_better=True,
        ),
        MetricInfo(
            "lead_time_for_changes_p90",
            "Lead time for changes (p90)",
            "seconds",
            "90% of changes reach production within this time.",
            lower_is_better=True,
        ),
        MetricInfo(
            "change_failure_rate",
            "Change failure rate",
            "ratio",
            "Production deployments failed, rolled back or followed by an incident.",
            lower_is_better=True,
        ),
        MetricInfo(
            "time_to_restore_service",
            "Time to restore (median)",
            "seconds",
            "From a production failure to the fix deployed or the incident resolved.",
            lower_is_better=True,
        ),
        MetricInfo(
            "deployment_success_rate",
            "Deployment success rate",
            "ratio",
            "Deployments in every environment that succeeded and stayed.",
        ),
        MetricInfo(
            "release_cycle_time",
            "Release cycle time (median)",
            "seconds",
            "From planned to deployed.",
            lower_is_better=True,
        ),
        MetricInfo(
            "approval_wait_time",
            "Time waiting for approval (median)",
            "seconds",
            "From requesting approval to approved.",
            lower_is_better=True,
        ),
    )
}


@dataclass(frozen=True)
class MetricsScope:
    """The period (inclusive dates) and the service or team the metrics are about."""

    start_date: date
    end_date: date
    service: str = ""
    team: str = ""

    @property
    def start(self) -> datetime:
        return datetime.combine(self.start_date, time.min, tzinfo=timezone.get_current_timezone())

    @property
    def end(self) -> datetime:
        return datetime.combine(
            self.end_date + timedelta(days=1), time.min, tzinfo=timezone.get_current_timezone()
        )

    @property
    def days(self) -> int:
        return (self.end_date - self.start_date).days + 1


# --- DORA performance bands (State of DevOps 2023 thresholds) ---------------------------------

BANDS = ("elite", "high", "medium", "low")


def dora_band(metric: str, value: float | None, *, days: int = 1) -> str:
    """Elite / high / medium / low for the four DORA metrics; "" when not a DORA metric or
    there is no data. ``value`` is the period total for frequency (divided by ``days``)."""
    if value is None:
        return ""
    if metric == "deployment_frequency":
        per_day = value / max(days, 1)
        return _band(per_day, [1.0, 1 / 7, 1 / 30], higher_is_better=True)
    if metric in ("lead_time_for_changes", "lead_time_for_changes_p90"):
        return _band(value, [DAY, 7 * DAY, 30 * DAY])
    if metric == "change_failure_rate":
        return _band(value, [0.05, 0.10, 0.15], inclusive=True)
    if metric == "time_to_restore_service":
        return _band(value, [3600.0, DAY, 7 * DAY])
    return ""


def _band(
    value: float, limits: list[float], *, higher_is_better: bool = False, inclusive: bool = False
) -> str:
    for band, limit in zip(BANDS, limits, strict=False):
        if higher_is_better and value >= limit:
            return band
        if not higher_is_better and (value <= limit if inclusive else value < limit):
            return band
    return "low"
