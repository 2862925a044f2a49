"""The read model (console/read_model.py) over a real SQLite file: what a console commits is
what it finds after a restart, a batch not committed is read again, and nothing is folded twice."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from beacon.console.feed import decode
from beacon.console.projection import ViewState, apply, missing_now, open_alerts, timeline
from beacon.console.read_model import ReadModel
from beacon.core.events import build_event
from beacon.core.topics import ALERTS, EVENTS
from console.support import iso, raised_alert, reported_event
from console.test_pages_render_any_record import alerts, valid_events


def found_event(child: str, episode: str, ended: datetime) -> dict:
    return build_event(
        "beacon.episode.found.v1",
        child,
        {"episode_ref": episode, "outcome": "returned", "ended_at": iso(ended)},
        time=iso(ended),
        source="urn:beacon:source:southwark",
        event_id=f"found-{episode}",
    )


def records(children: int) -> list[tuple[str, bytes]]:
    out: list[tuple[str, bytes]] = []
    for n in range(children):
        child, episode = f"CH-RM-{n:04d}", f"EP-RM-{n:04d}"
        out.append((EVENTS, json.dumps(reported_event(child, episode, hours_ago=30)).encode()))
        out.append((ALERTS, raised_alert(child, episode).to_json()))
        if n % 2:
            out.append(
                (EVENTS, json.dumps(found_event(child, episode, datetime.now(UTC) - timedelta(hours=1))).encode())
            )
    return out


def fold(model: ReadModel, batch: list[tuple[str, bytes]], first_offset: int) -> int:
    for topic, payload in batch:
        apply(model.state, decode(topic, payload))
    return first_offset + len(batch)


def test_a_reopened_read_model_answers_as_the_in_memory_fold_does(tmp_path: Path):
    history = records(50)
    path = tmp_path / "read-model.sqlite3"
    model = ReadModel(path, cache_entries=100)  # smaller than the history: rows leave the cache
    offset = 0
    for start in range(0, len(history), 7):
        offset = fold(model, history[start : start + 7], offset)
        model.commit({("beacon.events", 0): offset})
    model.close()

    reference = ViewState()
    for topic, payload in history:
        apply(reference, decode(topic, payload))

    reopened = ReadModel(path, cache_entries=100)
    assert reopened.offsets() == {("beacon.events", 0): len(history)}
    assert [(r.child_ref, r.episode.episode_ref) for r in missing_now(reopened.state)] == [
        (r.child_ref, r.episode.episode_ref) for r in missing_now(reference)
    ]
    assert [a.alert_id for a in open_alerts(reopened.state)] == [a.alert_id for a in open_alerts(reference)]
    for n in (0, 1, 49):
        child = f"CH-RM-{n:04d}"
        assert [e.text for e in timeline(reopened.state, child)] == [e.text for e in timeline(reference, child)]
    assert reopened.state.version == reference.version


def test_a_batch_not_committed_is_read_again_and_a_resent_record_is_not_folded_twice(tmp_path: Path):
    path = tmp_path / "read-model.sqlite3"
    history = records(4)
    model = ReadModel(path)
    fold(model, history[:3], 0)
    model.commit({("beacon.events", 0): 3})
    fold(model, history[3:], 3)  # the process dies before this batch's commit
    model.close()

    restarted = ReadModel(path)
    resume = restarted.offsets()[("beacon.events", 0)]
    assert resume == 3
    fold(restarted, history[resume:], resume)
    fold(restarted, history[:2], len(history))  # the sources resend: deduplicated as before
    restarted.commit({("beacon.events", 0): len(history) + 2})
    assert restarted.state.duplicates == 2
    assert [e.text for e in timeline(restarted.state, "CH-RM-0001")].count("Returned: episode closed by southwark") == 1


def test_episode_queries_restrict_to_the_organisations_given(tmp_path: Path):
    model = ReadModel(tmp_path / "read-model.sqlite3")
    fold(model, records(6), 0)
    model.commit({})
    ended_after = datetime.now(UTC) - timedelta(days=3)
    everyone = model.returns_awaiting_interview(ended_after)
    assert {r.child_ref for r in everyone} == {"CH-RM-0001", "CH-RM-0003", "CH-RM-0005"}
    assert model.returns_awaiting_interview(ended_after, frozenset({"southwark"})) == everyone
    assert model.returns_awaiting_interview(ended_after, frozenset({"kent"})) == []
    assert model.returns_awaiting_interview(ended_after, frozenset()) == []
    assert model.returns_awaiting_interview(ended_after, frozenset({"%"})) == []  # no LIKE wildcard leaks
    month = model.episodes_started(datetime.now(UTC) - timedelta(days=2), datetime.now(UTC))
    assert len(month) == 6 and all(r.organisations == {"met-police", "southwark"} for r in month)


def test_a_second_instance_on_the_same_file_rebuilds_in_memory(tmp_path: Path):
    path = tmp_path / "read-model.sqlite3"
    first = ReadModel(path)
    second = ReadModel(path)
    assert (first.path, second.path) == (str(path), ":memory:")
    second.close()
    first.close()


@hsettings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(records=st.lists(st.one_of(valid_events(), alerts()), min_size=1, max_size=8))
def test_every_child_and_alert_reads_back_from_the_file_as_it_was_folded(records, tmp_path_factory):  # type: ignore[no-untyped-def]
    """Children are stored as msgspec MessagePack, alerts pickled: whatever the events, what is
    read back from the file (cache too small to hold it) is what was folded."""
    path = tmp_path_factory.mktemp("rm") / "read-model.sqlite3"
    model = ReadModel(path, cache_entries=100)
    reference = ViewState()
    for record in records:
        apply(model.state, record)
        apply(reference, record)
    model.commit({})
    model.close()
    reopened = ReadModel(path, cache_entries=100)
    assert {ref: reopened.state.children[ref] for ref in reference.children} == reference.children
    assert {aid: reopened.state.alerts[aid] for aid in reference.alerts} == reference.alerts
    reopened.close()
