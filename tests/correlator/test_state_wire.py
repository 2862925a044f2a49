"""The state's wire format did not change when its fields got full names.

``data/states_before_full_names.b64`` holds MessagePack states written by the correlator
before the rename (one per line, base64): one with every field set, an empty one, and
states from four days of the correlator bench's synthetic national history. Each must
decode into the renamed structs and encode back to the very same bytes, so a rolling
upgrade reads the changelog as it is and writes what an older replica still reads.
"""

from __future__ import annotations

import base64
from pathlib import Path

import msgspec

from beacon.correlator.state import ChildState, Episode

STATES = [
    base64.b64decode(line)
    for line in (Path(__file__).parent / "data" / "states_before_full_names.b64").read_text().splitlines()
]


def test_every_stored_state_decodes_and_reencodes_byte_identically() -> None:
    assert len(STATES) > 100
    for payload in STATES:
        assert ChildState.from_bytes(payload).to_bytes() == payload


def test_the_state_with_every_field_set_reads_under_its_full_names() -> None:
    state = ChildState.from_bytes(STATES[0])
    episode = state.episodes["EP1"]
    assert (state.watermark, state.ticked_at, state.next_fire) == (1_700_000_000, 1_700_000_600, -1)
    assert state.aliases == {"EP2": "EP1"} and state.host_council == "lambeth"
    assert state.cse_screenings == [(1, "c1", 2)] and state.allocations == [(2, "u1", 0)]
    assert state.placement == (3, "p1", "southwark") and state.discussions == [(4, "d1")]
    assert state.recent_events == [(5, 123)]
    assert episode.report is not None and (episode.report.time, episode.report.event_id) == (1, "r1")
    assert (episode.report.started, episode.report.category) == (2, "missing")
    assert episode.regrades == [(5, "g1", 2)] and episode.start_corrections == [(6, "s1", 3)]
    assert episode.closings == [(7, "f1", 8)] and episode.closed_by == "met-police"
    assert (episode.rescue_alert, episode.interview) == ((9, "x1"), (10, "i1"))
    assert episode.alert_status == {"Thigh": 1, "D24h": 2} and episode.at_rest and episode.known_since == 11
    assert episode.early_corrections == [(12, "pc1", None, 13, "lambeth")]


def test_wire_keys_are_the_short_ones_in_field_order() -> None:
    """Field order is the encoding order: a reordered field would change every byte."""
    child_keys = [field.encode_name for field in msgspec.structs.fields(ChildState)]
    episode_keys = [field.encode_name for field in msgspec.structs.fields(Episode)]
    assert child_keys == ["w", "h", "e", "al", "c", "u", "p", "ph", "d", "n", "k"]
    assert episode_keys == ["r", "g", "s", "f", "x", "i", "a", "q", "k", "o", "pc"]
