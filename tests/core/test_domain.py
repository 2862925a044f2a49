"""One reading of the events (core/domain.py): the console's view and the correlator's
state, folded from the same events in the same order, agree on which episodes exist,
which report merged into which episode, and which episode is open; and both handle every
event type of the contract."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from beacon.console.projection import ViewState, apply, missing_now, timeline
from beacon.core import domain
from beacon.core.alerts import Severity
from beacon.core.events import EVENT_TYPES, CloudEvent
from beacon.core.policy import Policy
from beacon.correlator import engine, rules
from beacon.correlator.state import ChildState
from correlator.builders import CHILD, T0, Events

POLICY = Policy(council="domain", allowed_lateness_minutes=10)


def fold_both(events: list[CloudEvent]) -> tuple[ViewState, ChildState]:
    view, state = ViewState(), ChildState()
    for event in events:
        apply(view, event)
        state, _ = engine.apply_event(state, event, event.time, POLICY)
    return view, state


def console_reading(view: ViewState) -> tuple[set[str], dict[str, str], set[str]]:
    child = view.children[CHILD]
    return set(child.episodes), child.aliases, {ref for ref, ep in child.episodes.items() if ep.is_open}


def correlator_reading(state: ChildState) -> tuple[set[str], dict[str, str], set[str]]:
    return (
        set(state.episodes),
        state.aliases,
        {ref for ref, ep in state.episodes.items() if domain.is_open(ep.report is not None, ep.closed)},
    )


def one_of_every_type(ev: Events) -> list[CloudEvent]:
    """A report, then one event of every type of the contract about the same child and episode."""
    return [
        ev.reported(0, "EP1", risk="medium"),
        ev.regraded(1, "EP1", "high"),
        ev.sighting(2, "EP1"),
        ev.rescue_alert(3, "EP1"),
        ev.cse(4, "high"),
        ev.allocation(5, "unallocated"),
        ev.placement(6),
        ev.make("strategy_discussion.recorded", 7, {"status": "requested", "recorded_at": "2026-03-03T01:00:00Z"}),
        ev.corrected(8, "EP1", started=-1),
        ev.found(9, "EP1"),
        ev.make("episode.safe_and_well_checked", 10, {"episode_ref": "EP1", "checked_at": "2026-03-03T04:00:00Z"}),
        ev.rhi(11, "EP1", "completed"),
    ]


def test_the_sample_has_one_event_of_every_type_in_the_contract():
    assert sorted(e.type for e in one_of_every_type(Events())) == sorted(EVENT_TYPES)


def test_every_event_type_is_handled_by_both_folds():
    events = one_of_every_type(Events())
    view, state = ViewState(), ChildState()
    for event in events:
        before = view.version
        apply(view, event)
        assert view.version == before + 1, event.type
        state, outcome = engine.apply_event(state, event, event.time, POLICY)
        assert outcome.applied and state.watermark == domain.epoch(event.time), event.type
        assert console_reading(view) == correlator_reading(state), event.type
    texts = [entry.text for entry in timeline(view, CHILD)]
    assert len(texts) == len(events)
    assert not set(texts) & set(EVENT_TYPES), "an event type fell through to the console's fallback"
    # What each type means reached both states.
    child, [(ref, episode)] = view.children[CHILD], state.episodes.items()
    assert (child.episodes[ref].ended_at is not None, episode.closed) == (True, True)
    assert (child.episodes[ref].rescue_alert_at is not None, episode.rescue_alert is not None) == (True, True)
    assert (child.episodes[ref].risk, domain.RISK_BY_RANK[max(episode.regrades)[2]]) == ("high", "high")
    assert (child.cse_level, state.cse_screenings[-1][2]) == ("high", domain.CSE_RANK["high"])
    assert episode.interview is not None and state.placement is not None and state.allocations


def test_a_second_report_while_open_is_the_same_episode_in_both_folds():
    ev = Events()
    view, state = fold_both([ev.reported(0, "EP1", risk="low"), ev.reported(2, "EP2", risk="high")])
    assert console_reading(view) == correlator_reading(state) == ({"EP1"}, {"EP2": "EP1"}, {"EP1"})
    [row] = missing_now(view)
    assert (row.episode.episode_ref, row.episode.risk) == ("EP1", "high")
    assert row.episode.started_at == ev.reported(0).data.started_at  # the first report is the report
    assert timeline(view, CHILD)[-1].text.endswith("(as EP2: the same episode)")
    # Events naming the second report's reference are about the one episode.
    apply(view, ev.found(3, "EP2"))
    state, _ = engine.apply_event(state, ev.found(3, "EP2"), ev.found(3, "EP2").time, POLICY)
    assert missing_now(view) == [] and state.open_episode() is None


def test_a_sighting_under_the_second_reference_first_still_makes_one_episode():
    """A sighting (or an interview only offered) names an episode without making one, in both folds."""
    ev = Events()
    view, state = fold_both(
        [ev.reported(0, "EP1"), ev.sighting(1, "EP2"), ev.rhi(1.5, "EP2", "offered"), ev.reported(2, "EP2")]
    )
    assert console_reading(view) == correlator_reading(state) == ({"EP1"}, {"EP2": "EP1"}, {"EP1"})
    assert len(missing_now(view)) == 1


def test_the_current_risk_is_the_latest_by_event_time_in_both_folds():
    """A re-grade sent after the report, though dated (regraded_at) before it, is the
    current grade for the correlator's rules, so it is the one the console shows."""
    ev = Events()
    late_regrade = ev.make(
        "episode.risk_regraded", 2, {"episode_ref": "EP1", "risk": "medium", "regraded_at": "2026-03-02T17:00:00Z"}
    )
    view, state = fold_both([ev.reported(0, "EP1", risk="high"), late_regrade])
    assert view.children[CHILD].episodes["EP1"].risk == engine.missing_risk(state) == "medium"


