"""The console's read model: a fold of the events, alerts, acknowledgements and audit topics.

``apply(view_state, record) -> view_state`` is deterministic and does no I/O and reads
no clock, so it is unit-tested without Kafka. For speed when a console replays years of
history it updates ``view_state`` in place and returns it: the state belongs to the
projection alone and is only read between two ``apply`` calls.

Kafka is at-least-once and sources resend, so every record is deduplicated by its
natural key (event (source, id), alert (alert_id, status), audit_id, ack command_id),
and nothing depends on arrival order: a child found before being reported, a risk
re-grade before the report, or an alert resolved before it was raised all end in the
state their event times say. The one exception is shared with the correlator, whose
reading of episode identity this fold follows (core/domain.py): a second report while an
episode is open joins that episode, which is decided in the order the child's events
arrive on the topic (the same order for both).

Data minimisation: the projection keeps pseudonymous references, risk, categories,
organisations and timestamps. It never stores free text from events (the only free
text field, a return interview's reason, is dropped here).
"""

from __future__ import annotations

import bisect
from collections.abc import MutableMapping, MutableSet
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from beacon.core.acks import AckCommand
from beacon.core.alerts import AlertRecord, Severity
from beacon.core.audit import CONSOLE_AUDIT_KINDS, AuditRecord
from beacon.core.domain import (
    CATEGORY_LABEL,
    RISK_LABEL,
    RISK_RANK,
    earlier_report,
    episode_of,
    episode_of_report,
    epoch,
    is_open,
    records_episode_fact,
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
    SafeAndWellChecked,
    SightingReported,
    StrategyDiscussionRecorded,
    source_org,
)
from beacon.core.notes import NoteRecord
from beacon.core.wording import reason

Record = CloudEvent | AlertRecord | AuditRecord | AckCommand | NoteRecord
EntryKind = Literal["event", "alert", "audit", "ack", "note"]
AlertStatus = Literal["raised", "acknowledged", "resolved", "closed"]


@dataclass(frozen=True)
class TimelineEntry:
    """One line of a child's timeline. ``text`` is built from enumerated fields only."""

    at: datetime
    kind: EntryKind
    key: str  # the dedup key of the record that made it; also a stable tie-breaker
    text: str
    episode_ref: str | None = None
    alert_id: str | None = None
    severity: str | None = None

    @property
    def sort_key(self) -> tuple[datetime, str]:
        return (self.at, self.key)


@dataclass
class Correction:
    at: datetime
    value: datetime


@dataclass
class Episode:
    episode_ref: str
    category: str | None = None
    report_key: tuple[int, str] | None = None  # (epoch(time), id) of the report the episode keeps
    reported_started_at: datetime | None = None
    found_ended_at: datetime | None = None
    outcome: str | None = None
    start_correction: Correction | None = None
    end_correction: Correction | None = None
    # (epoch(event time), event id, value): latest by the order the correlator uses too (core/domain.py)
    risk_history: list[tuple[int, str, str]] = field(default_factory=list)
    category_history: list[tuple[int, str, str]] = field(default_factory=list)
    reporting_org: str | None = None
    placing_council: str | None = None
    found_by: str | None = None  # the organisation whose ChildFound ended it (console/access.py reads it)
    rescue_alert_at: datetime | None = None
    # The latest return home interview record (by recorded_at): status only, the reason is never kept.
    interview_status: str | None = None
    interview_at: datetime | None = None

    @property
    def started_at(self) -> datetime | None:
        return self.start_correction.value if self.start_correction else self.reported_started_at

    @property
    def ended_at(self) -> datetime | None:
        return self.end_correction.value if self.end_correction else self.found_ended_at

    @property
    def is_open(self) -> bool:
        return is_open(self.report_key is not None, self.ended_at is not None)

    @property
    def risk(self) -> str | None:
        return self.risk_history[-1][2] if self.risk_history else None

    @property
    def current_category(self) -> str | None:
        return self.category_history[-1][2] if self.category_history else self.category


