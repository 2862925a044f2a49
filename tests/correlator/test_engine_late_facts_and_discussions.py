"""Backdated reports, late founds and corrections, and strategy discussions (issue 12,
items 1 and 4), through the pure engine: what the on-call worker is left with."""

from __future__ import annotations

import pytest

from beacon.core.alerts import Severity
from beacon.core.policy import CseMissing, Policy
from correlator.builders import Events, Run

POLICY = Policy(council="test")
DAY = 24


@pytest.fixture
def ev() -> Events:
    return Events()


@pytest.fixture
def run() -> Run:
    return Run(POLICY)


def _ladder(records: list) -> list[tuple[str, str]]:
    return [(r.step, r.status) for r in records if r.rule == "duration"]


# ----------------------------------------------------------------- item 1: messy time


def test_backdated_report_of_a_child_the_timer_visited_then_found_pages_no_ladder(run, ev):
    # A first episode whose interview deadline the wall-clock timer fired: the child's
    # horizon is now the wall clock (hour 100).
    run.feed(ev.reported(0, "EP0"), ev.found(5, "EP0"))
    assert [r.rule for r in run.tick(100)] == ["rhi_overdue"]
    # A report dated days back (hour 40, missing since 38), then its found (hour 46).
    run.feed(ev.reported(40, "EP1", started=38), ev.found(46, "EP1", ended=45))
    assert _ladder(run.records) == []
    run.tick(400)
    assert _ladder(run.records) == []
    assert [key for key in run.still_open() if key[0] == "EP1"] == [("EP1", "rhi_overdue", "72h")]  # still true


def test_backdated_report_delivered_live_waits_the_lateness_for_its_found(run, ev):
    # Never seen by the timer; the worker delivers at wall clock hour 200.
    run.feed(ev.reported(100, started=90), wall=200)
    assert _ladder(run.records) == []  # not at once: its found may be on its way
    run.feed(ev.found(101, ended=100.5), wall=200.01)
    run.tick(300)
    assert _ladder(run.records) == []
    assert run.still_open() == [("EP1", "rhi_overdue", "72h")]  # no interview recorded: still true


def test_backdated_report_still_missing_after_the_lateness_escalates(run, ev):
    run.feed(ev.reported(100, started=40), wall=200)
    assert run.tick(200.1) == []
    assert [r.step for r in run.tick(200.2) if r.rule == "duration"] == ["24h", "48h", "72h"]


def test_found_recorded_after_the_deadline_resolves_the_steps_it_paged(run, ev):
    run.feed(ev.reported(100, started=40), wall=200)
    run.tick(201)
    run.feed(ev.found(202, ended=60), wall=202)
    assert _ladder(run.records) == [
        ("24h", "raised"),
        ("48h", "raised"),
        ("72h", "raised"),
        ("24h", "resolved"),
        ("48h", "resolved"),
        ("72h", "resolved"),
    ]
    assert run.still_open() == []


def test_late_found_from_before_the_deadlines_resolves_every_step_it_makes_untrue(run, ev):
    run.feed(ev.reported(0))
    assert [r.step for r in run.tick(49)] == ["24h", "48h"]
    # The found, dated hour 20, arrives after both steps were paged.
    records = run.feed(ev.found(20))
    assert sorted((r.rule, r.step, r.status) for r in records) == [
        ("duration", "24h", "resolved"),
        ("duration", "48h", "resolved"),
        ("triage", "medium", "resolved"),
    ]
    assert all(r.reason == "Child found or returned; alert resolved" for r in records)


def test_correction_ending_the_episode_early_resolves_the_ladder(run, ev):
    run.feed(ev.reported(0))
    run.tick(73)
    records = run.feed(ev.corrected(73.5, ended=10))
    assert sorted(r.step for r in records if r.rule == "duration") == ["24h", "48h", "72h"]
    assert run.still_open() == []


def test_interview_dated_before_the_deadline_but_recorded_late_resolves_the_overdue_alert(run, ev):
    run.feed(ev.reported(0), ev.found(5))
    assert [r.rule for r in run.tick(78)] == ["rhi_overdue"]
    records = run.feed(ev.rhi(30))
    assert [(r.rule, r.status) for r in records] == [("rhi_overdue", "resolved")]


