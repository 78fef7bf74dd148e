"""Metrics on a small dataset whose numbers are worked out by hand in the comments."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.models import F, Value
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from core.models import AuditEvent
from dashboards.selectors import metrics as m
from dashboards.selectors.metrics.facts import _buckets
from dashboards.services import metrics_facts_refresh, metrics_trend_points_refresh
from pipelines.models import Incident
from releases.models import Release, Team
from tests.factories import DeploymentFactory, PipelineRunFactory, ReleaseFactory

UTC = datetime.fromisoformat("2026-11-01T00:00:00+00:00").tzinfo
SCOPE = m.MetricsScope(start_date=date(2026, 11, 1), end_date=date(2026, 11, 30))


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


@pytest.fixture
def history(service, production, staging):
    """Production: v1.0 ✓ (lead 1 day), v1.1 ✓ (2 h), v1.2 ✗ failed (fixed by v1.3 two hours
    later), v1.3 ✓ (1 h), v1.4 rolled back (lead 1 day; incident 10:30–11:00).
    Staging: one success, one failure."""

    def deploy(version: str, state: str, finished: datetime, env=production):
        return DeploymentFactory(
            service=service,
            environment=env,
            version=version,
            state=state,
            started_at=finished - timedelta(minutes=5),
            finished_at=finished,
        )

    def run(version: str, started: datetime):
        PipelineRunFactory(service=service, version=version, started_at=started)

    run("1.0", at(1, 10))
    run("1.0", at(1, 12))  # a later re-run does not shorten the lead time
    run("1.1", at(3, 8))
    run("1.3", at(4, 11))
    run("1.4", at(9, 10))
    deploy("1.0", "succeeded", at(2, 10))
    deploy("1.1", "succeeded", at(3, 10))
    deploy("1.2", "failed", at(4, 10))
    deploy("1.3", "succeeded", at(4, 12))
    rolled = deploy("1.4", "rolled_back", at(10, 10))
    Incident.objects.create(
        deployment=rolled,
        service=service,
        fingerprint="abc",
        alertname="HighErrorRate",
        started_at=at(10, 10, 30),
        resolved_at=at(10, 11),
        status="resolved",
    )
    deploy("1.0", "succeeded", at(1, 9), env=staging)
    deploy("1.2", "failed", at(4, 9), env=staging)
    # Outside the period: ignored.
    deploy("0.9", "failed", at(1, 0) - timedelta(days=3))


@pytest.fixture
def releases_history(service):
    a = ReleaseFactory(services=[service])
    b = ReleaseFactory(services=[service])
    Release.objects.filter(pk=a.pk).update(
        planned_at=at(1, 0), approved_at=at(2, 12), deployed_at=at(3, 0)
    )
    Release.objects.filter(pk=b.pk).update(planned_at=at(5, 0), deployed_at=at(6, 0))
    AuditEvent.objects.create(
        actor_label="rita",
        action="release.request_approval",
        target_type=ContentType.objects.get_for_model(Release),
        target_id=str(a.pk),
        target_repr=str(a),
        release_id=a.pk,
        created_at=at(2, 10),
    )


@pytest.fixture(autouse=True)
def facts(request):
    """Refresh the metrics facts after the test's data fixtures have run."""
    if "history" in request.fixturenames or "releases_history" in request.fixturenames:
        request.getfixturevalue("history")
        if "releases_history" in request.fixturenames:
            request.getfixturevalue("releases_history")
        metrics_facts_refresh(full=True)


@pytest.mark.django_db
def test_summary_values_are_exact(history, releases_history):
    summary = m.metrics_summary(SCOPE)
    values = {key: mv.value for key, mv in summary.items()}
    assert values == {
        "deployment_frequency": 4.0,  # v1.0, v1.1, v1.3 and v1.4 (rolled back later)
        "lead_time_for_changes": 7200.0,  # 1h, 2h, 1d, 1d → rank ceil(0.5·4) = 2
        "lead_time_for_changes_p90": 86400.0,  # rank ceil(0.9·4) = 4
        "change_failure_rate": 0.4,  # failed v1.2 + rolled back v1.4 over 5
        "time_to_restore_service": 1800.0,  # 30 min (incident) and 2 h (redeploy) → 30 min
        "deployment_success_rate": 4 / 7,  # 3 production + 1 staging of 7 finished
        "release_cycle_time": 86400.0,  # 2 days and 1 day → rank 1
        "approval_wait_time": 7200.0,  # requested 10:00, approved 12:00
    }
    assert summary["deployment_frequency"].band == "medium"  # 4 in 30 days: < 1 a week
    assert summary["lead_time_for_changes"].band == "elite"
    assert summary["change_failure_rate"].band == "low"
    assert summary["time_to_restore_service"].band == "elite"


