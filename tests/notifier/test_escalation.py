"""Every transition of the escalation state machine (pure: no Kafka, no clock)."""

from __future__ import annotations

from datetime import timedelta

from beacon.core.acks import AckCommand
from beacon.core.alerts import Severity
from beacon.notifier.escalation import (
    PAST_ALERT_HOLD_S,
    AckReceived,
    AlertRaised,
    AlertResolved,
    Audit,
    Chain,
    ChainStep,
    ChainTarget,
    Contact,
    DeliveryResult,
    Envelope,
    EscalationState,
    ForwardAck,
    SendNotification,
    Tick,
    apply,
    case_reference,
    reply_code,
    resolve_chain,
)
from notifier.conftest import T0, make_alert

ONCALL = ChainTarget(
    person="oncall",
    contacts=(Contact(channel="sms", to="+447700900001"), Contact(channel="email", to="oncall@example.org")),
)
MANAGER = ChainTarget(person="manager", contacts=(Contact(channel="sms", to="+447700900010"),))
CHAIN = Chain(
    policy="standard",
    team="t",
    repeat=1,
    steps=(
        ChainStep(delay_s=900, ask="Please acknowledge.", targets=(ONCALL,)),
        ChainStep(delay_s=900, ask="Manager: please acknowledge.", targets=(MANAGER,)),
    ),
)
ALERT = make_alert()


def sends(actions):
    return [
        (a.notice.step, a.notice.person, a.notice.channel, a.notice.kind)
        for a in actions
        if isinstance(a, SendNotification)
    ]


def audits(actions):
    return [(a.record.kind, a.record.detail) for a in actions if isinstance(a, Audit)]


def raised(now=T0):
    return apply(None, AlertRaised(alert=ALERT, chain=CHAIN), now)


def ack(state, action="acknowledge", by="oncall", command_id="c1", via="sms", now=T0):
    cmd = AckCommand(command_id=command_id, alert_id=ALERT.alert_id, action=action, by=by, via=via, at=now)
    return apply(state, AckReceived(command=cmd), now)


def sent(state, key, now=T0, outcome="sent"):
    return apply(state, DeliveryResult(alert_id=ALERT.alert_id, key=key, outcome=outcome, provider_id="SM1"), now)


def test_raised_pages_step_one_and_audits():
    state, actions = raised()
    assert sends(actions) == [(1, "oncall", "sms", "page")]
    assert audits(actions) == [("alert_raised", "policy=standard"), ("escalation_step", "start")]
    assert state.status == "active" and state.step == 1
    assert state.next_due == T0 + timedelta(minutes=15)
    assert state.notices["1:oncall:sms"].status == "pending"
    assert state.first_paged_at == T0


def test_audit_ids_are_deterministic_so_replays_dedup():
    _, first = raised()
    _, again = raised()
    assert [a.record.audit_id for a in first if isinstance(a, Audit)] == [
        a.record.audit_id for a in again if isinstance(a, Audit)
    ]


def test_a_replayed_raise_keeps_the_chain_fixed_at_the_start():
    state, _ = raised()
    other_chain = CHAIN.model_copy(update={"policy": "other"})
    same, actions = apply(state, AlertRaised(alert=ALERT, chain=other_chain), T0 + timedelta(minutes=1))
    assert same == state and actions == []


def test_tick_before_the_delay_does_nothing():
    state, _ = raised()
    assert apply(state, Tick(alert_id=ALERT.alert_id), T0 + timedelta(minutes=14, seconds=59)) == (state, [])


def test_no_ack_within_the_delay_pages_the_next_step():
    state, _ = raised()
    later = T0 + timedelta(minutes=15)
    state, actions = apply(state, Tick(alert_id=ALERT.alert_id), later)
    assert sends(actions) == [(2, "manager", "sms", "page")]
    assert audits(actions) == [("escalation_step", "no_ack_in_time")]
    assert state.step == 2 and state.next_due == later + timedelta(minutes=15)


def test_the_chain_repeats_then_is_exhausted():
    state, _ = raised()
    now = T0
    pages = []
    for _ in range(4):
        now = state.next_due
        state, actions = apply(state, Tick(alert_id=ALERT.alert_id), now)
        pages += sends(actions)
    # repeat=1: steps 1..4 are oncall, manager, oncall, manager; then exhausted
    assert pages == [(2, "manager", "sms", "page"), (3, "oncall", "sms", "page"), (4, "manager", "sms", "page")]
    assert state.exhausted and state.next_due is None and state.status == "active"
    assert ("escalation_step", "chain_exhausted") in audits(actions)
    assert apply(state, Tick(alert_id=ALERT.alert_id), now + timedelta(hours=5)) == (state, [])


