"""Signed ack links, the per-contact rate limit and bundling plan, the test clock."""

from __future__ import annotations

import base64
import re
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from beacon.notifier.clock import Clock
from beacon.notifier.dispatch import PendingRef, pages_of, plan_sends
from beacon.notifier.links import TOKEN_CHARS, LinkError, _mac, link_tag, make_token, read_token
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


def test_what_piles_up_is_bundled_most_severe_then_oldest_first_up_to_the_limit_saying_how_many_wait():
    pending = [grouped(f"A{i}", group="", seconds=-i, rank=i % 3) for i in range(7)]
    pending.append(grouped("B", group="", to="+447700900002"))
    plan = plan_sends(pending, {}, T0 + timedelta(seconds=2), timedelta(minutes=1), 5)  # all past the group wait
    bundles = {m.refs[0].to: ([r.alert_id for r in m.refs], m.more) for m in plan.send_now}
    assert bundles["+447700900001"] == (["A5", "A2", "A4", "A1", "A6"], 2)  # high, then medium, then low
    assert bundles["+447700900002"] == (["B"], 0)


def test_a_critical_page_never_waits_for_the_rate_limit_and_does_not_restart_it():
    last = {("sms", "+447700900001"): T0}
    pending = [grouped("H1", group="", rank=2), grouped("C1", group="", rank=3), grouped("C2", group="", rank=3)]
    plan = plan_sends(pending, last, T0 + timedelta(seconds=5), timedelta(minutes=1), 5)
    [message] = plan.send_now
    assert [r.alert_id for r in message.refs] == ["C1", "C2"] and message.more == 1 and message.past_the_limit
    assert plan.wait_until == {("sms", "+447700900001"): T0 + timedelta(minutes=1)}  # H1 keeps its slot
    plan = plan_sends(pending[:1], last, T0 + timedelta(minutes=1), timedelta(minutes=1), 5)
    assert [r.alert_id for r in plan.send_now[0].refs] == ["H1"] and not plan.send_now[0].past_the_limit


def test_a_page_for_an_episode_that_got_worse_leaves_inside_the_minute_but_a_new_episode_waits():
    last = {("sms", "+447700900001"): T0}
    paged = {(("sms", "+447700900001"), "CH1|EP1"): 1}  # told about EP1 at medium
    pending = [grouped("A-high", rank=2), grouped("B-high", group="CH2|EP2", rank=2), grouped("A-med", rank=1)]
    plan = plan_sends(pending[:2], last, T0 + timedelta(seconds=5), timedelta(minutes=1), 5, paged)
    assert [r.alert_id for m in plan.send_now for r in m.refs] == ["A-high"]
    plan = plan_sends(pending[2:], last, T0 + timedelta(seconds=5), timedelta(minutes=1), 5, paged)
    assert plan.send_now == []  # no worse than before: it waits its turn


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 3), st.integers(0, 120), st.sampled_from(["", "E1", "E2"])), max_size=25),
    st.integers(0, 120),
    st.integers(1, 6),
)
def test_a_plan_never_drops_a_page_and_never_holds_a_ready_critical_one(pages, last_s, max_bundle):
    pending = [grouped(f"A{i}", group=g, seconds=-s, rank=r) for i, (r, s, g) in enumerate(pages)]
    last = {("sms", "+447700900001"): T0 - timedelta(seconds=last_s)}
    plan = plan_sends(pending, last, T0, timedelta(minutes=1), max_bundle)
    sent = [r for m in plan.send_now for r in m.refs]
    assert len(sent) == len(set(sent)) and set(sent) <= set(pending)
    waiting = [r for r in pending if r not in sent]
    for m in plan.send_now:
        assert m.more == len({r.group_key for r in waiting})  # every page not listed is counted
        ranks = [p.severity_rank for p in m.pages]
        assert ranks == sorted(ranks, reverse=True)
    # A group leaves as one page once its oldest notification has waited the group wait, so a
    # ready critical page is a ready group holding a critical alert (not a critical alert alone).
    ready_critical_groups = {
        p.refs[0].group_key for p in pages_of(pending) if p.severity_rank == 3 and p.ready_at <= T0
    }
    sent_groups = {r.group_key for r in sent}
    if len(ready_critical_groups) <= max_bundle:
        assert ready_critical_groups <= sent_groups
    else:  # more than one message holds: the message is all critical pages
        assert len(ready_critical_groups & sent_groups) == max_bundle


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


@given(token=st.text(max_size=200))
def test_any_text_as_a_token_is_refused_as_invalid_never_an_error(token):
    with pytest.raises(LinkError) as err:
        read_token(SECRET, token, T0)
    assert err.value.reason == "invalid"


@given(tag=st.binary(min_size=6, max_size=6), expiry=st.integers(min_value=0, max_value=2**24 - 1))
def test_a_validly_signed_token_of_any_tag_or_expiry_is_read_or_refused_never_an_error(tag, expiry):
    body = tag + expiry.to_bytes(3, "big")
    token = base64.urlsafe_b64encode(body + _mac(SECRET, body)).rstrip(b"=").decode()
    try:
        link = read_token(SECRET, token, T0)
    except LinkError as exc:
        assert exc.reason == "expired"
    else:
        assert link.expires_at > T0 and link.tag == tag.hex()


@pytest.mark.parametrize("token", ["é.abc", "ünïcödé", "AAAA.\u00e9\u00e9", "é" * 22, "A" * 21 + "é"])
def test_a_non_ascii_token_is_invalid(token):
    with pytest.raises(LinkError) as err:
        read_token(SECRET, token, T0)
    assert err.value.reason == "invalid"
