"""The notifier's runtime wiring: settings, logging, the on-call config, the clock, the
Faust app with its topics and table, and the delivery channels. Every other shell module
(``agents``, ``delivery``, ``web``, ``test_clock``) imports what it needs from here; nothing
here decides anything."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import faust
from aiokafka.partitioner import murmur2
from faust.types import TP

from beacon.core.topics import ACKS, ALERTS, ALERTS_BACKLOG, AUDIT, EVENTS_DLQ, NOTIFIER_CHANGELOG
from beacon.core.topics import NOTIFICATIONS as NOTIFICATIONS_TOPIC
from beacon.core.topics import NOTIFIER_INPUTS as INPUTS
from beacon.notifier.channels import Channel, Outbox, SmtpEmail, TwilioSms
from beacon.notifier.clock import Clock
from beacon.notifier.directory import AlertDirectory
from beacon.notifier.escalation import Envelope, EscalationState
from beacon.notifier.oncall import load_oncall
from beacon.notifier.open_index import OpenIndex
from beacon.notifier.settings import NotifierSettings
from beacon.runtime.faust_app import make_faust_app
from beacon.runtime.logs import configure_logging, get_logger
from beacon.runtime.settings import load_settings

ESCALATIONS_TABLE = "escalations"

settings = load_settings(NotifierSettings)

configure_logging(settings.log_level)
log = get_logger("notifier")
oncall = load_oncall(settings.oncall_file)
clock = Clock(settings.data_dir / "notifier" / "clock_offset_s" if settings.notifier_test_clock else None)

app = make_faust_app("notifier", settings, settings.notifier_port)
# The owner's view of its own partitions (timer, dispatcher, expiry): see open_index.py.
index = OpenIndex(timedelta(days=settings.notifier_resolved_retention_days))
# Every replica's view of every partition (the web handlers): see directory.py.
directory = AlertDirectory()
app.beacon_views_loaded = lambda: directory.loaded  # type: ignore[attr-defined]  # /readyz waits for it
# Topic declarations (one place, so other branches' topic work merges here).
alerts_topic = app.topic(ALERTS, key_serializer="raw", value_serializer="raw")
alerts_backlog_topic = app.topic(ALERTS_BACKLOG, key_serializer="raw", value_serializer="raw")
acks_topic = app.topic(ACKS, key_serializer="raw", value_serializer="raw")
audit_topic = app.topic(AUDIT, key_serializer="raw", value_serializer="raw")
ledger_topic = app.topic(NOTIFICATIONS_TOPIC, key_serializer="raw", value_serializer="raw")
dlq_topic = app.topic(EVENTS_DLQ, key_serializer="raw", value_serializer="raw")
inputs_topic = app.topic(
    INPUTS, key_serializer="raw", value_serializer="raw", internal=True, partitions=settings.topic_partitions
)


def partition_of(alert_id: str) -> int:
    """The alert's partition of the inputs topic and of the table (the producer's murmur2)."""
    return (murmur2(alert_id.encode()) & 0x7FFFFFFF) % settings.topic_partitions


class EscalationsTable(faust.Table):  # type: ignore[misc]
    """The ``escalations`` table, which rebuilds the owner's ``OpenIndex`` once its partitions
    are recovered after every assignment, before the agent resumes (the only full read)."""

    async def on_recovery_completed(self, active_tps: set[TP], standby_tps: set[TP]) -> None:
        await super().on_recovery_completed(active_tps, standby_tps)
        active = {tp.partition for tp in active_tps}
        index.rebuild(
            EscalationState.model_validate(raw)
            for key, raw in list(self.items())
            if raw and partition_of(key) in active
        )
        index.current = True
        log.info("index_rebuilt", partitions=sorted(active), pending=len(index.pending), due=len(index.due))


escalations = EscalationsTable(
    app, name=ESCALATIONS_TABLE, default=None, key_type=str, partitions=settings.topic_partitions
)
app.tables.add(escalations)  # what app.Table does, with this class
ESCALATIONS_CHANGELOG = f"{app.conf.id}-{ESCALATIONS_TABLE}-changelog"
if ESCALATIONS_CHANGELOG != NOTIFIER_CHANGELOG:  # `topics create` makes the one topics.py declares
    raise RuntimeError(f"changelog {ESCALATIONS_CHANGELOG} is not the declared {NOTIFIER_CHANGELOG}")


@app.on_partitions_revoked.connect  # type: ignore[misc,arg-type]
async def _partitions_revoked(sender: Any, *args: Any, **kwargs: Any) -> None:
    index.current = False  # until the recovery after the next assignment rebuilds it


outbox_file = settings.outbox_dir / "notifications.jsonl"
channels: dict[str, Channel] = {
    "sms": TwilioSms(
        settings.twilio_account_sid,
        settings.twilio_auth_token.get_secret_value(),
        settings.twilio_from_number,
        settings.twilio_api_base_url,
        settings.notifier_send_timeout_s,
        settings.notifier_send_attempts,
        settings.notifier_retry_backoff_s,
    )
    if settings.twilio_account_sid
    else Outbox("sms", outbox_file),
    "email": SmtpEmail(
        settings.smtp_host,
        settings.smtp_port,
        settings.smtp_username,
        settings.smtp_password.get_secret_value(),
        settings.smtp_from,
        settings.smtp_starttls,
        settings.smtp_ca_file,
        settings.notifier_send_timeout_s,
        settings.notifier_send_attempts,
        settings.notifier_retry_backoff_s,
    )
    if settings.smtp_host
    else Outbox("email", outbox_file),
}
# Longest a send can take with every retry, plus a margin; after that it is retried.
STALE_SEND_S = (
    settings.notifier_send_attempts * (settings.notifier_send_timeout_s + 16 * settings.notifier_retry_backoff_s) + 30
)
base_url = settings.public_base_url.rstrip("/")


def load_state(alert_id: str) -> EscalationState | None:
    """The alert's state in this replica's own partitions of the table (the owner's read)."""
    raw = escalations.get(alert_id)
    return EscalationState.model_validate(raw) if raw else None


async def send_input(alert_id: str, inp: Any) -> Any:
    """Hand the input to the producer; returns the future of its write (await it for the ack)."""
    envelope = Envelope(at=clock.now(), input=inp)
    return await inputs_topic.send(key=alert_id.encode(), value=envelope.to_json())
