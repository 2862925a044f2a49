"""Order independence by construction: any on-time permutation and duplication of a
child's events gives the same alert ids and the same final state as in-order delivery."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from beacon.core.policy import Policy
from beacon.correlator import engine
from correlator.builders import CHILD, Events, Run

POLICY = Policy(council="property", allowed_lateness_minutes=10)
LATENESS_H = POLICY.allowed_lateness_minutes / 60


@st.composite
def histories(draw: st.DrawFn) -> list:
    """One child's events in event-time order: background facts and 1-3 episodes whose
    events are dense (minutes apart) so that on-time reordering really mixes them."""
    ev = Events()
    events = []
    minute = 1 / 60
    for _ in range(draw(st.integers(0, 3))):
        hours = draw(st.integers(-300, 200)) * minute * 10
        if draw(st.booleans()):
            events.append(ev.cse(hours, draw(st.sampled_from(["none", "low", "medium", "high"]))))
        else:
            events.append(ev.allocation(hours, draw(st.sampled_from(["allocated", "unallocated"]))))
    start = 0.0
    for n in range(draw(st.integers(1, 3))):
        ref = f"EP{n}"
        risk = draw(st.sampled_from(["no_apparent_risk", "low", "medium", "high"]))
        report_at = start + draw(st.integers(0, 30)) * minute
        events.append(
            ev.reported(
                report_at,
                ref,
                risk=risk,
                age=draw(st.integers(10, 17)),
                looked_after=draw(st.booleans()),
                started=start,
            )
        )
        cursor = report_at
        for _ in range(draw(st.integers(0, 5))):
            cursor += draw(st.integers(0, 15)) * minute
            kind = draw(st.sampled_from(["regrade", "regrade", "sighting", "cse", "allocation", "rescue"]))
            if kind == "regrade":
                events.append(ev.regraded(cursor, ref, draw(st.sampled_from(["low", "medium", "high"]))))
            elif kind == "sighting":
                events.append(ev.sighting(cursor, ref))
            elif kind == "cse":
                events.append(ev.cse(cursor, draw(st.sampled_from(["low", "medium", "high"]))))
            elif kind == "allocation":
                events.append(ev.allocation(cursor, draw(st.sampled_from(["allocated", "unallocated"]))))
            else:
                events.append(ev.rescue_alert(cursor, ref))
        # Missing for minutes to days: crosses ladder steps or not.
        cursor += draw(st.sampled_from([0, 5, 30, 600, 1440, 1445, 2900, 4400])) * minute
        if draw(st.integers(0, 4)) == 0 and n == 0:
            events.append(ev.corrected(cursor, ref, started=start - draw(st.integers(0, 30))))
        if draw(st.integers(0, 5)) == 0:
            break  # still missing at the end of the history
        ended = cursor - draw(st.integers(0, 20)) * minute
        events.append(ev.found(cursor, ref, ended=max(ended, start)))
        # Just after the found (so often delivered before it): a CSE flag or a de-allocation.
        after = draw(st.sampled_from([None, "cse", "unallocated"]))
        if after == "cse":
            events.append(ev.cse(cursor + draw(st.integers(0, 9)) * minute, "high"))
        elif after == "unallocated":
            events.append(ev.allocation(cursor + draw(st.integers(0, 9)) * minute, "unallocated"))
        cursor += draw(st.integers(0, 10)) * minute
        if draw(st.booleans()):
            delay = draw(st.sampled_from([1, 60, 4300, 4330, 6000]))
            if delay == 6000:  # overdue, raised by a later event, then recorded late
                events.append(ev.sighting(cursor + 4335 * minute, ref))
            cursor += delay * minute
            events.append(ev.rhi(cursor, ref, draw(st.sampled_from(["completed", "declined", "offered"]))))
        start = cursor + draw(st.integers(11, 60 * 24 * 30)) * minute
    # A last event far ahead moves the watermark past every deadline.
    events.append(ev.sighting(start + 400, "EP-LAST"))
    return sorted(events, key=lambda e: (e.time, e.id))


def deliver(events: list, seed: int, duplicates: float) -> list:
    """An on-time delivery order: each event delayed by up to the lateness (so it is never
    more than the lateness behind the latest event time delivered before it), some twice."""
    rng = random.Random(seed)
    copies = list(events) + [e for e in events if rng.random() < duplicates]
    delay = [rng.uniform(0, LATENESS_H * 3600 - 1) for _ in copies]
    order = sorted(range(len(copies)), key=lambda i: copies[i].time.timestamp() + delay[i])
    return [copies[i] for i in order]


def outcome(events: list) -> tuple:
    run = Run(POLICY)
    run.feed(*events)
    ids = {(r.alert_id, r.status) for r in run.records}
    assert len(ids) == len(run.records), "an alert was emitted twice"
    return ids, run.state


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(history=histories(), seed=st.integers(0, 2**32), duplicates=st.sampled_from([0.0, 0.3, 1.0]))
def test_on_time_permutations_and_duplicates_change_nothing(history, seed, duplicates):
    in_order_ids, in_order_state = outcome(history)
    shuffled_ids, shuffled_state = outcome(deliver(history, seed, duplicates))
    assert shuffled_ids == in_order_ids
    assert shuffled_state == in_order_state


@settings(max_examples=100, deadline=None)
@given(history=histories())
def test_processing_the_same_history_twice_emits_nothing_new(history):
    run = Run(POLICY)
    run.feed(*history)
    state = run.state
    assert run.feed(*history) == []
    assert run.state == state


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(history=histories(), seed=st.integers(0, 2**32), order=st.sampled_from(["on_time", "any"]))
def test_rules_skipped_by_scope_or_rest_had_nothing_to_say(history, seed, order):
    """After an event the engine re-evaluates only the rules the event can change
    (engine.Scope), runs time rules only once the horizon reaches the child's cached next
    deadline, and skips episodes at rest. So after every event, deriving every rule from
    scratch must find nothing left unsaid, and the cached deadline must never be later than
    the facts say. In any order, late events included, for every episode not at rest; with
    on-time delivery for those at rest too (a CSE or allocation fact later than the lateness
    reaches an episode at rest only with the next event about it: engine._Rules.at_rest)."""
    events = deliver(history, seed, 0.3)
    if order == "any":
        random.Random(seed).shuffle(events)
    run = Run(POLICY)
    for event in events:
        run.feed(event)
        every_rule = run.state.copy()
        every_rule.n = 0  # not known: every time rule runs
        if order == "on_time":
            for episode in every_rule.e.values():
                episode.q = False
            unsaid = engine._emit(CHILD, every_rule, POLICY, event.time, touched=None)
        else:
            unsaid = engine._emit(CHILD, every_rule, POLICY, event.time, touched="", scope=engine.CHILD_SCOPE)
        assert unsaid == []
        due = engine._Rules(CHILD, every_rule, POLICY, engine.NEVER).next_deadline()
        if run.state.n == -1:
            assert due is None
        else:
            assert run.state.n > 0 and (due is None or run.state.n <= due)
