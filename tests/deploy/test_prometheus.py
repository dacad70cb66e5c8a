"""The alert rules and the Grafana dashboard: promtool checks and unit-tests the rules, and every
metric they query is one the app exports (scraped from a test app's /metrics)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy/prometheus"
DASHBOARD = ROOT / "deploy/grafana/dashboards/bookbridge.json"
SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_count", "_sum")}
# Series Prometheus makes itself, not the app (the scrape's `up`).
PROMETHEUS_OWN = {"up"}


def promtool(*args: str) -> str:
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is missing: .ci/run installs Debian's prometheus package")
        pytest.skip("promtool is not installed (apt-get install prometheus); CI runs this")
    done = subprocess.run(
        [found, *args], cwd=PROMETHEUS, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_promtool_checks_the_rules_and_the_scrape_config() -> None:
    assert "SUCCESS: 10 rules found" in promtool("check", "rules", "alerts.yml")
    promtool("check", "config", "prometheus.yml")


def test_promtool_unit_tests_of_the_alerts_pass() -> None:
    assert "SUCCESS" in promtool("test", "rules", "alerts.test.yml")


def test_every_alert_has_a_test_that_fires_it_and_one_that_keeps_it_quiet() -> None:
    rules = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    names = {r["alert"] for g in rules["groups"] for r in g["rules"]}
    tests = yaml.safe_load((PROMETHEUS / "alerts.test.yml").read_text())
    cases = [case for test in tests["tests"] for case in test["alert_rule_test"]]
    fired = {case["alertname"] for case in cases if case["exp_alerts"]}
    quiet = {case["alertname"] for case in cases if not case["exp_alerts"]}
    assert names == fired == quiet
    assert {
        "BookbridgeNotReady",
        "BookbridgeHigh5xxRate",
        "BookbridgeIngestionRejectRate",
        "BookbridgeDeadLettersGrowing",
        "BookbridgeSyncStale",
        "BookbridgeRecommendationLatencyP99",
    } <= names


def exported(text: str) -> set[str]:
    """Every series name the exposition `text` declares, with its type's sample suffixes."""
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        names.update(family.name + s for s in SUFFIXES.get(family.type, ()))
    return names


def expressions() -> dict[str, str]:
    """Every PromQL expression of the dashboard and of the alert rules, by where it is."""
    out: dict[str, str] = {}
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text())
    for panel in dashboard["panels"]:
        for target in panel.get("targets", ()):
            out[f"panel {panel['title']!r} {target['refId']}"] = target["expr"]
    rules = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            out[f"alert {rule['alert']}"] = rule["expr"]
    return out


# Metric names in PromQL: identifiers not followed by "(" (functions), not label names (before
# =, =~, !=), not inside quotes, not after "by"/"without" lists; simplest: the bookbridge_ ones
# plus any bare identifier directly before "{" or "[".
_METRIC = re.compile(r"\b(bookbridge_[a-z0-9_]+)|\b([a-z_][a-z0-9_]*)\s*[{\[]")


def queried(expr: str) -> set[str]:
    without_strings = re.sub(r'"[^"]*"', '""', expr)
    return {a or b for a, b in _METRIC.findall(without_strings)}


async def test_dashboard_and_alerts_query_only_metrics_the_app_exports(
    http: httpx.AsyncClient,
) -> None:
    response = await http.get("/metrics")
    assert response.status_code == 200
    names = exported(response.text) | PROMETHEUS_OWN
    assert "bookbridge_ingestion_last_success_timestamp_seconds" in names  # sanity
    unknown = {
        where: sorted(queried(expr) - names)
        for where, expr in expressions().items()
        if queried(expr) - names
    }
    assert not unknown


def test_the_dashboard_covers_what_operators_watch() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "bookbridge"
    every = " ".join(expressions().values())
    for metric in (
        "bookbridge_http_requests_total",  # requests and errors
        "bookbridge_http_request_duration_seconds_bucket",  # latency
        "bookbridge_ingestion_records_total",  # ingestion throughput
        "bookbridge_ingestion_last_success_timestamp_seconds",  # ingestion lag
        "bookbridge_cache_lookups_total",  # cache hit ratio
        "bookbridge_worker_job_duration_seconds_count",  # worker jobs
    ):
        assert metric in every
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        for target in panel.get("targets", ()):
            assert target["datasource"]["uid"] == "prometheus"  # the provisioned datasource


def test_queried_finds_metric_names_only() -> None:
    expr = 'sum by (route) (rate(bookbridge_http_requests_total{status=~"5.."}[5m])) / up{job="x"}'
    assert queried(expr) == {"bookbridge_http_requests_total", "up"}
    assert queried('bookbridge_nope_total{x="bookbridge_in_a_string"}') == {"bookbridge_nope_total"}