def test_a_report_after_the_open_episode_closed_is_a_new_episode():
    ev = Events()
    view, state = fold_both([ev.reported(0, "EP1"), ev.found(1, "EP1"), ev.reported(5, "EP2")])
    assert console_reading(view) == correlator_reading(state) == ({"EP1", "EP2"}, {}, {"EP2"})


@st.composite
def histories(draw: st.DrawFn) -> list[CloudEvent]:
    """One child's events over a few episode references, in any order the sources send them."""
    ev = Events()
    refs = ["EP1", "EP2", "EP3"]
    events = []
    for n in range(draw(st.integers(1, 14))):
        hours = draw(st.integers(0, 96))
        ref = draw(st.sampled_from(refs))
        kind = draw(st.sampled_from(["report", "report", "found", "regrade", "sighting", "start", "end", "rhi"]))
        if kind == "report":
            events.append(ev.reported(hours, ref, risk=draw(st.sampled_from(list(domain.RISK_RANK)))))
        elif kind == "found":
            events.append(ev.found(hours, ref))
        elif kind == "regrade":  # re-graded some hours before the source sent it, maybe
            regraded_at = (T0 + timedelta(hours=hours - draw(st.integers(0, 6)))).isoformat()
            grade = draw(st.sampled_from(list(domain.RISK_RANK)))
            data = {"episode_ref": ref, "risk": grade, "regraded_at": regraded_at}
            events.append(ev.make("episode.risk_regraded", hours, data))
        elif kind == "sighting":
            events.append(ev.sighting(hours, ref))
        elif kind == "start":
            events.append(ev.corrected(hours, ref, started=hours - 1))
        elif kind == "end":
            events.append(ev.corrected(hours, ref, ended=hours))
        else:
            events.append(ev.rhi(hours, ref, draw(st.sampled_from(["offered", "completed"]))))
        if draw(st.integers(0, 9)) == 0:
            events.append(events[draw(st.integers(0, n))])  # a resend
    return events


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories())
def test_both_folds_agree_on_episode_identity_whatever_the_history(events):
    view, state = fold_both(events)
    reading = console_reading(view)
    assert reading == correlator_reading(state)
    assert {ep.episode_ref for ep in (row.episode for row in missing_now(view))} == reading[2]
    for ref in reading[2]:  # and on the current police risk of each open episode
        episode = state.episodes[ref]
        assert episode.report is not None
        latest = max([(episode.report.time, episode.report.event_id, episode.report.risk), *episode.regrades])
        assert view.children[CHILD].episodes[ref].risk == domain.RISK_BY_RANK[latest[2]]


def test_labels_are_defined_for_every_value_of_the_contract():
    from beacon.core.events import Category, CseLevel, RiskGrade

    assert set(domain.RISK_RANK) == set(domain.RISK_LABEL) == {g.value for g in RiskGrade}
    assert set(domain.CATEGORY_LABEL) == {c.value for c in Category}
    assert set(domain.CSE_RANK) == {c.value for c in CseLevel}
    assert [domain.severity_label(s) for s in domain.SEVERITIES] == ["low", "medium", "high", "critical"]
    assert domain.risk_label(None) == "not graded" and domain.risk_label("no_apparent_risk") == "no apparent risk"


def test_an_alert_reason_uses_the_same_words_as_the_console():
    ev = Events()
    _, alerts = engine.decide(
        ChildState(),
        ev.reported(0, risk="no_apparent_risk", category="away_without_authorisation"),
        ev.reported(0).time,
        POLICY,
    )
    [triage] = [a for a in alerts if a.rule == rules.TRIAGE]
    assert domain.RISK_LABEL["no_apparent_risk"] in triage.reason
    assert domain.CATEGORY_LABEL["away_without_authorisation"] in triage.reason
    assert triage.severity in (Severity.low, Severity.medium)
