"""The production table store is the one the workers' integration tests run on.

docker-compose and Kubernetes run every worker with BEACON_TABLE_STORE=rocksdb://. The
workers' integration tests (marked ``table_stores``) run once per store of
``conftest.TABLE_STORES``, restarts and changelog recovery included; these tests keep that
list in step with what the deployments set, check the marker is where it must be, and
check the correlator's write path into each store (``beacon.runtime.table_store``)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from faust.types import TP

from beacon.runtime.faust_app import make_faust_app
from beacon.runtime.settings import load_settings
from beacon.runtime.table_store import PartitionedStore
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
        f"test_restart_recovers_state_and_never_emits_an_alert_twice[{run}-{data_dir}]"
        # Tansu on memory://, Kafka on production's rocksdb:// (tests/conftest.py)
        for run in ("tansu-memory", "kafka-rocksdb")
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


@pytest.mark.parametrize("store", TABLE_STORES)
def test_a_state_reaches_the_local_store_only_once_the_changelog_has_it(tmp_path, store):
    # The correlator's write path (outside a Faust event): a staged state is read back at
    # once, but stored (on RocksDB: on disk, with the changelog offset it matches) only
    # when its changelog record is acknowledged, so a worker killed in between keeps no
    # state that the changelog lacks.
    app = make_faust_app("store-check", load_settings(data_dir=tmp_path, table_store=store), web_port=1)
    table = app.Table("children", default=None, key_type=bytes, value_type=bytes, partitions=4)
    app.finalize()
    changelog = TP(table.changelog_topic.get_topic_name(), 2)
    states = PartitionedStore(table)

    def stored() -> bytes | None:
        if store == "rocksdb://":
            return table.data._db_for_partition(2).get(b"CH-1")
        return table.data.get(b"CH-1")

    states.put(b"CH-1", b"state-1", 2)
    assert states.get(b"CH-1", 2) == b"state-1" and dict(states.items()) == {b"CH-1": b"state-1"}
    assert stored() is None
    states.put(b"CH-1", b"state-2", 2)  # the next batch, before the first write's ack
    states.acknowledged([(b"CH-1", b"state-1", 2)], changelog, 10)
    assert stored() == b"state-1" and states.get(b"CH-1", 2) == b"state-2"
    states.acknowledged([(b"CH-1", b"state-2", 2)], changelog, 11)
    assert stored() == b"state-2" and states.get(b"CH-1", 2) == b"state-2"
    if store == "rocksdb://":
        assert table.data.persisted_offset(changelog) == 11
        assert any((tmp_path / "store-check").rglob("CURRENT"))  # a RocksDB under the data dir
