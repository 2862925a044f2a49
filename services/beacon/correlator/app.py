"""Correlator worker (walking skeleton): events in, alert records out.

Thin shell only: the rules live in pure functions; this module moves data.
"""

from __future__ import annotations

from datetime import datetime, timezone

from beacon.core.alerts import AlertRecord, Severity, alert_id
from beacon.core.events import CloudEvent, EpisodeReported, event_from_json
from beacon.core.faust_app import make_faust_app
from beacon.core.metrics import ALERTS_RAISED
from beacon.core.settings import get_settings
from beacon.core.topics import ALERTS, EVENTS

settings = get_settings()
app = make_faust_app("correlator", settings, settings.correlator_port)
events_topic = app.topic(EVENTS, key_serializer="raw", value_serializer="raw")
alerts_topic = app.topic(ALERTS, key_serializer="raw", value_serializer="raw")


def skeleton_alerts(event: CloudEvent, now: datetime) -> list[AlertRecord]:
    """Placeholder rule until the rules engine lands: page on a high-risk report."""
    data = event.data
    if not isinstance(data, EpisodeReported) or data.risk.value != "high":
        return []
    return [
        AlertRecord(
            alert_id=alert_id(event.subject, data.episode_ref, "triage", "high"),
            status="raised",
            child_ref=event.subject,
            episode_ref=data.episode_ref,
            rule="triage",
            step="high",
            severity=Severity.high,
            reason="Child reported missing, police risk high",
            council=data.placing_council,
            occurred_at=event.time,
            emitted_at=now,
            trigger_event_ids=(event.id,),
        )
    ]


@app.agent(events_topic)
async def correlate(stream):  # type: ignore[no-untyped-def]
    async for payload in stream:
        event = event_from_json(payload)
        for alert in skeleton_alerts(event, datetime.now(timezone.utc)):
            await alerts_topic.send(key=alert.key, value=alert.to_json())
            ALERTS_RAISED.labels(rule=alert.rule, severity=alert.severity.value).inc()
