"""Shared fixtures. Integration tests get a real Tansu broker of their own (it starts in
well under a second, and a fresh broker per test means no test sees another's records).

Table stores: a test marked ``@pytest.mark.table_stores`` (the workers' integration tests)
runs once per Faust table store, ``memory://`` and ``rocksdb://`` (production), through the
``table_store`` fixture, which ``settings`` and ``env`` carry to the service processes.
Every other test gets ``memory://``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

from beacon.core.broker import EmbeddedBroker, free_port
from beacon.core.settings import Settings, load_settings
from beacon.core.topics import ensure_topics
from harness.brokers import TANSU_SETTINGS, BrokerProfile, production_broker_settings
from harness.kafka_cluster import KafkaCluster
from harness.services import service_env

# CI replays the same examples on every run (a red CI must be reproducible on a laptop with
# CI=true); developers' runs draw new ones, so the search for counterexamples goes on.
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
hypothesis_settings.load_profile("ci" if os.environ.get("CI") else "default")

TABLE_STORES = ("memory://", "rocksdb://")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.definition.get_closest_marker("table_stores") and "table_store" in metafunc.fixturenames:
        ids = [store.removesuffix("://") for store in TABLE_STORES]
        metafunc.parametrize("table_store", TABLE_STORES, ids=ids, indirect=True)


@pytest.fixture
def table_store(request: pytest.FixtureRequest) -> str:
    """The Faust table store of this test's workers (see the module docstring)."""
    return str(getattr(request, "param", "memory://"))


@pytest.fixture(scope="session")
def kafka_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaCluster]:
    """One Apache Kafka node (broker and controller) for the session, with a second,
    SASL_SSL listener (SCRAM logins, a CA made by the harness) for the security tests."""
    with KafkaCluster(tmp_path_factory.mktemp("kafka"), size=1, sasl_ssl=True) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def kafka_cluster_3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaCluster]:
    """Three Apache Kafka nodes shaped like production (replication 3, min.insync.replicas 2)."""
    with KafkaCluster(tmp_path_factory.mktemp("kafka3"), size=3) as cluster:
        yield cluster


@pytest.fixture(params=["tansu", pytest.param("kafka", marks=pytest.mark.kafka)])
def broker(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BrokerProfile]:
    if request.param == "kafka":
        cluster: KafkaCluster = request.getfixturevalue("kafka_cluster")
        cluster.reset()
        yield BrokerProfile("kafka", cluster.bootstrap, production_broker_settings(cluster.replication_factor))
        return
    with EmbeddedBroker(log_file=tmp_path / "broker.log") as embedded:
        yield BrokerProfile("tansu", embedded.bootstrap, dict(TANSU_SETTINGS), stop_broker=embedded.stop)


@pytest.fixture
def settings(broker: BrokerProfile, table_store: str, tmp_path: Path) -> Settings:
    """Settings pointing at this test's broker, with the topics created."""
    s = load_settings(
        kafka_bootstrap_servers=broker.bootstrap,
        **broker.settings,
        data_dir=tmp_path / "data",
        table_store=table_store,
        outbox_dir=tmp_path / "outbox",
        correlator_port=free_port(),
        notifier_port=free_port(),
        ingest_port=free_port(),
        console_port=free_port(),
        validator_port=free_port(),
    )
    ensure_topics(s)
    return s


@pytest.fixture
def env(settings: Settings, broker: BrokerProfile) -> dict[str, str]:
    """Process environment carrying ``settings`` to service subprocesses."""
    fields = (
        "kafka_bootstrap_servers",
        *broker.settings,
        "data_dir",
        "table_store",
        "outbox_dir",
        "correlator_port",
        "notifier_port",
        "ingest_port",
        "console_port",
        "validator_port",
    )
    return service_env(**{f: getattr(settings, f) for f in fields})
