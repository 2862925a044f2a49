"""Signed ack links, the per-contact rate limit and bundling plan, the test clock."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from beacon.notifier.clock import Clock
from beacon.notifier.dispatch import PendingRef, plan_sends
from beacon.notifier.links import LinkError, _b64, _sign, make_token, read_token
from notifier.conftest import T0

SECRET = "s3cret"


def test_a_link_round_trips_and_is_the_same_for_the_same_notice():
    token = make_token(SECRET, "A1", "manager", "2:manager:sms", T0, timedelta(hours=1))
    assert token == make_token(SECRET, "A1", "manager", "2:manager:sms", T0, timedelta(hours=1))
    link = read_token(SECRET, token, T0 + timedelta(minutes=59))
    assert (link.alert_id, link.person) == ("A1", "manager")
    assert link.command_id.startswith("link:")
    other = make_token(SECRET, "A1", "manager", "4:manager:sms", T0, timedelta(hours=1))
    assert read_token(SECRET, other, T0).command_id != link.command_id


def test_an_expired_link_is_refused():
    token = make_token(SECRET, "A1", "p", "1:p:sms", T0, timedelta(hours=1))
    with pytest.raises(LinkError) as err:
        read_token(SECRET, token, T0 + timedelta(hours=1))
    assert err.value.reason == "expired"


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),  # signature changed
        lambda t: "eyJhIjoiQTIiLCJwIjoicCIsImUiOjk5OTk5OTk5OTksIm4iOiJ4In0" + t[t.index(".") :],  # payload swapped
        lambda t: t.replace(".", ""),  # no separator
        lambda t: "garbage.garbage",
    ],
)
def test_a_forged_link_is_refused(mangle):
    token = make_token(SECRET, "A1", "p", "1:p:sms", T0, timedelta(hours=1))
    with pytest.raises(LinkError) as err:
        read_token(SECRET, mangle(token), T0)
    assert err.value.reason == "invalid"


def test_a_link_signed_with_another_secret_is_refused():
    token = make_token("other", "A1", "p", "1:p:sms", T0, timedelta(hours=1))
    with pytest.raises(LinkError):
        read_token(SECRET, token, T0)


def ref(alert, to="+447700900001", channel="sms", minutes=0):
    return PendingRef(alert, f"1:p:{channel}", channel, to, T0 + timedelta(minutes=minutes))


def test_first_message_to_a_contact_goes_at_once():
    plan = plan_sends([ref("A1")], {}, T0, timedelta(minutes=1), 5)
    assert [[r.alert_id for r in b] for b in plan.send_now] == [["A1"]]


def test_a_contact_gets_at_most_one_message_a_minute():
    last = {("sms", "+447700900001"): T0}
    plan = plan_sends([ref("A1")], last, T0 + timedelta(seconds=30), timedelta(minutes=1), 5)
    assert plan.send_now == [] and plan.wait_until == {("sms", "+447700900001"): T0 + timedelta(minutes=1)}
    plan = plan_sends([ref("A1")], last, T0 + timedelta(minutes=1), timedelta(minutes=1), 5)
    assert len(plan.send_now) == 1


def test_what_piles_up_is_bundled_oldest_first_up_to_the_limit():
    pending = [ref(f"A{i}", minutes=-i) for i in range(7)] + [ref("B", to="+447700900002")]
    plan = plan_sends(pending, {}, T0, timedelta(minutes=1), 5)
    bundles = {b[0].to: [r.alert_id for r in b] for b in plan.send_now}
    assert bundles["+447700900001"] == ["A6", "A5", "A4", "A3", "A2"]
    assert bundles["+447700900002"] == ["B"]


def test_the_clock_advances_and_keeps_its_offset_across_restarts(tmp_path):
    clock = Clock(tmp_path / "offset")
    before = clock.now()
    clock.advance(timedelta(minutes=15))
    assert clock.now() - before >= timedelta(minutes=15)
    assert Clock(tmp_path / "offset").offset == timedelta(minutes=15)
    with pytest.raises(ValueError):
        clock.advance(timedelta(seconds=-1))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children, max_size=4),
    max_leaves=10,
)
huge_expiry = st.one_of(st.integers(min_value=10**11), st.integers(max_value=-(10**11)), st.just(2**63))


@given(token=st.text(max_size=200))
def test_any_text_as_a_token_is_refused_as_invalid_never_an_error(token):
    with pytest.raises(LinkError) as err:
        read_token(SECRET, token, T0)
    assert err.value.reason == "invalid"


@given(
    payload=st.one_of(
        json_values,
        st.fixed_dictionaries({"a": json_values, "p": json_values, "e": json_values | huge_expiry, "n": json_values}),
    )
)
def test_a_validly_signed_token_of_any_shape_or_expiry_is_read_or_refused_never_an_error(payload):
    encoded = _b64(json.dumps(payload).encode())
    token = f"{encoded}.{_sign(SECRET, encoded)}"
    try:
        link = read_token(SECRET, token, T0)
    except LinkError as exc:
        assert exc.reason in ("invalid", "expired")
    else:
        assert link.expires_at > T0


@pytest.mark.parametrize("token", ["é.abc", "ünïcödé", "AAAA.\u00e9\u00e9"])
def test_a_non_ascii_token_is_invalid(token):
    with pytest.raises(LinkError) as err:
        read_token(SECRET, token, T0)
    assert err.value.reason == "invalid"