@pytest.mark.django_db
def test_series_fill_empty_buckets(history):
    daily = m.metric_series("deployment_frequency", SCOPE, "daily")
    assert len(daily) == 30
    assert daily[1] == {"date": date(2026, 11, 2), "value": 1.0}
    assert daily[3] == {"date": date(2026, 11, 4), "value": 1.0}
    assert daily[4] == {"date": date(2026, 11, 5), "value": 0.0}
    monthly = m.metric_series("lead_time_for_changes", SCOPE, "monthly")
    assert monthly == [{"date": date(2026, 11, 1), "value": 7200.0}]
    cfr = m.metric_series("change_failure_rate", SCOPE, "daily")
    assert cfr[3]["value"] == 0.5  # 4 Nov: v1.2 failed, v1.3 succeeded
    assert cfr[4]["value"] is None  # no deployment, no rate


@pytest.mark.django_db
def test_by_service_and_team(history, service, other_service):
    rows = {r.name: r for r in m.metrics_by_group(SCOPE, by="service")}
    assert rows["payments-api"].values["deployment_frequency"].value == 4.0
    assert rows["payments-api"].values["change_failure_rate"].value == 0.4
    assert rows["payments-api"].values["lead_time_for_changes"].value == 7200.0
    assert rows["identity-api"].values["lead_time_for_changes"].value is None
    teams = {r.name: r for r in m.metrics_by_group(SCOPE, by="team")}
    assert teams["Payments"].values["time_to_restore_service"].value == 1800.0


@pytest.mark.django_db
def test_filters_narrow_to_a_service(history, other_service):
    scope = m.MetricsScope(SCOPE.start_date, SCOPE.end_date, service=other_service.slug)
    assert m.metric_series("deployment_frequency", scope, "all")[0]["value"] == 0.0


@pytest.mark.parametrize(
    ("metric", "value", "band"),
    [
        ("deployment_frequency", 30, "elite"),
        ("deployment_frequency", 5, "high"),
        ("deployment_frequency", 1, "medium"),
        ("deployment_frequency", 0, "low"),
        ("lead_time_for_changes", 3600, "elite"),
        ("lead_time_for_changes", 3 * 86400, "high"),
        ("change_failure_rate", 0.05, "elite"),
        ("change_failure_rate", 0.2, "low"),
        ("time_to_restore_service", 8 * 86400, "low"),
        ("release_cycle_time", 100, ""),
    ],
)
def test_dora_bands(metric, value, band):
    assert m.dora_band(metric, value, days=30) == band


@pytest.mark.django_db
def test_a_late_incident_is_picked_up_by_the_next_refresh(service, production):
    finished = timezone.now() - timedelta(days=2)
    deployment = DeploymentFactory(
        service=service,
        environment=production,
        finished_at=finished,
        started_at=finished - timedelta(minutes=5),
    )
    metrics_facts_refresh(full=True)
    today = timezone.localdate()
    scope = m.MetricsScope(today - timedelta(days=29), today)
    assert m.metric_series("change_failure_rate", scope, "all")[0]["value"] == 0.0
    Incident.objects.create(
        deployment=deployment,
        service=service,
        fingerprint="late",
        started_at=finished + timedelta(hours=1),
        resolved_at=finished + timedelta(hours=2),
        status="resolved",
    )
    metrics_facts_refresh()  # incremental: rebuilds the recent facts
    assert m.metric_series("change_failure_rate", scope, "all")[0]["value"] == 1.0
    assert m.metric_series("time_to_restore_service", scope, "all")[0]["value"] == 3600.0


