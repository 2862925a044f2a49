"""Apache Kafka in KRaft mode for the suite, run from the jars that `make kafka` copies
into tests/tools/kafka/lib (tests/tools/kafka/pom.xml pins the version).

Each node is a combined broker + controller on free loopback ports. A cluster is
started once per test session (JVM start and format take seconds on a shared
2-core machine); tests share it and ``reset()`` gives each one an empty cluster.
"""

from __future__ import annotations

import base64
import os
import shutil
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

from kafka.admin import ACL, KafkaAdminClient
from kafka.errors import KafkaError

from beacon.runtime.broker import free_port, kafka_answers
from harness.kafka_tls import (
    SCRAM_MECHANISM,
    SCRAM_PASSWORD,
    SCRAM_USER,
    SCRAM_USER_WITHOUT_ACLS,
    BrokerTls,
    make_broker_tls,
)

KAFKA_DIR = Path(__file__).resolve().parents[1] / "tools" / "kafka"
KAFKA_LIB = KAFKA_DIR / "lib"
LOG4J_CONFIG = KAFKA_DIR / "log4j2.yaml"
# Heap per node: enough for the suite's topics, small enough for seven engineers on 2 cores.
NODE_HEAP = "-Xmx384m"
INTERNAL_TOPIC_PREFIX = "__"


class KafkaNotInstalled(RuntimeError):
    """The broker's jars are missing: `make kafka` fetches them."""


@dataclass(frozen=True)
class KafkaNode:
    node_id: int
    port: int
    controller_port: int
    secure_port: int  # SASL_SSL (SCRAM over TLS), when the cluster has that listener
    data_dir: Path


def _java_command(main_class: str, *args: str) -> list[str]:
    if not (KAFKA_LIB / ".installed").exists():
        raise KafkaNotInstalled(f"Apache Kafka's jars are not in {KAFKA_LIB}: run `make kafka`")
    java = shutil.which("java")
    if java is None:
        raise KafkaNotInstalled("no `java` on PATH: Apache Kafka needs Java 17 or newer")
    return [
        java,
        NODE_HEAP,
        "-XX:+UseSerialGC",  # one GC thread: the machine has 2 cores for everything
        "-XX:TieredStopAtLevel=1",  # C1 only: faster start, less CPU; a test broker is never hot
        f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
        "-cp",
        f"{KAFKA_LIB}/*",
        main_class,
        *args,
    ]


def new_cluster_id() -> str:
    """A random Kafka cluster id: 16 bytes in unpadded base64url, never starting with '-'
    (the storage tool would read it as an option), as ``kafka-storage random-uuid`` makes."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def _beacon_processes() -> list[str]:
    """``pid: command line (log file)`` of every ``python -m beacon`` process still running:
    the log file's directory names the test that started it."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            if b"beacon" in argv[:3] and b"-m" in argv[:3]:
                log = os.readlink(proc / "fd" / "1")
                found.append(f"{proc.name}: {b' '.join(argv).decode(errors='replace').strip()} ({log})")
        except OSError:
            continue  # exited while we looked, or not ours
    return found


def _delete_groups(admin: KafkaAdminClient, groups: list[str], timeout_s: float) -> None:
    """Delete every consumer group. One a killed worker still holds answers NonEmptyGroup
    until that member's session times out: retried until then, because a test whose worker
    joined a leftover group waits for the dead member and may be handed no partitions. A
    group still holding members after ``timeout_s`` has a live member: a process a previous
    test left running, named in the error."""
    deadline = time.monotonic() + timeout_s
    while groups:
        results = admin.delete_groups(groups)
        groups = [group for group, result in results.items() if result != "OK" and "NotFound" not in result]
        if not groups:
            return
        if time.monotonic() > deadline:
            described = admin.describe_groups(groups)
            members = {
                group: [f"{m.get('client_id')}@{m.get('client_host')}" for m in info.get("members", [])]
                for group, info in described.items()
            }
            raise RuntimeError(
                f"consumer groups still have members after {timeout_s:.0f}s: {members}; "
                f"Beacon processes running: {_beacon_processes() or 'none'}"
            )
        time.sleep(0.5)


