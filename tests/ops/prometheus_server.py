"""Debian's ``prometheus`` binary as a real peer: a generated config, a throw-away TSDB,
a free loopback port, and the HTTP query API."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx
import yaml

from beacon.runtime import processes
from beacon.runtime.broker import free_port


class PrometheusServer:
    def __init__(
        self, workdir: Path, targets: dict[str, str], scrape_interval: str = "1s", rule_files: tuple[Path, ...] = ()
    ):
        """``targets`` maps a job name to one ``host:port``."""
        self.workdir, self.port = workdir, free_port()
        self.config_file = workdir / "prometheus.yml"
        self.log_file = workdir / "prometheus.log"
        self.config: dict[str, Any] = {
            "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval},
            "rule_files": [str(p) for p in rule_files],
            "scrape_configs": [
                {"job_name": job, "static_configs": [{"targets": [target]}]} for job, target in targets.items()
            ],
        }
        self.process: processes.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 60.0) -> PrometheusServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(yaml.safe_dump(self.config))
        self.process = processes.start(
            [
                "prometheus",
                f"--config.file={self.config_file}",
                f"--storage.tsdb.path={self.workdir / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            log_file=self.log_file,
        )
        self.wait_for(
            lambda: httpx.get(f"{self.url}/-/ready", timeout=1).status_code == 200, timeout_s, "prometheus ready"
        )
        return self

    def wait_for(self, condition: Callable[[], bool], timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"prometheus exited: {self.log_file.read_text()[-3000:]}")
            try:
                if condition():
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise TimeoutError(f"waited {timeout_s:.0f}s for {what}")

    def query(self, promql: str) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=5)
        response.raise_for_status()
        body = response.json()
        assert body["status"] == "success", body
        return body["data"]["result"]

    def value(self, promql: str) -> float | None:
        """The single value of an instant query, or None when it returns no series."""
        result = self.query(promql)
        if not result:
            return None
        assert len(result) == 1, f"{promql} returned {len(result)} series"
        return float(result[0]["value"][1])

    def stop(self) -> None:
        if self.process is not None:
            processes.stop(self.process, timeout_s=20)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
