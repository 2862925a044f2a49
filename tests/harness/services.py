"""Run Beacon services as real processes (``python -m beacon <name>``), as in production."""

from __future__ import annotations

import os
import secrets
import signal
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx

from beacon.runtime import processes

REPO_ROOT = Path(__file__).resolve().parents[2]


# As in dev mode: fresh random secrets for this test run (services refuse to start without).
TEST_SECRETS = {
    "ack_link_secret": secrets.token_urlsafe(32),
    "console_session_secret": secrets.token_urlsafe(32),
}


def service_env(**settings: object) -> dict[str, str]:
    """Environment for a service process: this checkout's code, this run's TEST_SECRETS and
    BEACON_* settings (a setting given as None is left unset)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BEACON_")}
    env["PYTHONPATH"] = str(REPO_ROOT / "services")
    env["PYTHONUNBUFFERED"] = "1"
    for name, value in {**TEST_SECRETS, **settings}.items():
        if value is not None:
            env[f"BEACON_{name.upper()}"] = str(value).lower() if isinstance(value, bool) else str(value)
    return env


# Every service process a test started, so that one a test forgot is stopped and named at
# that test's end (see ``left_running``), not found minutes later holding a consumer group.
_started: list[ServiceProcess] = []


def running_services() -> list[ServiceProcess]:
    """The service processes started so far that still run."""
    _started[:] = [s for s in _started if s.process is not None and s.process.poll() is None]
    return list(_started)


class ServiceProcess:
    """Start a service, wait until its HTTP port answers ``ready_path``, stop it on exit."""

    def __init__(
        self,
        name: str,
        env: dict[str, str],
        log_file: Path,
        port: int | None = None,
        ready_path: str = "/readyz",
        ready_timeout_s: float = 120.0,  # a loaded 2-core CI machine joining a Kafka group: well over 60 s
        args: tuple[str, ...] = (),
    ):
        self.name, self.env, self.log_file, self.port = name, env, log_file, port
        self.ready_path, self.ready_timeout_s, self.args = ready_path, ready_timeout_s, args
        self.process: processes.Process | None = None

    def start(self) -> ServiceProcess:
        self.process = processes.start([sys.executable, "-m", "beacon", self.name, *self.args], self.env, self.log_file)
        _started.append(self)
        if self.port is not None:
            try:
                self.wait_ready()
            except BaseException:
                self.stop()  # never leave a half-started service behind
                raise
        return self

    def wait_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + self.ready_timeout_s
        url = f"http://127.0.0.1:{self.port}{self.ready_path}"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                if httpx.get(url, timeout=1.0).status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"{self.name} not ready at {url}:\n{self.log_tail()}")

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 20.0) -> int | None:
        return processes.stop(self.process, timeout_s, sig) if self.process else None

    def kill(self) -> None:
        """SIGKILL: the crash a worker restart test simulates."""
        self.stop(signal.SIGKILL)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