def test_fourth_episode_backdated_and_found_leaves_nothing_open_but_the_prompt(run, ev):
    for n, day in enumerate([0, 30, 60]):
        run.feed(ev.reported(day * DAY, f"EP{n}"), ev.found(day * DAY + 5, f"EP{n}"), ev.rhi(day * DAY + 20, f"EP{n}"))
    wall = 80 * DAY
    run.tick(wall)
    run.feed(ev.reported(75 * DAY, "EP3", started=74 * DAY), wall=wall)
    run.feed(ev.found(75 * DAY + 1, "EP3", ended=74 * DAY + 6), wall=wall + 0.01)
    run.tick(wall + 5)
    assert [r.episode_ref for r in run.records if r.rule == "repeat_episodes" and r.status == "raised"] == ["EP2"]
    assert _ladder(run.records) == []
    # Still true: the prompt until a discussion is held, the interview until one is recorded.
    assert run.still_open() == [("EP2", "repeat_episodes", "3in90d"), ("EP3", "rhi_overdue", "72h")]


# ----------------------------------------------------------------- item 4: strategy discussions


def _episodes(run: Run, ev: Events, days: list[float], first: int = 0) -> None:
    for n, day in enumerate(days, start=first):
        run.feed(ev.reported(day * DAY, f"EP{n}"), ev.found(day * DAY + 5, f"EP{n}"), ev.rhi(day * DAY + 20, f"EP{n}"))


def _prompts(run: Run) -> list[tuple[str | None, str]]:
    return [(r.episode_ref, r.status) for r in run.records if r.rule == "repeat_episodes"]


def test_repeat_prompt_stays_open_after_the_child_comes_home(run, ev):
    _episodes(run, ev, [0, 30, 60])
    assert _prompts(run) == [("EP2", "raised")]
    assert run.still_open() == [("EP2", "repeat_episodes", "3in90d")]


def test_repeat_prompt_closes_when_a_strategy_discussion_is_held(run, ev):
    _episodes(run, ev, [0, 30, 60])
    assert run.feed(ev.discussion(62 * DAY, "requested")) == []  # a request is not a discussion
    records = run.feed(ev.discussion(63 * DAY, "held", episode="EP2"))
    assert [(r.rule, r.status, r.reason) for r in records] == [
        ("repeat_episodes", "resolved", "Strategy discussion held; alert resolved")
    ]
    assert records[0].occurred_at.timestamp() == ev.discussion(63 * DAY).time.timestamp()


def test_fourth_episode_in_the_same_window_raises_no_second_prompt(run, ev):
    _episodes(run, ev, [0, 30, 60, 80])
    assert _prompts(run) == [("EP2", "raised")]


def test_a_new_prompt_only_once_the_count_is_reached_again_after_a_discussion(run, ev):
    _episodes(run, ev, [0, 30, 60])
    run.feed(ev.discussion(62 * DAY))
    _episodes(run, ev, [70, 80], first=3)
    assert _prompts(run) == [("EP2", "raised"), ("EP2", "resolved")]  # 2 since the discussion
    _episodes(run, ev, [90], first=5)
    assert _prompts(run) == [("EP2", "raised"), ("EP2", "resolved"), ("EP5", "raised")]


def test_a_discussion_held_during_the_episode_resolves_the_prompt_at_once(run, ev):
    _episodes(run, ev, [0, 30])
    run.feed(ev.reported(60 * DAY, "EP2"), ev.discussion(60 * DAY + 2))
    assert _prompts(run) == [("EP2", "raised"), ("EP2", "resolved")]


def test_critical_cse_alert_stays_open_until_a_strategy_discussion_is_held(run, ev):
    run.feed(ev.cse(-48, "high"), ev.reported(0, risk="high"), ev.found(6))
    assert run.still_open() == [("EP1", "cse_missing", "flag")]
    records = run.feed(ev.discussion(30))
    assert [(r.rule, r.status) for r in records] == [("cse_missing", "resolved")]
    assert run.still_open() == []


def test_a_cse_alert_that_is_not_critical_closes_with_the_found(ev):
    run = Run(Policy(council="test", cse_missing=CseMissing(severity=Severity.high)))
    run.feed(ev.cse(-48, "high"), ev.reported(0, risk="high"), ev.found(6))
    assert run.still_open() == []


def test_an_open_prompt_outlives_the_window_and_a_late_discussion_still_closes_it(run, ev):
    _episodes(run, ev, [0, 30, 60])
    run.feed(ev.sighting(400 * DAY, "EP-LATER"))  # far past every window: old episodes pruned
    assert list(run.state.episodes) == ["EP2"]
    records = run.feed(ev.discussion(401 * DAY))
    assert [(r.episode_ref, r.rule, r.status) for r in records] == [("EP2", "repeat_episodes", "resolved")]
