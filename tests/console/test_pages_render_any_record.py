"""Property: whatever valid records the topics hold, every console page renders.

A record produced straight to a topic bypasses ingest's date window, so the console's
projection and pages must take any event the contract can parse, including dates in year 1
or 9999 with any offset (one such event answered 500 on the dashboard for everybody).
The real app and templates run in-process on a view state fed through the projection.
"""

from __future__ import annotations

import asyncio
import copy
import secrets
from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from beacon.console.access import ScopedView
from beacon.console.app import create_app
from beacon.console.feed import Feed
from beacon.console.projection import ViewState, apply
from beacon.console.read_model import ReadModel
from beacon.console.settings import ConsoleSettings
from beacon.console.users import hash_password
from beacon.core.alerts import AlertRecord, Severity, alert_id
from beacon.core.audit import AuditRecord
from beacon.core.console_users import ConsoleUserRecord
from beacon.core.events import EVENT_TYPES, parse_event
from beacon.core.schemas import example_event
from console.support import PASSWORD, USER, csrf_of

CHILDREN = ["CH-7F3A9C21", "CH-0001-X", "CH-9Z"]
EPISODES = ["MET-2026-000123", "MET-2026-000124"]

offsets = st.integers(min_value=-(24 * 60 - 1), max_value=24 * 60 - 1).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
extreme = st.sampled_from(
    [
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=-12))),
        datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14))),
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    ]
)
moments = st.one_of(
    extreme,
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59), timezones=offsets),
    st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 1, 1), timezones=st.just(UTC)),
)


@st.composite
def valid_events(draw):  # type: ignore[no-untyped-def]
    """An example event of any type with every date-time, the child and the episode replaced."""
    event = copy.deepcopy(example_event(draw(st.sampled_from(sorted(EVENT_TYPES)))))
    event["id"] = f"evt-{draw(st.integers(0, 10**6))}"
    event["subject"] = draw(st.sampled_from(CHILDREN))
    event["time"] = draw(moments).isoformat()
    data = event["data"]
    if "episode_ref" in data:
        data["episode_ref"] = draw(st.sampled_from(EPISODES))
    for name, value in list(data.items()):
        if isinstance(value, str) and name.endswith("_at"):
            data[name] = draw(moments).isoformat()
    if {"started_at", "ended_at"} <= set(data) and data["ended_at"] < data["started_at"]:
        data["started_at"], data["ended_at"] = data["ended_at"], data["started_at"]
    try:
        return parse_event(event)
    except ValueError:  # a cross-field rule (e.g. ended before started across offsets)
        return parse_event(example_event(event["type"]))


@st.composite
def alerts(draw):  # type: ignore[no-untyped-def]
    child, episode = draw(st.sampled_from(CHILDREN)), draw(st.sampled_from(EPISODES))
    return AlertRecord(
        alert_id=alert_id(child, episode, "triage", "high"),
        status=draw(st.sampled_from(["raised", "resolved"])),
        child_ref=child,
        episode_ref=episode,
        rule="triage",
        step="high",
        severity=draw(st.sampled_from(list(Severity))),
        reason="Child reported missing, police risk high",
        occurred_at=draw(moments),
        emitted_at=draw(moments),
    )


def _user(organisations) -> ConsoleUserRecord:  # type: ignore[no-untyped-def]
    return ConsoleUserRecord(
        kind="user_set",
        name=USER,
        at=0.0,
        password_hash=hash_password(PASSWORD, n=2**10),
        organisations=tuple(sorted(organisations)) or ("southwark",),
        role="responder",
    )


def organisations_named(state: ViewState) -> set[str]:
    named: set[str] = set()
    for child in state.children.values():
        named.update(o for o in (child.placing_council, child.host_council) if o)
        for episode in child.episodes.values():
            named.update(o for o in (episode.reporting_org, episode.placing_council, episode.found_by) if o)
    return named


@pytest.fixture
def console(tmp_path):
    settings = ConsoleSettings(console_session_secret=secrets.token_hex(32))
    feed = Feed(settings)
    audited: list[AuditRecord] = []
    feed.users.apply(_user(("southwark",)))
    feed.sessions_ready = True  # no broker here: nothing ends a session or locks an account

    async def send_ack(_command):  # type: ignore[no-untyped-def]
        return None

    async def send_session_record(_record):  # type: ignore[no-untyped-def]
        return None

    async def send_audit(record):  # type: ignore[no-untyped-def]
        audited.append(record)

    loop = asyncio.new_event_loop()
    transport = httpx.ASGITransport(
        app=create_app(settings, feed, send_ack, send_session_record, send_audit), raise_app_exceptions=False
    )
    client = httpx.AsyncClient(transport=transport, base_url="http://console")

    def get(path: str) -> httpx.Response:
        return loop.run_until_complete(client.get(path, headers={"Accept": "text/html"}))

    token = csrf_of(get("/login").text)
    login = {"username": USER, "password": PASSWORD, "csrf": token, "next": "/"}
    response = loop.run_until_complete(client.post("/login", data=login))
    assert response.status_code == 303, response.text
    yield get, feed, audited
    loop.run_until_complete(client.aclose())
    loop.close()


def test_every_page_renders_whatever_valid_records_the_topics_hold(console):
    get, feed, audited = console

    @hsettings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(records=st.lists(st.one_of(valid_events(), alerts()), min_size=1, max_size=8))
    def check(records):  # type: ignore[no-untyped-def]
        feed.read_model = ReadModel()  # the stored state the console serves from, in memory
        state = feed.state
        for record in records:
            apply(state, record)
        feed.read_model.commit({})
        # The user works for every organisation the records name, so what is visible is what the
        # access policy's history window allows (console/access.py); the rest must be a clean 404.
        feed.users.apply(_user(organisations_named(state)))
        view = ScopedView(state, feed.users.principal(USER), datetime.now(UTC), timedelta(days=30))
        pages = {"/": True, "/fragments/dashboard": True, "/returns": True, "/fragments/returns": True}
        pages |= {"/on-call": True, "/fragments/on-call": True, "/reports": True, "/reports/monthly.csv": True}
        pages["/reports/ssda903-missing.csv?start=0001-01-01&end=9999-12-31"] = True
        for child in state.children:
            for page in (f"/children/{quote(child)}", f"/fragments/children/{quote(child)}"):
                pages[page] = view.sees_child(child)
        for alert in state.alerts.values():
            if alert.raised_at is not None:
                for page in (f"/alerts/{quote(alert.alert_id)}", f"/fragments/alerts/{quote(alert.alert_id)}"):
                    pages[page] = view.sees_alert(alert)
        for page, visible in pages.items():
            audited.clear()
            response = get(page)
            assert response.status_code == (200 if visible else 404), (page, response.text[:500])
            if page.startswith(("/children/", "/fragments/children/", "/alerts/", "/fragments/alerts/")):
                assert [r.person for r in audited] == ([USER] if visible else [])  # every view, never a refusal

    check()