class KafkaCluster:
    """Format, start, await and stop ``size`` KRaft nodes (each broker and controller).

    With three nodes it is shaped like production (deploy/k8s/kafka.yaml): replication
    factor 3 by default and min.insync.replicas 2.
    """

    def __init__(self, workdir: Path, size: int = 1, sasl_ssl: bool = False):
        self.workdir = workdir
        self.size = size
        self.nodes = [
            KafkaNode(i, free_port(), free_port(), free_port(), workdir / f"node-{i}" / "data")
            for i in range(1, size + 1)
        ]
        # A second listener speaking SASL_SSL: TLS with a CA made here, SCRAM logins.
        self.tls: BrokerTls | None = make_broker_tls(workdir / "tls") if sasl_ssl else None
        self.processes: dict[int, subprocess.Popen[bytes]] = {}

    @property
    def bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)

    @property
    def secure_bootstrap(self) -> str:
        if self.tls is None:
            raise RuntimeError("this cluster has no SASL_SSL listener (KafkaCluster(sasl_ssl=True))")
        return ",".join(f"127.0.0.1:{n.secure_port}" for n in self.nodes)

    @property
    def replication_factor(self) -> int:
        return min(self.size, 3)

    def properties(self, node: KafkaNode) -> str:
        voters = ",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in self.nodes)
        min_isr = 2 if self.size >= 3 else 1
        lines = {
            "process.roles": "broker,controller",
            "node.id": node.node_id,
            "controller.quorum.voters": voters,
            "listeners": f"PLAINTEXT://127.0.0.1:{node.port},CONTROLLER://127.0.0.1:{node.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{node.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": node.data_dir,
            # As in deploy/k8s/kafka.yaml, scaled to the cluster's size.
            "offsets.topic.replication.factor": self.replication_factor,
            "transaction.state.log.replication.factor": self.replication_factor,
            "transaction.state.log.min.isr": min_isr,
            "default.replication.factor": self.replication_factor,
            "min.insync.replicas": min_isr,
            "auto.create.topics.enable": "false",
            # Test-only: a consumer group's first join is not held 3 s waiting for more members,
            # and fewer partitions for the internal topics than the default 50 (less start-up work).
            "group.initial.rebalance.delay.ms": 0,
            "offsets.topic.num.partitions": 4,
            "transaction.state.log.num.partitions": 4,
            "num.network.threads": 2,
            "num.io.threads": 2,
            "log.flush.interval.messages": 1_000_000,
        }
        if self.tls is not None:
            lines["listeners"] += f",SASL_SSL://127.0.0.1:{node.secure_port}"
            lines["advertised.listeners"] += f",SASL_SSL://127.0.0.1:{node.secure_port}"
            lines["listener.security.protocol.map"] += ",SASL_SSL:SASL_SSL"
            lines["sasl.enabled.mechanisms"] = SCRAM_MECHANISM
            lines[f"listener.name.sasl_ssl.{SCRAM_MECHANISM.lower()}.sasl.jaas.config"] = (
                "org.apache.kafka.common.security.scram.ScramLoginModule required;"
            )
            lines["ssl.keystore.type"] = "PEM"
            lines["ssl.keystore.location"] = self.tls.keystore_file
            # As deploy/k8s/kafka.yaml (authorization: simple): a SCRAM user may do only what an
            # ACL allows it (``grant``). The plaintext and controller listeners' ANONYMOUS is a
            # super user, so the harness and every plaintext test are unaffected.
            lines["authorizer.class.name"] = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
            lines["super.users"] = "User:ANONYMOUS"
        return "".join(f"{key}={value}\n" for key, value in lines.items())

    def _config_file(self, node: KafkaNode) -> Path:
        return self.workdir / f"node-{node.node_id}" / "server.properties"

    def _log_file(self, node: KafkaNode) -> Path:
        return self.workdir / f"node-{node.node_id}" / "kafka.log"

    def format(self) -> None:
        cluster_id = new_cluster_id()
        # SCRAM credentials live in the cluster metadata: written when the storage is formatted.
        scram: tuple[str, ...] = ()
        if self.tls is not None:
            for user in (SCRAM_USER, SCRAM_USER_WITHOUT_ACLS):
                scram += ("--add-scram", f"{SCRAM_MECHANISM}=[name={user},password={SCRAM_PASSWORD}]")
        for node in self.nodes:
            config = self._config_file(node)
            config.parent.mkdir(parents=True, exist_ok=True)
            config.write_text(self.properties(node))
            with open(self._log_file(node), "ab") as log:
                subprocess.run(
                    _java_command("kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(config), *scram),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    check=True,
                    timeout=120,
                )

    def start_node(self, node: KafkaNode) -> None:
        log = open(self._log_file(node), "ab")  # noqa: SIM115 - the handle outlives this call (a child process)
        self.processes[node.node_id] = subprocess.Popen(
            _java_command("kafka.Kafka", str(self._config_file(node))),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: Ctrl-C reaches it only through stop()
        )

    def start(self, timeout_s: float = 180.0) -> KafkaCluster:
        self.format()
        for node in self.nodes:
            self.start_node(node)
        try:
            self.wait_ready(timeout_s)
        except BaseException:
            self.stop()
            raise
        return self

    def wait_ready(self, timeout_s: float) -> None:
        """Until every node answers metadata and is a registered broker of the cluster."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for node_id, process in self.processes.items():
                if process.poll() is not None:
                    raise RuntimeError(f"Kafka node {node_id} exited with {process.returncode}:\n{self.log_tail()}")
            if kafka_answers(self.bootstrap, timeout_s=2.0) and len(self.broker_ids()) == self.size:
                return
            time.sleep(0.5)
        raise TimeoutError(f"Kafka did not answer on {self.bootstrap} within {timeout_s:.0f}s:\n{self.log_tail()}")

    def admin(self) -> KafkaAdminClient:
        return KafkaAdminClient(bootstrap_servers=self.bootstrap, client_id="beacon-test-harness")

    def broker_ids(self) -> set[int]:
        """The ids of the brokers the cluster has registered and not fenced."""
        try:
            admin = self.admin()
        except KafkaError:
            return set()
        try:
            brokers = admin.describe_cluster()["brokers"]
            return {int(b["broker_id"]) for b in brokers if not b.get("is_fenced")}
        except KafkaError:
            return set()
        finally:
            admin.close()

    def grant(self, user: str, acls: list[ACL]) -> None:
        """Allow SCRAM ``user`` what ``acls`` name (their principal is replaced); granting
        again is a no-op."""
        admin = self.admin()
        try:
            principal = f"User:{user}"
            named = [ACL(principal, a.host, a.operation, a.permission_type, a.resource_pattern) for a in acls]
            result = admin.create_acls(named)
            if result["failed"]:
                raise RuntimeError(f"ACLs refused: {result['failed']}")
        finally:
            admin.close()

    def reset(self, timeout_s: float = 60.0) -> None:
        """Delete every topic and consumer group a previous test left, so that this test
        starts from an empty cluster (what a fresh embedded broker gives a Tansu test)."""
        admin = self.admin()
        try:
            topics = [t for t in admin.list_topics() if not t.startswith(INTERNAL_TOPIC_PREFIX)]
            if topics:
                admin.delete_topics(topics, timeout_ms=int(timeout_s * 1000))
            _delete_groups(admin, [g["group_id"] for g in admin.list_groups()], timeout_s)
            deadline = time.monotonic() + timeout_s
            while set(topics) & set(admin.list_topics()):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"topics not deleted within {timeout_s:.0f}s: {topics}")
                time.sleep(0.1)
        finally:
            admin.close()

    def log_tail(self, lines: int = 40) -> str:
        tails = []
        for node in self.nodes:
            try:
                text = self._log_file(node).read_text(errors="replace").splitlines()[-lines:]
            except OSError:
                text = ["(no log)"]
            tails.append(f"--- node {node.node_id}\n" + "\n".join(text))
        return "\n".join(tails)

    def stop_node(self, node_id: int, sig: int = signal.SIGTERM, timeout_s: float = 60.0) -> None:
        process = self.processes.get(node_id)
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, sig)
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def stop(self) -> None:
        """SIGTERM to every node at once. In a cluster of three the last nodes' controlled
        shutdown waits for a controller quorum that is already gone; they get SIGKILL after
        10 s (the session's data is thrown away anyway)."""
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for node_id in list(self.processes):
            self.stop_node(node_id, timeout_s=10.0 if self.size > 1 else 60.0)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
