"""The two brokers every integration test runs on, and the settings each one runs with.

``tansu``: the embedded broker (one per test, its workaround on), as in ``make run``.
``kafka``: Apache Kafka (one cluster per session) with the production settings of
deploy/k8s/config.yaml, so what the manifests deploy is what these tests run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from beacon.runtime.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[2]
PRODUCTION_CONFIG = REPO_ROOT / "deploy" / "k8s" / "config.yaml"
# Settings about Kafka and state (partitions, replication, batching, table store, group
# timeouts, retention) are taken from production; the rest (ports, hosts, channels) is the test's.
BROKER_SETTING_PREFIXES = ("kafka_", "topic_", "broker_", "table_")
BROKER_SETTING_SUFFIXES = ("_retention_days",)
# Where and how to log in is the test cluster's: its plaintext listener, or the SASL_SSL one a
# security test chooses (production's SCRAM user, CA path and port mean nothing here).
NOT_FROM_PRODUCTION = {
    "kafka_bootstrap_servers",
    "kafka_security_protocol",
    "kafka_sasl_mechanism",
    "kafka_sasl_username",
    "kafka_ssl_ca_file",
}

# The table store travels apart (BrokerProfile.table_store, the table_store fixture), since a
# test marked table_stores chooses it per run.
SEPARATE_SETTINGS = {"table_store"}


@dataclass
class BrokerProfile:
    """One broker a test runs on: its name, where it listens, the settings Beacon uses with it."""

    name: str
    bootstrap: str
    settings: dict[str, Any] = field(default_factory=dict)
    stop_broker: Any = None  # only the per-test embedded broker can be stopped by a test
    table_store: str = "memory://"  # the Faust table store its workers use unless a test chooses

    def stop(self) -> None:
        if self.stop_broker is None:
            raise RuntimeError(f"the {self.name} broker is shared by the session: a test cannot stop it")
        self.stop_broker()


def production_broker_settings(max_replication_factor: int) -> dict[str, Any]:
    """The BEACON_* Kafka and state settings of the production ConfigMap, as Settings
    field names, validated by Settings; replication capped at the test cluster's size; the
    table store apart (``PRODUCTION_TABLE_STORE``)."""
    chosen = _production_settings()
    chosen["topic_replication_factor"] = min(chosen["topic_replication_factor"], max_replication_factor)
    return {name: value for name, value in chosen.items() if name not in SEPARATE_SETTINGS}


def _production_settings() -> dict[str, Any]:
    documents = [d for d in yaml.safe_load_all(PRODUCTION_CONFIG.read_text()) if d]
    (configmap,) = [d for d in documents if d.get("kind") == "ConfigMap"]
    chosen: dict[str, Any] = {}
    for key, value in configmap["data"].items():
        name = key.removeprefix("BEACON_").lower()
        if name in NOT_FROM_PRODUCTION or not (
            name.startswith(BROKER_SETTING_PREFIXES) or name.endswith(BROKER_SETTING_SUFFIXES)
        ):
            continue
        if name not in Settings.model_fields:
            raise ValueError(f"{PRODUCTION_CONFIG}: {key} is not a Beacon setting")
        chosen[name] = value
    validated = Settings(kafka_bootstrap_servers="unused:9092", **chosen)
    chosen = {name: getattr(validated, name) for name in chosen}
    chosen.setdefault("topic_replication_factor", validated.topic_replication_factor)
    return chosen


PRODUCTION_TABLE_STORE: str = _production_settings().get("table_store", "memory://")


TANSU_SETTINGS: dict[str, Any] = {"kafka_single_record_batches": True}

# The kafka run of the broker fixture, marked `kafka`; KAFKA_ONLY pins a test to it:
# @pytest.mark.parametrize("broker", KAFKA_ONLY, indirect=True)
KAFKA = pytest.param("kafka", marks=pytest.mark.kafka)
KAFKA_ONLY = [KAFKA]
# Three nodes, replication 3, min.insync.replicas 2 (started only by a test that asks for it).
KAFKA_3_ONLY = [pytest.param("kafka3", marks=pytest.mark.kafka)]
