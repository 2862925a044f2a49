"""The correlator as a real process over the real broker: exact alerts for scenario streams."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime, timedelta

import pytest

from beacon.core.alerts import AlertRecord, alert_id
from beacon.core.dead_letters import DeadLetterRecord
from beacon.core.events import build_event
from beacon.core.topics import EVENTS, EVENTS_DLQ
from beacon.correlator.state import ChildState
from harness.contract import assert_match_published_schema
from harness.kafka import produce, produce_events, read_alerts, read_topic
from harness.services import ServiceProcess

pytestmark = [pytest.mark.slow, pytest.mark.table_stores]

CHANGELOG = "beacon-correlator-children-changelog"
CHILD = "CH-INTEG-0001"
EPISODE = "MET-INTEG-001"


def _iso(ts: datetime) -> str:
    return ts.isoformat().replace("+00:00", "Z")


class Scenario:
    """A child's events around T0 = one hour ago; later events are in the future, so the
    wall clock never reaches a ladder deadline: every time rule below fires from event time."""

    def __init__(self) -> None:
        self.t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
        self.n = 0

    def event(self, kind: str, hours: float, data: dict, child: str = CHILD) -> dict:
        self.n += 1
        return build_event(
            f"beacon.{kind}.v1",
            child,
            data,
            time=_iso(self.t0 + timedelta(hours=hours)),
            source="urn:beacon:source:integ",
            event_id=f"integ-{self.n:03d}",
        )

    def at(self, hours: float) -> str:
        return _iso(self.t0 + timedelta(hours=hours))

    def report(self, hours: float = 0, risk: str = "high", child: str = CHILD, episode: str = EPISODE) -> dict:
        return self.event(
            "episode.reported",
            hours,
            {
                "episode_ref": episode,
                "category": "missing",
                "started_at": self.at(hours),
                "risk": risk,
                "age_years": 14,
                "looked_after": True,
                "reporting_org": "met-police",
                "placing_council": "southwark",
            },
            child,
        )

    def cse(self, hours: float, level: str = "medium") -> dict:
        return self.event("cse.screened", hours, {"level": level, "screened_at": self.at(hours)})

    def sighting(self, hours: float) -> dict:
        return self.event(
            "episode.sighting", hours, {"episode_ref": EPISODE, "kind": "sighting", "observed_at": self.at(hours)}
        )

    def found(self, hours: float) -> dict:
        return self.event(
            "episode.found", hours, {"episode_ref": EPISODE, "outcome": "found", "ended_at": self.at(hours)}
        )


def _alerts(settings, expect: int, settle_s: float = 3.0) -> list[AlertRecord]:
    """Live and backlog alerts (each on the topic its ``from_backlog`` names)."""
    return [
        AlertRecord.from_json(r.value) for r in read_alerts(settings, expect=expect, timeout_s=90, settle_s=settle_s)
    ]


def _summary(alerts: list[AlertRecord]) -> list[tuple[str, str, str]]:
    return sorted((a.rule, a.step, a.status) for a in alerts)


@pytest.mark.parametrize("single_record_batches", [True, False], ids=["record-per-batch", "kafka-batches"])
def test_scenario_stream_gives_exactly_the_expected_alerts(settings, env, tmp_path, single_record_batches):
    # Both write paths: one record per Kafka batch (the embedded broker's workaround, used
    # by every other test) and one Kafka batch per partition (production on Apache Kafka).
    env = {**env, "BEACON_KAFKA_SINGLE_RECORD_BATCHES": str(single_record_batches).lower()}
    s = Scenario()
    report = s.report(0)
    events = [
        s.cse(-48),
        report,
        report,  # a resend of the same event: no second alert
        s.sighting(10),
        s.sighting(24.5),  # event time passes the 24 h step (+ lateness)
        s.found(25),
    ]
    with ServiceProcess("correlator", env, tmp_path / "correlator.log", port=settings.correlator_port):
        produce_events(settings, EVENTS, events)
        alerts = _alerts(settings, expect=5)
    assert _summary(alerts) == [
        ("cse_missing", "flag", "raised"),  # critical: open until a strategy discussion is held
        ("duration", "24h", "raised"),
        ("duration", "24h", "resolved"),
        ("triage", "high", "raised"),
        ("triage", "high", "resolved"),
    ]
    by_rule = {a.rule: a for a in alerts if a.status == "raised"}
    assert by_rule["triage"].alert_id == alert_id(CHILD, EPISODE, "triage", "high")
    assert by_rule["triage"].trigger_event_ids == (report["id"],)
    assert by_rule["cse_missing"].severity.value == "critical"
    assert by_rule["duration"].occurred_at == s.t0 + timedelta(hours=24)  # from event time
    assert all(a.council == "southwark" and a.child_ref == CHILD for a in alerts)
    # The state on the table's changelog is the child's, as the worker last wrote it.
    states = [r for r in read_topic(settings, CHANGELOG, expect=1, settle_s=1) if r.key == CHILD.encode()]
    last = ChildState.from_bytes(states[-1].value)
    assert list(last.episodes) == [EPISODE] and last.episodes[EPISODE].closed


@pytest.mark.parametrize("data_dir", ["same", "fresh"])
def test_restart_recovers_state_and_never_emits_an_alert_twice(settings, env, tmp_path, table_store, data_dir):
    # SIGKILL, then a restart on the same data directory (a RocksDB store recovers only the
    # changelog's tail) or on an empty one (a new pod: the whole changelog is read).
    s = Scenario()
    first = [s.cse(-48), s.report(0), s.sighting(1)]
    second = [first[1], s.sighting(24.5), s.found(25)]  # a replayed report, the 24 h step, the return
    correlator = ServiceProcess("correlator", env, tmp_path / "correlator.log", port=settings.correlator_port)
    with correlator:
        produce_events(settings, EVENTS, first)
        assert _summary(_alerts(settings, expect=2)) == [
            ("cse_missing", "flag", "raised"),
            ("triage", "high", "raised"),
        ]
        time.sleep(5)  # past the offset commit interval: the crash below loses no processed work
        correlator.kill()
        if table_store == "rocksdb://":
            assert _persisted_offsets(settings.data_dir) == _changelog_last_offsets(settings)
        if data_dir == "fresh":
            correlator.env = {**env, "BEACON_DATA_DIR": str(tmp_path / "fresh-data")}
        # Written ten minutes ago: they waited in the topic while the correlator was down.
        produce_events(settings, EVENTS, second, written_at=datetime.now(UTC) - timedelta(minutes=10))
        correlator.start()  # same consumer group and table changelog: recovers, then resumes
        alerts = _alerts(settings, expect=5, settle_s=5)
    assert _summary(alerts) == [
        ("cse_missing", "flag", "raised"),
        ("duration", "24h", "raised"),
        ("duration", "24h", "resolved"),
        ("triage", "high", "raised"),
        ("triage", "high", "resolved"),
    ]
    assert len({(a.alert_id, a.status) for a in alerts}) == len(alerts)
    # Raised from the backlog the restart read: flagged, so the notifier holds them and the
    # return right behind the 24 h step pages nobody; those of the first run, read live, not.
    assert {(a.rule, a.status) for a in alerts if a.from_backlog} == {
        ("duration", "raised"),
        ("duration", "resolved"),
        ("triage", "resolved"),
    }
    assert all(
        a.from_backlog is None
        for a in alerts
        if (a.rule, a.status) in {("cse_missing", "raised"), ("triage", "raised")}
    )


def _changelog_last_offsets(settings) -> dict[int, int]:
    last: dict[int, int] = {}
    for record in read_topic(settings, CHANGELOG, expect=1, settle_s=1):
        last[record.partition] = max(last.get(record.partition, -1), record.offset)
    return last


def _persisted_offsets(data_dir) -> dict[int, int]:
    """The changelog offset each of the correlator's RocksDB partitions says it holds."""
    from rocksdict import AccessType, Options, Rdict

    found = {}
    for path in sorted((data_dir / "correlator").rglob("children-*.db")):
        db = Rdict(str(path), options=Options(raw_mode=True), access_type=AccessType.read_only())
        try:
            offset = db.get(b"__faust\0offset__")
        finally:
            db.close()
        if offset is not None:
            found[int(path.stem.rsplit("-", 1)[1])] = int(offset)
    return found


