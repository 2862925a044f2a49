"""Invariants of the escalation engine over random event orders and arrival gaps.

A small simulated shell drives ``apply`` the way the notifier does: every
SendNotification goes in flight to a provider, whose result (accepted, or refused)
comes back as a DeliveryResult after an arbitrary delay, interleaved with the
alert's resolution, acknowledgements and clock ticks. The provider is the truth:
whatever it accepted reached a person.
"""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from beacon.core.acks import AckCommand
from beacon.notifier.escalation import (
    AckReceived,
    AlertRaised,
    AlertResolved,
    Audit,
    DeliveryResult,
    EscalationState,
    SendNotification,
    Tick,
    apply,
)
from notifier.conftest import T0, make_alert
from notifier.test_escalation import CHAIN

ALERT = make_alert()
CONTACTS = {t.person: t.contacts for step in CHAIN.steps for t in step.targets}
RESOLVED = make_alert(status="resolved")

# One step of the simulation: what happens next, and how much time passes first.
steps = st.lists(
    st.tuples(
        st.sampled_from(["result", "result", "result", "resolve", "ack", "tick", "receipt"]),
        st.integers(min_value=0, max_value=10),  # which in-flight message the step is about
        st.booleans(),  # the provider accepts (True) or refuses (False)
        st.floats(min_value=0, max_value=20 * 60),  # seconds before this step happens
    ),
    max_size=30,
)


def _run(script, resolve_at_end: bool = True, hold_s: float = 0):
    now = T0
    chain = CHAIN.model_copy(update={"hold_s": hold_s})
    state, actions = apply(None, AlertRaised(alert=ALERT, chain=chain), now)
    in_flight: list[str] = []
    accepted: dict[str, tuple[str, str]] = {}  # notice key -> (person, kind)
    audits: list = []

    def take(new_actions):
        for action in new_actions:
            if isinstance(action, SendNotification):
                in_flight.append(action.notice.key)
            elif isinstance(action, Audit):
                audits.append(action.record)

    def deliver(state: EscalationState, key: str, accept: bool):
        if accept:
            notice = state.notices[key]
            accepted[key] = (notice.person, notice.kind)
        outcome = "sent" if accept else "error"
        return apply(state, DeliveryResult(alert_id=ALERT.alert_id, key=key, outcome=outcome, provider_id="SM1"), now)

    take(actions)
    for what, which, accept, gap in script:
        now += timedelta(seconds=gap)
        if what == "result" and in_flight:
            key = in_flight.pop(which % len(in_flight))
            if state.notices[key].status == "cancelled" and which % 2:
                continue  # withdrawn before the dispatcher handed it over: never sent, no result
            state, actions = deliver(state, key, accept)
        elif what == "receipt" and accepted:
            key = sorted(accepted)[which % len(accepted)]
            state, actions = apply(state, DeliveryResult(alert_id=ALERT.alert_id, key=key, outcome="delivered"), now)
        elif what == "resolve":
            state, actions = apply(state, AlertResolved(alert=RESOLVED), now)
        elif what == "ack":
            cmd = AckCommand(
                command_id=f"c{which}", alert_id=ALERT.alert_id, action="acknowledge", by="oncall", via="sms", at=now
            )
            state, actions = apply(state, AckReceived(command=cmd), now)
        else:
            state, actions = apply(state, Tick(alert_id=ALERT.alert_id), now)
        take(actions)
    if resolve_at_end:
        state, actions = apply(state, AlertResolved(alert=RESOLVED), now)
        take(actions)
    while in_flight:  # the rest was already being handed over, and the provider accepts it
        state, actions = deliver(state, in_flight.pop(0), True)
        take(actions)
    return state, accepted, audits


holds = st.sampled_from([0, 0, 60])


@settings(max_examples=400, deadline=None)
@given(steps, holds)
def test_the_audit_records_every_message_a_provider_accepted(script, hold_s):
    _, accepted, audits = _run(script, hold_s=hold_s)
    sent = {(r.kind, r.audit_id.split(":", 2)[2]) for r in audits if r.kind in ("notification_sent", "resolution_sent")}
    for key, (_, kind) in accepted.items():
        assert ("notification_sent" if kind == "page" else "resolution_sent", key) in sent


@settings(max_examples=400, deadline=None)
@given(steps, holds)
def test_everyone_who_received_a_page_receives_the_resolution(script, hold_s):
    state, accepted, _ = _run(script, hold_s=hold_s)
    paged = {person for person, kind in accepted.values() if kind == "page"}
    told = {person for person, kind in accepted.values() if kind == "resolution"}
    # Unless the provider refused the resolution on every contact method the person has.
    refused_everywhere = {
        person
        for person in paged
        if {(n.channel, n.status) for n in state.notices.values() if n.person == person and n.kind == "resolution"}
        == {(c.channel, "failed") for c in CONTACTS[person]}
    }
    assert state.status == "resolved"
    assert paged - refused_everywhere == told


@settings(max_examples=200, deadline=None)
@given(steps)
def test_nobody_is_told_of_a_resolution_they_were_never_paged_for(script):
    state, accepted, _ = _run(script)
    paged = {person for person, kind in accepted.values() if kind == "page"}
    resolutions = {n.person for n in state.notices.values() if n.kind == "resolution"}
    assert resolutions <= paged


@settings(max_examples=200, deadline=None)
@given(steps)
def test_an_alert_resolved_before_its_hold_ends_pages_nobody(script):
    early = [(what, which, accept, 0.0) for what, which, accept, _ in script]  # all within the hold
    state, accepted, audits = _run(early, hold_s=60)
    assert accepted == {} and not [r for r in audits if r.kind == "escalation_step"]
    assert state.status == "resolved"
