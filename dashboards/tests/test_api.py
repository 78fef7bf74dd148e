"""The dashboards API: DORA series, calendar events, bad input answered with 400 JSON."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from tests.factories import DeploymentFactory, PipelineRunFactory

URL = "/api/v1/metrics/dora"
URL_EVENTS = "/api/v1/calendar/events/"


@pytest.fixture
def deployments(service, production):
    day = datetime(2026, 10, 5, 12, tzinfo=timezone.get_current_timezone())
    for i, version in enumerate(["1.0", "1.1", "1.2"]):
        PipelineRunFactory(service=service, version=version, started_at=day + timedelta(days=i))
        DeploymentFactory(
            service=service,
            environment=production,
            version=version,
            finished_at=day + timedelta(days=i, hours=3),
            started_at=day + timedelta(days=i, hours=2),
        )


@pytest.mark.django_db
def test_dora_series_monthly(client, viewer, deployments, service):
    client.force_login(viewer)
    response = client.get(
        URL,
        {
            "metric": "deployment_frequency",
            "start_date": "2026-09-01",
            "end_date": "2026-11-30",
            "interval": "monthly",
            "service": service.slug,
        },
    )
    assert response.status_code == 200
    assert response.json() == [
        {"date": "2026-09-01", "value": 0.0},
        {"date": "2026-10-01", "value": 3.0},
        {"date": "2026-11-01", "value": 0.0},
    ]
    lead = client.get(
        URL,
        {
            "metric": "lead_time_for_changes",
            "start_date": "2026-10-01",
            "end_date": "2026-10-31",
            "interval": "all",
        },
    ).json()
    assert lead == [{"date": "2026-10-01", "value": 10800.0}]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "params",
    [
        {},
        {"metric": "nope"},
        {"metric": "deployment_frequency", "interval": "hourly"},
        {"metric": "deployment_frequency", "start_date": "2026-13-01"},
        {"metric": "deployment_frequency", "start_date": "2026-10-02", "end_date": "2026-10-01"},
        {"metric": "deployment_frequency", "service": "no-such-service"},
        {"metric": "deployment_frequency", "start_date": "2010-01-01", "end_date": "2026-01-01"},
        # Dates whose weeks or months step outside Python's dates were a 500.
        {"metric": "lead_time_for_changes", "end_date": "0001-02-01", "interval": "daily"},
        {
            "metric": "lead_time_for_changes",
            "start_date": "9999-06-01",
            "end_date": "9999-12-31",
            "interval": "monthly",
        },
    ],
)
def test_bad_parameters_give_400_json(client, viewer, params):
    client.force_login(viewer)
    response = client.get(URL, params)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid" and body["detail"]


@pytest.mark.django_db
def test_outsiders_and_anonymous_are_refused(client, outsider):
    assert client.get(URL, {"metric": "deployment_frequency"}).status_code in (401, 403)
    client.force_login(outsider)
    assert client.get(URL, {"metric": "deployment_frequency"}).status_code == 403


@pytest.mark.django_db
def test_calendar_events(client, viewer, portfolio):
    portfolio(per_state=1)
    client.force_login(viewer)
    today = timezone.localdate()
    response = client.get(
        "/api/v1/calendar/events/",
        {"start": (today - timedelta(days=7)).isoformat(), "end": today.isoformat()},
    )
    assert response.status_code == 200
    events = response.json()
    releases = [e for e in events if e["type"] == "release"]
    assert releases and all(e["id"].startswith("release-") for e in releases)
    assert any(e["conflicts"] for e in releases)
    bad = client.get("/api/v1/calendar/events/", {"start": "2026-01-01", "end": "2026-12-31"})
    assert bad.status_code == 400


@pytest.mark.django_db
def test_schema_lists_the_endpoints(client, viewer):
    client.force_login(viewer)
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").content.decode()
    assert "/api/v1/metrics/dora" in schema
    assert "/api/v1/calendar/events/" in schema


@pytest.mark.django_db
def test_a_period_ending_early_in_the_date_range_starts_at_its_first_day(client, viewer):
    client.force_login(viewer)
    params = {"metric": "deployment_frequency", "end_date": "1970-01-10", "interval": "daily"}
    response = client.get(URL, params)
    assert response.status_code == 200, response.content
    assert [p["date"] for p in response.json()][0] == "1970-01-01"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("start", "end"), [("0001-01-01", "0001-01-31"), ("9999-12-01", "9999-12-31")]
)
def test_calendar_events_out_of_the_date_range_are_a_400(client, viewer, start, end):
    client.force_login(viewer)
    response = client.get("/api/v1/calendar/events/", {"start": start, "end": end})
    assert response.status_code == 400, response.content
    assert "Must be between" in response.json()["detail"]


@pytest.mark.django_db
def test_a_token_reads_the_calendar_without_cab_meetings(client, viewer, portfolio, service):
    from governance.models import CABMeeting
    from pipelines.services import api_token_create

    portfolio(per_state=1)
    CABMeeting.objects.create(title="Board-only: acquisition go/no-go", scheduled_at=timezone.now())
    today = timezone.localdate()
    params = {"start": (today - timedelta(days=1)).isoformat(), "end": today.isoformat()}
    client.force_login(viewer)
    assert any(e["type"] == "cab_meeting" for e in client.get(URL_EVENTS, params).json())
    client.logout()
    _, raw = api_token_create(
        actor=None, name="reader", service_slugs=[service.slug], scopes=["releases:read"]
    )
    events = client.get(URL_EVENTS, params, HTTP_AUTHORIZATION=f"Bearer {raw}").json()
    assert not any(e["type"] == "cab_meeting" for e in events)
