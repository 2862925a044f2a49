"""Per-child state of the correlator: merged facts, never a history of arrivals, and the
one function that merges an event into them (``merge``).

Every field is a join of the facts seen (sorted sets, minima, maxima), so merging the
same events in any order, or twice, gives the same state. Times are whole seconds since
the epoch (event time). One state per tracked child is kept in a changelog-backed table,
stored as MessagePack (a third smaller than the same JSON; bench/bench_correlator.py
prints the sizes). The names in code are full; on the wire each field keeps the short
key it has always had (``msgspec.field(name=...)``), so stored states and the changelog
are byte-identical to those written before the names were spelled out
(tests/correlator/test_state_wire.py). msgspec structs, not pydantic models: the worker
decodes, updates and encodes a state for every child in every batch, and msgspec does
that several times faster.
"""

from __future__ import annotations

import bisect
from typing import Literal, NamedTuple

import msgspec

from beacon.core.domain import (
    CSE_RANK,
    RISK_RANK,
    episode_of,
    episode_of_report,
    epoch,
    is_open,
)
from beacon.core.events import (
    AllocationChanged,
    ChildFound,
    ChildRescueAlertActivated,
    CloudEvent,
    CseScreened,
    EpisodeCorrected,
    EpisodeReported,
    PlacementChanged,
    ReturnInterviewRecorded,
    RiskRegraded,
    StrategyDiscussionRecorded,
    source_org,
)

# (event time, event id, value): one time-stamped fact. Sorting by (time, id) is the
# total order every "latest as of" question uses, so arrival order never matters.
Fact = tuple[int, str, int]
StrFact = tuple[int, str, str]
# A correction that arrived before its report: (time, event id, started_at or None,
# ended_at or None, sending organisation).
EarlyCorrection = tuple[int, str, int | None, int | None, str]

RAISED: Literal[1] = 1
RESOLVED: Literal[2] = 2


class Report(NamedTuple):
    """The episode's report (the earliest one, by (time, id), if it was resent).
    A tuple, so it serialises as an array without field names: renaming a field here
    changes nothing stored."""

    time: int  # event time of the report
    event_id: str  # event id of the report
    started: int  # started_at as reported
    risk: int  # police risk grade rank (0 no apparent risk .. 3 high)
    age: int
    cared: bool  # looked after (child in care)
    category: str  # missing | absent | away_without_authorisation
    council: str | None = None
    org: str | None = None  # reporting force


class Episode(msgspec.Struct, omit_defaults=True, forbid_unknown_fields=True):
    # Field order is the wire order: do not reorder (tests/correlator/test_state_wire.py).
    report: Report | None = msgspec.field(default=None, name="r")  # None: a placeholder (found before reported)
    regrades: list[Fact] = msgspec.field(default_factory=list, name="g")  # risk re-grades (rank), incl. resent reports
    start_corrections: list[Fact] = msgspec.field(default_factory=list, name="s")  # corrections of started_at
    # Closing facts: found/returned (ended_at) and corrections of ended_at.
    closings: list[Fact] = msgspec.field(default_factory=list, name="f")
    rescue_alert: tuple[int, str] | None = msgspec.field(default=None, name="x")  # Child Rescue Alert (earliest)
    interview: tuple[int, str] | None = msgspec.field(
        default=None, name="i"
    )  # return interview done or declined (earliest)
    # What the episode said per alert key (rules.alert_key): 1 raised, 2 resolved.
    alert_status: dict[str, int] = msgspec.field(default_factory=dict, name="a")
    # Fully derived after it settled; nothing new can come of it unless an event about it
    # arrives (a shortcut, see engine._Derivation.at_rest).
    at_rest: bool = msgspec.field(default=False, name="q")
    # The horizon when a report, found or correction of it arrived later than the lateness
    # behind that horizon (a backdated report, a backfill). Its time rules wait the
    # lateness from there, as for an on-time report, so its found can still arrive.
    known_since: int = msgspec.field(default=0, name="k")
    # Organisation (from the event's authenticated source) that sent the closing fact
    # ``closings[0]`` (a found or an accepted correction): who closed the episode.
    closed_by: str | None = msgspec.field(default=None, name="o")
    # Corrections that arrived before the report, when only the report can say who has a
    # part in the episode.
    early_corrections: list[EarlyCorrection] = msgspec.field(default_factory=list, name="pc")

    @property
    def closed(self) -> bool:
        return bool(self.closings)

    def last_fact_time(self) -> int:
        times = [fact[0] for facts in (self.regrades, self.start_corrections, self.closings) for fact in facts]
        times += [v[0] for v in (self.rescue_alert, self.interview, *self.early_corrections) if v]
        if self.report:
            times.append(self.report.time)
        return max(times, default=0)


