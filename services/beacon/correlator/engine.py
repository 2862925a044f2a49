"""The correlator's rules: pure functions, no I/O, no Faust.

``decide(state, event, now, policy)`` merges one event into a child's state and returns
the alert records to emit; ``tick(state, now, policy)`` fires time rules from the wall
clock. ``now`` is only the processing time written into ``emitted_at``: every decision
uses event time.

Order independence by construction
----------------------------------
Events are merged into time-stamped fact sets (see ``state.py``) and alerts are *derived*
from the facts, each with a deterministic ``alert_id(child, episode, rule, step)``; each
episode remembers which (rule, step) it raised and resolved, so each alert is emitted
once. An event is *on time* when
its time is no more than ``allowed_lateness`` behind the child's watermark (the latest
event time seen). So when a fact at time ``x`` is known, every fact older than
``x - lateness`` is known too ("settled"). Each rule therefore:

* fires on the *presence* of facts at once (a report, a re-grade, a CSE screening), and
* lets the *absence* of a fact (not found yet, not re-allocated, no interview) count
  only over the settled past: before ``x - lateness`` for a rule decided at ``x``, and
  before the deadline itself for a time rule, which fires once the horizon (watermark,
  or wall clock on a tick) reaches ``deadline + lateness``.

A derived alert then stays derived whatever arrives later (within the lateness), so any
permutation or duplication of on-time events gives the same alert ids and the same
state as in-order delivery (tests/correlator/test_engine_properties.py).
The price: a child found within ``lateness`` before a CSE flag or a de-allocation still
raises that alert (resolved at once), and a ladder step fires if the child was still
missing *as recorded* at the deadline even if a later "found" says the child returned
earlier (also resolved at once). Both err towards telling someone.

Later than the lateness
-----------------------
A report, found or correction that arrives more than the lateness behind the horizon
(a backdated report, a backfill; live, the horizon is the wall clock) marks its episode
known since that horizon (``Episode.k``): its time rules are decided no earlier, so the
rest of the episode has the lateness to arrive. Whatever arrives, and in whatever order,
an alert whose resolution is due is resolved (``_Rules.resolutions``), also when its rule
no longer derives it on the new facts.
"""

from __future__ import annotations

import bisect
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, NamedTuple

