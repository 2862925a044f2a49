"""The two brokers every integration test runs on, and the settings each one runs with.

``tansu``: the embedded broker (one per test, its workaround on), as in ``make run``.
``kafka``: Apache Kafka (one cluster per session) with the production settings of
deploy/k8s/config.yaml, so what the manifests deploy is what these tests run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from beacon.core.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[2]
PRODUCTION_CONFIG = REPO_ROOT / "deploy" / "k8s" / "config.yaml"
# Settings about Kafka and state (partitions, replication, batching, table store, group
# timeouts, retention) are taken from production; the rest (ports, hosts, channels) is the test's.
BROKER_SETTING_PREFIXES = ("kafka_", "topic_", "broker_", "table_", "event_retention_")
NOT_FROM_PRODUCTION = {"kafka_bootstrap_servers"}

# Switch for the Kafka runs' table store: None keeps production's (rocksdb://). memory:// until
# the correlator's crash on rocksdb:// (AssertionError in faust's rocksdb _set, issue 11 item 0)
# is fixed; then set it back to None.
KAFKA_TABLE_STORE_OVERRIDE: str | None = "memory://"


@dataclass
class BrokerProfile:
    """One broker a test runs on: its name, where it listens, the settings Beacon uses with it."""

    name: str
    bootstrap: str
    settings: dict[str, Any] = field(default_factory=dict)
    stop_broker: Any = None  # only the per-test embedded broker can be stopped by a test

    def stop(self) -> None:
        if self.stop_broker is None:
            raise RuntimeError(f"the {self.name} broker is shared by the session: a test cannot stop it")
        self.stop_broker()


def production_broker_settings(max_replication_factor: int) -> dict[str, Any]:
    """The BEACON_* Kafka and state settings of the production ConfigMap, as Settings
    field names, validated by Settings; replication capped at the test cluster's size."""
    documents = [d for d in yaml.safe_load_all(PRODUCTION_CONFIG.read_text()) if d]
    (configmap,) = [d for d in documents if d.get("kind") == "ConfigMap"]
    chosen: dict[str, Any] = {}
    for key, value in configmap["data"].items():
        name = key.removeprefix("BEACON_").lower()
        if name in NOT_FROM_PRODUCTION or not name.startswith(BROKER_SETTING_PREFIXES):
            continue
        if name not in Settings.model_fields:
            raise ValueError(f"{PRODUCTION_CONFIG}: {key} is not a Beacon setting")
        chosen[name] = value
    validated = Settings(kafka_bootstrap_servers="unused:9092", **chosen)
    chosen = {name: getattr(validated, name) for name in chosen}
    chosen["topic_replication_factor"] = min(validated.topic_replication_factor, max_replication_factor)
    if KAFKA_TABLE_STORE_OVERRIDE is not None:
        chosen["table_store"] = KAFKA_TABLE_STORE_OVERRIDE
    return chosen


TANSU_SETTINGS: dict[str, Any] = {"kafka_single_record_batches": True}