@dataclass
class AlertView:
    alert_id: str
    child_ref: str | None = None
    episode_ref: str | None = None
    rule: str | None = None
    step: str | None = None
    severity: Severity | None = None
    reason: str | None = None  # beacon.core.wording.reason: the words every message uses
    council: str | None = None
    raised_at: datetime | None = None
    resolved_at: datetime | None = None
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    acknowledged_via: str | None = None
    closed_at: datetime | None = None
    closed_by: str | None = None
    ack_requests: list[AckCommand] = field(default_factory=list)  # seen on ACKS, not yet confirmed
    paged: list[AuditRecord] = field(default_factory=list)  # notification and delivery audit records
    raised_record: AlertRecord | None = None  # as the correlator raised it: the notifier's chain is resolved from it
    escalation_steps: list[tuple[datetime, int]] = field(default_factory=list)  # (at, step) the notifier reached
    notes: list[NoteRecord] = field(default_factory=list)  # encrypted; console/notes.py opens them to show

    @property
    def status(self) -> AlertStatus:
        if self.resolved_at is not None:
            return "resolved"
        if self.closed_at is not None:
            return "closed"
        if self.acknowledged_at is not None:
            return "acknowledged"
        return "raised"

    @property
    def is_open(self) -> bool:
        return self.raised_at is not None and self.status in ("raised", "acknowledged")

    @property
    def ack_pending(self) -> bool:
        """Someone asked to acknowledge; the notifier has not confirmed it yet."""
        return self.status == "raised" and any(a.action == "acknowledge" for a in self.ack_requests)

    @property
    def needs_attention(self) -> bool:
        return self.status == "raised" and not self.ack_pending

    @property
    def severity_rank(self) -> int:
        return self.severity.rank if self.severity else -1


@dataclass
class ChildView:
    child_ref: str
    episodes: dict[str, Episode] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)  # second report's ref -> the open episode it joined
    entries: list[TimelineEntry] = field(default_factory=list)  # sorted by (at, key)
    alert_ids: set[str] = field(default_factory=set)
    cse_level: str | None = None
    cse_at: datetime | None = None
    # The latest placement (by effective time): its councils are involved in the child's episodes.
    placing_council: str | None = None
    host_council: str | None = None
    placement_at: datetime | None = None

    def episode(self, episode_ref: str) -> Episode:
        if episode_ref not in self.episodes:
            self.episodes[episode_ref] = Episode(episode_ref)
        return self.episodes[episode_ref]

    def open_episode_ref(self) -> str | None:
        return next((ref for ref, episode in self.episodes.items() if episode.is_open), None)

    def episode_of_event(self, data: object, at: datetime) -> str | None:
        """The episode an event (of time ``at``) belongs to (core/domain.py decides),
        creating it when the event records a fact about it, as the correlator does; None:
        about no episode."""
        named = getattr(data, "episode_ref", None)
        if named is None:
            return None
        if isinstance(data, EpisodeReported) and episode_of(self.aliases, named) not in self.episodes:
            open_ref = self.open_episode_ref()
            open_start = self.episodes[open_ref].reported_started_at if open_ref else None
            before = open_start is not None and epoch(at) < epoch(open_start)
            ref = episode_of_report(self.aliases, self.episodes, open_ref, named, reported_before_open_started=before)
            if ref != named:
                self.aliases[named] = ref
        else:
            ref = episode_of(self.aliases, named)
        if records_episode_fact(data):
            self.episode(ref)
        return ref

    def add_entry(self, entry: TimelineEntry) -> None:
        bisect.insort(self.entries, entry, key=lambda e: e.sort_key)


@dataclass
class ViewState:
    """In memory here; read_model.StoredViewState keeps children, alerts and seen in SQLite."""

    children: MutableMapping[str, ChildView] = field(default_factory=dict)
    alerts: MutableMapping[str, AlertView] = field(default_factory=dict)
    seen: MutableSet[tuple[str, ...]] = field(default_factory=set)
    # Indexes of what is open now, so the dashboard costs O(open), not O(years of history).
    open_episodes: set[tuple[str, str]] = field(default_factory=set)  # (child_ref, episode_ref)
    open_alert_ids: set[str] = field(default_factory=set)
    version: int = 0  # bumped on every record that changed the view: drives the live page updates
    duplicates: int = 0

    def child(self, child_ref: str) -> ChildView:
        if child_ref not in self.children:
            self.children[child_ref] = ChildView(child_ref)
        return self.children[child_ref]

    def alert(self, alert_id: str) -> AlertView:
        if alert_id not in self.alerts:
            self.alerts[alert_id] = AlertView(alert_id)
        return self.alerts[alert_id]


# ------------------------------------------------------------------ the fold


def dedup_key(record: Record) -> tuple[str, ...]:
    if isinstance(record, CloudEvent):
        return ("event", record.source, record.id)
    if isinstance(record, AlertRecord):
        return ("alert", record.alert_id, record.status)
    if isinstance(record, AuditRecord):
        return ("audit", record.audit_id)
    if isinstance(record, NoteRecord):
        return ("note", record.note_id)
    return ("ack", record.command_id)