from beacon.core.alerts import Alert, Severity
from beacon.core.alerts import alert_id as _alert_id
from beacon.core.domain import (
    CATEGORY_LABEL,
    CSE_RANK,
    RISK_BY_RANK,
    RISK_LABEL,
    RISK_RANK,
    SEVERITIES,
    episode_of,
    episode_of_report,
    epoch,
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
from beacon.core.policy import Policy
from beacon.correlator.state import (
    RAISED,
    RESOLVED,
    ChildState,
    Episode,
    Report,
    add_fact,
    earliest,
    is_legacy,
)

NEVER = 2**62

# Rule names (the ``rule`` of an alert record).
TRIAGE = "triage"
REPEAT = "repeat_episodes"
CSE_MISSING = "cse_missing"
DURATION = "duration"
UNALLOCATED = "unallocated"
RHI_OVERDUE = "rhi_overdue"

# Computed for every alert emitted (and by the migration below): a pure function of
# strings, so memoised.
alert_id = lru_cache(maxsize=1 << 16)(_alert_id)

# An episode remembers what it said per (rule, step), under a short key: the alert id is a
# function of (child, episode, rule, step), so it need not be stored.
RULE_CODES = {TRIAGE: "T", REPEAT: "R", CSE_MISSING: "C", DURATION: "D", UNALLOCATED: "U", RHI_OVERDUE: "I"}


def alert_key(rule: str, step: str) -> str:
    return RULE_CODES[rule] + step


def as_datetime(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def event_key(event: CloudEvent) -> int:
    """Duplicate key: the same (source, id) is the same event. Only a fast path: a
    duplicate whose key is forgotten is merged again, which changes nothing."""
    return zlib.crc32(f"{event.source}|{event.id}".encode())


class Derived(NamedTuple):
    """An alert the facts call for (before it becomes an ``Alert`` record)."""

    episode_ref: str
    rule: str
    step: str
    severity: Severity
    notify: str | None
    reason: str
    occurred_at: int
    triggers: tuple[str, ...]
    resolved: bool = False
    resolved_reason: str = ""


@dataclass
class Outcome:
    """What one decide/tick did: for metrics and logs (never personal data)."""

    applied: bool = True
    duplicate: bool = False
    stale: bool = False
    alerts: list[Alert] = field(default_factory=list)
    refused: str | None = None  # why this event was refused (it changed nothing)
    # (event id, reason) of corrections that arrived before their report, refused now
    # that the report says who has a part in the episode (they were never applied).
    refused_earlier: list[tuple[str, str]] = field(default_factory=list)


# ------------------------------------------------------------------ merging facts

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
    the child's next deadline (``ChildState.n``)."""

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
    ref = episode_of(state.al, ref)
    episode = state.e.get(ref)
    if episode is None:
        episode = state.e[ref] = Episode()
    return ref, episode


def parties(state: ChildState, episode: Episode) -> set[str | None]:
    """Organisations with a part in a reported episode: its reporting force, its placing
    council, and the placing and host councils of the child's latest placement."""
    assert episode.r is not None
    placing = state.p[2] if state.p else None
    return {episode.r.org, episode.r.council, placing, state.ph} - {None}


def _correction_refused(state: ChildState, episode: Episode, ref: str, org: str) -> str | None:
    assert episode.r is not None
    if episode.r.org is None or org in parties(state, episode):
        return None  # (no reporting force: reported before Beacon kept it, so its parties are not known)
    return f"correction from {org}, which has no part in episode {ref} (reporting force, placing or host council)"


def _closed_by(episode: Episode, event_id: str, org: str) -> None:
    """Remember who sent the closing fact just added, if it is now the earliest (``f[0]``):
    whatever the arrival order, ``o`` ends as the sender of the earliest."""
    if episode.f and episode.f[0][1] == event_id:
        episode.o = org


def _apply_correction(episode: Episode, fact: tuple[int, str, int | None, int | None, str], known: int) -> None:
    t, event_id, started, ended, org = fact
    added = started is not None and add_fact(episode.s, (t, event_id, started))
    if ended is not None and add_fact(episode.f, (t, event_id, ended)):
        added = True
    if added:
        episode.k = max(episode.k, known)
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
    ref = episode_of(state.al, data.episode_ref)
    if ref not in state.e:  # a known episode is itself: no need to look for the open one
        current = state.open_episode()
        ref = episode_of_report(state.al, state.e, current[0] if current else None, data.episode_ref)
        if ref != data.episode_ref:
            state.al[data.episode_ref] = ref  # a second report of the open episode: no second one
    _, episode = _episode(state, ref)
    report = Report(
        t=t,
        id=event.id,
        start=epoch(data.started_at),
        risk=RISK_RANK[data.risk.value],
        age=data.age_years,
        cared=data.looked_after,
        cat=data.category.value,
        council=data.placing_council,
        org=data.reporting_org,
    )
    if episode.r is None:
        episode.r = report
        episode.k = max(episode.k, known)
        # Corrections that came first: now the report says who may send them.
        for pending in episode.pc:
            reason = _correction_refused(state, episode, ref, pending[4]) if parties_only else None
            if reason is None:
                _apply_correction(episode, pending, known)
            else:
                refused.append((pending[1], reason))
        episode.pc = []
    elif (report.t, report.id) != (episode.r.t, episode.r.id):
        # Resent or second report: the earliest is the report, the others count as re-grades.
        older, newer = sorted((episode.r, report), key=lambda r: (r.t, r.id))
        episode.r = older
        add_fact(episode.g, (newer.t, newer.id, newer.risk))


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
    (a report, found or correction that late holds its episode's time rules: ``Episode.k``).
    ``parties_only``: a correction that arrived before its report is applied, when the
    report arrives, only if it came from a party to the episode; ``refused`` collects
    (event id, reason) of those that did not."""
    data = event.data
    if isinstance(data, EpisodeReported):
        _merge_report(state, event, data, t, known, parties_only, [] if refused is None else refused)
        return REPORT_SCOPE
    if isinstance(data, RiskRegraded):
        add_fact(_episode(state, data.episode_ref)[1].g, (t, event.id, RISK_RANK[data.risk.value]))
        return GRADE_SCOPE
    if isinstance(data, ChildFound):
        _, episode = _episode(state, data.episode_ref)
        if add_fact(episode.f, (t, event.id, epoch(data.ended_at))):
            episode.k = max(episode.k, known)
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
        if episode.r is not None:
            _apply_correction(episode, correction, known)  # from a party (apply_event checked)
        elif all(pending[1] != event.id for pending in episode.pc):
            episode.pc.append(correction)
        return EPISODE_SCOPE
    if isinstance(data, ChildRescueAlertActivated):
        _, episode = _episode(state, data.episode_ref)
        episode.x = earliest(episode.x, (t, event.id))
        return GRADE_SCOPE
    if isinstance(data, ReturnInterviewRecorded):
        if data.status == "offered":  # only completed, or declined / not held with a reason, count
            return CLOCK_SCOPE
        _, episode = _episode(state, data.episode_ref)
        episode.i = earliest(episode.i, (t, event.id))
        return INTERVIEW_SCOPE
    if isinstance(data, CseScreened):
        add_fact(state.c, (t, event.id, CSE_RANK[data.level.value]))
        return CHILD_SCOPE
    if isinstance(data, AllocationChanged):
        add_fact(state.u, (t, event.id, 1 if data.status == "allocated" else 0))
        return CHILD_SCOPE
    if isinstance(data, StrategyDiscussionRecorded):
        if data.status != "held":  # a request alone does not close a prompt
            return CLOCK_SCOPE
        add_fact(state.d, (t, event.id))
        return DISCUSSION_SCOPE
    if isinstance(data, PlacementChanged):
        candidate = (t, event.id, data.placing_council)
        if state.p is None or candidate > tuple(state.p):
            state.p = candidate  # read when an alert is written, and by ``parties``
            state.ph = data.host_council
    # Sightings, safe-and-well checks and discussion requests only move the watermark.
    return CLOCK_SCOPE


# ------------------------------------------------------------------ deriving alerts


class _Tables:
    """What the rules read from a policy on every event, looked up once per policy."""

    def __init__(self, policy: Policy):
        triage = policy.triage
        self.lateness = int(policy.allowed_lateness_minutes * 60)
        self.horizon = int(policy.longest_window_hours * 3600 + policy.allowed_lateness_minutes * 60)
        self.cse_from = CSE_RANK[triage.cse_from_level]
        self.risk_rank = [
            triage.risk_severity[RISK_BY_RANK[rank]].rank  # type: ignore[index]
            for rank in sorted(RISK_BY_RANK)
        ]
        self.young_max_age = triage.young_child_max_age
        self.young_floor = triage.young_child_min_severity.rank
        self.cared_floor = triage.looked_after_min_severity.rank
        self.cse_floor = triage.cse_min_severity.rank
        self.ladder = [
            (step, int(step.after_hours * 3600), f"{step.after_hours:g}h") for step in policy.duration_ladder.steps
        ]
        rhi = policy.return_interview
        self.rhi_after = int(rhi.deadline_hours * 3600)
        self.rhi_step = f"{rhi.deadline_hours:g}h"
        self.rhi_reason = f"Return home interview not recorded within {rhi.deadline_hours:g} hours of return"
        repeat = policy.repeat_episodes
        self.repeat_step = f"{repeat.count}in{repeat.window_days}d"
        self.repeat_window = repeat.window_days * 86400
        # A critical CSE alert asks for a strategy discussion: it stays open until one is held.
        self.cse_until_discussed = policy.cse_missing.severity is Severity.critical
        self.ladder_by_hours = {hours: step for step, _, hours in self.ladder}


_TABLES: dict[int, tuple[Policy, _Tables]] = {}


def _tables(policy: Policy) -> _Tables:
    """Cached per policy object (policies are frozen)."""
    cached = _TABLES.get(id(policy))
    if cached is None or cached[0] is not policy:
        cached = _TABLES[id(policy)] = (policy, _Tables(policy))
    return cached[1]


@lru_cache(maxsize=256)
def _ladder_reason(category: str, after_hours: float) -> str:
    return f"Child still {CATEGORY_LABEL[category]} after {after_hours:g} hours"


FOUND = "Child found or returned; alert resolved"
RHI_RECORDED = "Return home interview recorded"
DISCUSSED = "Strategy discussion held; alert resolved"


class _Rules:
    """Derives the alerts the merged facts call for, up to a time-rule horizon.

    Only alerts that still have something to say are built: one not yet raised, or one
    raised whose resolution is now due (``_fresh``). Skipping the others before their
    reason strings are formatted is what keeps a worker at thousands of events a second;
    ``_emit`` applies the same test, so the result is the same as building them all."""

    def __init__(self, child_ref: str, state: ChildState, policy: Policy, horizon: int):
        self.child_ref, self.state, self.policy, self.horizon = child_ref, state, policy, horizon
        self.looked_at: list[Episode] = []  # episodes whose rules are all up to date
        self.next_fire = NEVER
        self.tables = _tables(policy)
        self.lateness = self.tables.lateness

    def _fresh(self, episode: Episode, rule: str, step: str, resolved: bool) -> bool:
        status = episode.a.get(alert_key(rule, step))
        return status is None or (status == RAISED and resolved)

    # -- helpers over settled facts

    def closed_before(self, episode: Episode, x: int) -> bool:
        # ``f`` is a sorted fact set: its first fact is the earliest.
        return bool(episode.f) and episode.f[0][0] < x

    def latest_as_of(self, facts: list, x: int) -> list:  # type: ignore[type-arg]
        """Facts that may be the current value at ``x``: the latest settled one (older than
        ``x - lateness``) and every fact from ``x - lateness`` to ``x``."""
        settled_end = bisect.bisect_left(facts, (x - self.lateness,))
        recent_end = bisect.bisect_left(facts, (x + 1,))
        return facts[max(settled_end - 1, 0) : recent_end]

    def discussed(self, report: Report) -> bool:
        """A strategy discussion held no earlier than the lateness before the report: it
        closes the episode's strategy-discussion prompts (repeat episodes, critical CSE)."""
        held = self.state.d
        return bool(held) and held[-1][0] >= report.t - self.lateness

    def discussion_time(self, report: Report) -> int:
        """When the discussion that closes the episode's prompts was held (see ``discussed``)."""
        held = self.state.d
        return held[bisect.bisect_left(held, (report.t - self.lateness,))][0]

    def settled_cse_level(self, x: int) -> int:
        """The CSE level as of ``x`` from settled screenings only: a screening that may
        still be overtaken by a late one cannot lower or raise a triage already paged
        (the CSE x missing rule pages on it at once instead)."""
        settled_end = bisect.bisect_left(self.state.c, (x - self.lateness,))
        return self.state.c[settled_end - 1][2] if settled_end else 0

    # -- rules (each yields only fresh alerts; ``closed``: the episode has a closing fact)

    def triage(self, ref: str, episode: Episode, closed: bool) -> Iterable[Derived]:
        report, triage, tables = episode.r, self.policy.triage, self.tables
        assert report is not None
        floor = 0
        if report.age <= tables.young_max_age:
            floor = tables.young_floor
        if report.cared:
            floor = max(floor, tables.cared_floor)
        risk_rank, cse_from, cse_floor = tables.risk_rank, tables.cse_from, tables.cse_floor

        def severity(risk: int | None, x: int) -> int:
            if risk is None:  # Child Rescue Alert
                return 3
            rank = max(risk_rank[risk], floor)
            if self.settled_cse_level(x) >= cse_from:
                rank = max(rank, cse_floor)
            return rank

        points: list[tuple[int, str, int | None]] = [(report.t, report.id, report.risk)]
        points += episode.g
        if episode.x:
            points.append((episode.x[0], episode.x[1], None))
        levels = [(t, eid, risk, severity(risk, t)) for t, eid, risk in points]
        at_report = levels[0][3]
        for t, eid, risk, rank in levels:
            if rank < at_report:
                continue
            level = SEVERITIES[rank]
            if not self._fresh(episode, TRIAGE, level.value, closed):
                continue
            # Up pages again (a new id per level); down or equal never pages.
            settled = [lv for tt, _, _, lv in levels if tt < t - self.lateness]
            if settled and rank <= max(settled):
                continue
            grade = "Child Rescue Alert activated" if risk is None else f"police risk {RISK_LABEL[RISK_BY_RANK[risk]]}"
            factors = "; in care" if report.cared else ""
            yield Derived(
                ref,
                TRIAGE,
                level.value,
                level,
                triage.notify[level],
                f"Child {CATEGORY_LABEL[report.cat]} ({grade}{factors}); triage {level.value}",
                t,
                tuple(dict.fromkeys((report.id, eid))),
            )

    def cse_missing(self, ref: str, episode: Episode, closed: bool) -> Iterable[Derived]:
        report, rule = episode.r, self.policy.cse_missing
        assert report is not None
        if not self.state.c:
            return
        if self.tables.cse_until_discussed:
            resolved, resolved_reason = self.discussed(report), DISCUSSED
        else:
            resolved, resolved_reason = closed, FOUND
        if not self._fresh(episode, CSE_MISSING, "flag", resolved):
            return
        threshold = CSE_RANK[rule.from_level]
        reason = f"Missing child with safeguarding flag; {rule.severity.value}"
        # CSE risk already current when the child goes missing ...
        flagged = [f for f in self.latest_as_of(self.state.c, report.t) if f[2] >= threshold]
        if flagged:
            yield Derived(
                ref,
                CSE_MISSING,
                "flag",
                rule.severity,
                rule.notify,
                reason,
                report.t,
                (report.id, flagged[-1][1]),
                resolved,
                resolved_reason,
            )
            return
        # ... or a CSE flag arrives while the child is missing: whichever comes first.
        for t, eid, level in self.state.c:
            if t >= report.t and level >= threshold and not self.closed_before(episode, t - self.lateness):
                yield Derived(
                    ref,
                    CSE_MISSING,
                    "flag",
                    rule.severity,
                    rule.notify,
                    reason,
                    t,
                    (report.id, eid),
                    resolved,
                    resolved_reason,
                )
                return

    def unallocated(self, ref: str, episode: Episode, closed: bool) -> Iterable[Derived]:
        report, rule = episode.r, self.policy.unallocated
        assert report is not None
        if not rule.enabled or not self.state.u or not self._fresh(episode, UNALLOCATED, "unallocated", closed):
            return
        reason = "Missing child has no allocated worker"
        unallocated_then = [f for f in self.latest_as_of(self.state.u, report.t) if f[2] == 0]
        if unallocated_then:
            yield Derived(
                ref,
                UNALLOCATED,
                "unallocated",
                rule.severity,
                rule.notify,
                reason,
                report.t,
                (report.id, unallocated_then[-1][1]),
            )
            return
        for t, eid, allocated in self.state.u:
            if t >= report.t and not allocated and not self.closed_before(episode, t - self.lateness):
                yield Derived(ref, UNALLOCATED, "unallocated", rule.severity, rule.notify, reason, t, (report.id, eid))
                return

    def repeat(self, ref: str, episode: Episode, closed: bool) -> Iterable[Derived]:
        """The Nth episode starting within the window since the child's last strategy
        discussion (settled when this episode was reported) prompts a discussion; the
        prompt closes when one is held (``discussed``), not when the child comes home.
        One prompt per run of episodes: none if an earlier episode within this one's window,
        reported before this one was (settled), had already reached the count since that
        discussion."""
        report, rule, tables = episode.r, self.policy.repeat_episodes, self.tables
        assert report is not None
        if len(self.state.e) < rule.count:
            return
        resolved = self.discussed(report)
        if not self._fresh(episode, REPEAT, tables.repeat_step, resolved):
            return
        held, settled = self.state.d, report.t - self.lateness
        last = bisect.bisect_left(held, (settled,))
        after = held[last - 1][0] if last else -NEVER  # the count restarts after a discussion
        rows = sorted(
            (e.r.start, e.r.id, e.r.t)
            for e in self.state.e.values()
            if e.r is not None and after < e.r.start <= report.start
        )
        starts = [row[0] for row in rows]
        window = tables.repeat_window
        first = bisect.bisect_left(starts, report.start - window)
        count = len(rows) - first
        if count < rule.count:
            return
        this = (report.start, report.id)
        for start, eid, t in rows[first:]:
            if (start, eid) >= this:
                break
            if (
                t < settled
                and bisect.bisect_right(starts, start) - bisect.bisect_left(starts, start - window) >= rule.count
            ):
                return  # that earlier episode carries the prompt
        yield Derived(
            ref,
            REPEAT,
            tables.repeat_step,
            rule.severity,
            rule.notify,
            f"{count} missing episodes in {rule.window_days} days; strategy discussion needed",
            report.t,
            tuple(row[1] for row in rows[-rule.count :]),
            resolved,
            DISCUSSED,
        )

    @staticmethod
    def deadline(facts: list[tuple[int, str, int]], after: int) -> int:
        """Earliest event time x at which the value as of x (the latest fact by (time, id)
        at or before x) plus ``after`` is reached: a correction moves the deadline, and
        only facts recorded before it count. NEVER when there are no facts."""
        for index, (t, _, value) in enumerate(facts):
            candidate = max(value + after, t)
            following = facts[index + 1][0] if index + 1 < len(facts) else NEVER
            if candidate < following:
                return candidate
        return NEVER

    def time_points(self, episode: Episode) -> Iterable[tuple[int, str, str, int, Any]]:
        """(decided at + lateness, rule, step, deadline, ladder step or None) of every ladder
        step and the return interview that has a deadline, whether past or pending. A rule is
        decided at its deadline, or when its episode became known (``Episode.k``) if that is
        later: the absence of a found or an interview counts only over what was recorded by
        then, and only once the lateness has passed after it."""
        report, tables = episode.r, self.tables
        assert report is not None
        reported = (report.t, report.id, report.start)
        starts = sorted([reported, *episode.s]) if episode.s else [reported]
        known = episode.k
        for step, after, hours in tables.ladder:
            if step.looked_after_only and not report.cared:
                continue
            due = decided = self.deadline(starts, after)
            if known > due:
                decided = known
            if due >= NEVER or self.closed_before(episode, decided):
                continue
            yield decided + self.lateness, DURATION, hours, due, step
        if episode.f:
            due = decided = self.deadline(episode.f, tables.rhi_after)
            if known > due:
                decided = known
            if due < NEVER and not (episode.i and episode.i[0] < decided):
                yield decided + self.lateness, RHI_OVERDUE, tables.rhi_step, due, None

    def time_rules(self, ref: str, episode: Episode, closed: bool) -> Iterable[Derived]:
        """Ladder steps and the return interview whose deadline plus lateness the horizon
        has reached; notes when the earliest one still pending can fire (``next_fire``)."""
        report = episode.r
        assert report is not None
        for fire_at, rule, step, due, ladder_step in self.time_points(episode):
            if fire_at > self.horizon:
                if fire_at < self.next_fire and alert_key(rule, step) not in episode.a:
                    self.next_fire = fire_at
                continue
            if ladder_step is not None:
                if self._fresh(episode, rule, step, closed):
                    yield Derived(
                        ref,
                        DURATION,
                        step,
                        ladder_step.severity,
                        ladder_step.notify,
                        _ladder_reason(report.cat, ladder_step.after_hours),
                        due,
                        (report.id,),
                        closed,
                        FOUND if closed else "",
                    )
            elif self._fresh(episode, rule, step, episode.i is not None):
                rhi = self.policy.return_interview
                yield Derived(
                    ref,
                    RHI_OVERDUE,
                    step,
                    rhi.severity,
                    rhi.notify,
                    self.tables.rhi_reason,
                    due,
                    (report.id, episode.f[0][1]),
                    episode.i is not None,
                    RHI_RECORDED,
                )

    def at_rest(self, episode: Episode) -> bool:
        """After a derivation at a horizon at or past the watermark: nothing new can be
        derived for this episode unless an event about it arrives. It closed more than
        twice the lateness ago (so no late CSE flag or de-allocation can count, and every
        ladder step due before the return has been derived), and its return interview
        is settled (recorded before the watermark minus the lateness) or already overdue."""
        w, lateness = self.state.w, self.lateness
        if not episode.f or episode.f[0][0] >= w - 2 * lateness or self.horizon < w:
            return False
        if episode.k + lateness > self.horizon:
            return False  # known late: its time rules are still held (time_points)
        if episode.i is not None:
            return episode.i[0] < w - lateness
        return alert_key(RHI_OVERDUE, self.tables.rhi_step) in episode.a

    def derive(self, touched: str | None, scope: Scope) -> list[Derived]:
        """Every alert the facts call for that is not yet said, re-evaluating only the
        rules ``scope`` names (see ``Scope``) for the episode ``touched`` (None: every rule
        of every episode, for a wall-clock tick) and the others. Episodes at rest are
        skipped, except by a tick or an event about them, which re-evaluates all their
        rules. Sets ``next_fire``, the child's next deadline."""
        state = self.state
        derived: list[Derived] = []
        self.looked_at = looked_at = []
        # ``n``: 0 not known yet (then every time rule runs and finds it), -1 nothing pending.
        time_due = 0 <= state.n <= self.horizon
        kept = False  # an episode whose time rules did not run keeps its pending deadline
        for ref, episode in state.e.items():
            if episode.r is None:
                continue  # placeholder: nothing to say until the report arrives
            if touched is None:
                rules = EVERY_RULE
            elif ref == touched:
                # At rest, its rules skipped the child's late facts (CSE, allocation): all again.
                rules = EVERY_RULE if episode.q else scope.episode
            else:
                rules = scope.others & AT_REST_RULES if episode.q else scope.others
            if time_due and not episode.q:
                rules |= TIME_RULES
            if rules or not episode.q:
                looked_at.append(episode)  # its rules are all up to date: it may now be at rest
            if not episode.q and not rules & TIME_RULES:
                kept = True
            if not rules:
                continue
            closed = bool(episode.f)
            first = len(derived)
            for flag, rule in ((TRIAGE_RULE, self.triage), (UNALLOCATED_RULE, self.unallocated)):
                if rules & flag:
                    derived += (_with_resolution(d, closed) for d in rule(ref, episode, closed))
            if rules & CSE_RULE:
                derived += self.cse_missing(ref, episode, closed)
            if rules & REPEAT_RULE:
                derived += self.repeat(ref, episode, closed)
            if rules & TIME_RULES:
                derived += self.time_rules(ref, episode, closed)
            # Resolutions come only with a closing fact, a discussion or an interview.
            if rules & RESOLVE and (closed or state.d or episode.i) and RAISED in episode.a.values():
                derived += self.resolutions(ref, episode, closed, derived[first:])
        if kept and state.n > 0:
            self.next_fire = min(self.next_fire, state.n)
        return derived

    def resolutions(self, ref: str, episode: Episode, closed: bool, derived: list[Derived]) -> Iterable[Derived]:
        """Resolutions now due of alerts raised, also of those whose rule no longer derives
        them (the facts changed since: a ladder step whose deadline a late found or a
        correction put after the episode's end, an interview recorded before the deadline
        moved); ``derived``: what the rules already said about this episode in this pass."""
        report, tables, policy = episode.r, self.tables, self.policy
        assert report is not None
        said = {alert_key(d.rule, d.step) for d in derived}
        for key, status in episode.a.items():
            if status != RAISED or key in said:
                continue
            code, step = key[0], key[1:]
            if code == "I":
                if episode.i is None:
                    continue
                rhi = policy.return_interview
                at, trigger = episode.i
                yield Derived(
                    ref, RHI_OVERDUE, step, rhi.severity, rhi.notify, "", at, (report.id, trigger), True, RHI_RECORDED
                )
                continue
            if code == "R" or (code == "C" and tables.cse_until_discussed):
                if not self.discussed(report):
                    continue
                held = self.state.d
                at, trigger = held[bisect.bisect_left(held, (report.t - self.lateness,))]
                why = DISCUSSED
            elif closed:
                at, trigger, why = episode.f[0][0], episode.f[0][1], FOUND
            else:
                continue
            rule, severity, notify = self.described(code, step)
            yield Derived(ref, rule, step, severity, notify, "", at, (report.id, trigger), True, why)

    def described(self, code: str, step: str) -> tuple[str, Severity, str | None]:
        """(rule, severity, role to notify) of a raised alert, from its key (``alert_key``)."""
        policy = self.policy
        if code == "T":
            return TRIAGE, Severity(step), policy.triage.notify[Severity(step)]
        if code == "D":
            ladder_step = self.tables.ladder_by_hours.get(step)
            if ladder_step is None:  # a step the policy no longer has
                return DURATION, Severity.medium, None
            return DURATION, ladder_step.severity, ladder_step.notify
        if code == "C":
            return CSE_MISSING, policy.cse_missing.severity, policy.cse_missing.notify
        if code == "U":
            return UNALLOCATED, policy.unallocated.severity, policy.unallocated.notify
        return REPEAT, policy.repeat_episodes.severity, policy.repeat_episodes.notify

    def settle(self) -> None:
        """Once their alerts are emitted: mark the episodes looked at that are now at rest."""
        for episode in self.looked_at:
            episode.q = self.at_rest(episode)

    def next_deadline(self) -> int | None:
        """When the next not-yet-raised time rule can fire, from every episode's facts."""
        pending = [
            fire_at
            for ref, episode in self.state.e.items()
            if episode.r is not None and not episode.q
            for fire_at, rule, step, _, _ in self.time_points(episode)
            if alert_key(rule, step) not in episode.a
        ]
        return min(pending, default=None)


def _with_resolution(d: Derived, closed: bool) -> Derived:
    if not closed:
        return d
    return Derived(*d[:8], True, FOUND)  # not d._replace(): three times slower


def alert_id_of(child_ref: str, d: Derived) -> str:
    return alert_id(child_ref, d.episode_ref, d.rule, d.step)


# ------------------------------------------------------------------ emitting


def _emit(
    child_ref: str,
    state: ChildState,
    policy: Policy,
    now: datetime,
    touched: str | None = None,
    scope: Scope = CHILD_SCOPE,
) -> list[Alert]:
    rules = _Rules(child_ref, state, policy, max(state.w, state.h))
    derived = sorted(rules.derive(touched, scope), key=lambda d: (d.occurred_at, d.rule, d.step))
    raised: list[Alert] = []
    resolved: list[Alert] = []
    for d in derived:
        episode = state.e[d.episode_ref]
        key = alert_key(d.rule, d.step)
        status = episode.a.get(key)
        if status == RESOLVED or (status == RAISED and not d.resolved):
            continue  # the common case: nothing new to say
        council = episode.r.council if episode.r and episode.r.council else (state.p[2] if state.p else None)
        common: dict[str, Any] = {
            "alert_id": alert_id_of(child_ref, d),
            "child_ref": child_ref,
            "episode_ref": d.episode_ref,
            "rule": d.rule,
            "step": d.step,
            "severity": d.severity,
            "council": council,
            "notify": d.notify,
            "emitted_at": now,
        }
        if status is None:
            raised.append(
                Alert(
                    status="raised",
                    reason=d.reason,
                    occurred_at=as_datetime(d.occurred_at),
                    trigger_event_ids=d.triggers,
                    **common,
                )
            )
            episode.a[key] = RAISED
            status = RAISED
        if d.resolved and status == RAISED:
            resolved.append(
                Alert(
                    status="resolved",
                    reason=d.resolved_reason,
                    occurred_at=as_datetime(max(d.occurred_at, _resolution_time(rules, episode, d))),
                    trigger_event_ids=d.triggers,
                    closed_by=episode.o if d.resolved_reason == FOUND else None,
                    **common,
                )
            )
            episode.a[key] = RESOLVED
    rules.settle()
    state.n = rules.next_fire if rules.next_fire < NEVER else -1
    return raised + resolved


def _resolution_time(rules: _Rules, episode: Episode, d: Derived) -> int:
    if d.resolved_reason == DISCUSSED:
        assert episode.r is not None
        return rules.discussion_time(episode.r)
    if d.rule == RHI_OVERDUE:
        return episode.i[0] if episode.i else d.occurred_at
    return episode.f[0][0] if episode.f else d.occurred_at


def _prune(state: ChildState, policy: Policy) -> None:
    """Forget what no rule can look at again: closed (or never reported) episodes and
    superseded facts older than the longest window plus the lateness. An episode whose
    strategy-discussion prompt is still open is kept: a discussion held later closes it."""
    cutoff = state.w - _tables(policy).horizon
    gone = [
        ref
        for ref, e in state.e.items()
        if (e.f or e.r is None)
        and (e.r is None or e.r.t < cutoff)
        and e.last_fact_time() < cutoff
        and not _awaits_discussion(e)
    ]
    if gone:
        for ref in gone:
            del state.e[ref]
        state.al = {alias: ref for alias, ref in state.al.items() if ref in state.e}
    for facts in (state.c, state.u, state.d):
        if len(facts) > 1 and facts[1][0] < cutoff:  # sorted: the old facts are a prefix
            old = bisect.bisect_left(facts, (cutoff,))
            del facts[: old - 1]  # keep the latest old one: it is still the value as of now


def _awaits_discussion(episode: Episode) -> bool:
    a = episode.a
    return RAISED in a.values() and any(status == RAISED and key[0] in "RC" for key, status in a.items())


def decide(state: ChildState, event: CloudEvent, now: datetime, policy: Policy) -> tuple[ChildState, list[Alert]]:
    """Merge one event into the child's state; return the new state and the alerts to emit.
    The state passed in is not modified."""
    state, outcome = apply_event(state, event, now, policy)
    return state, outcome.alerts


def apply_event(
    state: ChildState,
    event: CloudEvent,
    now: datetime,
    policy: Policy,
    *,
    copy: bool = True,
    wall: datetime | None = None,
) -> tuple[ChildState, Outcome]:
    """``decide`` that also says whether the event was applied, a duplicate or stale.
    ``copy=False`` updates ``state`` in place: for a caller that owns it (the worker
    deserialised it for this batch), it saves a deep copy per event. ``wall``: the wall
    clock, from a worker that has caught up with its events (live, not replaying): the
    event is merged at the horizon a tick would have reached, so a report or found that
    arrives later than the lateness behind it holds its episode's time rules for the
    lateness (``Episode.k``) instead of firing them over a past it has not heard all of."""
    if copy:
        state = state.copy()
    t = epoch(event.time)
    key = (t, event_key(event))
    if key in state.k:
        return state, Outcome(applied=False, duplicate=True)
    tables = _tables(policy)
    if t < state.w - tables.horizon:
        # Older than anything a rule still looks at (e.g. a replay of pruned history).
        return state, Outcome(applied=False, stale=True)
    state.k.append(key)
    state.k.sort()
    del state.k[: max(0, len(state.k) - policy.processed_event_memory)]
    refused = _refusal(state, event, policy)
    if refused is not None:
        # Nothing merged; only its key is remembered, as for a correction that came before
        # its report and was refused then, so a resend is a duplicate either way.
        return state, Outcome(applied=False, refused=refused)
    if wall is not None:
        state.h = max(state.h, epoch(wall))
    horizon = max(state.w, state.h)
    earlier: list[tuple[str, str]] = []
    known = horizon if t < horizon - tables.lateness else 0
    scope = merge(state, event, t, known, policy.corrections.parties_only, earlier)
    state.w = max(state.w, t)
    if state.h <= state.w:
        state.h = 0  # the watermark has caught up with the last tick: nothing to remember
    ref = getattr(event.data, "episode_ref", None)
    touched = episode_of(state.al, ref) if ref else ""
    alerts = _emit(event.subject, state, policy, now, touched, scope)
    _prune(state, policy)
    return state, Outcome(alerts=alerts, refused_earlier=earlier)


def _refusal(state: ChildState, event: CloudEvent, policy: Policy) -> str | None:
    """Why a correction of a reported episode is refused (``policy.corrections``), if it is.
    One of an episode not yet reported is checked when its report arrives (``merge``)."""
    data = event.data
    if not isinstance(data, EpisodeCorrected) or not policy.corrections.parties_only:
        return None
    ref = episode_of(state.al, data.episode_ref)
    episode = state.e.get(ref)
    if episode is None or episode.r is None:
        return None
    return _correction_refused(state, episode, ref, source_org(event.source))


def tick(child_ref: str, state: ChildState, now: datetime, policy: Policy) -> tuple[ChildState, list[Alert]]:
    """Fire time rules whose deadline (plus lateness) the wall clock has reached."""
    wall = epoch(now)
    if wall <= max(state.w, state.h):
        return state, []
    state = state.copy()
    state.h = wall
    return state, _emit(child_ref, state, policy, now)


def next_deadline(child_ref: str, state: ChildState, policy: Policy) -> int | None:
    """Epoch second at which a tick could next raise a time-rule alert for this child
    (never later than the real one; it may be earlier)."""
    if state.n:
        return state.n if state.n > 0 else None
    return _Rules(child_ref, state, policy, NEVER).next_deadline()


def load_state(child_ref: str, payload: bytes | None, policy: Policy) -> ChildState:
    """A stored state; one written before states became MessagePack (JSON, alerts
    remembered by alert id) is converted, so an upgrade never pages twice."""
    if not is_legacy(payload):
        return ChildState.from_bytes(payload)
    state = ChildState.from_legacy_json(payload)  # type: ignore[arg-type]
    tables = _tables(policy)
    steps = (
        [(TRIAGE, level.value) for level in SEVERITIES]
        + [
            (CSE_MISSING, "flag"),
            (UNALLOCATED, "unallocated"),
            (REPEAT, tables.repeat_step),
            (RHI_OVERDUE, tables.rhi_step),
        ]
        + [(DURATION, hours) for _, _, hours in tables.ladder]
    )
    for ref, episode in state.e.items():
        keys = {alert_id(child_ref, ref, rule, step): alert_key(rule, step) for rule, step in steps}
        episode.a = {keys.get(old, old): status for old, status in episode.a.items()}
    return state


def missing_risk(state: ChildState) -> str | None:
    """Police risk grade of the child's open episode (latest re-grade), None if not missing."""
    current = state.open_episode()
    if current is None:
        return None
    episode = current[1]
    assert episode.r is not None
    latest = max([(episode.r.t, episode.r.id, episode.r.risk), *episode.g])
    return RISK_BY_RANK[latest[2]]
