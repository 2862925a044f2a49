"""Notifier worker (walking skeleton): alert records in, notifications out.

Dev mode writes each notification to a JSONL outbox file instead of Twilio/SMTP.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from beacon.core.alerts import AlertRecord
from beacon.core.faust_app import make_faust_app
from beacon.core.metrics import NOTIFICATIONS
from beacon.core.settings import get_settings
from beacon.core.topics import ALERTS

settings = get_settings()
app = make_faust_app("notifier", settings, settings.notifier_port)
alerts_topic = app.topic(ALERTS, key_serializer="raw", value_serializer="raw")


def outbox_path() -> Path:
    return settings.outbox_dir / "notifications.jsonl"


def render_sms(alert: AlertRecord) -> str:
    return f"BEACON {alert.severity.value.upper()}: case {alert.episode_ref or alert.alert_id}. {alert.reason}."


@app.agent(alerts_topic)
async def notify(stream):  # type: ignore[no-untyped-def]
    outbox_path().parent.mkdir(parents=True, exist_ok=True)
    async for payload in stream:
        alert = AlertRecord.from_json(payload)
        line = {
            "channel": "outbox",
            "alert_id": alert.alert_id,
            "severity": alert.severity.value,
            "body": render_sms(alert),
            "written_at": datetime.now(timezone.utc).isoformat(),
        }
        with outbox_path().open("a") as out:
            out.write(json.dumps(line) + "\n")
        NOTIFICATIONS.labels(channel="outbox", outcome="sent").inc()
