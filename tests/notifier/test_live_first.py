"""Live before backlog in the notifier (issue 14, item 3): a live alert is paged while the
alerts of an import still wait, not after them.

The correlator puts the alerts it raises from a backlog on ``beacon.alerts.backlog``; the
notifier routes them into its inputs only while no live alert is unread and each inputs
partition holds at most ``live_first.INPUTS_AHEAD`` unprocessed records. Here thousands of
backlog alerts are waiting when the notifier starts, a live one arrives as soon as it is
ready, and the audit shows when each was applied.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from beacon.core.alerts import AlertRecord
from beacon.core.audit import AuditRecord
from beacon.core.topics import ALERTS_BACKLOG, AUDIT
from beacon.notifier.live_first import INPUTS_AHEAD
from beacon.runtime.offsets import unprocessed
from harness.kafka import produce, read_topic
from notifier.conftest import make_alert
from notifier.stack import Stack, notifier_stack

BACKLOG = 3000


def test_unprocessed_counts_from_the_later_of_what_was_processed_and_what_was_committed():
    assert unprocessed(highwater=None, processed=None, committed=None) == 0  # not fetched yet
    assert unprocessed(highwater=10, processed=None, committed=None) == 10
    assert unprocessed(highwater=10, processed=9, committed=None) == 0
    assert unprocessed(highwater=10, processed=3, committed=8) == 2  # committed: the next to read
    assert unprocessed(highwater=10, processed=7, committed=2) == 2
    assert INPUTS_AHEAD < BACKLOG / 10


@pytest.fixture
def stack(settings, env, tmp_path: Path) -> Iterator[Stack]:
    with notifier_stack(settings, env, tmp_path) as s:
        yield s


def _backlog_alert(number: int, now: datetime) -> AlertRecord:
    """A high-risk report's alert as an import raises it: a 900-day-old episode, emitted now."""
    alert = make_alert(episode=f"MET-2021-{number:06d}", child=f"CH-HIST{number:05d}")
    return alert.model_copy(update={"occurred_at": now - timedelta(days=900), "emitted_at": now, "from_backlog": True})


@pytest.mark.slow
def test_a_live_alert_is_applied_behind_a_few_of_an_imports_alerts_not_behind_the_import(stack: Stack):
    now = datetime.now(UTC)
    backlog = [_backlog_alert(n, now) for n in range(BACKLOG)]
    produce(stack.settings, ALERTS_BACKLOG, [(a.key, a.to_json()) for a in backlog])
    stack.start()  # the import's alerts are all waiting, as after a large import
    time.sleep(2)  # the notifier is working through them (about 400 a second here)
    live = stack.raise_alert()
    stack.phone(stack.oncall_person()).expect_sms(contains=live.episode_ref, timeout_s=60)

    audit = [
        AuditRecord.from_json(r.value) for r in read_topic(stack.settings, AUDIT, expect=BACKLOG + 2, timeout_s=180)
    ]
    applied = {r.alert_id: r.at for r in audit if r.kind == "alert_raised"}
    backlog_ids = {a.alert_id for a in backlog}
    assert backlog_ids <= set(applied), "a backlog alert was never applied"  # none lost, only later
    waiting = [a for a in backlog_ids if applied[a] > live.emitted_at]
    ahead = [a for a in waiting if applied[a] < applied[live.alert_id]]
    print(f"live alert applied behind {len(ahead)} of the {len(waiting)} backlog alerts still waiting")
    # Still waiting when the live alert arrived: enough for a queue that would have held it.
    assert len(waiting) > BACKLOG / 3, f"only {len(waiting)} backlog alerts were left: the test proves nothing"
    # It waited for a few per inputs partition (live_first.INPUTS_AHEAD), not for the rest.
    assert len(ahead) <= (INPUTS_AHEAD + 2) * stack.settings.topic_partitions, (len(ahead), len(waiting))
    # Held (from_backlog): none of the import's alerts paged anybody meanwhile.
    assert not [r for r in audit if r.alert_id in backlog_ids and r.kind == "notification_sent"]
