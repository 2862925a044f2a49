"""The Grafana dashboard: well-formed, provisioned against the right datasource, every
query parses (promtool) and names only metrics Beacon exports, and every Beacon metric
is on it."""

from __future__ import annotations

import json
import subprocess

import yaml

from harness.services import REPO_ROOT
from ops.promql import beacon_series_names, metric_names, unknown_metrics

GRAFANA = REPO_ROOT / "deploy" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "beacon.json"


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def query_panels() -> list[dict]:
    return [p for p in dashboard()["panels"] if p["type"] != "row"]


def exprs() -> list[str]:
    return [t["expr"] for p in query_panels() for t in p["targets"]]


def test_dashboard_is_well_formed():
    board = dashboard()
    assert board["uid"] == "beacon-overview" and board["title"] == "Beacon"
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    rows = {p["title"] for p in board["panels"] if p["type"] == "row"}
    assert {"Ingest", "Alerts and episodes", "Notifications", "Latency", "Kafka consumers", "Health"} <= rows
    for panel in query_panels():
        assert panel["type"] in {"timeseries", "stat"}, panel["title"]
        assert panel["targets"], panel["title"]
        assert all(t["expr"].strip() and t["refId"] for t in panel["targets"]), panel["title"]
        grid = panel["gridPos"]
        assert grid["w"] > 0 and grid["h"] > 0 and grid["x"] + grid["w"] <= 24, panel["title"]


def test_panels_use_the_provisioned_prometheus_datasource():
    provisioned = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())
    (datasource,) = provisioned["datasources"]
    assert datasource["type"] == "prometheus" and datasource["url"] == "http://prometheus:9090"
    for panel in query_panels():
        assert panel["datasource"] == {"type": "prometheus", "uid": datasource["uid"]}, panel["title"]
        assert all(t["datasource"] == panel["datasource"] for t in panel["targets"]), panel["title"]


def test_queries_name_only_metrics_that_beacon_exports():
    for expr in exprs():
        assert metric_names(expr), expr
        assert unknown_metrics(expr) == set(), expr


def test_every_beacon_metric_is_on_the_dashboard():
    used = set().union(*(metric_names(e) for e in exprs()))
    families = {name.removesuffix("_bucket").removesuffix("_total") for name in used}
    exported = {
        name.removesuffix("_bucket").removesuffix("_sum").removesuffix("_count").removesuffix("_total")
        for name in beacon_series_names()
    }
    assert exported - families == set()


def test_latency_panels_use_histogram_quantile_over_buckets():
    latency = [p for p in query_panels() if "latency" in p["title"].lower()]
    assert len(latency) == 3
    for panel in latency:
        for target in panel["targets"]:
            assert target["expr"].startswith("histogram_quantile(") and "_bucket[" in target["expr"]


def test_promtool_parses_every_query(tmp_path):
    # promtool has no "parse this expression" command, so each query becomes a recording rule.
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [{"record": f"dashboard:query_{n}", "expr": expr} for n, expr in enumerate(exprs())],
            }
        ]
    }
    rules_file = tmp_path / "dashboard-queries.yml"
    rules_file.write_text(yaml.safe_dump(rules))
    result = subprocess.run(
        ["promtool", "check", "rules", str(rules_file)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(exprs())} rules found" in result.stdout
