"""The whole path, every hop a real process or server: a police system POSTs to the
ingest API -> Kafka -> correlator -> alerts -> notifier -> Twilio (Prism) -> the on-call
phone replies -> acknowledged -> the child is found -> the paged person hears of it."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from beacon.core.alerts import AlertRecord
from beacon.core.schemas import example_event
from beacon.core.topics import ACKS, ALERTS, AUDIT, EVENTS, NOTIFICATIONS
from beacon.ingest.apikey_topic import ApiKeyStore
from beacon.ingest.settings import IngestSettings
from beacon.runtime.settings import load_settings
from harness.contract import assert_match_published_schema
from harness.kafka import read_alerts, read_topic
from harness.services import ServiceProcess
from harness.smtp import SmtpServer
from harness.twilio_mock import Prism, TwilioProxy
from notifier.stack import Stack, notifier_env, spare_port

pytestmark = [pytest.mark.slow, pytest.mark.table_stores]


def _iso(ts: datetime) -> str:
    return ts.isoformat().replace("+00:00", "Z")


@pytest.fixture
def stack(settings, env, tmp_path: Path) -> Iterator[tuple[Stack, str]]:
    """Prism + SMTP + notifier (the notifier's own harness), plus ingest and correlator."""
    prism = Prism(tmp_path / "prism.log").start()
    twilio = TwilioProxy(prism, port=spare_port(settings)).start()
    smtp = SmtpServer(tmp_path / "tls", port=spare_port(settings)).start()
    full_env = notifier_env(env, settings, twilio, smtp)
    ingest_settings = load_settings(IngestSettings, kafka_bootstrap_servers=settings.kafka_bootstrap_servers)
    _, token = ApiKeyStore(ingest_settings).create("met-police", "police", ingest_settings.ingest_scopes)
    s = Stack(settings, full_env, twilio, smtp, tmp_path / "notifier.log")
    ingest = ServiceProcess("ingest", full_env, tmp_path / "ingest.log", port=settings.ingest_port)
    correlator = ServiceProcess("correlator", full_env, tmp_path / "correlator.log", port=settings.correlator_port)
    try:
        ingest.start()
        correlator.start()
        yield s.start(), token
    finally:
        for process in (s.notifier, correlator, ingest):
            if process:
                process.stop()
        smtp.stop()
        twilio.stop()
        prism.stop()


def test_a_report_posted_twice_pages_once_the_reply_acknowledges_and_the_return_is_told(stack, settings):
    notifier, token = stack
    now = datetime.now(UTC)
    report = copy.deepcopy(example_event("beacon.episode.reported.v1"))  # high risk, placed by Southwark
    report["time"] = _iso(now - timedelta(minutes=1))
    report["data"]["started_at"] = _iso(now - timedelta(minutes=30))
    episode = report["data"]["episode_ref"]
    ingest = httpx.Client(
        base_url=f"http://127.0.0.1:{settings.ingest_port}", headers={"Authorization": f"Bearer {token}"}, timeout=30
    )

    # A resend (same source and id) is accepted and changes nothing downstream.
    assert ingest.post("/v1/events", json=report).status_code == 202
    assert ingest.post("/v1/events", json=report).status_code == 202

    # The policy (deploy/policies/default.yaml) names the team manager for a high-risk triage.
    oncall = notifier.role("team_manager")
    phone = notifier.phone(oncall)
    page = phone.expect_sms(contains=episode, timeout_s=60)
    assert report["subject"] not in page.body  # a case reference, never the child reference

    raised = [AlertRecord.from_json(r.value) for r in read_alerts(settings, expect=1, timeout_s=30)]
    triage = [a for a in raised if a.rule == "triage" and a.status == "raised"]
    assert len(triage) == 1 and triage[0].trigger_event_ids[0] == report["id"]
    assert len({a.alert_id for a in raised}) == len(raised), "an alert was raised twice"

    phone.reply(f"{page.code}a")
    notifier.wait_state(triage[0], lambda state: state.get("acked_by") == oncall)

    found = copy.deepcopy(example_event("beacon.episode.found.v1"))
    found["time"] = _iso(datetime.now(UTC))
    found["data"]["ended_at"] = found["time"]
    assert ingest.post("/v1/events", json=found).status_code == 202
    resolution = phone.expect_sms(contains=episode, timeout_s=60)
    assert resolution.body != page.body
    phone.expect_no_sms(settle_s=3)  # one page, one resolution: nothing else

    # What Beacon wrote on the way, on every topic, is what its published schemas say.
    written = {ALERTS: 2, ACKS: 1, AUDIT: 4, NOTIFICATIONS: 2, EVENTS: 3}
    for topic, at_least in written.items():
        records = read_topic(settings, topic, expect=at_least, timeout_s=30, settle_s=0)
        assert len(records) >= at_least, f"{topic}: {len(records)} records"
        assert_match_published_schema(topic, records)
