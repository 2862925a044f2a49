"""Batch agents (beacon.runtime.faust_batch) on the real broker, the worker a real process:
every record delivered once per partition in order, offsets committed only after the
handler returned, and a failing handler stops the worker without skipping anything."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest
from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

from beacon.runtime import processes
from beacon.runtime.broker import free_port
from harness.kafka import produce
from harness.services import REPO_ROOT

pytestmark = pytest.mark.slow

APP = Path(__file__).with_name("batch_agent_app.py")
TOPIC = "beacon.test.batches"
GROUP = "beacon-batch-test"


@pytest.fixture
def topic(settings):
    admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    try:
        admin.create_topics([NewTopic(TOPIC, num_partitions=4, replication_factor=1)])
    finally:
        admin.close()
    return TOPIC


def _start(env: dict[str, str], out: Path, log: Path, **extra: str) -> tuple[processes.Process, int]:
    port = free_port()
    extra_env = {"PYTHONPATH": f"{REPO_ROOT / 'services'}", "BATCH_PORT": str(port), "BATCH_OUT": str(out), **extra}
    return processes.start([sys.executable, APP], {**env, **extra_env}, log), port


def _delivered(out: Path) -> list[list[tuple[int, int, str]]]:
    if not out.exists():
        return []
    return [[tuple(r) for r in json.loads(line)] for line in out.read_text().splitlines()]


def _wait_for(predicate, timeout_s: float, what: str, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    tail = log.read_text()[-3000:] if log and log.exists() else ""
    raise AssertionError(f"timed out waiting for {what}\n{tail}")


def _committed(settings) -> dict[int, int | None]:
    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers, group_id=GROUP, enable_auto_commit=False)
    try:
        return {p: consumer.committed(TopicPartition(TOPIC, p)) for p in range(4)}
    finally:
        consumer.close()


def _stop(proc: processes.Process) -> None:
    processes.stop(proc, timeout_s=20)


def _records(n: int, poison_at: int | None = None) -> list[tuple[bytes, bytes]]:
    return [(f"child-{i % 37}".encode(), b"poison" if i == poison_at else f"v{i}".encode()) for i in range(n)]


def test_every_record_once_in_partition_order_and_committed_after_handling(settings, env, topic, tmp_path):
    out, log = tmp_path / "batches.jsonl", tmp_path / "worker.log"
    produce(settings, TOPIC, _records(600))
    proc, _ = _start(env, out, log)
    try:
        _wait_for(lambda: sum(map(len, _delivered(out))) >= 600, 90, "600 records", log=log)
        batches = _delivered(out)
        records = [r for batch in batches for r in batch]
        assert len(records) == 600 and len(set(records)) == 600  # each once
        assert sorted(v for _, _, v in records) == sorted(f"v{i}" for i in range(600))
        for partition in range(4):  # per partition, in offset order
            offsets = [o for p, o, _ in records if p == partition]
            assert offsets == sorted(offsets) and offsets == list(range(len(offsets)))
        assert max(map(len, batches)) > 1 and max(map(len, batches)) <= 50  # batches, capped per fetch
        ends = {p: sum(1 for q, _, _ in records if q == p) for p in range(4)}
        _wait_for(lambda: _committed(settings) == ends, 30, f"committed offsets {ends}", log=log)
    finally:
        _stop(proc)


def test_failing_handler_stops_the_worker_and_the_batch_is_read_again(settings, env, topic, tmp_path):
    out, log = tmp_path / "batches.jsonl", tmp_path / "worker.log"
    produce(settings, TOPIC, _records(200, poison_at=150))
    proc, _ = _start(env, out, log, BATCH_FAIL_ON="poison")
    try:
        assert proc.wait(90) != 0, "a failed batch must stop the worker"
    finally:
        _stop(proc)
    assert "batch agent failed" in log.read_text()
    first_run = {r for batch in _delivered(out) for r in batch}
    assert not any(v == "poison" for _, _, v in first_run)
    committed = _committed(settings)

    proc, _ = _start(env, out, log)  # fixed: the same group resumes from its committed offsets
    try:
        _wait_for(
            lambda: any(v == "poison" for b in _delivered(out) for _, _, v in b), 90, "the poison record", log=log
        )
        _wait_for(
            lambda: {v for b in _delivered(out) for _, _, v in b} >= {f"v{i}" for i in range(200) if i != 150},
            60,
            "every record",
            log=log,
        )
    finally:
        _stop(proc)
    everything = {r for batch in _delivered(out) for r in batch}
    # Nothing was skipped, and the restart re-read from the committed offsets, not beyond.
    assert {v for _, _, v in everything} == {f"v{i}" for i in range(200) if i != 150} | {"poison"}
    for partition, offset, value in everything - first_run:
        assert committed[partition] is None or offset >= committed[partition], (partition, offset, value)