def test_invalid_payload_goes_to_the_dead_letter_topic_and_the_worker_carries_on(settings, env, tmp_path):
    s = Scenario()
    with ServiceProcess("correlator", env, tmp_path / "correlator.log", port=settings.correlator_port):
        produce(settings, EVENTS, [(CHILD.encode(), b'{"type": "beacon.episode.reported.v1", "data": {}}')])
        produce_events(settings, EVENTS, [s.report(0, risk="medium", child="CH-INTEG-0002")])
        dead = read_topic(settings, EVENTS_DLQ, expect=1, timeout_s=60)
        alerts = _alerts(settings, expect=1)
    assert_match_published_schema(EVENTS_DLQ, dead)
    (letter,) = [DeadLetterRecord.from_json(r.value) for r in dead]  # the one dead-letter format
    assert base64.b64decode(letter.original or "") == b'{"type": "beacon.episode.reported.v1", "data": {}}'
    assert (letter.service, letter.topic, letter.key) == ("correlator", EVENTS, CHILD)
    assert letter.reason_class == "invalid" and "data/episode_ref" in [r.field for r in letter.reason]
    assert "data/episode_ref" in dict(dead[0].headers)["beacon-dlq-reason"].decode()
    assert [(a.child_ref, a.rule, a.step) for a in alerts] == [("CH-INTEG-0002", "triage", "medium")]


