"""Scenario tests in the style of GoAlert's smoke harness, over the real broker,
Prism (Twilio's OpenAPI spec) and aiosmtpd, with the notifier as a real process."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from beacon.core.alerts import Severity
from harness.smtp import SmtpServer
from harness.twilio_mock import AUTH_TOKEN, Prism, TwilioProxy, signed_post
from notifier.stack import Stack, notifier_env, spare_port

pytestmark = [pytest.mark.slow, pytest.mark.table_stores]


@pytest.fixture(scope="module")
def prism(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prism]:
    server = Prism(tmp_path_factory.mktemp("prism") / "prism.log").start()
    yield server
    server.stop()


@pytest.fixture
def stack(prism: Prism, settings, env, tmp_path: Path) -> Iterator[Stack]:
    twilio = TwilioProxy(prism, port=spare_port(settings)).start()
    smtp = SmtpServer(tmp_path / "tls", port=spare_port(settings)).start()
    s = Stack(settings, notifier_env(env, settings, twilio, smtp), twilio, smtp, tmp_path / "notifier.log")
    try:
        yield s.start()
    finally:
        if s.notifier:
            s.notifier.stop()
        smtp.stop()
        twilio.stop()


def test_no_reply_escalates_to_the_manager_whose_ack_stops_it_then_both_hear_of_the_resolution(stack: Stack):
    oncall, manager = stack.oncall_person(), stack.role("team_manager")
    oncall_phone, manager_phone = stack.phone(oncall), stack.phone(manager)

    alert = stack.raise_alert()
    first = oncall_phone.expect_sms(contains=alert.episode_ref)
    assert "Reply" in first.body and "/ack/" in first.body
    manager_phone.expect_no_sms(settle_s=1)

    stack.advance(minutes=15)
    page = manager_phone.expect_sms(contains=alert.episode_ref)
    assert "Acknowledged" in manager_phone.reply(f"{page.code}a")
    stack.wait_state(alert, lambda s: s["status"] == "acknowledged")

    stack.advance(hours=2)  # long past every remaining step: nobody else is paged
    oncall_phone.expect_no_sms()
    manager_phone.expect_no_sms(settle_s=0)
    assert stack.smtp.inbox == []
    assert len(stack.twilio.delivered()) == 2

    stack.resolve(alert)  # child found
    assert "resolved" in oncall_phone.expect_sms(contains=alert.episode_ref).body
    assert "resolved" in manager_phone.expect_sms(contains=alert.episode_ref).body

    stack.wait_state(alert, lambda s: all(n["status"] != "pending" for n in s["notices"].values()))
    audit = stack.audit(expect=9)
    kinds = [(r.kind, r.person) for r in audit if r.alert_id == alert.alert_id]
    assert ("acknowledged", manager) in kinds
    ack = next(r for r in audit if r.kind == "acknowledged")
    assert ack.detail == "via=sms"
    assert {p for k, p in kinds if k == "resolution_sent"} == {oncall, manager}
    assert [k for k, _ in kinds].count("escalation_step") == 2

    metrics = httpx.get(f"{stack.url}/metrics", timeout=5).text
    assert 'beacon_notifications_total{channel="sms",outcome="sent"} 4.0' in metrics
    assert 'beacon_acknowledgement_latency_seconds_count{via="sms"} 1.0' in metrics
    assert 'beacon_escalation_steps_total{step="2"} 1.0' in metrics
    assert "beacon_end_to_end_latency_seconds_count 1.0" in metrics
    assert 'beacon_timer_last_run_timestamp_seconds{loop="escalation"}' in metrics


def test_forged_webhooks_are_refused_with_403(stack: Stack):
    url = f"{stack.url}/webhooks/twilio/sms"
    params = {"From": stack.contact(stack.role("team_manager"), "sms"), "Body": "123a", "MessageSid": "SMx"}
    assert httpx.post(url, data=params, timeout=5).status_code == 403  # unsigned
    assert httpx.post(url, data=params, headers={"X-Twilio-Signature": "Zm9yZ2Vk"}, timeout=5).status_code == 403
    assert signed_post(url, params, token="not-the-auth-token").status_code == 403
    status_url = f"{stack.url}/webhooks/twilio/status?refs=A1%7C1%3Ap%3Asms"
    assert signed_post(status_url, {"MessageStatus": "failed"}, token="wrong").status_code == 403
    assert (
        signed_post(url, {**params, "Body": "hello"}, token=AUTH_TOKEN).status_code == 200
    )  # the real signature works


def test_ack_links_are_single_use_and_expire(stack: Stack):
    phone = stack.phone(stack.oncall_person())
    used = stack.raise_alert()
    link = phone.expect_sms(contains=used.episode_ref).ack_url
    confirm = httpx.get(link, timeout=5)
    assert confirm.status_code == 200 and "<form" in confirm.text  # GET never acknowledges
    assert httpx.post(link, timeout=5).status_code == 200
    state = stack.wait_state(used, lambda s: s["status"] == "acknowledged")
    assert state["acked_via"] == "link"
    again = httpx.post(link, timeout=5)
    assert again.status_code == 409 and "already been used" in again.text
    assert httpx.get(link, timeout=5).status_code == 409

    stale = stack.raise_alert()
    stack.advance(minutes=1)  # the per-contact rate limit: one message a minute
    stale_link = phone.expect_sms(contains=stale.episode_ref).ack_url
    stack.advance(hours=25)  # links live 24 hours
    expired = httpx.post(stale_link, timeout=5)
    assert expired.status_code == 410 and "expired" in expired.text
    assert stack.alert_state(stale)["status"] == "active"
    assert httpx.get(stale_link[:-3] + "xyz", timeout=5).status_code == 400


def test_api_ack_needs_the_token(stack: Stack):
    alert = stack.raise_alert()
    stack.phone(stack.oncall_person()).expect_sms(contains=alert.episode_ref)
    url = f"{stack.url}/v1/alerts/{alert.alert_id}/ack"
    assert httpx.post(url, json={"by": "duty-desk"}, timeout=5).status_code == 401
    response = httpx.post(url, json={"by": "duty-desk"}, headers={"Authorization": "Bearer test-api-token"}, timeout=5)
    assert response.status_code == 202
    state = stack.wait_state(alert, lambda s: s["status"] == "acknowledged")
    assert (state["acked_by"], state["acked_via"]) == ("duty-desk", "api")


def test_twilio_500_then_success_sends_exactly_one_message(stack: Stack):
    phone = stack.phone(stack.oncall_person())
    stack.twilio.fail_next("500", "500")
    alert = stack.raise_alert()
    phone.expect_sms(contains=alert.episode_ref)
    phone.expect_no_sms()
    statuses = [r.status for r in stack.twilio.requests if r.to == phone.number]
    assert statuses == [500, 500, 201]
    assert len(phone.messages()) == 1
    assert stack.smtp.inbox == []


def test_twilio_4xx_is_not_retried_and_falls_back_to_email(stack: Stack):
    person = stack.oncall_person()
    stack.twilio.fail_next("invalid")  # Prism refuses the request (422): a validation error
    alert = stack.raise_alert()
    mail = stack.smtp.expect_email(stack.contact(person, "email"), contains=alert.episode_ref)
    assert "/ack/" in mail.body and mail.subject.startswith("BEACON HIGH")
    assert [r.status for r in stack.twilio.requests] == [422]  # one try, no retry
    stack.wait_state(alert, lambda s: s["notices"][f"1:{person}:email"]["status"] == "sent")
    kinds = [(r.kind, r.detail) for r in stack.audit(expect=5)]
    assert ("fallback", "sms->email") in kinds
    assert ("notification_failed", "error:http_422") in kinds


def test_undelivered_receipt_falls_back_to_email(stack: Stack):
    person = stack.oncall_person()
    alert = stack.raise_alert()
    sms = stack.phone(person).expect_sms(contains=alert.episode_ref)
    stack.wait_state(alert, lambda s: s["notices"][f"1:{person}:sms"]["status"] == "sent")
    assert stack.twilio.send_status(sms, "undelivered", error_code="30003").status_code == 204
    stack.smtp.expect_email(stack.contact(person, "email"), contains=alert.episode_ref)
    state = stack.wait_state(alert, lambda s: s["notices"][f"1:{person}:email"]["status"] == "sent")
    assert state["notices"][f"1:{person}:sms"]["status"] == "failed"


def test_smtp_down_falls_back_to_sms(stack: Stack):
    duty = stack.role("duty_manager")  # prefers email
    stack.smtp.stop()
    alert = stack.raise_alert(severity=Severity.critical)
    sms = stack.phone(duty).expect_sms(contains=alert.episode_ref)
    assert "CRITICAL" in sms.body
    state = stack.wait_state(alert, lambda s: s["notices"][f"1:{duty}:sms"]["status"] == "sent")
    assert state["notices"][f"1:{duty}:email"]["status"] == "failed"


@pytest.mark.parametrize("data_dir", ["same", "fresh"])
def test_a_worker_killed_mid_escalation_resumes_without_duplicates_or_lost_pages(stack: Stack, tmp_path, data_dir):
    oncall_phone = stack.phone(stack.oncall_person())
    manager_phone = stack.phone(stack.role("team_manager"))
    alert = stack.raise_alert()
    oncall_phone.expect_sms(contains=alert.episode_ref)
    stack.wait_state(alert, lambda s: all(n["status"] == "sent" for n in s["notices"].values()))

    # SIGKILL, then a new process recovers the table: from its local store and the
    # changelog's tail (same data directory), or from the whole changelog (fresh one).
    stack.restart_after_kill(tmp_path / "fresh-data" if data_dir == "fresh" else None)
    stack.advance(minutes=15)
    manager_phone.expect_sms(contains=alert.episode_ref, timeout_s=60)
    oncall_phone.expect_no_sms(settle_s=3)
    manager_phone.expect_no_sms(settle_s=0)
    assert len(oncall_phone.messages()) == 1 and len(manager_phone.messages()) == 1


def test_messages_piling_up_for_one_phone_leave_as_one_bundled_sms_a_minute_later(stack: Stack):
    phone = stack.phone(stack.oncall_person())
    first = stack.raise_alert()
    phone.expect_sms(contains=first.episode_ref)
    second, third = stack.raise_alert(), stack.raise_alert()
    stack.wait_state(third, lambda s: bool(s["notices"]))
    phone.expect_no_sms(settle_s=2)  # one message a minute per contact
    stack.advance(minutes=1)
    bundle = phone.expect_sms(contains="2 messages")
    assert second.episode_ref in bundle.body and third.episode_ref in bundle.body
    for alert in (second, third):
        stack.wait_state(alert, lambda s: all(n["status"] == "sent" for n in s["notices"].values()))
    assert len(phone.messages()) == 2


def test_a_worker_killed_while_sending_pages_again_after_restart(stack: Stack):
    phone = stack.phone(stack.oncall_person())
    stack.twilio.fail_next("hang")  # the first attempt never returns: the worker dies mid-send
    alert = stack.raise_alert()
    reached: list = []
    for _ in range(100):
        reached = [r for r in stack.twilio.requests if r.to == phone.number]
        if reached:
            break
        time.sleep(0.1)
    assert [r.status for r in reached] == [0]  # reached Twilio, no answer yet

    stack.restart_after_kill()  # the intent is in the changelog as pending: it is sent again
    phone.expect_sms(contains=alert.episode_ref, timeout_s=60)
    stack.wait_state(alert, lambda s: s["notices"][f"1:{stack.oncall_person()}:sms"]["status"] == "sent")
    phone.expect_no_sms()
    assert len(phone.messages()) == 1
