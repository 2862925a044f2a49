"""Fixtures for the ingest tests: keys created through the real CLI (on the test's broker),
the ingest service as a real process."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from harness.cli import beacon_cli
from harness.services import ServiceProcess


@pytest.fixture
def ingest_env(env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    return {
        **env,
        "BEACON_INGEST_KAFKA_TIMEOUT_S": "3",
        "BEACON_INGEST_RETRY_AFTER_S": "7",
    }


@pytest.fixture
def create_key(ingest_env: dict[str, str]) -> Callable[[str, str], str]:
    def create(source: str, scope: str) -> str:
        return beacon_cli(ingest_env, "apikeys", "create", "--source", source, "--scope", scope).stdout.strip()

    return create


@pytest.fixture
def ingest(settings, ingest_env: dict[str, str], tmp_path: Path) -> Iterator[ServiceProcess]:
    with ServiceProcess("ingest", ingest_env, tmp_path / "ingest.log", port=settings.ingest_port) as service:
        yield service


@pytest.fixture
def client(settings, ingest: ServiceProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"http://127.0.0.1:{settings.ingest_port}", timeout=30) as c:
        yield c
