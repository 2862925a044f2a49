"""Beacon's own alert rules: promtool checks them and runs one unit-test file per alert;
every alert is labelled, annotated, documented, and uses only metrics Beacon exports."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import REGISTRY

from harness.services import REPO_ROOT
from ops.promql import unknown_metrics

PROM_DIR = REPO_ROOT / "deploy" / "prometheus"
RULES_FILE = PROM_DIR / "beacon-rules.yml"
RULE_TESTS = sorted((PROM_DIR / "tests").glob("*.yml"))


def alert_rules() -> list[dict]:
    groups = yaml.safe_load(RULES_FILE.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["promtool", *map(str, args)], capture_output=True, text=True, timeout=120, check=False)


def test_promtool_checks_the_rules_file():
    result = promtool("check", "rules", RULES_FILE)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in result.stdout


def test_promtool_checks_the_scrape_config():
    result = promtool("check", "config", PROM_DIR / "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("test_file", RULE_TESTS, ids=lambda p: p.stem)
def test_promtool_rule_unit_tests_pass(test_file: Path):
    result = promtool("test", "rules", test_file)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_has_its_own_unit_test_that_fires_and_stays_quiet():
    alerts = {rule["alert"] for rule in alert_rules()}
    assert {p.stem for p in RULE_TESTS} == alerts
    for test_file in RULE_TESTS:
        spec = yaml.safe_load(test_file.read_text())
        assert spec["rule_files"] == ["../beacon-rules.yml"]
        checks = [c for t in spec["tests"] for c in t["alert_rule_test"]]
        assert {c["alertname"] for c in checks} == {test_file.stem}
        assert any(c["exp_alerts"] for c in checks), f"{test_file.name}: never expects the alert to fire"
        assert any(not c["exp_alerts"] for c in checks), f"{test_file.name}: never expects silence"


def test_every_alert_has_severity_annotations_and_a_runbook_in_the_readme():
    readme = (REPO_ROOT / "README.md").read_text()
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", h.strip().lower()).replace(" ", "-")
        for h in re.findall(r"^#+ (.+)$", readme, flags=re.MULTILINE)
    }
    for rule in alert_rules():
        assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
        annotations = rule["annotations"]
        assert annotations["summary"] and annotations["description"], rule["alert"]
        file, _, anchor = annotations["runbook_url"].partition("#")
        assert file == "README.md" and anchor == rule["alert"].lower(), rule["alert"]
        assert anchor in anchors, f"README.md has no runbook heading for {rule['alert']}"


def test_rules_only_use_metrics_that_beacon_exports():
    for rule in alert_rules():
        assert unknown_metrics(rule["expr"]) == set(), rule["alert"]


def test_readme_documents_every_metric():
    readme = (REPO_ROOT / "README.md").read_text()
    documented = set(re.findall(r"^\| `(beacon_[a-z_]+)` \|", readme, flags=re.MULTILINE))
    exported = {
        family.name + ("_total" if family.type == "counter" else "")
        for family in REGISTRY.collect()
        if family.name.startswith("beacon_")
    }
    assert documented == exported
