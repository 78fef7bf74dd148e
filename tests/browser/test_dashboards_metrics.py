"""Leadership on the metrics page, in a real browser: the demo portfolio's charts render
as SVG with their data tables."""

from __future__ import annotations

import re

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def demo(db):
    call_command("seed_demo", verbosity=0)


def test_metrics_page_shows_charts_for_the_demo_data(page, screenshot, demo):
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill("releasegate-demo")
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("link", name="Metrics").click()
    expect(page.get_by_role("heading", name="Delivery metrics")).to_be_visible()
    page.wait_for_load_state("load")  # htmx listens for the filter's change once loaded
    page.get_by_label("Period").select_option("180")
    expect(page).to_have_url(re.compile("period=180"))

    charts = page.locator("figure.chart svg[role=img]")
    expect(charts).to_have_count(6)
    expect(page.locator("#chart-deployment_frequency rect.bar").first).to_be_visible()
    expect(page.locator("#chart-lead_time_for_changes path.line")).to_have_count(1)
    # Every chart has its data table.
    page.locator("#chart-deployment_frequency summary", has_text="Data table").click()
    expect(page.locator("#chart-deployment_frequency table")).to_be_visible()
    expect(page.locator(".kpi-tile", has_text="Deployment frequency")).to_contain_text("DORA")
    screenshot("dashboards-metrics")
