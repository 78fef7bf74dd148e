"""deploy/prometheus/alerts.yml and deploy/grafana/releasegate.json: the rules pass
``promtool check rules`` and their unit tests (``promtool test rules``), the dashboard is a
well-formed Grafana dashboard, and every metric the rules and the dashboard query is one
/metrics really exports (a renamed metric would leave a panel empty and an alert silent).

promtool comes with Debian's prometheus package (.ci/run installs it); without it the
promtool tests are skipped, unless REQUIRE_SERVICES=1."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from django.test import Client, override_settings
from prometheus_client.parser import text_string_to_metric_families

from core import metrics
from governance.models import GatePolicy
from pipelines import verdicts
from pipelines.models import PipelineRun
from pipelines.tests.conftest import CI, make_token, run_body
from releases import services as release_services
from tests.factories import ReleaseFactory, make_ready

ROOT = Path(__file__).resolve().parent.parent
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
ALERT_TESTS = ROOT / "deploy" / "prometheus" / "alerts_test.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "releasegate.json"
TOKEN = "monitoring-files-token-0123456789"
# Series Prometheus itself makes, not /metrics.
PROMETHEUS_OWN = {"up"}
_NAME = re.compile(r"\b((?:releasegate|django)_[a-zA-Z0-9_:]+)")


def _promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("REQUIRE_SERVICES") == "1":
            pytest.fail("promtool is missing: apt-get install -y prometheus")
        pytest.skip("promtool is missing (apt-get install -y prometheus)")
    return found


def test_promtool_checks_the_alert_rules():
    result = subprocess.run(
        [_promtool(), "check", "rules", str(ALERTS)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_unit_tests_of_the_alerts_pass():
    result = subprocess.run(
        [_promtool(), "test", "rules", str(ALERT_TESTS)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    tested = {
        test["alertname"]
        for case in yaml.safe_load(ALERT_TESTS.read_text())["tests"]
        for test in case["alert_rule_test"]
    }
    assert len(tested) >= 2, tested


def _alert_expressions() -> dict[str, str]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return {rule["alert"]: rule["expr"] for group in groups for rule in group["rules"]}


def _dashboard_expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]


def test_the_alerts_name_a_severity_and_say_what_to_do():
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    for rule in (rule for group in groups for rule in group["rules"]):
        assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
    assert {
        "ReleasegateHigh5xxRate",
        "ReleasegateGateLatencyHigh",
        "ReleasegateOutboxBacklog",
        "ReleasegatePollerDown",
        "ReleasegateCeleryQueueDeep",
        "ReleasegateNotReady",
    } <= set(_alert_expressions())


def test_the_dashboard_is_a_well_formed_grafana_dashboard():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["title"] == "Releasegate" and dashboard["uid"]
    assert isinstance(dashboard["schemaVersion"], int)
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    queried = 0
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24 and grid["h"] > 0, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        refs = [target["refId"] for target in panel["targets"]]
        assert refs and len(refs) == len(set(refs)), panel["title"]
        for target in panel["targets"]:
            assert target["expr"].strip(), panel["title"]
            queried += 1
    assert queried >= 20


def _exported_names(text: str) -> set[str]:
    names = set()
    for family in text_string_to_metric_families(text):
        for suffix in ("", "_total", "_bucket", "_count", "_sum", "_created"):
            names.add(family.name + suffix)
        names.update(sample.name for sample in family.samples)
    return names


@pytest.mark.django_db
@override_settings(METRICS_TOKEN=TOKEN)
def test_every_metric_queried_is_exported(service, release_manager):
    # Walk the code paths once so that labelled series exist too.
    GatePolicy.objects.create(
        name="CI", requirements=[{"stage": "pre_approval", "kind": "ci_green"}], priority=1
    )
    release = make_ready(ReleaseFactory(services=[service], owner=release_manager))
    release_services.release_plan(release=release, actor=release_manager)
    assert CI(make_token("ci", [service])).run(run_body(version=release.version)).status_code == 201
    verdicts.gates_evaluate_for_run(run_id=PipelineRun.objects.get().pk)
    metrics.gauges.invalidate()
    response = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    exported = _exported_names(response.content.decode())

    queried: dict[str, str] = {}
    for alert, expr in _alert_expressions().items():
        for name in _NAME.findall(expr):
            queried[name] = f"alert {alert}"
    for expr in _dashboard_expressions():
        for name in _NAME.findall(expr):
            queried[name] = f"dashboard: {expr}"
    assert len(queried) >= 20
    missing = {name: where for name, where in queried.items() if name not in exported}
    assert not missing, missing
    assert PROMETHEUS_OWN.isdisjoint(queried)