def apply(view_state: ViewState, record: Record) -> ViewState:
    """Fold one record into the view. A record already seen changes nothing, nor does the
    console's own access audit (a view that bumped the version would refresh itself forever)."""
    if isinstance(record, AuditRecord) and (record.kind in CONSOLE_AUDIT_KINDS or record.alert_id is None):
        return view_state
    key = dedup_key(record)
    if key in view_state.seen:
        view_state.duplicates += 1
        return view_state
    view_state.seen.add(key)
    if isinstance(record, CloudEvent):
        episode_ref = _apply_event(view_state, record, "|".join(key))
        if episode_ref is not None:
            _index_episode(view_state, record.subject, episode_ref)
    elif isinstance(record, AlertRecord):
        _apply_alert(view_state, record, "|".join(key))
        _index_alert(view_state, record.alert_id)
    elif isinstance(record, AuditRecord) and record.alert_id is not None:
        _apply_audit(view_state, record, record.alert_id, "|".join(key))
        _index_alert(view_state, record.alert_id)
    elif isinstance(record, NoteRecord):
        _apply_note(view_state, record, "|".join(key))
    elif isinstance(record, AckCommand):
        _apply_ack(view_state, record)
    view_state.version += 1
    return view_state


def _index_episode(state: ViewState, child_ref: str, episode_ref: str) -> None:
    episode = state.children[child_ref].episodes.get(episode_ref)  # a sighting may name one not known yet
    if episode is not None and episode.is_open:
        state.open_episodes.add((child_ref, episode_ref))
    else:
        state.open_episodes.discard((child_ref, episode_ref))


def _index_alert(state: ViewState, alert_id: str) -> None:
    if state.alerts[alert_id].is_open:
        state.open_alert_ids.add(alert_id)
    else:
        state.open_alert_ids.discard(alert_id)


def _latest(history: list[tuple[int, str, str]], event: CloudEvent, value: str) -> None:
    bisect.insort(history, (epoch(event.time), event.id, value))


def _apply_event(state: ViewState, event: CloudEvent, key: str) -> str | None:
    """Fold one event into its child's view; returns the episode it belongs to."""
    child = state.child(event.subject)
    data = event.data
    episode_ref = child.episode_of_event(data, event.time)
    text: str
    if isinstance(data, EpisodeReported):
        ep = child.episode(episode_of(child.aliases, data.episode_ref))
        report_key = (epoch(event.time), event.id)  # as the correlator orders reports
        if earlier_report(ep.report_key, report_key):  # later reports (resent, or merged in) are re-grades
            ep.report_key, ep.category, ep.reported_started_at = report_key, data.category.value, data.started_at
            ep.reporting_org, ep.placing_council = data.reporting_org, data.placing_council
        _latest(ep.risk_history, event, data.risk.value)
        text = (
            f"Reported {CATEGORY_LABEL[data.category.value]} by {data.reporting_org}, "
            f"police risk {RISK_LABEL[data.risk.value]}"
        )
        if episode_ref != data.episode_ref:  # keep the second reference findable on the timeline
            text += f" (as {data.episode_ref}: the same episode)"
    elif isinstance(data, RiskRegraded):
        ep = child.episode(episode_of(child.aliases, data.episode_ref))
        _latest(ep.risk_history, event, data.risk.value)
        text = f"Risk re-graded to {RISK_LABEL[data.risk.value]}"
        if data.category is not None:
            _latest(ep.category_history, event, data.category.value)
            text += f", now {CATEGORY_LABEL[data.category.value]}"
    elif isinstance(data, SightingReported):
        text = "Sighting reported" if data.kind == "sighting" else "New information received"
    elif isinstance(data, ChildFound):
        ep = child.episode(episode_of(child.aliases, data.episode_ref))
        ep.found_ended_at, ep.outcome, ep.found_by = data.ended_at, data.outcome, source_org(event.source)
        text = f"{data.outcome.capitalize()}: episode closed by {source_org(event.source)}"
    elif isinstance(data, SafeAndWellChecked):
        text = "Safe-and-well check done"
    elif isinstance(data, ReturnInterviewRecorded):
        interviewed = child.episodes.get(episode_ref) if episode_ref else None  # "offered" makes no episode
        if interviewed is not None and (
            interviewed.interview_at is None or data.recorded_at >= interviewed.interview_at
        ):
            interviewed.interview_status, interviewed.interview_at = data.status, data.recorded_at
        text = f"Return home interview {data.status.replace('_', ' ')}"  # the reason is never kept
    elif isinstance(data, StrategyDiscussionRecorded):
        text = f"Strategy discussion {data.status}"
    elif isinstance(data, CseScreened):
        if child.cse_at is None or data.screened_at >= child.cse_at:
            child.cse_level, child.cse_at = data.level.value, data.screened_at
        text = f"CSE screening recorded: level {data.level.value}"
    elif isinstance(data, PlacementChanged):
        if child.placement_at is None or data.effective_at >= child.placement_at:
            child.placing_council, child.host_council = data.placing_council, data.host_council
            child.placement_at = data.effective_at
        text = f"Placement {data.change.replace('_', ' ')}: placed by {data.placing_council}, host {data.host_council}"
    elif isinstance(data, AllocationChanged):
        text = "Case allocated" if data.status == "allocated" else "Case unallocated: no named social worker"
    elif isinstance(data, EpisodeCorrected):
        ep = child.episode(episode_of(child.aliases, data.episode_ref))
        if data.started_at and (ep.start_correction is None or data.corrected_at >= ep.start_correction.at):
            ep.start_correction = Correction(data.corrected_at, data.started_at)
        if data.ended_at and (ep.end_correction is None or data.corrected_at >= ep.end_correction.at):
            ep.end_correction = Correction(data.corrected_at, data.ended_at)
        text = f"Episode dates corrected by {source_org(event.source)}"
    elif isinstance(data, ChildRescueAlertActivated):
        ep = child.episode(episode_of(child.aliases, data.episode_ref))
        ep.rescue_alert_at = data.activated_at
        text = "Child Rescue Alert activated"
    else:  # a type added to the contract later: still on the timeline, by its name
        text = event.type
    child.add_entry(TimelineEntry(event.time, "event", key, text, episode_ref=episode_ref))
    return episode_ref