def test_ack_stops_the_escalation_and_cancels_queued_pages():
    state, _ = raised()
    state, actions = ack(state, via="sms")
    assert state.status == "acknowledged" and state.acked_by == "oncall" and state.acked_via == "sms"
    assert state.next_due is None
    assert state.notices["1:oncall:sms"].status == "cancelled"  # still queued: nobody else is paged
    assert audits(actions) == [("acknowledged", "via=sms")]
    assert apply(state, Tick(alert_id=ALERT.alert_id), T0 + timedelta(hours=1)) == (state, [])


def test_a_second_ack_has_no_effect_and_a_replayed_command_is_ignored():
    state, _ = raised()
    state, _ = ack(state, command_id="c1")
    again, actions = ack(state, command_id="c1")
    assert again == state and actions == []
    other, actions = ack(state, command_id="c2", by="manager")
    assert other.acked_by == "oncall" and actions == []
    assert "c2" in other.seen_commands


def test_close_stops_the_escalation_as_closed():
    state, _ = raised()
    state, actions = ack(state, action="close")
    assert state.status == "closed" and audits(actions) == [("closed", "via=sms")]


def test_escalate_command_pages_the_next_step_now():
    state, _ = raised()
    state, actions = ack(state, action="escalate", by="oncall")
    assert sends(actions) == [(2, "manager", "sms", "page")]
    assert audits(actions) == [("escalation_step", "requested_by=oncall")]
    assert state.status == "active"


def test_delivery_sent_marks_the_ledger_once():
    state, _ = raised()
    state, actions = sent(state, "1:oncall:sms")
    assert state.notices["1:oncall:sms"].status == "sent" and state.notices["1:oncall:sms"].provider_id == "SM1"
    assert audits(actions) == [("notification_sent", "")]
    assert sent(state, "1:oncall:sms") == (state, [])


def test_delivered_receipt_is_audited():
    state, _ = raised()
    state, _ = sent(state, "1:oncall:sms")
    state, actions = sent(state, "1:oncall:sms", outcome="delivered")
    assert state.notices["1:oncall:sms"].status == "delivered"
    assert audits(actions) == [("delivery_status", "delivered")]


def test_a_failed_sms_falls_back_to_email():
    state, _ = raised()
    state, _ = sent(state, "1:oncall:sms")
    state, actions = apply(
        state, DeliveryResult(alert_id=ALERT.alert_id, key="1:oncall:sms", outcome="undelivered", reason="30003"), T0
    )
    assert state.notices["1:oncall:sms"].status == "failed"
    assert sends(actions) == [(1, "oncall", "email", "page")]
    assert audits(actions) == [("delivery_status", "undelivered:30003"), ("fallback", "sms->email")]
    assert state.step == 1  # the step's delay still runs


def test_a_send_error_on_the_last_method_of_the_whole_step_escalates_at_once():
    state, _ = raised()
    state, _ = apply(
        state, DeliveryResult(alert_id=ALERT.alert_id, key="1:oncall:sms", outcome="error", reason="http_400"), T0
    )
    state, actions = apply(
        state,
        DeliveryResult(alert_id=ALERT.alert_id, key="1:oncall:email", outcome="error", reason="smtp_550"),
        T0 + timedelta(seconds=5),
    )
    assert ("notification_failed", "error:smtp_550") in audits(actions)
    assert ("escalation_step", "step_unreachable") in audits(actions)
    assert sends(actions) == [(2, "manager", "sms", "page")]


def test_resolution_tells_everyone_who_was_paged_on_the_method_that_worked():
    state, _ = raised()
    state, _ = apply(
        state, DeliveryResult(alert_id=ALERT.alert_id, key="1:oncall:sms", outcome="error", reason="http_400"), T0
    )
    state, _ = sent(state, "1:oncall:email")
    state, _ = apply(state, Tick(alert_id=ALERT.alert_id), T0 + timedelta(minutes=15))
    state, _ = sent(state, "2:manager:sms")
    state, _ = ack(state, by="manager")
    state, actions = apply(state, AlertResolved(alert=make_alert(status="resolved")), T0 + timedelta(minutes=20))
    assert sorted(sends(actions)) == [(0, "manager", "sms", "resolution"), (0, "oncall", "email", "resolution")]
    assert audits(actions) == [("alert_resolved", "")]
    assert state.status == "resolved"
    state, actions = sent(state, "0:manager:sms")
    assert audits(actions) == [("resolution_sent", "")]


def test_resolution_skips_people_never_reached_and_cancels_queued_pages():
    state, _ = raised()  # the page is still pending: the person never got it
    state, actions = apply(state, AlertResolved(alert=make_alert(status="resolved")), T0)
    assert sends(actions) == [] and state.notices["1:oncall:sms"].status == "cancelled"