class ChildState(msgspec.Struct, omit_defaults=True, forbid_unknown_fields=True):
    # Field order is the wire order: do not reorder (tests/correlator/test_state_wire.py).
    watermark: int = msgspec.field(default=0, name="w")  # the latest event time seen for this child
    # Latest wall-clock tick, when ahead of the watermark: time rules fire up to
    # max(watermark, ticked_at).
    ticked_at: int = msgspec.field(default=0, name="h")
    episodes: dict[str, Episode] = msgspec.field(default_factory=dict, name="e")  # by episode ref
    # A second report while one is open: its ref -> the open episode's ref.
    aliases: dict[str, str] = msgspec.field(default_factory=dict, name="al")
    cse_screenings: list[Fact] = msgspec.field(default_factory=list, name="c")  # (level rank)
    allocations: list[Fact] = msgspec.field(default_factory=list, name="u")  # 1 allocated, 0 unallocated
    placement: StrFact | None = msgspec.field(default=None, name="p")  # latest placement: placing council
    host_council: str | None = msgspec.field(default=None, name="ph")  # host council of that placement
    # Strategy discussions held (time, event id), sorted: they close the repeat-episodes
    # and critical CSE prompts, and restart the repeat count.
    discussions: list[tuple[int, str]] = msgspec.field(default_factory=list, name="d")
    # When a time rule can next fire (never later; a cache of what the facts say, so that
    # events that only move the watermark skip the time rules): 0 not known, -1 none pending.
    next_fire: int = msgspec.field(default=0, name="n")
    # Latest processed event keys (time, hash), bounded: the fast path for duplicates.
    recent_events: list[tuple[int, int]] = msgspec.field(default_factory=list, name="k")

    def to_bytes(self) -> bytes:
        return _ENCODER.encode(self)

    @classmethod
    def from_bytes(cls, payload: bytes | None) -> ChildState:
        if not payload:
            return cls()
        return _DECODER.decode(payload)

    def copy(self) -> ChildState:
        """A deep copy (through the serialised form: the cheapest deep copy there is)."""
        return _DECODER.decode(_ENCODER.encode(self))

    def open_episode(self) -> tuple[str, Episode] | None:
        """The reported, not yet closed episode (at most one by construction)."""
        for ref, episode in self.episodes.items():
            if is_open(episode.report is not None, episode.closed):
                return ref, episode
        return None


_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(ChildState)


def add_fact(facts: list, fact: tuple) -> bool:  # type: ignore[type-arg]
    """Insert into a sorted set; False if it was already there (idempotent merge)."""
    index = bisect.bisect_left(facts, fact)
    if index < len(facts) and facts[index] == fact:
        return False
    facts.insert(index, fact)
    return True


def earliest(current: tuple[int, str] | None, candidate: tuple[int, str]) -> tuple[int, str]:
    return candidate if current is None or candidate < current else current


# ------------------------------------------------------------------ merging an event

# Which rules must look again after an event: a rule's result is a function of the facts
# it reads (and, for time rules, of the horizon), so a rule re-evaluated after every change
# of what it reads never misses an alert, and need not run when something else changed.
TRIAGE_RULE, CSE_RULE, UNALLOCATED_RULE, REPEAT_RULE, TIME_RULES = 1, 2, 4, 8, 16
# Not a rule: resolve every alert raised whose resolution is now due (closed episode,
# discussion held, interview recorded), also those whose rule no longer derives them.
RESOLVE = 32
EVERY_RULE = TRIAGE_RULE | CSE_RULE | UNALLOCATED_RULE | REPEAT_RULE | TIME_RULES | RESOLVE
# What an event re-evaluates in an episode at rest that it is not about.
AT_REST_RULES = REPEAT_RULE | RESOLVE