def _apply_alert(state: ViewState, record: AlertRecord, key: str) -> None:
    alert = state.alert(record.alert_id)
    alert.child_ref, alert.episode_ref = record.child_ref, record.episode_ref
    alert.rule, alert.step, alert.severity = record.rule, record.step, record.severity
    # The reason in the words every message uses (beacon.core.wording), not the record's text.
    alert.reason, alert.council = reason(record.rule, record.step), record.council
    if record.status == "raised":
        alert.raised_at, alert.raised_record = record.occurred_at, record
        text = f"Alert raised ({record.severity.value}): {alert.reason}"
    else:
        alert.resolved_at = record.occurred_at
        text = "Alert resolved"
    child = state.child(record.child_ref)
    child.alert_ids.add(record.alert_id)
    child.add_entry(
        TimelineEntry(
            record.occurred_at,
            "alert",
            key,
            text,
            episode_ref=record.episode_ref,
            alert_id=record.alert_id,
            severity=record.severity.value,
        )
    )


_AUDIT_TEXT = {
    "alert_raised": "Escalation started",
    "alert_resolved": "Escalation ended: alert resolved",
    "escalation_step": "Escalation step {step}",
    "notification_sent": "Paged {person} by {channel}",
    "notification_failed": "Page to {person} by {channel} failed",
    "delivery_status": "Delivery to {person} by {channel}: {detail}",
    "fallback": "Fell back for {person} to {channel} ({detail})",
    "acknowledged": "Acknowledged by {person}",
    "closed": "Closed by {person}",
    "resolution_sent": "Told {person} by {channel} that the alert is resolved",
}


def _via(record: AuditRecord) -> str | None:
    """How an acknowledgement came: the notifier writes ``via=<channel>`` in ``detail``."""
    detail = record.detail.strip()
    if detail.startswith("via="):
        return detail.removeprefix("via=") or None
    return detail or record.channel


def _audit_text(record: AuditRecord) -> str:
    person, channel = record.person or "someone", record.channel or "-"
    detail = record.detail.replace("_", " ")
    if record.kind == "escalation_step":
        return f"Escalation step {record.step if record.step is not None else '?'}" + (f" ({detail})" if detail else "")
    if record.kind in ("acknowledged", "closed"):
        via = _via(record)
        return _AUDIT_TEXT[record.kind].format(person=person) + (f" via {via}" if via else "")
    if record.kind in ("alert_raised", "alert_resolved"):
        return _AUDIT_TEXT[record.kind] + (f" ({detail})" if detail else "")
    return _AUDIT_TEXT[record.kind].format(person=person, channel=channel, detail=detail or "-")