def _quick_policy(tmp_path, lateness_s: float = 3) -> dict[str, str]:
    """The default rules with a lateness of seconds, so a test can wait it out."""
    path = tmp_path / "policy.yaml"
    path.write_text(f"council: test\nallowed_lateness_minutes: {lateness_s / 60}\n")
    return {"BEACON_POLICY_FILE": str(path), "BEACON_CORRELATOR_TICK_INTERVAL_S": "1"}


def test_wall_clock_timer_fires_the_ladder_once_caught_up(settings, env, tmp_path):
    # Test-only clock: the worker's timer believes it is 25 hours later, so the report
    # arrives a day late to it: its ladder waits the lateness (seconds here), then fires.
    shifted = {**env, **_quick_policy(tmp_path), "BEACON_CORRELATOR_CLOCK_OFFSET_S": str(25 * 3600)}
    s = Scenario()
    with ServiceProcess("correlator", shifted, tmp_path / "correlator.log", port=settings.correlator_port):
        produce_events(settings, EVENTS, [s.report(1, risk="low")])
        alerts = _alerts(settings, expect=2)
    assert _summary(alerts) == [("duration", "24h", "raised"), ("triage", "medium", "raised")]
    ladder = next(a for a in alerts if a.rule == "duration")
    assert ladder.occurred_at == s.t0 + timedelta(hours=25) and ladder.emitted_at > ladder.occurred_at


