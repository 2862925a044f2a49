"""Live before backlog (issue 14, item 3): a history import never delays a live page.

``python -m beacon import`` writes to ``beacon.events.history``; the correlator reads it
only when no live event waits (runtime/faust_batch.py, a backlog topic). For one child the
two topics interleave by arrival, not by event time: these tests pin down what that
does to the child's state and alerts (the pure engine), and that a live report arriving
during an import is paged before the import is done (real processes).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import time
from datetime import UTC, datetime

import httpx
import pytest

from beacon.core.alerts import AlertRecord, alert_id
from beacon.core.events import build_event
from beacon.core.policy import Policy
from beacon.core.topics import EVENTS
from correlator.builders import Events, Run
from harness.kafka import produce_events, read_alerts
from harness.services import REPO_ROOT, ServiceProcess

POLICY = Policy(council="test")
DAY = 24


def _history_and_live(ev: Events) -> tuple[list, object]:
    """A child's imported history (two episodes in the last 90 days, one over a year old)
    and a live high-risk report now (hour 0)."""
    history = [
        ev.reported(-400 * DAY, "EP-OLD", risk="high"),
        ev.found(-400 * DAY + 2, "EP-OLD"),
        ev.reported(-50 * DAY, "EP-H1", risk="low"),
        ev.found(-50 * DAY + 12, "EP-H1"),
        ev.rhi(-49 * DAY, "EP-H1"),
        ev.reported(-20 * DAY, "EP-H2", risk="medium"),
        ev.found(-20 * DAY + 30, "EP-H2"),  # no return interview recorded: overdue
    ]
    return history, ev.reported(0, "EP-L", risk="high")


def _facts(run: Run) -> dict[str, tuple]:
    return {ref: (e.report, e.closings, e.interview) for ref, e in run.state.episodes.items()}


def test_history_read_after_a_live_report_of_the_same_child_ends_in_the_same_facts_and_pages_live_first():
    history, live = _history_and_live(Events())
    in_time = Run(POLICY)  # the order of event time: the history, then the live report
    in_time.feed(*history)
    in_time.feed(live, wall=0)
    as_read = Run(POLICY)  # as the correlator reads them during an import: live first
    as_read.feed(live, wall=0)
    as_read.feed(*history)  # history is applied by event time alone (no wall clock)

    # The live report pages at once, before any history is applied.
    first = as_read.records[0]
    assert (first.episode_ref, first.rule, first.step, first.status) == ("EP-L", "triage", "high", "raised")
    # A report made before the live episode started is its own, earlier episode (not a
    # second report of the open live one, which its found would then close).
    assert as_read.state.open_episode() is not None and as_read.state.open_episode()[0] == "EP-L"
    assert _facts(as_read) == _facts(in_time)  # EP-OLD: stale in one, pruned in the other
    assert set(_facts(as_read)) == {"EP-H1", "EP-H2", "EP-L"}
    # The live episode says the same in both orders: triage, and the third episode in 90 days.
    live_ids = {alert_id("CH-TEST-0001", "EP-L", "triage", "high"), alert_id("CH-TEST-0001", "EP-L", *REPEAT)}
    for run in (in_time, as_read):
        assert live_ids <= {r.alert_id for r in run.records if r.status == "raised"}
        assert ("EP-L", "triage", "high") in run.still_open()
    # History later than the lateness behind the live watermark is a backfill: a closed
    # episode's ladder step is not raised after the fact (in event-time order it was raised
    # and resolved at once), and its overdue interview waits the lateness from arrival.
    assert ("duration", "24h") in {(r.rule, r.step) for r in in_time.records if r.episode_ref == "EP-H2"}
    assert not [r for r in as_read.records if r.episode_ref == "EP-H2" and r.rule in ("duration", "rhi_overdue")]
    overdue = as_read.tick(0.25)  # past the lateness (10 min) after the history arrived
    assert [(r.episode_ref, r.rule) for r in overdue] == [("EP-H2", "rhi_overdue")]
    assert ("EP-H2", "rhi_overdue", "72h") in in_time.still_open()


REPEAT = ("repeat_episodes", "3in90d")


# ------------------------------------------------------------------ real processes

HISTORY_DAYS = 7  # ~20,000 events: the correlator (record-per-batch mode) takes many seconds
LIVE_CHILD = "CH-LIVE-0001"


def _bench_history(days: int) -> list[dict]:
    spec = importlib.util.spec_from_file_location("bench_correlator", REPO_ROOT / "bench" / "bench_correlator.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.for_the_doors(module.synthetic_history(days))


def _processed(port: int) -> float:
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
    except httpx.HTTPError:
        return 0.0
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("beacon_correlator_events_total{")
    )


def _wait_processed(port: int, at_least: float, timeout_s: float) -> float:
    deadline = time.monotonic() + timeout_s
    while (done := _processed(port)) < at_least:
        assert time.monotonic() < deadline, f"correlator processed {done} of {at_least} events"
        time.sleep(0.1)
    return done


@pytest.mark.slow
def test_a_live_report_arriving_while_an_import_is_correlated_is_paged_before_the_import_is_done(
    settings, env, tmp_path
):
    history = _bench_history(HISTORY_DAYS)
    source = tmp_path / "history.jsonl"
    source.write_text("".join(json.dumps(event) + "\n" for event in history))
    now = datetime.now(UTC).replace(microsecond=0)
    live = build_event(
        "beacon.episode.reported.v1",
        LIVE_CHILD,
        {
            "episode_ref": "EP-LIVE-1",
            "category": "missing",
            "started_at": now.isoformat().replace("+00:00", "Z"),
            "risk": "high",
            "age_years": 13,
            "looked_after": True,
            "reporting_org": "met-police",
            "placing_council": "southwark",
        },
        time=now.isoformat().replace("+00:00", "Z"),
        source="urn:beacon:source:police",
        event_id="live-000001",
    )
    # The import first, then the correlator: it starts with the whole import as a backlog
    # (as after a five-year import), and the live report arrives while it works through it.
    imported = subprocess.run(
        [sys.executable, "-m", "beacon", "import", str(source), "--chunk", "2000"],
        # Kafka batches: only table changelogs need the embedded broker's one-record batches.
        env={**env, "BEACON_KAFKA_SINGLE_RECORD_BATCHES": "false"},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert imported.returncode == 0 and f"accepted: {len(history)}" in imported.stdout, imported.stderr[-2000:]
    port = settings.correlator_port
    with ServiceProcess("correlator", env, tmp_path / "correlator.log", port=port):
        _wait_processed(port, 2000, timeout_s=120)  # working through the backlog
        produce_events(settings, EVENTS, [live])
        _wait_processed(port, len(history) + 1, timeout_s=600)
        # The import's alerts are on their own topic (read_alerts checks each record's), so
        # the notifier's live alerts never queue behind them.
        alerts = [AlertRecord.from_json(r.value) for r in read_alerts(settings, expect=2, settle_s=3)]
    [paged] = [a for a in alerts if a.child_ref == LIVE_CHILD]
    assert (paged.rule, paged.step, paged.status) == ("triage", "high", "raised")
    assert not paged.from_backlog  # live: the notifier pages it at once
    history_alerts = [a for a in alerts if a.child_ref != LIVE_CHILD]
    # Raised from the import (triage alerts come from events, never from the timer): flagged,
    # so the notifier holds them until the import's founds can resolve them.
    imported_triage = [a for a in history_alerts if a.rule == "triage"]
    assert imported_triage and all(a.from_backlog for a in imported_triage)
    after = [a for a in history_alerts if a.emitted_at > paged.emitted_at]
    # Paged within a batch or so of its arrival: most of the import was correlated after it
    # (behind the backlog on its partition, it would have come near the end).
    assert history_alerts and len(after) > len(history_alerts) / 2, (len(after), len(history_alerts))
