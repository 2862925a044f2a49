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


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker(log_file=tmp_path / "broker.log") as embedded:
        yield embedded


@pytest.fixture
def settings(broker: EmbeddedBroker, table_store: str, tmp_path: Path) -> Settings:
    """Settings pointing at this test's broker, with the topics created."""
    s = load_settings(
        kafka_bootstrap_servers=broker.bootstrap,
        kafka_single_record_batches=True,
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
def env(settings: Settings) -> dict[str, str]:
    """Process environment carrying ``settings`` to service subprocesses."""
    fields = (
        "kafka_bootstrap_servers",
        "kafka_single_record_batches",
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
