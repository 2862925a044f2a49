"""The notifier writes a transition's effects (ledger, audit, forwarded acknowledgements)
before its state, and applies the input again when an effect could not be written.

The kill test found the other order losing records: a worker SIGKILLed after an alert's
state reached the changelog and before its "pending" ledger record did left the state, and
the next owner, reading the raised alert again, emitted nothing (the state already held the
page). A kill lands in that window by chance; a ledger topic that refuses the record makes
the same window deterministic: with the state first, the page goes out and its ledger entry
is lost for good; with the effects first, nothing is applied until Kafka takes the record.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka.admin import ConfigResource, ConfigResourceType

from beacon.core.topics import NOTIFICATIONS
from beacon.runtime.topic_admin import described_topic_configs
from harness.brokers import KAFKA_ONLY
from harness.kafka import read_topic
from notifier.stack import Stack, notifier_stack

pytestmark = [pytest.mark.slow]

REFUSING = "64"  # bytes: below any record batch, so the broker refuses every ledger write
ACCEPTING = "1048588"  # Kafka's default


def _set_max_message_bytes(cluster, value: str) -> None:
    admin = cluster.admin()
    try:
        change = ConfigResource(ConfigResourceType.TOPIC, NOTIFICATIONS, configs={"max.message.bytes": value})
        admin.alter_configs([change], incremental=True)
        deadline = time.monotonic() + 30
        while described_topic_configs(admin, [NOTIFICATIONS])[NOTIFICATIONS]["max.message.bytes"] != value:
            assert time.monotonic() < deadline, "the topic config change was never applied"
            time.sleep(0.2)
    finally:
        admin.close()


@pytest.fixture
def stack(settings, env, tmp_path: Path) -> Iterator[Stack]:
    with notifier_stack(settings, env, tmp_path) as s:
        yield s


@pytest.mark.parametrize("broker", KAFKA_ONLY, indirect=True)
def test_an_alert_whose_ledger_record_kafka_refuses_pages_once_kafka_takes_it_with_its_ledger_whole(
    stack: Stack, kafka_cluster
):
    _set_max_message_bytes(kafka_cluster, REFUSING)
    stack.start()
    person = stack.oncall_person()
    phone = stack.phone(person)
    alert = stack.raise_alert()
    # The ledger refuses the page's "pending" record: the worker stops before it records the
    # state, so nothing is sent (sending first would lose the ledger entry for good).
    deadline = time.monotonic() + 60
    assert stack.notifier is not None and stack.notifier.process is not None
    while stack.notifier.process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert stack.notifier.process.poll() is not None, "the worker went on after an effect it could not write"
    assert "effect write failed" in stack.log_file.read_text()
    phone.expect_no_sms()

    _set_max_message_bytes(kafka_cluster, ACCEPTING)
    stack.start()  # the same data directory: the alert is read again and applied in full
    phone.expect_sms(contains=alert.episode_ref, timeout_s=60)
    key = f"1:{person}:sms"
    stack.wait_state(alert, lambda s: s["notices"][key]["status"] == "sent")
    phone.expect_no_sms()
    assert len(phone.messages()) == 1
    ledger = [json.loads(r.value) for r in read_topic(stack.settings, NOTIFICATIONS, expect=2, timeout_s=30)]
    assert [(r["key"], r["status"]) for r in ledger if r["alert_id"] == alert.alert_id] == [
        (key, "pending"),
        (key, "sent"),
    ]
