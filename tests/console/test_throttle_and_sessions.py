"""The pure core of login throttling and session revocation (console/throttle.py, sessions.py)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from beacon.console.sessions import SessionRecord, SessionRegistry
from beacon.console.throttle import LoginThrottle, ThrottlePolicy, backoff_s

POLICY = ThrottlePolicy(free_failures_per_user=3, free_failures_per_address=10, backoff_s=1, lockout_after=10)


@given(st.lists(st.floats(min_value=0, max_value=600), min_size=1, max_size=60))
def test_one_user_name_gets_no_more_password_checks_than_the_lockout_allows(gaps):
    """Whatever the attacker's timing, at most lockout_after passwords are checked, then it is locked."""
    throttle, registry, now, checked = LoginThrottle(POLICY), SessionRegistry(), 0.0, 0
    for gap in gaps:
        now += gap
        verdict = throttle.check("duty-1", f"10.0.0.{checked % 250}", now, locked=registry.locked("duty-1"))
        if verdict.allowed:
            checked += 1
            if throttle.failed("duty-1", f"10.0.0.{checked % 250}", now):
                registry.apply(SessionRecord(kind="user_locked", subject="duty-1", at=now))
    assert checked <= POLICY.lockout_after
    assert registry.locked("duty-1") is (checked == POLICY.lockout_after)


@given(st.integers(min_value=0, max_value=200))
def test_the_wait_grows_with_the_failures_and_is_capped(failures):
    wait, more = backoff_s(failures, 3, POLICY), backoff_s(failures + 1, 3, POLICY)
    assert 0 <= wait <= more <= POLICY.max_backoff_s
    assert (wait == 0) is (failures < 3)


def test_an_unlock_forgets_the_failures_before_it():
    throttle = LoginThrottle(POLICY)
    for second in range(10):
        throttle.failed("duty-1", "10.0.0.1", float(second * 1000))
    assert not throttle.check("duty-1", "10.0.0.2", 9000.5, locked=False).allowed
    assert throttle.check("duty-1", "10.0.0.2", 9000.5, locked=False, unlocked_at=9000.2).allowed


def test_a_success_resets_the_user_but_not_the_address():
    throttle = LoginThrottle(ThrottlePolicy(free_failures_per_user=1, free_failures_per_address=1, backoff_s=60))
    throttle.failed("duty-1", "10.0.0.1", 0.0)
    throttle.failed("duty-1", "10.0.0.1", 0.0)
    throttle.succeeded("duty-1")
    assert throttle.check("duty-1", "10.0.0.9", 1.0, locked=False).allowed
    assert throttle.check("duty-2", "10.0.0.1", 1.0, locked=False).reason == "throttled"


def test_a_flood_of_invented_names_is_bounded():
    throttle = LoginThrottle(ThrottlePolicy(max_tracked=100))
    for index in range(1000):
        throttle.failed(f"name-{index}", f"10.0.{index // 250}.{index % 250}", float(index))
    assert len(throttle.users) <= 100 and len(throttle.addresses) <= 100


@given(st.lists(st.sampled_from(["logout", "password", "other-user"]), max_size=10))
def test_a_session_is_valid_until_something_ends_it(ends):
    registry = SessionRegistry()
    for at, end in enumerate(ends, start=1):
        if end == "logout":
            registry.apply(SessionRecord(kind="session_ended", subject="sid-1", at=float(at)))
        elif end == "password":
            registry.apply(SessionRecord(kind="user_sessions_ended", subject="duty-1", at=float(at)))
        else:
            registry.apply(SessionRecord(kind="user_sessions_ended", subject="duty-2", at=float(at)))
    ended = "logout" in ends or "password" in ends
    assert registry.session_valid("duty-1", "sid-1", issued_at=0.5) is not ended
    assert registry.session_valid("duty-1", "sid-2", issued_at=len(ends) + 1.0)  # a login after it all


def test_session_records_round_trip_and_refuse_what_they_do_not_know():
    record = SessionRecord(kind="user_locked", subject="duty-1", at=1.5, reason="lockout")
    assert SessionRecord.from_json(record.to_json()) == record and record.key == b"user-lock:duty-1"
    for bad in (b'{"kind": "user_locked", "subject": "x", "at": "1"}', b'{"kind": "nope", "subject": "x", "at": 1}'):
        try:
            SessionRecord.from_json(bad)
        except ValueError:
            continue
        raise AssertionError(f"accepted {bad!r}")
