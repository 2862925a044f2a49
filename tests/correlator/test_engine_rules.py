"""Every rule and edge of the correlator engine, without Kafka."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from beacon.core.alerts import alert_id
from beacon.core.policy import Policy
from beacon.correlator.engine import apply_event, next_deadline
from beacon.correlator.migration import load_state
from beacon.correlator.rules import RULE_CODES
from beacon.correlator.state import ChildState
from correlator.builders import CHILD, Events, Run, at

POLICY = Policy(council="test")


@pytest.fixture
def ev() -> Events:
    return Events()


@pytest.fixture
def run() -> Run:
    return Run(POLICY)


# ----------------------------------------------------------------- triage


@pytest.mark.parametrize(
    ("risk", "age", "looked_after", "expected"),
    [
        ("no_apparent_risk", 15, False, "low"),
        ("low", 15, False, "low"),
        ("medium", 15, False, "medium"),
        ("high", 15, False, "high"),
        ("low", 15, True, "medium"),  # looked after: at least medium
        ("low", 13, False, "high"),  # 13 and under: at least high
        ("medium", 14, False, "medium"),
    ],
)
def test_triage_severity_from_risk_age_and_care(run, ev, risk, age, looked_after, expected):
    records = run.feed(ev.reported(0, risk=risk, age=age, looked_after=looked_after))
    assert [(r.rule, r.step, r.severity.value, r.status) for r in records] == [("triage", expected, expected, "raised")]
    alert = records[0]
    assert alert.alert_id == alert_id(CHILD, "EP1", "triage", expected)
    assert alert.trigger_event_ids == ("e001",) and alert.council == "norfolk-cc"
    assert alert.notify == POLICY.triage.notify[alert.severity]


def test_settled_cse_screening_raises_triage_and_pages_cse_missing(run, ev):
    run.feed(ev.cse(-48, "medium"), ev.reported(0, risk="low"))
    assert run.raised() == [("cse_missing", "flag", "critical"), ("triage", "high", "high")]


def test_child_rescue_alert_is_critical(run, ev):
    run.feed(ev.reported(0, risk="medium"), ev.rescue_alert(1))
    assert run.raised() == [("triage", "medium", "medium"), ("triage", "critical", "critical")]


def test_risk_regraded_up_pages_again_down_does_not(run, ev):
    run.feed(ev.reported(0, risk="low"))
    assert run.feed(ev.regraded(2, risk="medium"))[0].step == "medium"
    assert run.feed(ev.regraded(3, risk="high"))[0].step == "high"
    assert run.feed(ev.regraded(5, risk="low")) == []
    assert run.feed(ev.regraded(6, risk="high")) == []  # back up to a level already paged
    assert run.raised() == [("triage", "low", "low"), ("triage", "medium", "medium"), ("triage", "high", "high")]


def test_down_from_the_reported_level_never_pages(run, ev):
    run.feed(ev.reported(0, risk="high"), ev.regraded(0.05, risk="medium"))
    assert run.raised() == [("triage", "high", "high")]


def test_reason_carries_no_personal_data(run, ev):
    records = run.feed(ev.cse(-48, "high"), ev.reported(0, risk="high", age=12, looked_after=True))
    for record in records:
        assert CHILD not in record.reason and "12" not in record.reason
        assert "CSE" not in record.reason and "exploitation" not in record.reason.lower()
    assert {r.reason for r in records if r.rule == "cse_missing"} == {"Missing child with safeguarding flag; critical"}


# ----------------------------------------------------------------- CSE x missing


def test_cse_flag_while_missing_is_critical(run, ev):
    run.feed(ev.reported(0, risk="medium"))
    records = run.feed(ev.cse(5, "high"))
    assert [(r.rule, r.severity.value) for r in records] == [("cse_missing", "critical")]
    assert records[0].trigger_event_ids == ("e001", "e002")


def test_low_cse_does_not_page_and_cse_after_return_does_not_page(run, ev):
    run.feed(ev.cse(-10, "low"), ev.reported(0), ev.found(5), ev.cse(30, "high"))
    assert [r for r in run.raised() if r[0] == "cse_missing"] == []


def test_cse_downgraded_before_the_episode_does_not_page(run, ev):
    run.feed(ev.cse(-100, "high"), ev.cse(-50, "none"), ev.reported(0))
    assert [r for r in run.raised() if r[0] == "cse_missing"] == []


def test_cse_flag_pages_once_per_episode(run, ev):
    run.feed(ev.cse(-10, "medium"), ev.reported(0), ev.cse(3, "high"), ev.cse(4, "high"))
    assert [r for r in run.raised() if r[0] == "cse_missing"] == [("cse_missing", "flag", "critical")]


# ----------------------------------------------------------------- repeat episodes


def _episodes(run: Run, ev: Events, starts_days: list[float]) -> None:
    for n, day in enumerate(starts_days):
        run.feed(ev.reported(day * 24, f"EP{n}"), ev.found(day * 24 + 5, f"EP{n}"), ev.rhi(day * 24 + 20, f"EP{n}"))


def test_third_episode_in_window_asks_for_a_strategy_discussion(run, ev):
    _episodes(run, ev, [0, 30, 80])
    repeats = [r for r in run.records if r.rule == "repeat_episodes" and r.status == "raised"]
    assert [(r.episode_ref, r.step) for r in repeats] == [("EP2", "3in90d")]
    assert repeats[0].trigger_event_ids == ("e001", "e004", "e007")
    assert repeats[0].reason == "3 missing episodes in 90 days; strategy discussion needed"


def test_episodes_spread_beyond_the_window_do_not_repeat(run, ev):
    _episodes(run, ev, [0, 50, 100])
    assert [r for r in run.raised() if r[0] == "repeat_episodes"] == []


# ----------------------------------------------------------------- duration ladder


def test_ladder_fires_from_event_time_after_the_lateness(run, ev):
    run.feed(ev.reported(0, risk="medium"))
    assert run.feed(ev.sighting(24)) == []  # at the deadline: waits for the allowed lateness
    records = run.feed(ev.sighting(24.2))
    assert [(r.rule, r.step, r.severity.value, r.notify) for r in records] == [
        ("duration", "24h", "medium", "team_manager")
    ]
    run.feed(ev.sighting(200))
    assert [r[1] for r in run.raised() if r[0] == "duration"] == ["24h", "48h", "72h", "168h"]


def test_ladder_fires_from_the_wall_clock_timer(run, ev):
    run.feed(ev.reported(0))
    assert next_deadline(CHILD, run.state, POLICY) == int(at(24).timestamp()) + 600
    assert run.tick(23) == []
    assert [r.step for r in run.tick(49)] == ["24h", "48h"]
    assert run.tick(49) == []


def test_found_before_the_deadline_stops_the_ladder(run, ev):
    run.feed(ev.reported(0), ev.found(20), ev.sighting(100))
    assert [r for r in run.raised() if r[0] == "duration"] == []


def test_correction_moving_the_start_earlier_fires_the_step_sooner(run, ev):
    run.feed(ev.reported(0), ev.corrected(2, started=-30))
    assert [r.step for r in run.tick(2.5)] == ["24h"]


def test_correction_moving_the_start_later_delays_the_step(run, ev):
    run.feed(ev.reported(0), ev.corrected(2, started=10))
    assert run.tick(30) == []
    assert [r.step for r in run.tick(34.5)] == ["24h"]


def test_looked_after_only_step(ev):
    kent = Policy.model_validate(
        {
            "council": "kent",
            "duration_ladder": {
                "steps": [
                    {"after_hours": 48, "severity": "high", "notify": "senior_manager", "looked_after_only": True}
                ]
            },
        }
    )
    in_care, at_home = Run(kent), Run(kent, child="CH-TEST-0002")
    in_care.feed(ev.reported(0, looked_after=True))
    at_home.feed(Events("CH-TEST-0002").reported(0))
    assert [r.notify for r in in_care.tick(49)] == ["senior_manager"]
    assert at_home.tick(49) == []


# ----------------------------------------------------------------- found, resolution, RHI


def test_found_resolves_every_raised_alert_of_the_episode_but_the_strategy_discussion_prompt(run, ev):
    run.feed(ev.cse(-48, "high"), ev.reported(0, risk="high"), ev.sighting(25))
    raised = {r.alert_id for r in run.records if r.status == "raised" and r.rule != "cse_missing"}
    records = run.feed(ev.found(26))
    assert {r.alert_id for r in records} == raised and all(r.status == "resolved" for r in records)
    assert run.still_open() == [("EP1", "cse_missing", "flag")]  # critical: until a discussion is held
    assert run.feed(ev.found(26.5, event_id="another-found")) == []


def test_return_interview_overdue_and_resolved_when_recorded(run, ev):
    run.feed(ev.reported(0), ev.found(5))
    assert run.tick(5 + 72) == []  # deadline reached, lateness not yet
    overdue = run.tick(5 + 72.2)
    assert [(r.rule, r.step, r.status) for r in overdue] == [("rhi_overdue", "72h", "raised")]
    assert [(r.rule, r.status) for r in run.feed(ev.rhi(80, status="declined"))] == [("rhi_overdue", "resolved")]


def test_return_interview_completed_in_time_is_not_overdue(run, ev):
    run.feed(ev.reported(0), ev.found(5), ev.rhi(30), ev.sighting(200, "EP-OTHER"))
    assert [r for r in run.raised() if r[0] == "rhi_overdue"] == []


def test_an_offer_alone_does_not_satisfy_the_interview(run, ev):
    run.feed(ev.reported(0), ev.found(5), ev.rhi(10, status="offered"), ev.sighting(200, "EP-OTHER"))
    assert [r[0] for r in run.raised()].count("rhi_overdue") == 1


def test_correction_of_the_return_time_moves_the_interview_deadline(run, ev):
    run.feed(ev.reported(0), ev.found(5), ev.corrected(6, ended=3))
    assert run.tick(3 + 72.1) == []
    assert [r.rule for r in run.tick(3 + 72.2)] == ["rhi_overdue"]  # 72 h from the corrected return
    later, events = Run(POLICY), Events()
    later.feed(events.reported(0), events.found(5), events.corrected(6, ended=10))
    assert later.tick(5 + 72.2) == []
    assert [r.rule for r in later.tick(10 + 72.2)] == ["rhi_overdue"]


# ----------------------------------------------------------------- unallocated


def test_unallocated_child_going_missing_alerts_the_team_manager(run, ev):
    records = run.feed(ev.allocation(-100, "unallocated"), ev.reported(0))
    assert ("unallocated", "unallocated", "high") in run.raised()
    assert {r.notify for r in records if r.rule == "unallocated"} == {"team_manager"}


def test_deallocated_while_missing_alerts(run, ev):
    run.feed(ev.allocation(-100, "allocated"), ev.reported(0))
    assert [r.rule for r in run.feed(ev.allocation(3, "unallocated"))] == ["unallocated"]


def test_allocated_child_does_not_alert(run, ev):
    run.feed(ev.allocation(-200, "unallocated"), ev.allocation(-100, "allocated"), ev.reported(0))
    assert [r for r in run.raised() if r[0] == "unallocated"] == []


# ----------------------------------------------------------------- messy input


def test_duplicate_event_is_ignored(run, ev):
    report = ev.reported(0, risk="high")
    run.feed(report)
    state = run.state
    assert run.feed(report) == [] and run.duplicates == 1 and run.state == state


def test_found_before_reported_opens_a_placeholder_then_merges(run, ev):
    found = ev.found(5)
    report = ev.reported(0, risk="high")
    assert run.feed(found) == []  # nothing to say until the report arrives
    records = run.feed(report)
    assert [(r.rule, r.status) for r in records] == [("triage", "raised"), ("triage", "resolved")]
    assert list(run.state.episodes) == ["EP1"]


def test_second_report_while_open_updates_the_open_episode(run, ev):
    run.feed(ev.reported(0, "EP1", risk="low"))
    records = run.feed(ev.reported(2, "EP2", risk="high"))
    assert [(r.episode_ref, r.step) for r in records] == [("EP1", "high")]
    assert list(run.state.episodes) == ["EP1"] and run.state.aliases == {"EP2": "EP1"}
    assert [r.episode_ref for r in run.feed(ev.found(3, "EP2"))] == ["EP1", "EP1"]
    assert run.state.open_episode() is None


def test_history_older_than_every_window_is_pruned_and_stale_replays_ignored(run, ev):
    run.feed(ev.reported(0, "OLD"), ev.found(5, "OLD"), ev.rhi(10, "OLD"))
    far = POLICY.longest_window_hours + 24
    run.feed(ev.reported(far, "NEW"))
    assert list(run.state.episodes) == ["NEW"]
    state, outcome = apply_event(run.state, ev.reported(0, "OLD"), at(far), POLICY)
    assert outcome.stale and outcome.alerts == [] and state == run.state


def test_state_of_a_tracked_child_stays_small(run, ev):
    # Typical: a child in care with a CSE screening, an allocation, one past episode in the
    # window and one open now (bench/bench_correlator.py measures a national mix).
    _episodes(run, ev, [0])
    run.feed(ev.cse(1000, "medium"), ev.allocation(1001, "allocated"), ev.reported(1100 * 1, "EP9", risk="high"))
    assert len(run.state.to_bytes()) < 1024
    assert ChildState.from_bytes(run.state.to_bytes()) == run.state


def test_a_state_stored_before_messagepack_is_read_and_pages_nobody_again(run, ev):
    # Until MessagePack, states were JSON and remembered each alert by its alert id.
    _episodes(run, ev, [0, 30])
    run.feed(ev.cse(800, "high"), ev.reported(900, "EP9", risk="high"), ev.sighting(930, "EP9"))
    assert run.records
    legacy = json.loads(msgspec.json.encode(run.state))
    del legacy["n"]  # the next-deadline cache came later still
    for ref, episode in legacy["e"].items():
        episode["a"] = {alert_id(CHILD, ref, *_rule_and_step(key)): status for key, status in episode["a"].items()}
    payload = json.dumps(legacy).encode()

    state = load_state(CHILD, payload, POLICY)
    assert state.next_fire == 0  # next deadline not known: found again by the next derivation
    state.next_fire = run.state.next_fire
    assert state == run.state  # every alert key recovered
    _again, outcome = apply_event(state, ev.sighting(931, "EP9"), at(931), POLICY)
    assert outcome.alerts == []  # nothing it had said is said again
    assert load_state(CHILD, state.to_bytes(), POLICY) == state  # the current format reads as itself


def _rule_and_step(key: str) -> tuple[str, str]:
    rule = next(rule for rule, code in RULE_CODES.items() if key.startswith(code))
    return rule, key[1:]


def test_a_state_stored_without_its_next_deadline_still_fires_time_rules(run, ev):
    # ChildState.n (when a time rule can next fire) lets events that only move the
    # watermark skip the time rules. A state stored before it existed reads as 0, "not
    # known", so the next event or tick runs every time rule and stores it again.
    run.feed(ev.reported(0, risk="medium"))
    assert run.state.next_fire == int(at(24).timestamp()) + 600
    fields = msgspec.msgpack.decode(run.state.to_bytes())
    del fields["n"]
    older = ChildState.from_bytes(msgspec.msgpack.encode(fields))
    assert older.next_fire == 0
    assert next_deadline(CHILD, older, POLICY) == int(at(24).timestamp()) + 600  # found from the facts
    state, outcome = apply_event(older, ev.sighting(24.2), at(24.2), POLICY)
    assert [(r.rule, r.step) for r in outcome.alerts] == [("duration", "24h")]
    assert state.next_fire == int(at(48).timestamp()) + 600


def test_alerts_are_flagged_from_a_backlog_only_when_read_long_after_kafka_got_them():
    from beacon.correlator.engine import BACKLOG_AGE, from_backlog

    now = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
    assert not from_backlog(now - timedelta(seconds=5), now, history=False)  # live, however busy
    assert not from_backlog(now - BACKLOG_AGE, now, history=False)
    assert from_backlog(now - BACKLOG_AGE - timedelta(seconds=1), now, history=False)  # waited in the topic
    assert from_backlog(now, now, history=True)  # a history import, always
    assert not from_backlog(None, now, history=False)  # no timestamp: read as live
