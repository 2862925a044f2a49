"""Who may close whose episode (issue 11 item 10), through the pure engine."""

from __future__ import annotations

import msgspec
import pytest

from beacon.core.policy import Corrections, Policy
from beacon.correlator.engine import apply_event
from beacon.correlator.state import ChildState
from correlator.builders import Events, Run

POLICY = Policy(council="test")  # reports name met-police (reporting force) and norfolk-cc (placing council)


@pytest.fixture
def ev() -> Events:
    return Events()


@pytest.fixture
def run() -> Run:
    return Run(POLICY)


def _resolutions(records: list) -> list[tuple[str, str | None]]:
    return sorted((r.rule, r.closed_by) for r in records if r.status == "resolved")


def test_a_child_found_by_another_force_closes_the_episode_and_says_who(run, ev):
    run.feed(ev.reported(0, risk="high"))
    records = run.feed(ev.found(3, by="essex-police"))
    assert _resolutions(records) == [("triage", "essex-police")]


def test_another_councils_correction_closing_the_episode_is_refused_and_changes_nothing(run, ev):
    run.feed(ev.reported(0, risk="high"))
    before = run.state.copy()
    correction = ev.corrected(2, ended=1, by="kent-cc")
    state, outcome = apply_event(run.state, correction, correction.time, POLICY)
    assert outcome.refused == (
        "correction from kent-cc, which has no part in episode EP1 (reporting force, placing or host council)"
    )
    assert outcome.alerts == [] and not outcome.applied
    assert state.episodes == before.episodes and state.watermark == before.watermark  # only its key is remembered
    run.state = state
    assert [r.step for r in run.tick(25) if r.rule == "duration"] == ["24h"]  # still missing


@pytest.mark.parametrize("by", ["met-police", "norfolk-cc"])
def test_the_reporting_force_or_the_placing_council_may_correct_the_end(run, ev, by):
    run.feed(ev.reported(0, risk="high"))
    records = run.feed(ev.corrected(2, ended=1, by=by))
    assert _resolutions(records) == [("triage", by)]


def test_the_host_council_of_the_placement_may_correct_the_end(run, ev):
    run.feed(ev.placement(-30, placing="norfolk-cc", host="medway"), ev.reported(0, risk="high"))
    assert _resolutions(run.feed(ev.corrected(2, ended=1, by="medway"))) == [("triage", "medway")]


def test_a_correction_sent_before_its_report_counts_only_if_the_report_names_its_sender(run, ev):
    run.feed(ev.corrected(0.5, ended=0.4, by="kent-cc", event_id="early-kent"))
    run.feed(ev.corrected(0.6, started=-10, by="met-police", event_id="early-met"))
    state, outcome = apply_event(run.state, ev.reported(0), ev.reported(0).time, POLICY)
    assert outcome.refused_earlier == [
        (
            "early-kent",
            "correction from kent-cc, which has no part in episode EP1 (reporting force, placing or host council)",
        )
    ]
    episode = state.episodes["EP1"]
    assert not episode.closed and [fact[1] for fact in episode.start_corrections] == ["early-met"]


def test_a_policy_may_let_any_organisation_correct(ev):
    run = Run(Policy(council="test", corrections=Corrections(parties_only=False)))
    run.feed(ev.reported(0, risk="high"))
    assert _resolutions(run.feed(ev.corrected(2, ended=1, by="kent-cc"))) == [("triage", "kent-cc")]


def test_a_resolution_by_a_discussion_or_an_interview_names_no_closer(run, ev):
    run.feed(ev.reported(0), ev.found(5, by="essex-police"))
    run.tick(80)
    records = run.feed(ev.rhi(81))
    assert [(r.rule, r.closed_by) for r in records] == [("rhi_overdue", None)]


def test_an_episode_reported_before_the_upgrade_still_takes_its_corrections(ev):
    # A state written before reports kept their reporting force: its parties are not known.
    old = msgspec.msgpack.encode(
        {"w": 3600, "e": {"EP1": {"r": [3600, "e1", 3600, 3, 15, False, "missing", "norfolk-cc"], "a": {"Thigh": 1}}}}
    )
    correction = ev.corrected(2, ended=1.5, by="met-police")
    state, outcome = apply_event(ChildState.from_bytes(old), correction, correction.time, POLICY)
    assert outcome.refused is None and state.episodes["EP1"].closed