@pytest.mark.django_db
def test_a_refresh_rewrites_only_the_facts_that_changed(service, production):
    """Every refresh rebuilds the recent window; facts that did not change are not written
    (on PostgreSQL each rewrite left a dead row behind), vanished ones are deleted."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from dashboards.models import DeliveryFact

    finished = timezone.now() - timedelta(days=2)
    kept, changed, gone = (
        DeploymentFactory(
            service=service,
            environment=production,
            finished_at=finished - timedelta(hours=n),
            started_at=finished - timedelta(hours=n, minutes=5),
        )
        for n in range(3)
    )
    metrics_facts_refresh(full=True)
    assert DeliveryFact.objects.count() == 3

    def fact_writes() -> list[str]:
        with CaptureQueriesContext(connection) as queries:
            metrics_facts_refresh()
        return [
            q["sql"]
            for q in queries.captured_queries
            if "dashboards_deliveryfact" in q["sql"]
            and q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))
        ]

    assert fact_writes() == []  # nothing changed: nothing written
    Incident.objects.create(
        deployment=changed,
        service=service,
        fingerprint="late",
        started_at=finished,
        status="open",
    )
    gone.delete()  # its fact goes with it (cascade); the refresh has nothing left to delete
    writes = fact_writes()
    assert len(writes) == 1 and writes[0].lstrip().upper().startswith("UPDATE")
    assert DeliveryFact.objects.get(deployment=changed).failed is True
    assert DeliveryFact.objects.get(deployment=kept).failed is False
    assert DeliveryFact.objects.count() == 2


@pytest.mark.django_db
def test_trend_points_follow_each_refresh(service, production):
    """The organisation-wide trend buckets a refresh may have changed are ranked again with
    the facts: after an incremental refresh the points equal ranking every bucket afresh,
    and the organisation-wide trend equals the same trend ranked live."""
    from dashboards.models import TrendPoint

    def deploy(version: str, finished: datetime, lead: timedelta) -> None:
        PipelineRunFactory(service=service, version=version, started_at=finished - lead)
        DeploymentFactory(
            service=service,
            environment=production,
            version=version,
            state="succeeded",
            started_at=finished - timedelta(minutes=5),
            finished_at=finished,
        )

    now = timezone.now()
    deploy("1.0", now - timedelta(days=70), timedelta(hours=5))
    deploy("1.1", now - timedelta(days=3), timedelta(hours=1))
    metrics_facts_refresh(full=True)

    def points() -> dict:
        return {(p.metric, p.interval, p.bucket): p.value for p in TrendPoint.objects.all()}

    before = points()
    deploy("1.2", now - timedelta(hours=2), timedelta(hours=3))
    deploy("1.3", now - timedelta(hours=1), timedelta(hours=3))
    metrics_facts_refresh()  # incremental: the last 35 days of facts and their buckets
    after = points()
    assert after != before
    old = (now - timedelta(days=70)).date()
    assert after[("lead_time_for_changes", "daily", old)] == 5 * 3600.0  # left as it was
    metrics_trend_points_refresh()  # every bucket afresh
    assert points() == after

    today = timezone.localdate()
    for days, interval in ((90, "weekly"), (365, "monthly"), (21, "daily")):
        scope = m.MetricsScope(today - timedelta(days=days - 1), today)
        live = m.metric_series(
            "lead_time_for_changes", replace(scope, service=service.slug), interval
        )
        assert m.metric_series("lead_time_for_changes", scope, interval) == live
        assert any(point["value"] == 3 * 3600.0 for point in live)  # the new median


@pytest.mark.django_db
def test_trend_points_missing_or_outdated_are_ranked_on_the_next_view(service, production):
    """A database migrated from before TrendPoint (or with points of an older version) has
    fresh facts and no points: the next page view ranks every bucket, not just the recent
    ones."""
    from dashboards.models import FactsWatermark, TrendPoint
    from dashboards.services import metrics_facts_ensure_fresh

    finished = timezone.now() - timedelta(days=200)
    PipelineRunFactory(service=service, version="0.1", started_at=finished - timedelta(hours=4))
    DeploymentFactory(
        service=service,
        environment=production,
        version="0.1",
        state="succeeded",
        started_at=finished - timedelta(minutes=5),
        finished_at=finished,
    )
    metrics_facts_refresh(full=True)
    TrendPoint.objects.all().delete()
    FactsWatermark.objects.update(trend_points_version=0)  # as migration 0006 leaves it
    metrics_facts_ensure_fresh()
    point = TrendPoint.objects.get(
        metric="lead_time_for_changes", interval="monthly", bucket=finished.date().replace(day=1)
    )
    assert point.value == 4 * 3600.0
    assert FactsWatermark.objects.get().trend_points_version > 0


@pytest.fixture
def linked_releases(service, other_service, team):
    """Cycle times: A (payments-api) 2 days; B (payments-api and identity-api) 1 day;
    C (payments-api and ledger-api, both of the Payments team) 6 h."""
    from tests.factories import ServiceFactory

    ledger = ServiceFactory(name="ledger-api", slug="ledger-api", team=team)
    a = ReleaseFactory(services=[service])
    b = ReleaseFactory(services=[service, other_service])
    c = ReleaseFactory(services=[service, ledger])
    Release.objects.filter(pk=a.pk).update(planned_at=at(1, 0), deployed_at=at(3, 0))
    Release.objects.filter(pk=b.pk).update(planned_at=at(5, 0), deployed_at=at(6, 0))
    Release.objects.filter(pk=c.pk).update(planned_at=at(10, 0), deployed_at=at(10, 6))
    metrics_facts_refresh(full=True)


@pytest.mark.django_db
def test_release_durations_per_service_and_team_follow_the_service_links(linked_releases):
    cycle = "release_cycle_time"
    assert m.metrics_summary(SCOPE)[cycle].value == 86400.0  # 6 h, 1 d, 2 d → rank 2
    services = {r.name: r.values[cycle].value for r in m.metrics_by_group(SCOPE, by="service")}
    assert services == {
        "payments-api": 86400.0,  # all three → rank 2
        "identity-api": 86400.0,  # B
        "ledger-api": 6 * 3600.0,  # C
    }
    teams = {r.name: r.values[cycle].value for r in m.metrics_by_group(SCOPE, by="team")}
    # A release counts once per service link, so C counts twice for Payments:
    # 6 h, 6 h, 1 d, 2 d → rank ceil(0.5·4) = 2.
    assert teams == {"Payments": 6 * 3600.0, "Identity": 86400.0}


@pytest.mark.django_db
def test_nearest_rank_percentiles_of_each_group_in_one_query(history, django_assert_num_queries):
    qs, _ = m.duration_source("lead_time_for_changes", SCOPE)
    with django_assert_num_queries(1):
        found = m.percentiles_by(qs, F("bucket_weekly"), (0.5, 0.9))
    # Week of Monday 2 Nov: 1 d (v1.0), 2 h (v1.1), 1 h (v1.3); week of 9 Nov: 1 d (v1.4).
    assert found[0.5] == {
        date(2026, 11, 2): 7200.0,  # rank ceil(0.5·3) = 2
        date(2026, 11, 9): 86400.0,
    }
    assert found[0.9] == {
        date(2026, 11, 2): 86400.0,  # rank ceil(0.9·3) = 3
        date(2026, 11, 9): 86400.0,
    }
    with django_assert_num_queries(1):
        whole = m.percentiles_by(qs, Value("all"), (0.5, 0.9))
    assert whole == {0.5: {"all": 7200.0}, 0.9: {"all": 86400.0}}


@pytest.mark.django_db
def test_metric_queries_read_only_covering_indexes(history, releases_history):
    """At 100× a table look-up per fact was ~40% of each percentile query: the period's
    facts must come from the covering indexes (dashboards migration 0005)."""
    if connection.vendor != "sqlite":
        pytest.skip("SQLite's EXPLAIN QUERY PLAN")
    with CaptureQueriesContext(connection) as ctx:
        m.metrics_summary(SCOPE)
        m.metrics_by_group(SCOPE, by="team")
        m.metrics_trends(SCOPE, "weekly", list(m.METRICS))
    facts = [q["sql"] for q in ctx.captured_queries if "fact" in q["sql"]]
    assert len(facts) >= 12
    with connection.cursor() as cursor:
        for sql in facts:
            cursor.execute("EXPLAIN QUERY PLAN " + sql)
            plan = [row[-1] for row in cursor.fetchall()]
            reads = [step for step in plan if "_deliveryfact" in step or "_releasefact" in step]
            assert reads, plan
            assert all("COVERING INDEX dash_" in step for step in reads), plan
            assert not any("releases_release " in step for step in plan), plan


@pytest.fixture
def ranked_facts(service, production):
    """Facts in groups of 1 to 8 (grouped by their stored day: the group's size is the day of
    the month), with repeated and unordered durations."""
    from dashboards.models import DeliveryFact

    finished = at(20, 12)
    for i in range(36):
        DeploymentFactory(
            service=service,
            environment=production,
            version=f"9.{i}",
            state="succeeded",
            started_at=finished - timedelta(minutes=5),
            finished_at=finished,
        )
    metrics_facts_refresh(full=True)
    facts = list(DeliveryFact.objects.order_by("pk"))
    assert len(facts) == 36
    expected: dict[date, list[float]] = {}
    start = 0
    for size in range(1, 9):
        day = date(2026, 11, size)
        for k, fact in enumerate(facts[start : start + size]):
            fact.finished_day = day
            fact.lead_seconds = float((k * 7 + size) % 5 * 60)  # ties and no order
            expected.setdefault(day, []).append(fact.lead_seconds)
        start += size
    DeliveryFact.objects.bulk_update(facts, ["finished_day", "lead_seconds"])
    return expected


NEAREST = (0.25, 0.5, 0.75, 0.9, 1.0)


def _nearest_rank(values: list[float], p: float) -> float:
    ordered = sorted(values)
    rank = max(-(-len(ordered) * p // 1), 1)  # ceil(p·n), at least the first
    return ordered[int(rank) - 1]


@pytest.mark.django_db
def test_percentiles_are_the_nearest_rank_for_every_group_size(ranked_facts):
    """The window query (SQLite) and percentile_disc (PostgreSQL) agree with the definition:
    the value at rank ceil(p·n)."""
    from dashboards.models import DeliveryFact

    qs = DeliveryFact.objects.annotate(duration=F("lead_seconds"))
    found = m.percentiles_by(qs, F("finished_day"), NEAREST)
    assert found == {
        p: {day: _nearest_rank(values, p) for day, values in ranked_facts.items()} for p in NEAREST
    }
    whole = m.percentiles_by(qs, Value("all"), NEAREST)
    every = [v for values in ranked_facts.values() for v in values]
    assert whole == {p: {"all": _nearest_rank(every, p)} for p in NEAREST}


@pytest.mark.postgres
@pytest.mark.django_db
def test_postgresql_ranks_with_percentile_disc(require_postgres, linked_releases, ranked_facts):
    """On PostgreSQL a ranking is one ordered-set aggregate per percentile (no window), with
    the same figures as the window query SQLite runs."""
    from dashboards.models import DeliveryFact

    qs = DeliveryFact.objects.annotate(duration=F("lead_seconds"))
    with CaptureQueriesContext(connection) as ctx:
        found = m.percentiles_by(qs, F("finished_day"), NEAREST)
        cycle, _ = m.duration_source("release_cycle_time", SCOPE)
        by_team = m.percentiles_by(cycle, m.ByLink("team"), (0.5,))
    assert all("percentile_disc" in q["sql"] for q in ctx.captured_queries)
    assert not any("ROW_NUMBER" in q["sql"] for q in ctx.captured_queries)
    assert found[0.5] == {day: _nearest_rank(v, 0.5) for day, v in ranked_facts.items()}
    names = dict(Team.objects.values_list("pk", "name"))
    assert {names[k]: v for k, v in by_team[0.5].items()} == {
        "Payments": 6 * 3600.0,
        "Identity": 86400.0,
    }


@pytest.mark.django_db
@pytest.mark.parametrize("by", ["service", "team"])
@pytest.mark.parametrize("interval", ["daily", "weekly", "monthly", "all"])
def test_metrics_page_counts_from_one_scan(history, releases_history, other_service, by, interval):
    """The page's summary, trends and table equal the three selectors', with the count
    metrics of all three from one query grouped by (bucket, service or team)."""
    with CaptureQueriesContext(connection) as separate:
        summary = m.metrics_summary(SCOPE)
        trends = m.metrics_trends(SCOPE, interval, list(m.METRICS))
        groups = m.metrics_by_group(SCOPE, by=by)
    with CaptureQueriesContext(connection) as together:
        page = m.metrics_page(SCOPE, interval, list(m.METRICS), by=by)
    assert page.summary == summary
    assert page.trends == trends
    assert page.groups == groups
    fewer = 0 if interval == "all" else 2
    assert len(together.captured_queries) == len(separate.captured_queries) - fewer


@pytest.mark.django_db
@pytest.mark.parametrize("interval", ["daily", "weekly", "monthly"])
def test_trend_percentiles_per_bucket_across_a_daylight_saving_change(
    service, production, interval
):
    """A trend's buckets are local days, weeks or months (the facts' stored columns); the
    per-bucket query on SQLite (a time range per bucket) and percentile_disc / the window on
    PostgreSQL give each bucket's nearest-rank median, also around Berlin's 25-hour day and
    for facts just either side of local midnight, with the period cutting the first week."""
    from zoneinfo import ZoneInfo

    from dashboards.models import DeliveryFact

    berlin = ZoneInfo("Europe/Berlin")
    for i in range(30):
        DeploymentFactory(
            service=service,
            environment=production,
            version=f"8.{i}",
            state="succeeded",
            started_at=at(20, 11),
            finished_at=at(20, 12),
        )
    metrics_facts_refresh(full=True)
    facts = list(DeliveryFact.objects.order_by("pk"))
    assert len(facts) == 30
    with timezone.override(berlin):
        for k, fact in enumerate(facts):
            day = date(2026, 10, 20) + timedelta(days=k % 15)
            hour, minute = ((23, 30), (0, 15), (12, 0))[k % 3]
            fact.finished_at = datetime.combine(day, datetime.min.time(), tzinfo=berlin).replace(
                hour=hour, minute=minute
            )
            fact.lead_seconds = float((k * 7) % 5 * 60 + k % 2)  # ties and no order
            for name, value in _buckets(fact.finished_at, "finished").items():
                setattr(fact, name, value)
        DeliveryFact.objects.bulk_update(
            facts,
            ["finished_at", "lead_seconds", "finished_day", "finished_week", "finished_month"],
        )
        metrics_trend_points_refresh()  # the facts were changed behind the refresh's back
        scope = m.MetricsScope(start_date=date(2026, 10, 22), end_date=date(2026, 11, 5))
        expected: dict[date, list[float]] = {}
        for fact in facts:
            local = timezone.localtime(fact.finished_at).date()
            if scope.start_date <= local <= scope.end_date:
                bucket = {
                    "daily": fact.finished_day,
                    "weekly": fact.finished_week,
                    "monthly": fact.finished_month,
                }[interval]
                expected.setdefault(bucket, []).append(fact.lead_seconds)
        # Organisation-wide: whole buckets from TrendPoint, the cut first and last ranked
        # live; narrowed to the service (every fact is its): all ranked live.
        series = m.metric_series("lead_time_for_changes", scope, interval)
        narrowed = m.metric_series(
            "lead_time_for_changes", replace(scope, service=service.slug), interval
        )
    want = {bucket: _nearest_rank(values, 0.5) for bucket, values in expected.items()}
    for answer in (series, narrowed):
        got = {point["date"]: point["value"] for point in answer if point["value"] is not None}
        assert got.keys() == want.keys()
        for bucket, value in want.items():
            assert got[bucket] == pytest.approx(value), bucket


@pytest.mark.django_db
def test_a_beat_task_refreshes_the_facts_ahead_of_the_readers(service, production):
    """Every 4 minutes (a database beat entry) the worker refreshes facts and trend points
    unless a reader just did, so a page view seldom pays for the refresh."""
    from django_celery_beat.models import PeriodicTask

    from config.celery import app
    from dashboards.models import DeliveryFact, FactsWatermark
    from dashboards.tasks import refresh_metrics_facts

    entry = PeriodicTask.objects.get(task="dashboards.refresh_metrics_facts")
    assert entry.enabled and entry.interval.every == 4 and entry.interval.period == "minutes"
    task = app.tasks["dashboards.refresh_metrics_facts"]
    assert task.soft_time_limit < task.time_limit

    metrics_facts_refresh(full=True)
    finished = timezone.now() - timedelta(hours=1)
    DeploymentFactory(
        service=service,
        environment=production,
        state="succeeded",
        started_at=finished - timedelta(minutes=5),
        finished_at=finished,
    )
    assert refresh_metrics_facts() == 0  # just refreshed by a reader: skipped
    FactsWatermark.objects.update(refreshed_at=timezone.now() - timedelta(minutes=4))
    assert refresh_metrics_facts() == 1
    assert DeliveryFact.objects.count() == 1
