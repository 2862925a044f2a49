"""The console's access decision (console/access.py): properties of the pure function, and the
choke point over a real projection fold."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi import HTTPException
from hypothesis import given
from hypothesis import strategies as st

from beacon.console.access import (
    Involvement,
    Principal,
    Role,
    RoleRequired,
    ScopedView,
    child_visible,
    require_role,
)
from beacon.console.projection import ViewState, apply, missing_now, open_alerts
from beacon.core.alerts import AlertRecord, Severity, alert_id
from beacon.core.events import build_event, parse_event

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
HISTORY = timedelta(days=30)
ORGS = ["southwark", "lambeth", "met-police", "kent-police", "norfolk"]

orgs = st.frozensets(st.sampled_from(ORGS), max_size=3)
ended = st.one_of(st.none(), st.integers(min_value=0, max_value=90 * 24).map(lambda h: NOW - timedelta(hours=h)))
episodes = st.lists(st.builds(Involvement, organisations=orgs, is_open=st.booleans(), ended_at=ended), max_size=5)
principals = st.builds(Principal, name=st.just("u1"), organisations=orgs, role=st.sampled_from(list(Role)))


def reference(principal: Principal, eps: list[Involvement]) -> bool:
    """The policy as written in the docs, spelled out independently."""
    return any(
        set(e.organisations) & set(principal.organisations)
        and (e.is_open or (e.ended_at is not None and e.ended_at >= NOW - HISTORY))
        for e in eps
    )


@given(principals, episodes)
def test_visibility_is_exactly_the_documented_policy(principal, eps):
    assert child_visible(principal, eps, NOW, HISTORY) == reference(principal, eps)


@given(principals, episodes)
def test_a_child_none_of_whose_episodes_involve_the_users_organisations_is_never_visible(principal, eps):
    unrelated = [
        Involvement(e.organisations - principal.organisations, e.is_open, e.ended_at) for e in eps
    ]  # the same history with the user's organisations taken out
    assert not child_visible(principal, unrelated, NOW, HISTORY)


@given(principals, episodes, orgs)
def test_more_organisations_never_hide_a_child(principal, eps, extra):
    wider = Principal(principal.name, principal.organisations | extra, principal.role)
    if child_visible(principal, eps, NOW, HISTORY):
        assert child_visible(wider, eps, NOW, HISTORY)


@given(principals, episodes)
def test_the_role_never_changes_what_is_visible(principal, eps):
    seen = {child_visible(Principal("u1", principal.organisations, r), eps, NOW, HISTORY) for r in Role}
    assert len(seen) == 1


@given(principals, episodes)
def test_history_ages_out(principal, eps):
    closed = [Involvement(e.organisations, False, e.ended_at) for e in eps]
    assert not child_visible(principal, closed, NOW + HISTORY + timedelta(days=91), HISTORY)


@given(st.sampled_from(list(Role)), st.sampled_from(list(Role)))
def test_a_role_may_do_what_the_roles_below_may(held, needed):
    principal = Principal("u1", frozenset({"southwark"}), held)
    if held >= needed:
        require_role(principal, needed)
    else:
        with pytest.raises(RoleRequired) as refused:
            require_role(principal, needed)
        assert refused.value.status_code == 403


def test_role_names_parse_and_unknown_ones_are_refused():
    assert Role.parse("responder") is Role.responder
    with pytest.raises(ValueError, match="unknown role"):
        Role.parse("superuser")


# ------------------------------------------------------------------ over the real fold


def _iso(ts: datetime) -> str:
    return ts.isoformat().replace("+00:00", "Z")


def _reported(child: str, episode: str, council: str, force: str, at: datetime):
    return parse_event(
        build_event(
            "beacon.episode.reported.v1",
            child,
            {
                "episode_ref": episode,
                "category": "missing",
                "started_at": _iso(at - timedelta(minutes=30)),
                "risk": "high",
                "age_years": 14,
                "looked_after": True,
                "reporting_org": force,
                "placing_council": council,
            },
            time=_iso(at),
            source=f"urn:beacon:source:{force}",
            event_id=f"rep-{episode}",
        )
    )


def _found(child: str, episode: str, force: str, at: datetime):
    return parse_event(
        build_event(
            "beacon.episode.found.v1",
            child,
            {"episode_ref": episode, "outcome": "found", "ended_at": _iso(at)},
            time=_iso(at),
            source=f"urn:beacon:source:{force}",
            event_id=f"fnd-{episode}",
        )
    )


def _placement(child: str, placing: str, host: str, at: datetime):
    return parse_event(
        build_event(
            "beacon.placement.changed.v1",
            child,
            {"change": "placement_change", "effective_at": _iso(at), "placing_council": placing, "host_council": host},
            time=_iso(at),
            source=f"urn:beacon:source:{placing}",
            event_id=f"plc-{child}-{at.timestamp()}",
        )
    )


def _alert(child: str, episode: str, council: str, at: datetime) -> AlertRecord:
    return AlertRecord(
        alert_id=alert_id(child, episode, "triage", "high"),
        status="raised",
        child_ref=child,
        episode_ref=episode,
        rule="triage",
        step="high",
        severity=Severity.high,
        reason="Child reported missing, police risk high",
        council=council,
        occurred_at=at,
        emitted_at=at,
    )


def _state() -> ViewState:
    state = ViewState()
    at = NOW - timedelta(hours=2)
    for record in (
        _reported("CH-A", "EP-A", "southwark", "met-police", at),
        _alert("CH-A", "EP-A", "southwark", at),
        _reported("CH-B", "EP-B", "lambeth", "met-police", at),
        _alert("CH-B", "EP-B", "lambeth", at),
        # placed by norfolk, living in kent: kent's force reported, kent found it a year ago
        _placement("CH-C", "norfolk", "kent", at - timedelta(days=400)),
        _reported("CH-C", "EP-C", "norfolk", "kent-police", at - timedelta(days=365)),
        _found("CH-C", "EP-C", "kent-police", at - timedelta(days=364)),
        _reported("CH-D", "EP-D", "lambeth", "met-police", at - timedelta(days=3)),
        _found("CH-D", "EP-D", "essex-police", at - timedelta(days=2)),
    ):
        apply(state, record)
    return state


def _scope(organisations: set[str], role: Role = Role.viewer) -> ScopedView:
    return ScopedView(_state(), Principal("u1", frozenset(organisations), role), NOW, HISTORY)


def test_a_council_sees_its_own_child_and_not_another_councils():
    southwark = _scope({"southwark"})
    assert [row.child_ref for row in southwark.only_visible(missing_now(southwark.state))] == ["CH-A"]
    assert [a.child_ref for a in southwark.only_visible(open_alerts(southwark.state))] == ["CH-A"]
    assert southwark.child("CH-A").child_ref == "CH-A"
    for hidden in ("CH-B", "CH-C", "CH-D", "no-such-child"):
        with pytest.raises(HTTPException) as missing:
            southwark.child(hidden)
        assert missing.value.status_code == 404
        assert missing.value.detail == "No record of this child reference."  # the same words either way
    with pytest.raises(HTTPException) as missing_alert:
        southwark.alert(alert_id("CH-B", "EP-B", "triage", "high"))
    assert missing_alert.value.status_code == 404


def test_the_reporting_force_sees_every_council_it_reported_for():
    met = _scope({"met-police"})
    assert {row.child_ref for row in met.only_visible(missing_now(met.state))} == {"CH-A", "CH-B"}
    assert met.sees_child("CH-D")  # ended two days ago: inside the history window


def test_the_finding_force_and_the_host_council_are_involved_too():
    assert _scope({"essex-police"}).sees_child("CH-D")  # found the child, reported nothing
    assert not _scope({"kent"}).sees_child("CH-C")  # host council, but the episode ended a year ago
    state = _state()
    apply(state, _reported("CH-C", "EP-C2", "norfolk", "norfolk-police", NOW - timedelta(hours=1)))
    host = ScopedView(state, Principal("u1", frozenset({"kent"}), Role.viewer), NOW, HISTORY)
    assert host.sees_child("CH-C")  # open again: the host council of the current placement is involved
