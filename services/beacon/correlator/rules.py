"""The six alert rules of the correlator, over a child's merged facts: pure, no I/O.

Triage, CSE x missing, unallocated, repeat episodes, the duration ladder and return
interview overdue (``Rules.triage`` .. ``Rules.time_rules``), the resolutions they call
for (``Rules.resolutions``), and the policy tables they read. Which rules run for which
event, which episodes are at rest, and when the child's next deadline falls are the
engine's business (``engine._Derivation``): here is only what each rule says. See
``engine`` for the lateness argument that makes every rule order-independent.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from functools import lru_cache
from typing import Any, NamedTuple

from beacon.core.alerts import Severity
from beacon.core.alerts import alert_id as _alert_id
from beacon.core.domain import CATEGORY_LABEL, CSE_RANK, RISK_BY_RANK, RISK_LABEL, SEVERITIES
from beacon.core.policy import Policy
from beacon.correlator.state import RAISED, ChildState, Episode, Report

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


class Tables:
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


_TABLES: dict[int, tuple[Policy, Tables]] = {}


def tables(policy: Policy) -> Tables:
    """Cached per policy object (policies are frozen)."""
    cached = _TABLES.get(id(policy))
    if cached is None or cached[0] is not policy:
        cached = _TABLES[id(policy)] = (policy, Tables(policy))
    return cached[1]


@lru_cache(maxsize=256)
def _ladder_reason(category: str, after_hours: float) -> str:
    return f"Child still {CATEGORY_LABEL[category]} after {after_hours:g} hours"


FOUND = "Child found or returned; alert resolved"
RHI_RECORDED = "Return home interview recorded"
DISCUSSED = "Strategy discussion held; alert resolved"


class Rules:
    """Derives the alerts the merged facts call for, up to a time-rule horizon.

    Only alerts that still have something to say are built: one not yet raised, or one
    raised whose resolution is now due (``_fresh``). Skipping the others before their
    reason strings are formatted is what keeps a worker at thousands of events a second;
    ``_emit`` applies the same test, so the result is the same as building them all."""

    def __init__(self, child_ref: str, state: ChildState, policy: Policy, horizon: int):
        self.child_ref, self.state, self.policy, self.horizon = child_ref, state, policy, horizon
        # Earliest time a not-yet-raised time rule can fire, as ``time_rules`` finds it.
        self.next_fire = NEVER
        self.tables = tables(policy)
        self.lateness = self.tables.lateness

    def _fresh(self, episode: Episode, rule: str, step: str, resolved: bool) -> bool:
        status = episode.alert_status.get(alert_key(rule, step))
        return status is None or (status == RAISED and resolved)

    # -- helpers over settled facts

    def closed_before(self, episode: Episode, x: int) -> bool:
        # ``closings`` is a sorted fact set: its first fact is the earliest.
        return bool(episode.closings) and episode.closings[0][0] < x

    def latest_as_of(self, facts: list, x: int) -> list:  # type: ignore[type-arg]
        """Facts that may be the current value at ``x``: the latest settled one (older than
        ``x - lateness``) and every fact from ``x - lateness`` to ``x``."""
        settled_end = bisect.bisect_left(facts, (x - self.lateness,))
        recent_end = bisect.bisect_left(facts, (x + 1,))
        return facts[max(settled_end - 1, 0) : recent_end]

    def discussed(self, report: Report) -> bool:
        """A strategy discussion held no earlier than the lateness before the report: it
        closes the episode's strategy-discussion prompts (repeat episodes, critical CSE)."""
        held = self.state.discussions
        return bool(held) and held[-1][0] >= report.time - self.lateness

    def discussion_time(self, report: Report) -> int:
        """When the discussion that closes the episode's prompts was held (see ``discussed``)."""
        held = self.state.discussions
        return held[bisect.bisect_left(held, (report.time - self.lateness,))][0]

    def settled_cse_level(self, x: int) -> int:
        """The CSE level as of ``x`` from settled screenings only: a screening that may
        still be overtaken by a late one cannot lower or raise a triage already paged
        (the CSE x missing rule pages on it at once instead)."""
        settled_end = bisect.bisect_left(self.state.cse_screenings, (x - self.lateness,))
        return self.state.cse_screenings[settled_end - 1][2] if settled_end else 0

    # -- rules (each yields only fresh alerts; ``closed``: the episode has a closing fact)

    def triage(self, ref: str, episode: Episode, closed: bool) -> Iterable[Derived]:
        report, triage, tables = episode.report, self.policy.triage, self.tables
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

        points: list[tuple[int, str, int | None]] = [(report.time, report.event_id, report.risk)]
        points += episode.regrades
        if episode.rescue_alert:
            points.append((episode.rescue_alert[0], episode.rescue_alert[1], None))
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
                f"Child {CATEGORY_LABEL[report.category]} ({grade}{factors}); triage {level.value}",
                t,
                tuple(dict.fromkeys((report.event_id, eid))),
            )

    def cse_missing(self, ref: str, episode: Episode, closed: bool) -> Iterable[Derived]:
        report, rule = episode.report, self.policy.cse_missing
        assert report is not None
        if not self.state.cse_screenings:
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
        flagged = [f for f in self.latest_as_of(self.state.cse_screenings, report.time) if f[2] >= threshold]
        if flagged:
            yield Derived(
                ref,
                CSE_MISSING,
                "flag",
                rule.severity,
                rule.notify,
                reason,
                report.time,
                (report.event_id, flagged[-1][1]),
                resolved,
                resolved_reason,
            )
            return
        # ... or a CSE flag arrives while the child is missing: whichever comes first.
        for t, eid, level in self.state.cse_screenings:
            if t >= report.time and level >= threshold and not self.closed_before(episode, t - self.lateness):
                yield Derived(
                    ref,
                    CSE_MISSING,
                    "flag",
                    rule.severity,
                    rule.notify,
                    reason,
                    t,
                    (report.event_id, eid),
                    resolved,
                    resolved_reason,
                )
                return

    def unallocated(self, ref: str, episode: Episode, closed: bool) -> Iterable[Derived]:
        report, rule = episode.report, self.policy.unallocated
        assert report is not None
        if (
            not rule.enabled
            or not self.state.allocations
            or not self._fresh(episode, UNALLOCATED, "unallocated", closed)
        ):
            return
        reason = "Missing child has no allocated worker"
        unallocated_then = [f for f in self.latest_as_of(self.state.allocations, report.time) if f[2] == 0]
        if unallocated_then:
            yield Derived(
                ref,
                UNALLOCATED,
                "unallocated",
                rule.severity,
                rule.notify,
                reason,
                report.time,
                (report.event_id, unallocated_then[-1][1]),
            )
            return
        for t, eid, allocated in self.state.allocations:
            if t >= report.time and not allocated and not self.closed_before(episode, t - self.lateness):
                yield Derived(
                    ref, UNALLOCATED, "unallocated", rule.severity, rule.notify, reason, t, (report.event_id, eid)
                )
                return

    def repeat(self, ref: str, episode: Episode, closed: bool) -> Iterable[Derived]:
        """The Nth episode starting within the window since the child's last strategy
        discussion (settled when this episode was reported) prompts a discussion; the
        prompt closes when one is held (``discussed``), not when the child comes home.
        One prompt per run of episodes: none if an earlier episode within this one's window,
        reported before this one was (settled), had already reached the count since that
        discussion."""
        report, rule, tables = episode.report, self.policy.repeat_episodes, self.tables
        assert report is not None
        if len(self.state.episodes) < rule.count:
            return
        resolved = self.discussed(report)
        if not self._fresh(episode, REPEAT, tables.repeat_step, resolved):
            return
        held, settled = self.state.discussions, report.time - self.lateness
        last = bisect.bisect_left(held, (settled,))
        after = held[last - 1][0] if last else -NEVER  # the count restarts after a discussion
        rows = sorted(
            (e.report.started, e.report.event_id, e.report.time)
            for e in self.state.episodes.values()
            if e.report is not None and after < e.report.started <= report.started
        )
        starts = [row[0] for row in rows]
        window = tables.repeat_window
        first = bisect.bisect_left(starts, report.started - window)
        count = len(rows) - first
        if count < rule.count:
            return
        this = (report.started, report.event_id)
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
            report.time,
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
        decided at its deadline, or when its episode became known (``Episode.known_since``) if that is
        later: the absence of a found or an interview counts only over what was recorded by
        then, and only once the lateness has passed after it."""
        report, tables = episode.report, self.tables
        assert report is not None
        reported = (report.time, report.event_id, report.started)
        starts = sorted([reported, *episode.start_corrections]) if episode.start_corrections else [reported]
        known = episode.known_since
        for step, after, hours in tables.ladder:
            if step.looked_after_only and not report.cared:
                continue
            due = decided = self.deadline(starts, after)
            if known > due:
                decided = known
            if due >= NEVER or self.closed_before(episode, decided):
                continue
            yield decided + self.lateness, DURATION, hours, due, step
        if episode.closings:
            due = decided = self.deadline(episode.closings, tables.rhi_after)
            if known > due:
                decided = known
            if due < NEVER and not (episode.interview and episode.interview[0] < decided):
                yield decided + self.lateness, RHI_OVERDUE, tables.rhi_step, due, None

    def time_rules(self, ref: str, episode: Episode, closed: bool) -> Iterable[Derived]:
        """Ladder steps and the return interview whose deadline plus lateness the horizon
        has reached; notes when the earliest one still pending can fire (``next_fire``)."""
        report = episode.report
        assert report is not None
        for fire_at, rule, step, due, ladder_step in self.time_points(episode):
            if fire_at > self.horizon:
                if fire_at < self.next_fire and alert_key(rule, step) not in episode.alert_status:
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
                        _ladder_reason(report.category, ladder_step.after_hours),
                        due,
                        (report.event_id,),
                        closed,
                        FOUND if closed else "",
                    )
            elif self._fresh(episode, rule, step, episode.interview is not None):
                rhi = self.policy.return_interview
                yield Derived(
                    ref,
                    RHI_OVERDUE,
                    step,
                    rhi.severity,
                    rhi.notify,
                    self.tables.rhi_reason,
                    due,
                    (report.event_id, episode.closings[0][1]),
                    episode.interview is not None,
                    RHI_RECORDED,
                )

    def resolutions(self, ref: str, episode: Episode, closed: bool, derived: list[Derived]) -> Iterable[Derived]:
        """Resolutions now due of alerts raised, also of those whose rule no longer derives
        them (the facts changed since: a ladder step whose deadline a late found or a
        correction put after the episode's end, an interview recorded before the deadline
        moved); ``derived``: what the rules already said about this episode in this pass."""
        report, tables, policy = episode.report, self.tables, self.policy
        assert report is not None
        said = {alert_key(d.rule, d.step) for d in derived}
        for key, status in episode.alert_status.items():
            if status != RAISED or key in said:
                continue
            code, step = key[0], key[1:]
            if code == "I":
                if episode.interview is None:
                    continue
                rhi = policy.return_interview
                at, trigger = episode.interview
                yield Derived(
                    ref,
                    RHI_OVERDUE,
                    step,
                    rhi.severity,
                    rhi.notify,
                    "",
                    at,
                    (report.event_id, trigger),
                    True,
                    RHI_RECORDED,
                )
                continue
            if code == "R" or (code == "C" and tables.cse_until_discussed):
                if not self.discussed(report):
                    continue
                held = self.state.discussions
                at, trigger = held[bisect.bisect_left(held, (report.time - self.lateness,))]
                why = DISCUSSED
            elif closed:
                at, trigger, why = episode.closings[0][0], episode.closings[0][1], FOUND
            else:
                continue
            rule, severity, notify = self.described(code, step)
            yield Derived(ref, rule, step, severity, notify, "", at, (report.event_id, trigger), True, why)

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


def with_resolution(d: Derived, closed: bool) -> Derived:
    if not closed:
        return d
    return Derived(*d[:8], True, FOUND)  # not d._replace(): three times slower


def alert_id_of(child_ref: str, d: Derived) -> str:
    return alert_id(child_ref, d.episode_ref, d.rule, d.step)
