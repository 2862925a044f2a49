"""The Alert page's escalation chain: the notifier's own resolution of who each step pages,
which steps were reached, who is next and when (pure, over the example on-call file)."""

from __future__ import annotations

from datetime import timedelta

from beacon.console.escalation_chain import chain_view
from beacon.console.projection import ViewState, apply
from beacon.notifier.escalation import resolve_chain
from beacon.notifier.oncall import load_oncall
from beacon.notifier.settings import OnCallFileSettings
from console.support import audit_record, raised_alert


def test_the_chain_says_who_is_next_and_when_and_stops_at_the_acknowledgement():
    config = load_oncall(OnCallFileSettings().oncall_file)
    record = raised_alert("CH-CHAIN-1", "EP-CHAIN-1")
    chain = resolve_chain(config, record, record.occurred_at)
    state = ViewState()
    apply(state, record)

    view = chain_view(config, state.alerts[record.alert_id])
    assert view is not None and view.stopped is None
    assert view.next_step is not None and view.next_step.number == 1
    assert view.next_at == record.occurred_at + timedelta(seconds=chain.hold_s)
    assert [s.people for s in view.steps] == [
        tuple(t.person for t in chain.step(n).targets) for n in range(1, chain.total_steps + 1)
    ]
    assert not any("@" in c or c.startswith("+") for s in view.steps for c in s.channels)  # no addresses

    stepped = audit_record(record, "escalation_step", "au-step-1").model_copy(update={"step": 1})
    apply(state, stepped)
    view = chain_view(config, state.alerts[record.alert_id])
    assert view is not None and view.steps[0].reached_at == stepped.at
    if chain.total_steps > 1:
        assert view.next_step is not None and view.next_step.number == 2
        assert view.next_at == stepped.at + timedelta(seconds=chain.step(1).delay_s)

    apply(state, audit_record(record, "acknowledged", "au-ack-1"))
    view = chain_view(config, state.alerts[record.alert_id])
    assert view is not None and (view.stopped, view.next_step) == ("acknowledged", None)