def test_after_a_restart_the_timer_fires_due_rules_with_no_new_event_to_read(settings, env, tmp_path):
    """A correlator restarted on a quiet stream (its events read and committed before) is
    caught up at once: the ladder rung that fell due while it was down fires from the wall
    clock, without waiting for some new event on each of its partitions."""
    quick = {**env, **_quick_policy(tmp_path)}
    s = Scenario()
    correlator = ServiceProcess("correlator", quick, tmp_path / "correlator.log", port=settings.correlator_port)
    with correlator:
        produce_events(settings, EVENTS, [s.report(1, risk="low")])
        (triage,) = _alerts(settings, expect=1)
        time.sleep(5)  # past the offset commit interval: the report counts as read
    assert (triage.rule, triage.from_backlog) == ("triage", None)  # read live: paged at once
    # Back a day later (to its clock): nothing new on the events topic.
    correlator.env = {**quick, "BEACON_CORRELATOR_CLOCK_OFFSET_S": str(25 * 3600)}
    with correlator:
        alerts = _alerts(settings, expect=2)
    assert _summary(alerts) == [("duration", "24h", "raised"), ("triage", "medium", "raised")]
    ladder = next(a for a in alerts if a.rule == "duration")
    assert ladder.from_backlog is None  # the wall clock's: live


def test_metrics_count_events_and_alerts(settings, env, tmp_path):
    import httpx

    s = Scenario()
    report = s.report(0)
    with ServiceProcess("correlator", env, tmp_path / "correlator.log", port=settings.correlator_port):
        produce_events(settings, EVENTS, [report, report])
        _alerts(settings, expect=1)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            text = httpx.get(f"http://127.0.0.1:{settings.correlator_port}/metrics").text
            if (
                'beacon_correlator_events_total{outcome="duplicate"} 1.0' in text
                and 'beacon_timer_last_run_timestamp_seconds{loop="correlator"}' in text
            ):
                break
            time.sleep(0.5)
    assert 'beacon_correlator_events_total{outcome="applied"} 1.0' in text
    assert 'beacon_correlator_events_total{outcome="duplicate"} 1.0' in text
    assert 'beacon_alerts_raised_total{rule="triage",severity="high"} 1.0' in text
    assert "beacon_open_episodes 1.0" in text
    assert 'beacon_children_missing{risk="high"} 1.0' in text
    assert 'beacon_timer_last_run_timestamp_seconds{loop="correlator"}' in text


def test_on_call_is_not_left_with_still_missing_alerts_for_a_child_found_after_a_backdated_report(
    settings, env, tmp_path
):
    """Issue 12 item 1: a child the timer has visited (an earlier episode's overdue
    interview) is reported days late, missing since 73 hours ago and found 67 hours ago;
    the found arrives a second after the report. No "still missing after 24/48/72 h" is
    raised, before or after the lateness, and the report's triage is resolved."""
    s = Scenario()  # t0 is an hour ago
    earlier = "MET-INTEG-000"
    first = [
        s.report(-120, risk="low", episode=earlier),
        s.event("episode.found", -119, {"episode_ref": earlier, "outcome": "found", "ended_at": s.at(-119)}),
    ]
    live = {**env, **_quick_policy(tmp_path)}
    with ServiceProcess("correlator", live, tmp_path / "correlator.log", port=settings.correlator_port):
        produce_events(settings, EVENTS, first)
        before = _alerts(settings, expect=3)  # triage raised and resolved; the timer: interview overdue
        assert ("rhi_overdue", "72h", "raised") in _summary(before)
        report = s.report(-71, risk="medium")
        report["data"]["started_at"] = s.at(-72)
        produce_events(settings, EVENTS, [report])
        time.sleep(1)
        produce_events(
            settings, EVENTS, [s.event("episode.found", -66, {**s.found(-66)["data"], "ended_at": s.at(-67)})]
        )
        alerts = _alerts(settings, expect=5, settle_s=8)  # the lateness (3 s) passes twice over
    of_report = [a for a in alerts if a.episode_ref == EPISODE]
    assert _summary(of_report) == [("triage", "medium", "raised"), ("triage", "medium", "resolved")]
    assert [a for a in alerts if a.rule == "duration"] == []


