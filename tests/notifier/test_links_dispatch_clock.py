"""Signed ack links, the per-contact rate limit and bundling plan, the test clock."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from beacon.notifier.clock import Clock
from beacon.notifier.dispatch import PendingRef, plan_sends
from beacon.notifier.links import TOKEN_CHARS, LinkError, link_tag, make_token, read_token
from notifier.conftest import T0

SECRET = "s3cret"


def test_a_link_round_trips_and_is_the_same_for_the_same_notice():
    token = make_token(SECRET, "A1", "2:manager:sms", T0, timedelta(hours=1))
    assert token == make_token(SECRET, "A1", "2:manager:sms", T0, timedelta(hours=1))
    assert len(token) == TOKEN_CHARS == 22 and re.fullmatch(r"[A-Za-z0-9_-]+", token)
    link = read_token(SECRET, token, T0 + timedelta(minutes=59))
    assert link.tag == link_tag("A1", "2:manager:sms")
    assert link.command_id == f"link:{link.tag}"
    other = make_token(SECRET, "A1", "4:manager:sms", T0, timedelta(hours=1))
    assert read_token(SECRET, other, T0).command_id != link.command_id


def test_an_expired_link_is_refused():
    token = make_token(SECRET, "A1", "1:p:sms", T0, timedelta(hours=1))
    with pytest.raises(LinkError) as err:
        read_token(SECRET, token, T0 + timedelta(hours=1))
    assert err.value.reason == "expired"


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),  # signature changed
        lambda t: ("B" if t[0] != "B" else "C") + t[1:],  # another notification's tag
        lambda t: t[:8] + ("A" if t[8] != "A" else "B") + t[9:],  # expiry pushed
        lambda t: t[:-1] + chr(ord(t[-1]) ^ 1),  # the same bytes spelt another way, or others
        lambda t: t + "A",
        lambda t: t[:-1],
        lambda t: "garbage.garbage",
        lambda t: "!" * 22,
    ],
)
def test_a_forged_link_is_refused(mangle):
    token = make_token(SECRET, "A1", "1:p:sms", T0, timedelta(hours=1))
    with pytest.raises(LinkError) as err:
        read_token(SECRET, mangle(token), T0)
    assert err.value.reason == "invalid"


def test_a_link_signed_with_another_secret_is_refused():
    token = make_token("other", "A1", "1:p:sms", T0, timedelta(hours=1))
    with pytest.raises(LinkError):
        read_token(SECRET, token, T0)


def ref(alert, to="+447700900001", channel="sms", minutes=0):
    return PendingRef(alert, f"1:p:{channel}", channel, to, T0 + timedelta(minutes=minutes))


def test_first_message_to_a_contact_goes_at_once():
    plan = plan_sends([ref("A1")], {}, T0, timedelta(minutes=1), 5)
    assert [[r.alert_id for r in m.refs] for m in plan.send_now] == [["A1"]]


def test_a_contact_gets_at_most_one_message_a_minute():
    last = {("sms", "+447700900001"): T0}
    plan = plan_sends([ref("A1")], last, T0 + timedelta(seconds=30), timedelta(minutes=1), 5)
    assert plan.send_now == [] and plan.wait_until == {("sms", "+447700900001"): T0 + timedelta(minutes=1)}
    plan = plan_sends([ref("A1")], last, T0 + timedelta(minutes=1), timedelta(minutes=1), 5)
    assert len(plan.send_now) == 1


def test_what_piles_up_is_bundled_oldest_first_up_to_the_limit():
    pending = [ref(f"A{i}", minutes=-i) for i in range(7)] + [ref("B", to="+447700900002")]
    plan = plan_sends(pending, {}, T0, timedelta(minutes=1), 5)
    bundles = {m.refs[0].to: [r.alert_id for r in m.refs] for m in plan.send_now}
    assert bundles["+447700900001"] == ["A6", "A5", "A4", "A3", "A2"]
    assert bundles["+447700900002"] == ["B"]


def grouped(alert, group="CH1|EP1", seconds=0.0, rank=2, to="+447700900001"):
    return PendingRef(alert, "1:p:sms", "sms", to, T0 + timedelta(seconds=seconds), rank, group, 2.0)


def test_the_alerts_of_one_episode_raised_together_leave_as_one_page_after_the_group_wait():
    pending = [grouped("A1"), grouped("A2", seconds=0.5, rank=3), grouped("B1", group="CH2|EP9", seconds=0.2)]
    assert plan_sends(pending, {}, T0 + timedelta(seconds=1.9), timedelta(minutes=1), 5).send_now == []
    plan = plan_sends(pending, {}, T0 + timedelta(seconds=2), timedelta(minutes=1), 5)
    [message] = plan.send_now
    assert [[r.alert_id for r in page.refs] for page in message.pages] == [["A2", "A1"]]  # most severe leads
    assert message.more == 1  # B1's group has not waited its two seconds yet
    plan = plan_sends(pending, {}, T0 + timedelta(seconds=2.2), timedelta(minutes=1), 5)
    assert [[r.alert_id for r in p.refs] for p in plan.send_now[0].pages] == [["A2", "A1"], ["B1"]]


def test_a_page_alone_in_its_group_waits_no_longer_than_its_group_wait():
    plan = plan_sends([grouped("A1", group="")], {}, T0 + timedelta(seconds=2), timedelta(minutes=1), 5)
    assert [m.refs[0].alert_id for m in plan.send_now] == ["A1"]


def test_the_clock_advances_and_keeps_its_offset_across_restarts(tmp_path):
    clock = Clock(tmp_path / "offset")
    before = clock.now()
    clock.advance(timedelta(minutes=15))
    assert clock.now() - before >= timedelta(minutes=15)
    assert Clock(tmp_path / "offset").offset == timedelta(minutes=15)
    with pytest.raises(ValueError):
        clock.advance(timedelta(seconds=-1))