class Scope(NamedTuple):
    """Rules to re-evaluate for the episode the event is about, and for every other
    episode not at rest. Time rules also run, for every episode, once the horizon reaches
    the child's next deadline (``ChildState.next_fire``)."""

    episode: int = 0
    others: int = 0


REPORT_SCOPE = Scope(EVERY_RULE, REPEAT_RULE)  # a report can complete a repeat for a later episode
EPISODE_SCOPE = Scope(EVERY_RULE)  # found, correction: the start, the end and what they resolve
GRADE_SCOPE = Scope(TRIAGE_RULE)  # re-grade, Child Rescue Alert: only triage reads them
INTERVIEW_SCOPE = Scope(TIME_RULES | RESOLVE)  # return interview: the overdue rule, which it may resolve
CHILD_SCOPE = Scope(EVERY_RULE, EVERY_RULE)  # CSE screening, allocation: read for every episode
# Strategy discussion held: closes prompts and restarts the repeat count, for every episode.
DISCUSSION_SCOPE = Scope(REPEAT_RULE | RESOLVE, REPEAT_RULE | RESOLVE)
CLOCK_SCOPE = Scope()  # sightings, checks, placements: they only move the watermark


def _episode(state: ChildState, ref: str) -> tuple[str, Episode]:
    ref = episode_of(state.aliases, ref)
    episode = state.episodes.get(ref)
    if episode is None:
        episode = state.episodes[ref] = Episode()
    return ref, episode


def parties(state: ChildState, episode: Episode) -> set[str | None]:
    """Organisations with a part in a reported episode: its reporting force, its placing
    council, and the placing and host councils of the child's latest placement."""
    assert episode.report is not None
    placing = state.placement[2] if state.placement else None
    return {episode.report.org, episode.report.council, placing, state.host_council} - {None}


def correction_refused(state: ChildState, episode: Episode, ref: str, org: str) -> str | None:
    assert episode.report is not None
    if episode.report.org is None or org in parties(state, episode):
        return None  # (no reporting force: reported before Beacon kept it, so its parties are not known)
    return f"correction from {org}, which has no part in episode {ref} (reporting force, placing or host council)"


def _closed_by(episode: Episode, event_id: str, org: str) -> None:
    """Remember who sent the closing fact just added, if it is now the earliest (``f[0]``):
    whatever the arrival order, ``closed_by`` ends as the sender of the earliest."""
    if episode.closings and episode.closings[0][1] == event_id:
        episode.closed_by = org


def _apply_correction(episode: Episode, fact: tuple[int, str, int | None, int | None, str], known: int) -> None:
    t, event_id, started, ended, org = fact
    added = started is not None and add_fact(episode.start_corrections, (t, event_id, started))
    if ended is not None and add_fact(episode.closings, (t, event_id, ended)):
        added = True
    if added:
        episode.known_since = max(episode.known_since, known)
        _closed_by(episode, event_id, org)


def _merge_report(
    state: ChildState,
    event: CloudEvent,
    data: EpisodeReported,
    t: int,
    known: int,
    parties_only: bool,
    refused: list[tuple[str, str]],
) -> None:
    ref = episode_of(state.aliases, data.episode_ref)
    if ref not in state.episodes:  # a known episode is itself: no need to look for the open one
        current = state.open_episode()
        open_report = current[1].report if current else None
        ref = episode_of_report(
            state.aliases,
            state.episodes,
            current[0] if current else None,
            data.episode_ref,
            reported_before_open_started=open_report is not None and t < open_report.started,
        )
        if ref != data.episode_ref:
            state.aliases[data.episode_ref] = ref  # a second report of the open episode: no second one
    _, episode = _episode(state, ref)
    report = Report(
        time=t,
        event_id=event.id,
        started=epoch(data.started_at),
        risk=RISK_RANK[data.risk.value],
        age=data.age_years,
        cared=data.looked_after,
        category=data.category.value,
        council=data.placing_council,
        org=data.reporting_org,
    )
    if episode.report is None:
        episode.report = report
        episode.known_since = max(episode.known_since, known)
        # Corrections that came first: now the report says who may send them.
        for pending in episode.early_corrections:
            reason = correction_refused(state, episode, ref, pending[4]) if parties_only else None
            if reason is None:
                _apply_correction(episode, pending, known)
            else:
                refused.append((pending[1], reason))
        episode.early_corrections = []
    elif (report.time, report.event_id) != (episode.report.time, episode.report.event_id):
        # Resent or second report: the earliest is the report, the others count as re-grades.
        older, newer = sorted((episode.report, report), key=lambda r: (r.time, r.event_id))
        episode.report = older
        add_fact(episode.regrades, (newer.time, newer.event_id, newer.risk))


