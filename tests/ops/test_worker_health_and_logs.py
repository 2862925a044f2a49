"""Real worker processes: /readyz stays 503 until the group is joined and tables recovered;
every line a worker writes is one JSON object, and none carries an event's payload."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from beacon.core.schemas import example_event
from beacon.core.topics import EVENTS, EVENTS_DLQ, EVENTS_RAW
from harness.kafka import produce, produce_events, read_alerts, read_topic
from harness.services import ServiceProcess
from harness.smtp import SmtpServer
from harness.twilio_mock import ACCOUNT_SID, AUTH_TOKEN, Prism, TwilioProxy
from notifier.stack import spare_port

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
        assert read_alerts(settings, expect=1, timeout_s=60)
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


def _garbage_http(port: int) -> None:
    """A request line no HTTP server can parse: servers log it (uvicorn did so as text)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(b"NOT AN HTTP REQUEST \x00\xff\r\n\r\n")
        with contextlib.suppress(OSError):
            conn.recv(1024)


def test_every_line_of_every_service_is_json_through_traffic_bad_requests_and_an_sms(env, settings, tmp_path):
    """Ingest's and the console's uvicorn lines were text, and the twilio client logged ~11
    INFO lines per SMS with the account SID in the URL. Every service runs as a real process;
    every line it writes (stdout and stderr) must be one JSON object carrying no secret, no
    account SID and no message body, and each SMS gets one Beacon line."""
    from console.support import PASSWORD, USER, USER_ACCESS, logged_in_client
    from harness.cli import beacon_cli
    from notifier.stack import Stack, notifier_env

    link_secret = "ack-link-secret-of-this-test-0123456789"
    common = {
        **env,
        "BEACON_CONSOLE_SESSION_SECRET": "console-session-secret-of-this-test-0123",
        "BEACON_ACK_LINK_SECRET": link_secret,
    }
    token = beacon_cli(common, "apikeys", "create", "--source", "met-police", "--scope", "police").stdout.strip()
    subprocess.run(
        [sys.executable, "-m", "beacon", "console-user", "add", USER, *USER_ACCESS],
        input=PASSWORD + "\n",
        env=common,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    prism = Prism(tmp_path / "prism.log").start()
    twilio = TwilioProxy(prism, port=spare_port(settings)).start()
    smtp = SmtpServer(tmp_path / "tls", port=spare_port(settings)).start()
    stack = Stack(settings, notifier_env(common, settings, twilio, smtp), twilio, smtp, tmp_path / "notifier.log")
    services = [
        ServiceProcess("ingest", common, tmp_path / "ingest.log", port=settings.ingest_port),
        ServiceProcess("console", common, tmp_path / "console.log", port=settings.console_port),
        ServiceProcess("validator", common, tmp_path / "validator.log", port=settings.validator_port),
        ServiceProcess("correlator", common, tmp_path / "correlator.log", port=settings.correlator_port),
    ]
    report = example_event("beacon.episode.reported.v1")
    report["time"] = datetime.now(UTC).isoformat()
    report["data"]["started_at"] = (datetime.now(UTC) - timedelta(minutes=30)).isoformat()
    try:
        for service in services:
            service.start()
        stack.start()
        ingest = f"http://127.0.0.1:{settings.ingest_port}"
        auth = {"Authorization": f"Bearer {token}"}
        assert httpx.post(f"{ingest}/v1/events", json=report, headers=auth, timeout=10).status_code == 202
        assert httpx.post(f"{ingest}/v1/events", content=b"{bad", headers=auth, timeout=10).status_code == 415
        assert httpx.post(f"{ingest}/v1/events", json=report, headers={"Authorization": "Bearer x"}).status_code == 401
        assert httpx.get(f"{ingest}/nowhere", timeout=10).status_code == 404
        console = logged_in_client(settings)
        assert console.get("/children/CH-NOBODY-1").status_code == 404
        assert httpx.post(f"{stack.url}/a/forged.token", timeout=10).status_code == 400
        produce(settings, EVENTS_RAW, [(None, b"\xff not json")])
        for port in (settings.ingest_port, settings.console_port, settings.notifier_port):
            _garbage_http(port)
        # The policy (deploy/policies/default.yaml) names the team manager for a high-risk triage.
        sms = stack.phone(stack.role("team_manager")).expect_sms(contains=report["data"]["episode_ref"], timeout_s=90)
        read_topic(settings, EVENTS_DLQ, expect=1, timeout_s=60)
    finally:
        for service in [*services, stack.notifier]:
            if service is not None:
                service.stop()  # SIGTERM: the shutdown lines are checked too
        smtp.stop()
        twilio.stop()
        prism.stop()

    secrets = [ACCOUNT_SID, AUTH_TOKEN, token, link_secret, PASSWORD, "console-session-secret-of-this-test-0123"]
    for service in [*services, stack.notifier]:
        assert service is not None
        lines = service.log_file.read_text().splitlines()
        assert lines, service.name
        for line in lines:
            record = json.loads(line)  # every line, whoever wrote it
            assert isinstance(record, dict) and {"event", "level", "timestamp"} <= record.keys(), (service.name, line)
            assert sms.body not in line, (service.name, line)
            for secret in secrets:
                assert secret not in line, (service.name, secret, line)
        if service.name == "notifier":
            records = [json.loads(line) for line in lines]
            assert not [r for r in records if r.get("logger", "").startswith("twilio")], "twilio client lines"
            assert len([r for r in records if r["event"] == "sent" and r.get("channel") == "sms"]) == 1