def _apply_audit(state: ViewState, record: AuditRecord, alert_id: str, key: str) -> None:
    alert = state.alert(alert_id)
    if alert.child_ref is None:
        alert.child_ref = record.child_ref
    if record.kind == "acknowledged":
        if alert.acknowledged_at is None or record.at < alert.acknowledged_at:  # the first one counts
            alert.acknowledged_at, alert.acknowledged_by = record.at, record.person
            alert.acknowledged_via = _via(record)
    elif record.kind == "closed":
        if alert.closed_at is None or record.at < alert.closed_at:
            alert.closed_at, alert.closed_by = record.at, record.person
    elif record.kind == "escalation_step" and record.step is not None:
        bisect.insort(alert.escalation_steps, (record.at, record.step))
    elif record.kind in ("notification_sent", "notification_failed", "delivery_status", "fallback", "resolution_sent"):
        bisect.insort(alert.paged, record, key=lambda r: (r.at, r.audit_id))
    child = state.child(record.child_ref)
    child.alert_ids.add(alert_id)
    child.add_entry(TimelineEntry(record.at, "audit", key, _audit_text(record), alert_id=alert_id))


def _apply_note(state: ViewState, note: NoteRecord, key: str) -> None:
    """A note on an alert: kept encrypted; the timeline says only who added one."""
    alert = state.alert(note.alert_id)
    bisect.insort(alert.notes, note, key=lambda n: (n.at, n.note_id))
    child = state.child(note.child_ref)
    child.alert_ids.add(note.alert_id)
    child.add_entry(TimelineEntry(note.at, "note", key, f"Note added by {note.by}", alert_id=note.alert_id))


def _apply_ack(state: ViewState, command: AckCommand) -> None:
    """An acknowledgement asked for (from any channel); the notifier's audit record confirms it."""
    alert = state.alert(command.alert_id)
    alert.ack_requests.append(command)
    alert.ack_requests.sort(key=lambda c: (c.at, c.command_id))


# ------------------------------------------------------------------ queries


@dataclass(frozen=True)
class MissingRow:
    child_ref: str
    episode: Episode
    open_alerts: tuple[AlertView, ...]

    @property
    def unacknowledged(self) -> int:
        return sum(1 for a in self.open_alerts if a.needs_attention)

    @property
    def top_severity(self) -> Severity | None:
        ranked = [a.severity for a in self.open_alerts if a.severity is not None]
        return max(ranked, key=lambda s: s.rank) if ranked else None


def open_alerts_of(state: ViewState, child_ref: str) -> list[AlertView]:
    child = state.children.get(child_ref)
    if child is None:
        return []
    return sorted(
        (state.alerts[a] for a in child.alert_ids if a in state.alerts and state.alerts[a].is_open), key=alert_order
    )


_NEVER = datetime.max.replace(tzinfo=UTC)


def alert_order(alert: AlertView) -> tuple[int, int, datetime, str]:
    """Unacknowledged first, then the most severe, then the oldest."""
    return (0 if alert.needs_attention else 1, -alert.severity_rank, alert.raised_at or _NEVER, alert.alert_id)


def missing_now(state: ViewState) -> list[MissingRow]:
    """Every open episode, in the order an on-call person should look at them."""
    rows = [
        MissingRow(child_ref, state.children[child_ref].episodes[episode_ref], tuple(open_alerts_of(state, child_ref)))
        for child_ref, episode_ref in state.open_episodes
    ]

    def order(row: MissingRow) -> tuple[int, int, int, datetime, str]:
        top = row.top_severity
        return (
            0 if row.unacknowledged else 1,
            -(top.rank if top else -1),
            -RISK_RANK.get(row.episode.risk or "", -1),
            row.episode.started_at,
            row.child_ref,
        )  # type: ignore[return-value]

    return sorted(rows, key=order)


def open_alerts(state: ViewState) -> list[AlertView]:
    return sorted((state.alerts[a] for a in state.open_alert_ids), key=alert_order)


def timeline(state: ViewState, child_ref: str) -> list[TimelineEntry]:
    """The child's timeline with the acknowledgements asked for on its alerts merged in."""
    child = state.children.get(child_ref)
    if child is None:
        return []
    entries = list(child.entries)
    for alert_id in child.alert_ids:
        for command in state.alerts[alert_id].ack_requests if alert_id in state.alerts else ():
            verb = {"acknowledge": "Acknowledgement", "escalate": "Escalation", "close": "Closure"}[command.action]
            entries.append(
                TimelineEntry(
                    command.at,
                    "ack",
                    f"ack|{command.command_id}",
                    f"{verb} requested by {command.by} via {command.via}",
                    alert_id=alert_id,
                )
            )
    return sorted(entries, key=lambda e: e.sort_key)
