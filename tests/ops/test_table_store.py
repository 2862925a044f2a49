"""The production table store is the one the workers' integration tests run on.

docker-compose and Kubernetes run every worker with BEACON_TABLE_STORE=rocksdb://. The
workers' integration tests (marked ``table_stores``) run once per store of
``conftest.TABLE_STORES``, restarts and changelog recovery included; this test keeps that
list in step with what the deployments set, and checks the marker is where it must be."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import yaml

from conftest import TABLE_STORES

REPO_ROOT = Path(__file__).resolve().parents[2]
CORRELATOR_TESTS = "tests/correlator/test_correlator_integration.py"
# Every test module that starts a worker with a Faust table (correlator, notifier) or
# any Faust worker (validator).
WORKER_TEST_MODULES = (
    "tests/correlator/test_correlator_integration.py",
    "tests/notifier/test_scenarios.py",
    "tests/ingest/test_validator.py",
    "tests/integration/test_walking_skeleton.py",
    "tests/e2e/test_end_to_end.py",
    "tests/ops/test_worker_health_and_logs.py",
    "tests/ops/test_poison_records.py",
)


def test_the_stores_the_deployments_set_are_the_stores_the_tests_run_on():
    k8s = yaml.safe_load((REPO_ROOT / "deploy" / "k8s" / "config.yaml").read_text())["data"]["BEACON_TABLE_STORE"]
    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
    compose_stores = {
        value
        for block in _walk(compose)
        if isinstance(block, dict)
        for key, value in block.items()
        if key == "BEACON_TABLE_STORE"
    }
    assert {k8s, *compose_stores} == {"rocksdb://"}
    assert set(TABLE_STORES) == {"memory://", "rocksdb://"}


def test_every_worker_test_module_runs_on_every_store():
    for module in WORKER_TEST_MODULES:
        tree = ast.parse((REPO_ROOT / module).read_text())
        marks = [
            ast.unparse(node.value)
            for node in tree.body
            if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "pytestmark" for t in node.targets)
        ]
        assert any("pytest.mark.table_stores" in mark for mark in marks), module


def test_a_worker_test_is_collected_once_per_store():
    collected = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", CORRELATOR_TESTS],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout.split()
    restart = sorted(i.split("::")[1] for i in collected if "test_restart_recovers_state" in i)
    assert restart == sorted(
        f"test_restart_recovers_state_and_never_emits_an_alert_twice[{store}-{data_dir}]"
        for store in ("memory", "rocksdb")
        for data_dir in ("same", "fresh")
    )


def _walk(node):
    yield node
    if isinstance(node, dict):
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)