def test_a_page_accepted_after_the_resolution_is_audited_as_sent_and_followed_by_the_resolution():
    state, _ = raised()  # the page is being handed to the provider ...
    state, _ = apply(state, AlertResolved(alert=make_alert(status="resolved")), T0)  # ... when the child is found
    state, actions = sent(state, "1:oncall:sms")  # ... and the provider accepts it
    assert audits(actions) == [("notification_sent", "")]
    assert sends(actions) == [(0, "oncall", "sms", "resolution")]
    assert state.notices["1:oncall:sms"].status == "sent"
    assert sent(state, "1:oncall:sms") == (state, [])  # a replayed result changes nothing


def test_a_page_accepted_after_an_ack_is_audited_as_sent_and_told_of_the_resolution_later():
    state, _ = raised()
    state, _ = ack(state)
    state, actions = sent(state, "1:oncall:sms")
    assert audits(actions) == [("notification_sent", "")] and sends(actions) == []
    state, actions = apply(state, AlertResolved(alert=make_alert(status="resolved")), T0)
    assert sends(actions) == [(0, "oncall", "sms", "resolution")]


def test_a_receipt_that_overtakes_the_sent_result_still_leaves_notification_sent_in_the_audit():
    state, _ = raised()
    state, _ = sent(state, "1:oncall:sms", outcome="delivered")
    state, actions = sent(state, "1:oncall:sms")
    assert audits(actions) == [("notification_sent", "")]
    assert state.notices["1:oncall:sms"].status == "delivered"


def test_a_failed_resolution_tries_the_persons_other_methods_too():
    state, _ = raised()
    state, _ = apply(
        state, DeliveryResult(alert_id=ALERT.alert_id, key="1:oncall:sms", outcome="error", reason="http_400"), T0
    )
    state, _ = sent(state, "1:oncall:email")
    state, actions = apply(state, AlertResolved(alert=make_alert(status="resolved")), T0)
    assert sends(actions) == [(0, "oncall", "email", "resolution")]
    state, actions = sent(state, "0:oncall:email", outcome="error")
    assert sends(actions) == [(0, "oncall", "sms", "resolution")]  # the SMS failed for the page, maybe not now


def test_an_alert_resolved_within_its_hold_pages_nobody():
    held = CHAIN.model_copy(update={"hold_s": 60})
    state, actions = apply(None, AlertRaised(alert=ALERT, chain=held), T0)
    assert sends(actions) == [] and audits(actions) == [("alert_raised", "policy=standard hold=60s")]
    assert state.status == "active" and state.step == 0 and state.next_due == T0 + timedelta(seconds=60)
    assert apply(state, Tick(alert_id=ALERT.alert_id), T0 + timedelta(seconds=59)) == (state, [])
    resolved, actions = apply(state, AlertResolved(alert=make_alert(status="resolved")), T0 + timedelta(seconds=2))
    assert sends(actions) == [] and audits(actions) == [("alert_resolved", "within_hold")]
    assert apply(resolved, Tick(alert_id=ALERT.alert_id), T0 + timedelta(minutes=5)) == (resolved, [])


def test_an_alert_still_open_when_its_hold_ends_pages_step_one():
    state, _ = apply(None, AlertRaised(alert=ALERT, chain=CHAIN.model_copy(update={"hold_s": 60})), T0)
    state, actions = apply(state, Tick(alert_id=ALERT.alert_id), T0 + timedelta(seconds=60))
    assert sends(actions) == [(1, "oncall", "sms", "page")] and ("escalation_step", "hold_over") in audits(actions)
    assert state.first_paged_at == T0 + timedelta(seconds=60)


def test_the_hold_comes_from_the_policy_per_severity(oncall):
    hold = {sev: resolve_chain(oncall, make_alert(severity=sev), T0).hold_s for sev in Severity}
    assert hold == {Severity.low: 60, Severity.medium: 60, Severity.high: 0, Severity.critical: 0}


def test_acknowledging_the_alert_that_led_a_group_page_acknowledges_the_others_it_carried():
    state, _ = raised()
    state, _ = apply(
        state,
        DeliveryResult(alert_id=ALERT.alert_id, key="1:oncall:sms", outcome="sent", group=("A-cse", "A-unalloc")),
        T0,
    )
    assert state.group_members == ("A-cse", "A-unalloc")
    state, actions = ack(state, command_id="sms:SM1")
    forwarded = [(a.command.alert_id, a.command.command_id, a.command.by) for a in actions if isinstance(a, ForwardAck)]
    assert forwarded == [("A-cse", "sms:SM1>A-cse", "oncall"), ("A-unalloc", "sms:SM1>A-unalloc", "oncall")]
    assert ack(state, command_id="sms:SM2")[1] == []  # already acknowledged: nothing forwarded again


