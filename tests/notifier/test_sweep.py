"""The notifier's safety net (notifier/sweep.py): an alert on beacon.alerts that its consumer
group committed past without routing it (what the kill test caught across a rebalance) is
still paged, once the grace period is over; one routed normally is not routed again."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from kafka import KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata

from beacon.core.alerts import AlertRecord, Severity
from beacon.core.topics import ALERTS
from beacon.notifier.escalation import EscalationState
from beacon.notifier.sweep import GIVE_UP_AFTER, Sweep
from beacon.runtime.kafka import client_config
from notifier.conftest import make_alert
from notifier.stack import Stack, notifier_stack

NOTIFIER_GROUP = "beacon-notifier"  # the Faust app id of the notifier
GRACE_S = 3.0


def _alert(status: str = "raised") -> AlertRecord:
    return make_alert(status=status)


def _state(status: str) -> EscalationState:
    now = datetime.now(UTC)
    alert = _alert()
    return EscalationState(
        alert_id=alert.alert_id,
        child_ref=alert.child_ref,
        case_ref=alert.episode_ref or "",
        severity=Severity.high,
        rule="triage",
        occurred_at=now,
        status=status,  # type: ignore[arg-type]
        started_at=now,
    )


def test_an_unconfirmed_alert_is_routed_again_after_the_grace_then_after_twice_as_long():
    sweep = Sweep(grace_s=10)
    sweep.saw(_alert(), written_at=100)
    sweep.saw(_alert(), written_at=105)  # read again (a restart's lookback): the first sighting counts
    nothing = {}.get
    assert sweep.due(109, nothing) == []
    assert [a.alert_id for a in sweep.due(110, nothing)] == [_alert().alert_id]
    assert sweep.due(129, nothing) == []  # next after 20 s
    assert len(sweep.due(130, nothing)) == 1
    assert sweep.due(131, lambda _: _state("active")) == [] and len(sweep) == 0  # confirmed: forgotten


def test_a_resolution_counts_only_once_the_escalation_is_resolved():
    sweep = Sweep(grace_s=10)
    sweep.saw(_alert("resolved"), written_at=0)
    assert len(sweep.due(10, lambda _: _state("active"))) == 1  # still escalating: routed again
    assert sweep.due(50, lambda _: _state("resolved")) == [] and len(sweep) == 0


def test_an_alert_never_taken_in_is_given_up_after_a_bounded_number_of_routings():
    sweep = Sweep(grace_s=1)
    sweep.saw(_alert(), written_at=0)
    routed, now = 0, 0.0
    while len(sweep):
        now += 1
        routed += len(sweep.due(now, {}.get))
    assert routed == GIVE_UP_AFTER and [a.alert_id for a in sweep.given_up] == [_alert().alert_id]


@pytest.fixture
def stack(settings, env, tmp_path: Path) -> Iterator[Stack]:
    # Each page its own SMS (no minute between two to one phone): the test reads them apart.
    extra = {"BEACON_NOTIFIER_SWEEP_GRACE_S": str(GRACE_S), "BEACON_NOTIFIER_CONTACT_MIN_INTERVAL_S": "0"}
    with notifier_stack(settings, env, tmp_path, **extra) as s:
        yield s


def _commit_past_everything(settings) -> None:
    """The notifier's group, before it ever ran, at the end of beacon.alerts: as if it had
    routed what is there (the kill test's lost alert: committed past, never routed)."""
    consumer = KafkaConsumer(**client_config(settings), group_id=NOTIFIER_GROUP, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(ALERTS, p) for p in sorted(consumer.partitions_for_topic(ALERTS) or [])]
        consumer.assign(partitions)
        ends = consumer.end_offsets(partitions)
        consumer.commit({tp: OffsetAndMetadata(ends[tp], "", -1) for tp in partitions})
    finally:
        consumer.close()


@pytest.mark.slow
def test_an_alert_the_group_committed_past_is_paged_all_the_same(stack: Stack):
    lost = stack.raise_alert()
    _commit_past_everything(stack.settings)
    stack.start()
    phone = stack.phone(stack.oncall_person())
    phone.expect_sms(contains=lost.episode_ref, timeout_s=90)
    routed = stack.raise_alert()  # the ordinary way, after the start
    phone.expect_sms(contains=routed.episode_ref, timeout_s=60)
    stack.wait_state(routed, lambda s: s["status"] == "active")
    log = stack.log_file.read_text()
    assert log.count('"alert_routed_again"') == 1 and lost.alert_id in log
