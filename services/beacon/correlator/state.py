"""Per-child state of the correlator: merged facts, never a history of arrivals.

Every field is a join of the facts seen (sorted sets, minima, maxima), so merging the
same events in any order, or twice, gives the same state. Times are whole seconds since
the epoch (event time). Field names are short on purpose: one state per tracked child is
kept in a changelog-backed table, and the serialised JSON should stay well under 1 KiB.
"""

from __future__ import annotations

import bisect
from typing import Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

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


class Episode(BaseModel):
    model_config = ConfigDict(extra="forbid")

    r: Report | None = Field(default=None, description="None: a placeholder (found before reported).")
    g: list[Fact] = Field(default_factory=list, description="Risk re-grades (rank), incl. resent reports.")
    s: list[Fact] = Field(default_factory=list, description="Corrections of started_at.")
    f: list[Fact] = Field(default_factory=list, description="Closing facts: found/returned (ended_at) and "
                          "corrections of ended_at.")
    x: tuple[int, str] | None = Field(default=None, description="Child Rescue Alert (earliest).")
    i: tuple[int, str] | None = Field(default=None, description="Return interview done or declined (earliest).")
    a: dict[str, int] = Field(default_factory=dict, description="Alert id -> 1 raised, 2 resolved.")
    q: bool = Field(default=False, description="At rest: fully derived after it settled; nothing new can "
                    "come of it unless an event about it arrives (a shortcut, see engine._Rules.at_rest).")

    @property
    def closed(self) -> bool:
        return bool(self.f)

    def last_fact_time(self) -> int:
        times = [fact[0] for facts in (self.g, self.s, self.f) for fact in facts]
        times += [v[0] for v in (self.x, self.i) if v]
        if self.r:
            times.append(self.r.t)
        return max(times, default=0)


class ChildState(BaseModel):
    model_config = ConfigDict(extra="forbid")

    w: int = Field(default=0, description="Watermark: the latest event time seen for this child.")
    h: int = Field(default=0, description="Latest wall-clock tick, when ahead of the watermark: time rules "
                   "fire up to max(w, h).")
    e: dict[str, Episode] = Field(default_factory=dict, description="Episodes by episode ref.")
    al: dict[str, str] = Field(default_factory=dict, description="Second report while open: ref -> open ref.")
    c: list[Fact] = Field(default_factory=list, description="CSE screenings (level rank).")
    u: list[Fact] = Field(default_factory=list, description="Allocation changes (1 allocated, 0 unallocated).")
    p: StrFact | None = Field(default=None, description="Latest placement: placing council.")
    k: list[tuple[int, int]] = Field(default_factory=list, description="Latest processed event keys "
                                     "(time, hash), bounded: the fast path for duplicates.")

    def to_json(self) -> bytes:
        return self.model_dump_json(exclude_defaults=True).encode()

    @classmethod
    def from_json(cls, payload: bytes | str | None) -> "ChildState":
        if not payload:
            return cls()
        return cls.model_validate_json(payload)

    def open_episode(self) -> tuple[str, Episode] | None:
        """The reported, not yet closed episode (at most one by construction)."""
        for ref, episode in self.e.items():
            if episode.r is not None and not episode.closed:
                return ref, episode
        return None


def add_fact(facts: list, fact: tuple) -> bool:  # type: ignore[type-arg]
    """Insert into a sorted set; False if it was already there (idempotent merge)."""
    index = bisect.bisect_left(facts, fact)
    if index < len(facts) and facts[index] == fact:
        return False
    facts.insert(index, fact)
    return True


def earliest(current: tuple[int, str] | None, candidate: tuple[int, str]) -> tuple[int, str]:
    return candidate if current is None or candidate < current else current