def merge(
    state: ChildState,
    event: CloudEvent,
    t: int,
    known: int = 0,
    parties_only: bool = False,
    refused: list[tuple[str, str]] | None = None,
) -> Scope:
    """Merge one event's facts (``t``: its time, epoch seconds) into the state
    (idempotent, commutative); returns which rules must look again. ``known``: the
    horizon the event arrived at when that is more than the lateness after its time, else 0
    (a report, found or correction that late holds its episode's time rules: ``Episode.known_since``).
    ``parties_only``: a correction that arrived before its report is applied, when the
    report arrives, only if it came from a party to the episode; ``refused`` collects
    (event id, reason) of those that did not."""
    data = event.data
    if isinstance(data, EpisodeReported):
        _merge_report(state, event, data, t, known, parties_only, [] if refused is None else refused)
        return REPORT_SCOPE
    if isinstance(data, RiskRegraded):
        add_fact(_episode(state, data.episode_ref)[1].regrades, (t, event.id, RISK_RANK[data.risk.value]))
        return GRADE_SCOPE
    if isinstance(data, ChildFound):
        _, episode = _episode(state, data.episode_ref)
        if add_fact(episode.closings, (t, event.id, epoch(data.ended_at))):
            episode.known_since = max(episode.known_since, known)
            _closed_by(episode, event.id, source_org(event.source))
        return EPISODE_SCOPE
    if isinstance(data, EpisodeCorrected):
        _, episode = _episode(state, data.episode_ref)
        correction = (
            t,
            event.id,
            None if data.started_at is None else epoch(data.started_at),
            None if data.ended_at is None else epoch(data.ended_at),
            source_org(event.source),
        )
        if episode.report is not None:
            _apply_correction(episode, correction, known)  # from a party (apply_event checked)
        elif all(pending[1] != event.id for pending in episode.early_corrections):
            episode.early_corrections.append(correction)
        return EPISODE_SCOPE
    if isinstance(data, ChildRescueAlertActivated):
        _, episode = _episode(state, data.episode_ref)
        episode.rescue_alert = earliest(episode.rescue_alert, (t, event.id))
        return GRADE_SCOPE
    if isinstance(data, ReturnInterviewRecorded):
        if data.status == "offered":  # only completed, or declined / not held with a reason, count
            return CLOCK_SCOPE
        _, episode = _episode(state, data.episode_ref)
        episode.interview = earliest(episode.interview, (t, event.id))
        return INTERVIEW_SCOPE
    if isinstance(data, CseScreened):
        add_fact(state.cse_screenings, (t, event.id, CSE_RANK[data.level.value]))
        return CHILD_SCOPE
    if isinstance(data, AllocationChanged):
        add_fact(state.allocations, (t, event.id, 1 if data.status == "allocated" else 0))
        return CHILD_SCOPE
    if isinstance(data, StrategyDiscussionRecorded):
        if data.status != "held":  # a request alone does not close a prompt
            return CLOCK_SCOPE
        add_fact(state.discussions, (t, event.id))
        return DISCUSSION_SCOPE
    if isinstance(data, PlacementChanged):
        candidate = (t, event.id, data.placing_council)
        if state.placement is None or candidate > tuple(state.placement):
            state.placement = candidate  # read when an alert is written, and by ``parties``
            state.host_council = data.host_council
    # Sightings, safe-and-well checks and discussion requests only move the watermark.
    return CLOCK_SCOPE
