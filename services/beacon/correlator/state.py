"""Per-child state of the correlator: merged facts, never a history of arrivals.

Every field is a join of the facts seen (sorted sets, minima, maxima), so merging the
same events in any order, or twice, gives the same state. Times are whole seconds since
the epoch (event time). Field names are short on purpose: one state per tracked child is
kept in a changelog-backed table, stored as MessagePack (a third smaller than the same
JSON; bench/bench_correlator.py prints the sizes). msgspec structs, not pydantic models:
the worker decodes, updates and encodes a state for every child in every batch, and
msgspec does that several times faster.
"""

from __future__ import annotations

import bisect
from typing import Literal, NamedTuple

import msgspec

from beacon.core.domain import is_open

# (event time, event id, value): one time-stamped fact. Sorting by (time, id) is the
# total order every "latest as of" question uses, so arrival order never matters.
Fact = tuple[int, str, int]
StrFact = tuple[int, str, str]

RAISED: Literal[1] = 1
RESOLVED: Literal[2] = 2


class Report(NamedTuple):
    """The episode's report (the earliest one, by (time, id), if it was resent).
    A tuple, so it serialises as a JSON array without field names."""

    t: int  # event time of the report
    id: str  # event id of the report
    start: int  # started_at as reported
    risk: int  # police risk grade rank (0 no apparent risk .. 3 high)
    age: int
    cared: bool  # looked after (child in care)
    cat: str  # missing | absent | away_without_authorisation
    council: str | None = None
    org: str | None = None  # reporting force


class Episode(msgspec.Struct, omit_defaults=True, forbid_unknown_fields=True):
    r: Report | None = None  # None: a placeholder (found before reported)
    g: list[Fact] = msgspec.field(default_factory=list)  # risk re-grades (rank), incl. resent reports
    s: list[Fact] = msgspec.field(default_factory=list)  # corrections of started_at
    f: list[Fact] = msgspec.field(default_factory=list)  # closing facts: found/returned (ended_at), corrections
    x: tuple[int, str] | None = None  # Child Rescue Alert (earliest)
    i: tuple[int, str] | None = None  # return interview done or declined (earliest)
    a: dict[str, int] = msgspec.field(default_factory=dict)  # alert key (engine.alert_key) -> 1 raised, 2 resolved
    # At rest: fully derived after it settled; nothing new can come of it unless an event
    # about it arrives (a shortcut, see engine._Rules.at_rest).
    q: bool = False
    # Known since: the horizon when a report, found or correction of it arrived later than
    # the lateness behind that horizon (a backdated report, a backfill). Its time rules wait
    # the lateness from there, as for an on-time report, so its found can still arrive.
    k: int = 0
    # Organisation (from the event's authenticated source) that sent the closing fact
    # ``f[0]`` (a found or an accepted correction): who closed the episode.
    o: str | None = None
    # Corrections that arrived before the report, when only the report can say who has a
    # part in the episode: (time, event id, started_at or None, ended_at or None, org).
    pc: list[tuple[int, str, int | None, int | None, str]] = msgspec.field(default_factory=list)

    @property
    def closed(self) -> bool:
        return bool(self.f)

    def last_fact_time(self) -> int:
        times = [fact[0] for facts in (self.g, self.s, self.f) for fact in facts]
        times += [v[0] for v in (self.x, self.i, *self.pc) if v]
        if self.r:
            times.append(self.r.t)
        return max(times, default=0)


class ChildState(msgspec.Struct, omit_defaults=True, forbid_unknown_fields=True):
    w: int = 0  # watermark: the latest event time seen for this child
    # Latest wall-clock tick, when ahead of the watermark: time rules fire up to max(w, h).
    h: int = 0
    e: dict[str, Episode] = msgspec.field(default_factory=dict)  # episodes by episode ref
    al: dict[str, str] = msgspec.field(default_factory=dict)  # second report while open: ref -> open ref
    c: list[Fact] = msgspec.field(default_factory=list)  # CSE screenings (level rank)
    u: list[Fact] = msgspec.field(default_factory=list)  # allocation changes (1 allocated, 0 unallocated)
    p: StrFact | None = None  # latest placement: placing council
    ph: str | None = None  # host council of that placement
    # Strategy discussions held (time, event id), sorted: they close the repeat-episodes
    # and critical CSE prompts, and restart the repeat count.
    d: list[tuple[int, str]] = msgspec.field(default_factory=list)
    # When a time rule can next fire (never later; a cache of what the facts say, so that
    # events that only move the watermark skip the time rules): 0 not known, -1 none pending.
    n: int = 0
    # Latest processed event keys (time, hash), bounded: the fast path for duplicates.
    k: list[tuple[int, int]] = msgspec.field(default_factory=list)

    def to_bytes(self) -> bytes:
        return _ENCODER.encode(self)

    @classmethod
    def from_bytes(cls, payload: bytes | None) -> ChildState:
        if not payload:
            return cls()
        return _DECODER.decode(payload)

    @classmethod
    def from_legacy_json(cls, payload: bytes) -> ChildState:
        """A state as written before MessagePack (see ``engine.load_state``)."""
        return _LEGACY_DECODER.decode(payload)

    def copy(self) -> ChildState:
        """A deep copy (through the serialised form: the cheapest deep copy there is)."""
        return _DECODER.decode(_ENCODER.encode(self))

    def open_episode(self) -> tuple[str, Episode] | None:
        """The reported, not yet closed episode (at most one by construction)."""
        for ref, episode in self.e.items():
            if is_open(episode.r is not None, episode.closed):
                return ref, episode
        return None


_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(ChildState)
_LEGACY_DECODER = msgspec.json.Decoder(ChildState)


def is_legacy(payload: bytes | None) -> bool:
    """JSON: an object starts with "{", which no MessagePack state does (a map, 0x80-0x8f)."""
    return bool(payload) and payload[:1] == b"{"  # type: ignore[index]


def add_fact(facts: list, fact: tuple) -> bool:  # type: ignore[type-arg]
    """Insert into a sorted set; False if it was already there (idempotent merge)."""
    index = bisect.bisect_left(facts, fact)
    if index < len(facts) and facts[index] == fact:
        return False
    facts.insert(index, fact)
    return True


def earliest(current: tuple[int, str] | None, candidate: tuple[int, str]) -> tuple[int, str]:
    return candidate if current is None or candidate < current else current
