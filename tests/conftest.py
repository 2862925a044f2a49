"""Shared fixtures. Integration tests get a real Tansu broker of their own (it starts in
well under a second, and a fresh broker per test means no test sees another's records)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from beacon.core.broker import EmbeddedBroker, free_port
from beacon.core.settings import Settings, load_settings
from beacon.core.topics import ensure_topics
from harness.services import service_env


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker(log_file=tmp_path / "broker.log") as embedded:
        yield embedded


@pytest.fixture
def settings(broker: EmbeddedBroker, tmp_path: Path) -> Settings:
    """Settings pointing at this test's broker, with the topics created."""
    s = load_settings(
        kafka_bootstrap_servers=broker.bootstrap,
        kafka_single_record_batches=True,
        data_dir=tmp_path / "data",
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
        "outbox_dir",
        "correlator_port",
        "notifier_port",
        "ingest_port",
        "console_port",
        "validator_port",
    )
    return service_env(**{f: getattr(settings, f) for f in fields})