def test_strategy_discussion_prompt_stays_open_after_the_child_comes_home_until_one_is_held(settings, env, tmp_path):
    """Issue 12 item 4: the third episode in 90 days prompts a strategy discussion once;
    the child coming home does not close it, a fourth episode in the window raises no
    second prompt, and a discussion held closes it."""
    s = Scenario()
    events = []
    for n, day in enumerate([-60, -40, -20, -10]):
        ref, hours = f"MET-REPEAT-{n}", day * 24
        events += [
            s.report(hours, risk="low", episode=ref),
            s.event("episode.found", hours + 5, {"episode_ref": ref, "outcome": "found", "ended_at": s.at(hours + 5)}),
            s.event(
                "return_interview.recorded",
                hours + 20,
                {"episode_ref": ref, "status": "completed", "recorded_at": s.at(hours + 20)},
            ),
        ]
    with ServiceProcess("correlator", env, tmp_path / "correlator.log", port=settings.correlator_port):
        produce_events(settings, EVENTS, events)
        alerts = _alerts(settings, expect=9)
        prompts = [a for a in alerts if a.rule == "repeat_episodes"]
        assert [(a.episode_ref, a.status) for a in prompts] == [("MET-REPEAT-2", "raised")]
        assert prompts[0].reason == "3 missing episodes in 90 days; strategy discussion needed"
        discussion = s.event("strategy_discussion.recorded", -9 * 24, {"status": "held", "recorded_at": s.at(-216)})
        produce_events(settings, EVENTS, [discussion])
        alerts = _alerts(settings, expect=10)
    prompts = [a for a in alerts if a.rule == "repeat_episodes"]
    assert [(a.episode_ref, a.status) for a in prompts] == [("MET-REPEAT-2", "raised"), ("MET-REPEAT-2", "resolved")]
    assert prompts[1].reason == "Strategy discussion held; alert resolved"
    assert prompts[1].alert_id == prompts[0].alert_id


def test_another_councils_correction_cannot_close_a_missing_child_and_a_found_by_another_force_says_who(
    settings, env, tmp_path
):
    """Issue 11 item 10: a council with no part in the episode sends a correction with an
    end date: refused, dead-lettered with the reason, the alert stays open. Then a force
    that did not report the child finds it: the resolution names that force."""
    s = Scenario()
    report = s.report(0, risk="high")  # reported by met-police, placed by southwark
    correction = build_event(
        "beacon.episode.corrected.v1",
        CHILD,
        {"episode_ref": EPISODE, "corrected_at": s.at(0.5), "ended_at": s.at(0.2)},
        time=s.at(0.5),
        source="urn:beacon:source:kent-cc",
        event_id="kent-correction-1",
    )
    found = build_event(
        "beacon.episode.found.v1",
        CHILD,
        {"episode_ref": EPISODE, "outcome": "found", "ended_at": s.at(0.7)},
        time=s.at(0.7),
        source="urn:beacon:source:essex-police",
        event_id="essex-found-1",
    )
    with ServiceProcess("correlator", env, tmp_path / "correlator.log", port=settings.correlator_port):
        produce_events(settings, EVENTS, [report, correction])
        dead = read_topic(settings, EVENTS_DLQ, expect=1, timeout_s=60)
        assert _summary(_alerts(settings, expect=1)) == [("triage", "high", "raised")]  # still missing
        produce_events(settings, EVENTS, [found])
        alerts = _alerts(settings, expect=2)
    assert_match_published_schema(EVENTS_DLQ, dead)
    letter = DeadLetterRecord.from_json(dead[0].value)
    assert [(r.field, r.reason) for r in letter.reason] == [
        (
            "source",
            (
                "refused: correction from kent-cc, which has no part in episode MET-INTEG-001 "
                "(reporting force, placing or host council)"
            ),
        )
    ]
    assert (letter.service, letter.topic) == ("correlator", EVENTS)
    assert json.loads(base64.b64decode(letter.original))["id"] == "kent-correction-1"
    resolved = [a for a in alerts if a.status == "resolved"]
    assert [(a.rule, a.closed_by) for a in resolved] == [("triage", "essex-police")]
