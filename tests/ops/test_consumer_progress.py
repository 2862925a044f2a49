"""Pure parts of the worker ops code: lag arithmetic, guarded loops, readiness, and the
exporter's series bookkeeping (no broker)."""

from __future__ import annotations

import time

from beacon.runtime.faust_app import (
    ConsumerProgressExporter,
    PartitionProgress,
    Readiness,
    guarded,
    make_faust_app,
    partition_progress,
    readiness,
)
from beacon.runtime.metrics import CONSUMER_COMMITTED_OFFSET, CONSUMER_LAG, TIMER_HEARTBEAT
from beacon.runtime.settings import load_settings


def test_lag_counts_from_the_committed_offset_or_the_start_when_never_committed():
    assert PartitionProgress("t", 0, committed=7, beginning=0, end=10).lag == 3
    assert PartitionProgress("t", 0, committed=None, beginning=4, end=10).lag == 6
    assert PartitionProgress("t", 0, committed=10, beginning=0, end=10).lag == 0


def test_lag_is_never_negative_when_the_end_offset_under_reports():
    # Tansu answers ListOffsets(latest) with the last batch's base offset + 1 after a
    # multi-record batch, which can be below what the group already committed.
    assert PartitionProgress("t", 0, committed=9, beginning=0, end=7).lag == 0


def test_partition_progress_joins_offsets_and_skips_partitions_without_an_end():
    progress = partition_progress(
        [("events", 1), ("events", 0), ("alerts", 2)],
        committed={("events", 0): 5, ("events", 1): -1},  # -1: the broker's "no committed offset"
        beginning={("events", 0): 0, ("events", 1): 2},
        end={("events", 0): 8, ("events", 1): 3},
    )
    assert progress == [
        PartitionProgress("events", 0, committed=5, beginning=0, end=8),
        PartitionProgress("events", 1, committed=None, beginning=2, end=3),
    ]
    assert [p.lag for p in progress] == [3, 1]


async def test_a_failing_loop_body_is_logged_not_raised_and_leaves_no_heartbeat(capsys):
    calls = []

    @guarded("unit_test_failing")
    async def failing() -> None:
        calls.append(1)
        raise RuntimeError("payload text that must not be logged")

    await failing()
    await failing()  # the loop goes on ticking
    assert len(calls) == 2
    assert TIMER_HEARTBEAT.labels(loop="unit_test_failing")._value.get() == 0
    out = capsys.readouterr().out
    assert "payload text" not in out


async def test_a_successful_loop_body_sets_its_heartbeat():
    @guarded("unit_test_ok")
    async def ok() -> None:
        return None

    before = time.time()
    await ok()
    assert TIMER_HEARTBEAT.labels(loop="unit_test_ok")._value.get() >= before


def test_readiness_needs_recovered_tables_no_rebalance_and_an_assignment():
    assert Readiness(True, False, 3).ready
    assert not Readiness(False, False, 3).ready
    assert not Readiness(True, True, 3).ready
    assert not Readiness(True, False, 0).ready


def test_an_app_whose_consumer_has_not_started_is_not_ready(tmp_path):
    app = make_faust_app("unit-readiness", load_settings(data_dir=tmp_path), web_port=1)
    state = readiness(app)
    assert not state.ready and state.assigned_partitions == 0
    assert state.as_json()["ready"] is False


class _FakeReader:
    group = "beacon-unit"


def test_exporter_sets_gauges_and_removes_series_of_revoked_partitions(tmp_path):
    app = make_faust_app("unit-exporter", load_settings(data_dir=tmp_path), web_port=1)
    exporter = ConsumerProgressExporter(app, _FakeReader())  # type: ignore[arg-type]
    both = {("beacon.events", 0), ("beacon.events", 1)}
    exporter.publish(
        [PartitionProgress("beacon.events", 0, 4, 0, 6), PartitionProgress("beacon.events", 1, None, 0, 2)], both
    )
    assert CONSUMER_COMMITTED_OFFSET.labels("beacon-unit", "beacon.events", "0")._value.get() == 4
    assert CONSUMER_LAG.labels("beacon-unit", "beacon.events", "0")._value.get() == 2
    assert CONSUMER_LAG.labels("beacon-unit", "beacon.events", "1")._value.get() == 2

    exporter.publish([PartitionProgress("beacon.events", 0, 6, 0, 6)], {("beacon.events", 0)})
    exported = {
        tuple(s.labels.values())
        for m in CONSUMER_LAG.collect()
        for s in m.samples
        if s.labels["group"] == "beacon-unit"
    }
    assert exported == {("beacon-unit", "beacon.events", "0")}
