"""Fixtures for the console: a staff account made with the real CLI, and the console
running as its own process against this test's broker."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from console.support import PASSWORD, USER, USER_ACCESS
from harness.services import ServiceProcess


@pytest.fixture
def console_env(env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    console_env = dict(env)
    added = subprocess.run(
        [sys.executable, "-m", "beacon", "console-user", "add", USER, *USER_ACCESS],
        input=PASSWORD + "\n",
        env=console_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert added.returncode == 0, added.stderr
    return console_env


@pytest.fixture
def start_console(console_env: dict[str, str], settings, tmp_path: Path) -> Iterator[Any]:
    """Call to start the console (after producing what it should find at start); stopped at teardown."""
    started: list[ServiceProcess] = []

    def start() -> ServiceProcess:
        process = ServiceProcess("console", console_env, tmp_path / "console.log", port=settings.console_port)
        started.append(process.start())
        return process

    yield start
    for process in started:
        process.stop()
