"""The pure decision behind the Twilio inbound webhook: which alert a reply acts on."""

from __future__ import annotations

import pytest

from beacon.notifier.escalation import DeliveryResult, apply, bundle_code, parse_sms_reply, sms_reply
from notifier.conftest import T0
from notifier.test_escalation import ALERT, ack, raised


def sent(state, key, **result):
    return apply(state, DeliveryResult(alert_id=ALERT.alert_id, key=key, outcome="sent", **result), T0)


@pytest.mark.parametrize(
    "body, parsed",
    [
        ("123a", ("123", "a")),
        (" 123 E ", ("123", "e")),
        ("123c", ("123", "c")),
        ("123", None),
        ("12a", None),
        ("ack", None),
        ("123x", None),
    ],
)
def test_reply_codes_are_three_digits_and_a_letter(body, parsed):
    assert parse_sms_reply(body) == parsed


def test_one_open_alert_with_the_code_is_acted_on():
    state, _ = raised()
    decision = sms_reply(state.reply_code, "a", [state])
    assert (decision.alert_id, decision.action) == (state.alert_id, "acknowledge")
    assert decision.text == f"Acknowledged: case {state.case_ref}. Thank you."
    assert sms_reply(state.reply_code, "e", [state]).action == "escalate"
    assert sms_reply(state.reply_code, "c", [state]).action == "close"


def test_no_alert_with_the_code_issues_nothing():
    decision = sms_reply("999", "a", [])
    assert decision.alert_id is None and decision.text == "No alert with code 999 was sent to you."


def test_an_alert_already_acknowledged_says_by_whom_and_issues_nothing():
    state, _ = raised()
    state, _ = ack(state, by="manager")
    decision = sms_reply(state.reply_code, "a", [state])
    assert decision.alert_id is None
    assert decision.text == f"Case {state.case_ref} is already acknowledged by manager."


def test_a_code_shared_by_two_open_alerts_is_refused_rather_than_guessed():
    state, _ = raised()
    other = state.model_copy(update={"alert_id": "Aother"})
    decision = sms_reply(state.reply_code, "a", [state, other])
    assert decision.alert_id is None and "several open alerts" in decision.text


def test_the_ack_all_code_of_a_bundle_acts_on_every_alert_it_listed():
    state, _ = raised()
    lead, _ = sent(state, "1:oncall:sms", bundle=("A-two", "A-three"))
    code = bundle_code(lead.alert_id, "1:oncall:sms")
    assert lead.bundles == {code: ("A-two", "A-three")}
    decision = sms_reply(code, "a", [lead])
    assert (decision.alert_id, decision.also, decision.action) == (lead.alert_id, ("A-two", "A-three"), "acknowledge")
    assert "3 alerts" in decision.text
    acked, _ = ack(lead)  # the lead already acknowledged: the rest of the bundle still is
    assert sms_reply(code, "a", [acked]).also == ("A-two", "A-three")
