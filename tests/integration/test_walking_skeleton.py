"""One event end to end through real processes: Kafka -> correlator -> alerts -> notifier -> outbox."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from kafka.admin import KafkaAdminClient

from beacon.core.alerts import AlertRecord
from beacon.core.schemas import example_event
from beacon.core.topics import EVENTS, TOPICS
from harness.kafka import produce_events, read_alerts
from harness.services import ServiceProcess

pytestmark = [pytest.mark.slow, pytest.mark.table_stores]


def test_high_risk_report_reaches_the_outbox(settings, env, tmp_path):
    report = example_event("beacon.episode.reported.v1")  # risk: high
    # Reported now (the example is dated in the past; the duration ladder would page too).
    now = datetime.now(UTC)
    report["time"] = now.isoformat()
    report["data"] = {**report["data"], "started_at": (now - timedelta(minutes=30)).isoformat()}
    with (
        ServiceProcess("correlator", env, tmp_path / "correlator.log", port=settings.correlator_port),
        ServiceProcess("notifier", env, tmp_path / "notifier.log", port=settings.notifier_port),
    ):
        produce_events(settings, EVENTS, [report])
        alerts = [AlertRecord.from_json(r.value) for r in read_alerts(settings, expect=1, timeout_s=60)]
        assert [a.episode_ref for a in alerts if a.status == "raised"] == [report["data"]["episode_ref"]]
        assert alerts[0].trigger_event_ids[:1] == (report["id"],)

        outbox = settings.outbox_dir / "notifications.jsonl"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not outbox.exists():
            time.sleep(0.2)
        lines = [json.loads(line) for line in outbox.read_text().splitlines()]
        assert any(line["alert_id"] == alerts[0].alert_id for line in lines)
        assert all(report["subject"] not in line["body"] for line in lines)

    # The workers made no topic of their own: `topics create` declares every one they read
    # (a topic a worker creates after its group's assignment is never read on Kafka), and
    # Faust's leader-election topic is switched off.
    admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    try:
        used = {t for t in admin.list_topics() if not t.startswith("__")}
    finally:
        admin.close()
    assert used <= {spec.name for spec in TOPICS}, used - {spec.name for spec in TOPICS}
