"""A real OpenID Connect provider for the tests: panva's oidc-provider (npm, tests/tools) run
by node as its own process, with the clients and accounts a test gives it."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any, Self

import httpx

from beacon.runtime import processes
from beacon.runtime.broker import free_port

TOOLS = Path(__file__).resolve().parents[1] / "tools"
PROVIDER_SCRIPT = TOOLS / "oidc" / "provider.mjs"


class OidcProvider:
    def __init__(self, work_dir: Path, clients: list[dict[str, Any]], accounts: dict[str, dict[str, Any]]):
        self.port = free_port()
        self.work_dir = work_dir
        self.config = {"clients": clients, "accounts": accounts}
        self.process: processes.Process | None = None

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Self:
        node = shutil.which("node")
        assert node, "node is needed for the OIDC provider (make tools)"
        config_file = self.work_dir / "oidc-provider.json"
        config_file.write_text(json.dumps(self.config))
        log_file = self.work_dir / "oidc-provider.log"
        self.process = processes.start(
            [node, str(PROVIDER_SCRIPT), str(self.port), str(config_file)], log_file=log_file
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"oidc-provider exited: {log_file.read_text()[-2000:]}")
            try:
                if httpx.get(self.issuer + "/.well-known/openid-configuration", timeout=0.5).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise TimeoutError("oidc-provider did not start")

    def stop(self) -> None:
        if self.process:
            processes.stop(self.process, timeout_s=10)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
