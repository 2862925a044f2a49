"""Scenario tests in the style of GoAlert's smoke harness, over the real broker,
Prism (Twilio's OpenAPI spec) and aiosmtpd, with the notifier as a real process."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import yaml

from beacon.core.alerts import Severity
from beacon.notifier.links import LINK_PATH, make_token
from beacon.notifier.oncall import load_oncall
from beacon.notifier.templates import SMS_SEGMENT_SEPTETS, sms_septets
from harness.smtp import SmtpServer
from harness.twilio_mock import AUTH_TOKEN, Prism, TwilioProxy, signed_post
from notifier.stack import API_TOKEN, ONCALL_FILE, Stack, notifier_env, spare_port

pytestmark = [pytest.mark.slow, pytest.mark.table_stores]


@pytest.fixture(scope="module")
def prism(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prism]:
    server = Prism(tmp_path_factory.mktemp("prism") / "prism.log").start()
    yield server
    server.stop()


@contextmanager
def running_stack(prism: Prism, settings, env, tmp_path: Path, oncall_file: Path = ONCALL_FILE) -> Iterator[Stack]:
    twilio = TwilioProxy(prism, port=spare_port(settings)).start()
    smtp = SmtpServer(tmp_path / "tls", port=spare_port(settings)).start()
    notifier = notifier_env(env, settings, twilio, smtp, BEACON_ONCALL_FILE=str(oncall_file))
    s = Stack(settings, notifier, twilio, smtp, tmp_path / "notifier.log", oncall=load_oncall(oncall_file))
    try:
        yield s.start()
    finally:
        if s.notifier:
            s.notifier.stop()
        smtp.stop()
        twilio.stop()


@pytest.fixture
def stack(prism: Prism, settings, env, tmp_path: Path) -> Iterator[Stack]:
    with running_stack(prism, settings, env, tmp_path) as s:
        yield s


@pytest.fixture
def stack_without_holds(prism: Prism, settings, env, tmp_path: Path) -> Iterator[Stack]:
    """The example on-call file with no hold, so low and medium pages queue at once."""
    raw = yaml.safe_load(ONCALL_FILE.read_text())
    raw["policies"]["standard"]["hold_seconds"] = {}
    oncall_file = tmp_path / "oncall.yaml"
    oncall_file.write_text(yaml.safe_dump(raw))
    shutil.copy(ONCALL_FILE.parent / "kent-cover.ics", tmp_path)  # the example's relative iCal import
    with running_stack(prism, settings, env, tmp_path, oncall_file) as s:
        yield s


def test_no_reply_escalates_to_the_manager_whose_ack_stops_it_then_both_hear_of_the_resolution(stack: Stack):
    oncall, manager = stack.oncall_person(), stack.role("team_manager")
    oncall_phone, manager_phone = stack.phone(oncall), stack.phone(manager)

    alert = stack.raise_alert()
    first = oncall_phone.expect_sms(contains=alert.episode_ref)
    assert "Reply" in first.body and "/a/" in first.body
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


def test_a_link_forged_with_the_old_default_secret_acknowledges_nothing(stack: Stack):
    alert = stack.raise_alert()
    stack.phone(stack.oncall_person()).expect_sms(contains=alert.episode_ref)
    for person in ("invented-person", stack.oncall_person()):
        forged = make_token(
            "dev-only-secret-change-me", alert.alert_id, f"1:{person}:sms", datetime.now(UTC), timedelta(hours=1)
        )
        assert httpx.get(f"{stack.url}{LINK_PATH}{forged}", timeout=5).status_code == 400
        refused = httpx.post(f"{stack.url}{LINK_PATH}{forged}", timeout=5)
        assert refused.status_code == 400 and "invalid" in refused.text.lower()
    time.sleep(1)  # an acknowledgement would have reached the state by now
    assert stack.alert_state(alert)["status"] == "active"


def test_api_ack_needs_the_token(stack: Stack):
    alert = stack.raise_alert()
    stack.phone(stack.oncall_person()).expect_sms(contains=alert.episode_ref)
    url = f"{stack.url}/v1/alerts/{alert.alert_id}/ack"
    assert httpx.post(url, json={"by": "duty-desk"}, timeout=5).status_code == 401
    response = httpx.post(url, json={"by": "duty-desk"}, headers={"Authorization": f"Bearer {API_TOKEN}"}, timeout=5)
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
    assert "/a/" in mail.body and mail.subject.startswith("BEACON HIGH")
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
    bundle = phone.expect_sms(contains="2 pages")
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


def test_a_page_still_being_handed_to_twilio_when_the_child_is_found_is_followed_by_the_resolution(stack: Stack):
    person = stack.oncall_person()
    phone = stack.phone(person)
    stack.twilio.fail_next("hold")  # Twilio has the page but has not answered yet
    alert = stack.raise_alert()
    deadline = time.monotonic() + 30
    while stack.twilio.held == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert stack.twilio.held == 1

    stack.resolve(alert)  # the child is found while the page is in flight
    stack.wait_state(alert, lambda s: s["status"] == "resolved")
    stack.twilio.release()  # Twilio accepts the page after all
    assert "/a/" in phone.expect_sms(contains=alert.episode_ref).body

    stack.wait_state(alert, lambda s: f"0:{person}:sms" in s["notices"])
    stack.advance(minutes=1)  # the per-contact rate limit: one message a minute
    assert "resolved" in phone.expect_sms(contains=alert.episode_ref).body
    state = stack.wait_state(alert, lambda s: s["notices"][f"0:{person}:sms"]["status"] == "sent")
    assert state["notices"][f"1:{person}:sms"]["status"] == "sent"
    kinds = [(r.kind, r.person) for r in stack.audit(expect=5) if r.alert_id == alert.alert_id]
    assert ("notification_sent", person) in kinds and ("resolution_sent", person) in kinds


def test_an_unallocated_childs_alert_pages_the_team_manager_first_and_the_on_call_worker_not_at_all(stack: Stack):
    manager, duty = stack.role("team_manager"), stack.role("duty_manager")
    oncall_phone, manager_phone = stack.phone(stack.oncall_person()), stack.phone(manager)
    alert = stack.raise_alert(rule="unallocated", step="unallocated", notify="team_manager")
    assert alert.episode_ref in manager_phone.expect_sms(contains=alert.episode_ref).body
    oncall_phone.expect_no_sms(settle_s=1)

    stack.advance(minutes=15)  # no ack: the policy's next step that pages someone new
    stack.smtp.expect_email(stack.contact(duty, "email"), contains=alert.episode_ref)
    manager_phone.expect_no_sms(settle_s=1)
    oncall_phone.expect_no_sms(settle_s=0)
    raised = next(r for r in stack.audit(expect=1) if r.kind == "alert_raised" and r.alert_id == alert.alert_id)
    assert raised.detail == "policy=standard first=team_manager"


def test_the_on_call_phone_reads_the_severity_the_reason_and_the_case_in_one_segment_with_a_working_link(
    stack: Stack,
):
    phone = stack.phone(stack.oncall_person())
    alert = stack.raise_alert(severity=Severity.medium, rule="rhi_overdue", step="72h")
    stack.wait_state(alert, lambda s: s["status"] == "active")
    stack.advance(minutes=1)  # the hold for a medium alert
    sms = phone.expect_sms(contains=alert.episode_ref)
    code = sms.code
    assert sms.body == (
        f"BEACON MEDIUM case {alert.episode_ref}: return home interview overdue (72 h). Reply {code}a to ack: "
        f"{stack.url}/a/{sms.ack_url.rsplit('/', 1)[1]}"
    )
    assert sms_septets(sms.body) <= SMS_SEGMENT_SEPTETS
    confirm = httpx.get(sms.ack_url, timeout=5)
    assert confirm.status_code == 200 and "MEDIUM: return home interview overdue (72 h)" in confirm.text
    assert httpx.post(sms.ack_url, timeout=5).status_code == 200
    state = stack.wait_state(alert, lambda s: s["status"] == "acknowledged")
    assert (state["acked_by"], state["acked_via"]) == (stack.oncall_person(), "link")


def test_a_backfilled_episode_already_over_pages_nobody_but_is_recorded_and_resolved(stack: Stack):
    phone = stack.phone(stack.oncall_person())
    over = stack.raise_alert(severity=Severity.low, rule="triage", step="low")  # last week's report ...
    stack.wait_state(over, lambda s: s["status"] == "active")
    stack.resolve(over)  # ... and its found, a second later
    stack.wait_state(over, lambda s: s["status"] == "resolved")
    stack.advance(minutes=5)
    phone.expect_no_sms(settle_s=2)
    assert stack.twilio.requests == [] and stack.smtp.inbox == []
    kinds = [(r.kind, r.detail) for r in stack.audit(expect=2) if r.alert_id == over.alert_id]
    assert kinds == [("alert_raised", "policy=standard hold=60s"), ("alert_resolved", "within_hold")]


def test_a_low_alert_still_open_after_its_hold_pages_the_on_call_worker(stack: Stack):
    phone = stack.phone(stack.oncall_person())
    alert = stack.raise_alert(severity=Severity.low, rule="triage", step="low")
    stack.wait_state(alert, lambda s: s["status"] == "active")
    phone.expect_no_sms(settle_s=1)  # held for a minute
    stack.advance(minutes=1)
    assert "BEACON LOW" in phone.expect_sms(contains=alert.episode_ref).body
    high = stack.raise_alert(severity=Severity.high)  # high and critical are never held
    stack.advance(minutes=1)  # past the per-contact rate limit only
    phone.expect_sms(contains=high.episode_ref)


def test_a_high_risk_report_with_a_cse_flag_reaches_the_on_call_phone_as_one_page_and_one_reply_acks_both(
    stack: Stack,
):
    person = stack.oncall_person()
    phone = stack.phone(person)
    triage = stack.raise_alert(severity=Severity.high)
    cse = stack.raise_alert(severity=Severity.critical, rule="cse_missing", step="flag", episode=triage.episode_ref)
    page = phone.expect_sms(contains=triage.episode_ref)
    assert page.body.startswith(f"BEACON CRITICAL case {triage.episode_ref}: missing with a safeguarding flag")
    assert "missing, high risk" in page.body
    phone.expect_no_sms(settle_s=3)  # one page for the episode, not one per rule

    assert "Acknowledged" in phone.reply(f"{page.code}a")
    for alert in (cse, triage):  # the acknowledgement is the group's; each alert keeps its own record
        state = stack.wait_state(alert, lambda s: s["status"] == "acknowledged")
        assert (state["acked_by"], state["acked_via"]) == (person, "sms")
    acks = [r.alert_id for r in stack.audit(expect=8) if r.kind == "acknowledged"]
    assert sorted(acks) == sorted([cse.alert_id, triage.alert_id])

    # A later, more severe alert of the same episode is a new page, at once: inside the
    # phone's minute too, because it is critical.
    later = stack.raise_alert(severity=Severity.critical, rule="duration", step="168h", episode=triage.episode_ref)
    assert "still missing after 168 h" in phone.expect_sms(contains=later.episode_ref, timeout_s=20).body
    assert stack.wait_state(later, lambda s: s["status"] == "active")["acked_by"] is None


def test_a_critical_page_reaches_the_on_call_phone_at_once_though_it_was_paged_seconds_ago(stack: Stack):
    phone = stack.phone(stack.oncall_person())
    first = stack.raise_alert(severity=Severity.high)
    phone.expect_sms(contains=first.episode_ref)
    waiting = stack.raise_alert(severity=Severity.high)
    critical = stack.raise_alert(severity=Severity.critical)
    sms = phone.expect_sms(contains=critical.episode_ref, timeout_s=20)  # no clock moved: inside the minute
    assert sms.body.startswith("BEACON CRITICAL") and waiting.episode_ref not in sms.body
    stack.advance(minutes=1)  # the high page kept its place: it leaves when the first page's minute is over
    phone.expect_sms(contains=waiting.episode_ref)


def test_a_bundle_lists_pages_most_severe_first_says_how_many_more_wait_and_one_reply_acks_it(
    stack_without_holds: Stack,
):
    stack = stack_without_holds
    phone = stack.phone(stack.oncall_person())
    first = stack.raise_alert(severity=Severity.high)
    phone.expect_sms(contains=first.episode_ref)
    medium = [stack.raise_alert(severity=Severity.medium) for _ in range(3)]
    low = stack.raise_alert(severity=Severity.low)
    high = [stack.raise_alert(severity=Severity.high) for _ in range(3)]
    for alert in (*medium, low, *high):
        stack.wait_state(alert, lambda s: bool(s["notices"]))
    stack.advance(minutes=1)
    bundle = phone.expect_sms(contains="5 pages")
    assert bundle.body.startswith(f"BEACON: 5 pages, most severe first. Reply {bundle.code}a to ack all.")
    assert all(a.episode_ref in bundle.body for a in high) and low.episode_ref not in bundle.body
    assert max(bundle.body.index(a.episode_ref) for a in high) < bundle.body.index("BEACON MEDIUM")
    listed = [*high, *(a for a in medium if a.episode_ref in bundle.body)]
    assert len(listed) == 5  # two of the three medium pages, the oldest (the notifier's order of arrival)
    assert bundle.body.endswith("+2 more: open the console")

    assert "5 alerts" in phone.reply(f"{bundle.code}a")
    for alert in listed:
        stack.wait_state(alert, lambda s: s["status"] == "acknowledged")
    unlisted = [a for a in (*medium, low) if a not in listed]
    assert [stack.alert_state(a)["status"] for a in unlisted] == ["active", "active"]


def test_a_case_that_gets_worse_pages_again_at_once_while_a_new_case_waits_its_turn(stack_without_holds: Stack):
    stack = stack_without_holds
    phone = stack.phone(stack.oncall_person())
    medium = stack.raise_alert(severity=Severity.medium)
    phone.expect_sms(contains=medium.episode_ref)
    other = stack.raise_alert(severity=Severity.high)  # a new case: waits for the phone's minute
    worse = stack.raise_alert(severity=Severity.high, rule="duration", step="48h", episode=medium.episode_ref)
    sms = phone.expect_sms(contains=worse.episode_ref, timeout_s=20)  # no clock moved: inside the minute
    assert sms.body.startswith(f"BEACON HIGH case {worse.episode_ref}: still missing after 48 h")
    assert other.episode_ref not in sms.body
    stack.advance(minutes=1)
    phone.expect_sms(contains=other.episode_ref)