def test_an_escalation_request_is_not_forwarded_to_the_group():
    state, _ = raised()
    state, _ = apply(
        state, DeliveryResult(alert_id=ALERT.alert_id, key="1:oncall:sms", outcome="sent", group=("A-cse",)), T0
    )
    _, actions = ack(state, action="escalate")
    assert not [a for a in actions if isinstance(a, ForwardAck)]


def test_resolved_twice_is_a_no_op():
    state, _ = raised()
    state, _ = apply(state, AlertResolved(alert=make_alert(status="resolved")), T0)
    assert apply(state, AlertResolved(alert=make_alert(status="resolved")), T0) == (state, [])


def test_resolved_before_raised_means_nobody_is_paged():
    state, actions = apply(None, AlertResolved(alert=make_alert(status="resolved")), T0)
    assert state.status == "resolved" and audits(actions) == [("alert_resolved", "before_raised")]
    state2, actions = apply(state, AlertRaised(alert=ALERT, chain=CHAIN), T0)
    assert state2 == state and actions == []


def test_inputs_for_an_unknown_alert_do_nothing():
    assert apply(None, Tick(alert_id="Ax"), T0) == (None, [])
    assert apply(None, DeliveryResult(alert_id="Ax", key="1:a:sms", outcome="sent"), T0) == (None, [])
    cmd = AckCommand(command_id="c", alert_id="Ax", action="acknowledge", by="p", via="api", at=T0)
    assert apply(None, AckReceived(command=cmd), T0) == (None, [])


def test_a_failure_after_ack_does_not_fall_back_for_pages():
    state, _ = raised()
    state, _ = sent(state, "1:oncall:sms")
    state, _ = ack(state)
    state, actions = apply(state, DeliveryResult(alert_id=ALERT.alert_id, key="1:oncall:sms", outcome="failed"), T0)
    assert sends(actions) == []


def test_state_and_envelope_round_trip_as_json():
    state, _ = raised()
    assert EscalationState.from_json(state.to_json()) == state
    env = Envelope(at=T0, input=Tick(alert_id=ALERT.alert_id))
    assert Envelope.from_json(env.to_json()) == env and env.alert_id == ALERT.alert_id


def test_reply_code_and_case_reference():
    assert reply_code(ALERT.alert_id) == reply_code(ALERT.alert_id) and len(reply_code(ALERT.alert_id)) == 3
    assert case_reference(ALERT) == "MET-2026-000123"
    assert (
        case_reference(make_alert(episode="Jane Doe, 12 High St"))
        == make_alert(episode="Jane Doe, 12 High St").alert_id
    )
    assert case_reference(make_alert(episode=None)).startswith("A")


def test_severity_changes_the_resolved_policy(oncall):
    chain = resolve_chain(oncall, make_alert(severity=Severity.critical), T0)
    state, actions = apply(None, AlertRaised(alert=make_alert(severity=Severity.critical), chain=chain), T0)
    assert {(s[1], s[2]) for s in sends(actions)} == {
        ("sw-dm-eli", "email"),
        (oncall.teams["southwark-mash"].rotation.on_call(T0), "sms"),
    }
    assert state.next_due == T0 + timedelta(minutes=10)


def test_an_alert_raised_from_a_backlog_is_held_so_an_imported_episode_already_over_pages_nobody(oncall):
    """History import (issue 14, item 3): a closed high-risk episode of years ago is raised
    and resolved by the import; held, its resolution arrives before anyone is paged."""
    past = make_alert(severity=Severity.high).model_copy(
        update={"occurred_at": T0 - timedelta(days=400), "from_backlog": True}
    )
    chain = resolve_chain(oncall, past, T0)
    assert chain.hold_s == PAST_ALERT_HOLD_S  # the policy holds high-risk alerts 0 s
    state, actions = apply(None, AlertRaised(alert=past, chain=chain), T0)
    assert sends(actions) == []
    _, actions = apply(
        state, AlertResolved(alert=past.model_copy(update={"status": "resolved"})), T0 + timedelta(seconds=5)
    )
    assert sends(actions) == [] and audits(actions) == [("alert_resolved", "within_hold")]


def test_a_live_alert_about_an_old_fact_pages_at_once(oncall):
    """A case system that delivers a high-risk report hours late: the correlator raised it
    live (not from a backlog), so nobody waits, however old its event time."""
    late_report = make_alert(severity=Severity.high).model_copy(update={"occurred_at": T0 - timedelta(hours=6)})
    chain = resolve_chain(oncall, late_report, T0)
    assert chain.hold_s == 0
    _, actions = apply(None, AlertRaised(alert=late_report, chain=chain), T0)
    assert sends(actions) != []
