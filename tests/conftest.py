"""Shared fixtures. Every test that takes ``broker`` (through ``settings`` or ``env``) runs on
both brokers, each with its own table stores:

- ``tansu``: a real Tansu broker of its own (it starts in well under a second, and a fresh
  broker per test means no test sees another's records), with its workaround on, ``memory://``;
- ``kafka`` (marker ``kafka``): one Apache Kafka KRaft node for the whole session, emptied
  before each test (every topic and consumer group deleted), with the production settings of
  deploy/k8s/config.yaml (harness/brokers.py), its table store (``rocksdb://``) included.

A test marked ``@pytest.mark.table_stores`` (the workers' integration tests) runs once per
Faust table store: on Tansu with ``memory://`` (what ``make run`` uses) and on Kafka with
production's ``rocksdb://``: two runs, ``[tansu-memory]`` and ``[kafka-rocksdb]``. RocksDB on
Tansu would add a third run of every worker test and no configuration anybody deploys, in a
suite that must fit CI's 90 minutes on 2 cores. ``table_store`` carries the choice to
``settings`` and ``env``. A module without a broker (none today) runs on both stores.

A test that must run on one broker only names it:
``@pytest.mark.parametrize("broker", ["tansu"], indirect=True)`` (a test that stops its broker)
or ``@pytest.mark.parametrize("broker", KAFKA_ONLY, indirect=True)`` (``harness.brokers``), or
``KAFKA_3_ONLY``: the three-node cluster shaped like production (the broker failover test).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

from beacon.runtime.broker import EmbeddedBroker, free_port
from beacon.runtime.settings import Settings, load_settings
from beacon.runtime.topic_admin import ensure_topics
from harness.brokers import KAFKA, PRODUCTION_TABLE_STORE, TANSU_SETTINGS, BrokerProfile, production_broker_settings
from harness.kafka_cluster import KafkaCluster
from harness.services import running_services, service_env

# CI replays the same examples on every run (a red CI must be reproducible on a laptop with
# CI=true); developers' runs draw new ones, so the search for counterexamples goes on.
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
hypothesis_settings.load_profile("ci" if os.environ.get("CI") else "default")

TABLE_STORES = ("memory://", "rocksdb://")


def _store_id(store: str) -> str:
    return store.removesuffix("://")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    fixtures = metafunc.fixturenames
    by_stores = bool(metafunc.definition.get_closest_marker("table_stores")) and "table_store" in fixtures
    broker_pinned = any("broker" in str(mark.args[0]) for mark in metafunc.definition.iter_markers("parametrize"))
    if "broker" in fixtures and not broker_pinned:
        if by_stores:
            kafka_store = PRODUCTION_TABLE_STORE
            pairs = [
                pytest.param("tansu", "memory://", id="tansu-memory"),
                pytest.param("kafka", kafka_store, id=f"kafka-{_store_id(kafka_store)}", marks=pytest.mark.kafka),
            ]
            metafunc.parametrize(("broker", "table_store"), pairs, indirect=True)
        else:
            metafunc.parametrize("broker", ["tansu", KAFKA], indirect=True)
    elif by_stores:
        metafunc.parametrize("table_store", TABLE_STORES, ids=[_store_id(s) for s in TABLE_STORES], indirect=True)


@pytest.fixture
def table_store(request: pytest.FixtureRequest) -> str:
    """The Faust table store of this test's workers (see the module docstring): the one the
    test is parametrised with, else its broker's (Tansu: ``memory://``, Kafka: production's)."""
    if hasattr(request, "param"):
        return str(request.param)
    if "broker" in request.fixturenames:
        profile: BrokerProfile = request.getfixturevalue("broker")
        return profile.table_store
    return "memory://"


@pytest.fixture(autouse=True)
def no_service_left_running() -> Iterator[None]:
    """A test ends with every service process it started stopped. One left running holds
    its consumer group on the session's Kafka cluster, and a later test's reset fails on it
    (CI once lost 13 tests that way to a replica a fixture forgot): it is stopped here and
    this test errors, naming it."""
    before = {id(service) for service in running_services()}
    yield
    left = [service for service in running_services() if id(service) not in before]
    for service in left:
        service.stop()
    if left:
        pytest.fail("left running: " + ", ".join(f"{s.name} (log {s.log_file})" for s in left))


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


@pytest.fixture
def broker(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BrokerProfile]:
    """The broker of this test (parametrised by ``pytest_generate_tests``): ``bootstrap``,
    the Beacon ``settings`` that go with it, its ``table_store``; ``stop()`` on Tansu only."""
    if getattr(request, "param", "tansu") in ("kafka", "kafka3"):
        name = "kafka_cluster_3" if request.param == "kafka3" else "kafka_cluster"
        cluster: KafkaCluster = request.getfixturevalue(name)
        cluster.reset()
        yield BrokerProfile(
            "kafka",
            cluster.bootstrap,
            production_broker_settings(cluster.replication_factor),
            table_store=PRODUCTION_TABLE_STORE,
        )
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
