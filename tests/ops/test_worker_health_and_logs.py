"""Real worker processes: /readyz stays 503 until the group is joined and tables recovered;
every line a worker writes is one JSON object, and none carries an event's payload."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from beacon.core.schemas import example_event
from beacon.core.topics import ALERTS, EVENTS
from harness.kafka import produce_events, read_topic
from harness.services import ServiceProcess

pytestmark = [pytest.mark.slow, pytest.mark.table_stores]


def test_readyz_is_503_until_the_worker_joined_its_group_then_200(env, settings, tmp_path):
    # A long session timeout makes Tansu hold the JoinGroup for half of it (shared/broker.md,
    # defect 3), so the web server is up well before the worker has partitions.
    slow_join = {**env, "BEACON_BROKER_SESSION_TIMEOUT_S": "20", "BEACON_BROKER_REBALANCE_TIMEOUT_S": "20"}
    url = f"http://127.0.0.1:{settings.correlator_port}"
    seen: list[tuple[int, dict]] = []
    with ServiceProcess("correlator", slow_join, tmp_path / "correlator.log") as worker:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (seen and seen[-1][0] == 200):
            assert worker.process is not None and worker.process.poll() is None, worker.log_tail()
            try:
                response = httpx.get(f"{url}/readyz", timeout=2)
                seen.append((response.status_code, response.json()))
                assert httpx.get(f"{url}/healthz", timeout=2).status_code == 200  # alive all along
            except httpx.TransportError:
                pass
            time.sleep(0.2)
    statuses = [status for status, _ in seen]
    assert statuses and statuses[-1] == 200, worker.log_tail()
    assert statuses[0] == 503, seen[:3]
    assert set(statuses) == {503, 200}
    for status, body in seen:
        assert body["ready"] is (status == 200)
        if status == 503:
            assert not body["tables_recovered"] or body["rebalancing"] or body["assigned_partitions"] == 0
    final = seen[-1][1]
    assert final["tables_recovered"] and not final["rebalancing"] and final["assigned_partitions"] > 0


def test_every_worker_log_line_is_json_without_payloads(env, settings, tmp_path):
    report = example_event("beacon.episode.reported.v1")
    workers = [
        ServiceProcess("correlator", env, tmp_path / "correlator.log", port=settings.correlator_port),
        ServiceProcess("notifier", env, tmp_path / "notifier.log", port=settings.notifier_port),
    ]
    try:
        for worker in workers:
            worker.start()
        produce_events(settings, EVENTS, [report])
        assert read_topic(settings, ALERTS, expect=1, timeout_s=60)
        outbox = settings.outbox_dir / "notifications.jsonl"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not outbox.exists():
            time.sleep(0.2)
        sms_body = json.loads(outbox.read_text().splitlines()[0])["body"]
    finally:
        for worker in workers:
            worker.stop()  # SIGTERM: the shutdown lines are checked too

    data_values = [str(v) for k, v in report["data"].items() if k != "episode_ref"]  # pseudonymous ref may be logged
    for worker in workers:
        lines = worker.log_file.read_text().splitlines()
        assert len(lines) > 20, worker.log_tail()  # start-up, assignment, shutdown
        loggers = set()
        for line in lines:
            record = json.loads(line)  # every line, Faust's own included
            assert isinstance(record, dict) and {"event", "level", "timestamp"} <= record.keys(), line
            loggers.add(record.get("logger", ""))
            assert "specversion" not in line and sms_body not in line, line
            for value in data_values:
                assert f'"{value}"' not in line, (value, line)
        assert any(name.startswith("faust") for name in loggers)
