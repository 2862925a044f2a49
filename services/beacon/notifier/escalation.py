"""The escalation engine: a pure state machine, one state per alert.

    apply(state, input, now) -> (new state, actions)

Inputs: an alert raised (with its chain, resolved once from the on-call config and
then fixed), an alert resolved, an acknowledgement command, a delivery result, a
clock tick. Actions: send a notification (a ledger entry that the shell delivers),
and audit records. The state carries the notification ledger, keyed by
(step, person, channel) inside the alert, so a replayed input is a no-op.

Step numbers are global: with 2 policy steps repeated twice, steps run 1..6.
Step 0 is the resolution message ("child found") sent to everyone who was paged.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from beacon.core.acks import AckAction, AckCommand
from beacon.core.alerts import AlertRecord, Severity
from beacon.core.audit import AuditKind, AuditRecord
from beacon.notifier.oncall import OnCallConfig

Channel = Literal["sms", "email"]
RESOLUTION_STEP = 0
_SAFE_CASE_REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,39}$")
_MAX_SEEN_COMMANDS = 200
DEFAULT_RETENTION = timedelta(days=30)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---------------------------------------------------------------- the fixed chain
class Contact(_Model):
    channel: Channel
    to: str


class ChainTarget(_Model):
    person: str
    contacts: tuple[Contact, ...]


class ChainStep(_Model):
    delay_s: float
    ask: str
    targets: tuple[ChainTarget, ...]


class Chain(_Model):
    policy: str
    team: str
    steps: tuple[ChainStep, ...]
    repeat: int = 0
    first_role: str | None = None  # the alert's role that chose step 1; None: the policy's step 1
    hold_s: float = 0  # wait this long before step 1 (the policy's hold for the alert's severity)
    group_s: float = 0  # group wait: the episode's pages raised this close together leave as one

    @property
    def total_steps(self) -> int:
        return len(self.steps) * (self.repeat + 1)

    def step(self, number: int) -> ChainStep:
        return self.steps[(number - 1) % len(self.steps)]


def resolve_chain(config: OnCallConfig, alert: AlertRecord, at: datetime) -> Chain:
    """The concrete chain for ``alert`` as the rota stands at ``at``: who is paged at
    each step, by which contact methods in order. Fixed for the life of the alert.

    Who is paged first has one source: the role the council's policy names for the
    alert (``notify``, e.g. team_manager), filled from the alert's team. The route's
    policy decides only the later steps (and step 1 when the alert names no role the
    team has); a later step never pages again someone an earlier step paged, and a
    step left with nobody is skipped."""
    team_name = config.team_for(alert.council)
    team = config.teams[team_name]
    policy_name = config.policy_for(alert)
    policy = config.policies[policy_name]
    first = team.holder(alert.notify, at) if alert.notify else None
    steps: list[ChainStep] = []
    paged: set[str] = set()
    for number, step in enumerate(policy.steps):
        people: list[str] = []
        for target in step.targets:
            who = (
                team.rotation.on_call(at)
                if target.oncall
                else team.roles[target.role]
                if target.role
                else target.person
            )
            assert who is not None
            if who not in people:
                people.append(who)
        if number == 0 and first is not None:
            people = [first]
        people = [p for p in people if p not in paged]
        if not people:
            continue
        paged.update(people)
        targets = tuple(
            ChainTarget(
                person=p, contacts=tuple(Contact(channel=c.channel, to=c.to) for c in config.people[p].contacts)
            )
            for p in people
        )
        steps.append(ChainStep(delay_s=step.delay_minutes * 60, ask=step.ask, targets=targets))
    return Chain(
        policy=policy_name,
        team=team_name,
        steps=tuple(steps),
        repeat=policy.repeat,
        first_role=alert.notify if first is not None else None,
        hold_s=hold_for(policy.hold_for(alert.severity), alert),
        group_s=policy.group_seconds,
    )


# An alert the correlator raised while replaying a backlog (a history import, or catching
# up after downtime: ``AlertRecord.from_backlog``) waits at least PAST_ALERT_HOLD_S before
# its first page, whatever its severity: a past episode already over is resolved by the
# replay meanwhile (its found is right behind it) and pages nobody, and one still open
# pages two minutes late. A live alert is never held by this, however old the fact it is
# about (a report a case system delivers hours late pages at once).
PAST_ALERT_HOLD_S = 120.0


def hold_for(policy_hold_s: float, alert: AlertRecord) -> float:
    """The wait before an alert's first page: the policy's for its severity, and at least
    ``PAST_ALERT_HOLD_S`` for an alert raised from a backlog."""
    if alert.from_backlog:
        return max(policy_hold_s, PAST_ALERT_HOLD_S)
    return policy_hold_s


# ---------------------------------------------------------------- ledger and state
NoticeStatus = Literal["pending", "sent", "delivered", "failed", "cancelled"]


class Notice(_Model):
    """One notification in the ledger: an intent until the shell reports it sent."""

    key: str  # "<step>:<person>:<channel>" - unique within the alert
    kind: Literal["page", "resolution"]
    step: int
    person: str
    channel: Channel
    to: str
    contact_index: int
    ask: str
    status: NoticeStatus = "pending"
    created_at: AwareDatetime
    sent_at: AwareDatetime | None = None
    provider_id: str | None = None
    detail: str = ""


AlertStatus = Literal["active", "acknowledged", "closed", "resolved"]


class EscalationState(_Model):
    alert_id: str
    child_ref: str
    case_ref: str
    severity: Severity
    rule: str
    rule_step: str = ""  # the rule's step (e.g. "72h"): with the rule, names the reason
    occurred_at: AwareDatetime
    status: AlertStatus
    chain: Chain | None = None
    step: int = 0
    next_due: AwareDatetime | None = None
    exhausted: bool = False
    started_at: AwareDatetime
    first_paged_at: AwareDatetime | None = None
    acked_by: str | None = None
    acked_via: str | None = None
    acked_at: AwareDatetime | None = None
    resolved_at: AwareDatetime | None = None  # when the resolution arrived: the retention counts from it
    notices: dict[str, Notice] = Field(default_factory=dict)
    seen_commands: tuple[str, ...] = ()
    group: str = ""  # the episode ("<child>|<episode>"): its alerts' pages are grouped
    group_members: tuple[str, ...] = ()  # alerts that went out in this alert's pages: its ack is theirs
    bundles: dict[str, tuple[str, ...]] = Field(default_factory=dict)  # ack-all code -> the bundle's others

    @property
    def reply_code(self) -> str:
        return reply_code(self.alert_id)

    def paged_people(self) -> list[str]:
        return list(dict.fromkeys(n.person for n in self.notices.values() if n.kind == "page"))

    def to_json(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_json(cls, payload: bytes | str) -> EscalationState:
        return cls.model_validate_json(payload)


def reply_code(alert_id: str) -> str:
    """Short number a person types in front of a/e/c when replying by SMS (GoAlert
    style). Derived from the alert id, so every worker and every replay agree."""
    return str(100 + int(hashlib.sha256(alert_id.encode()).hexdigest()[:8], 16) % 900)


def bundle_code(alert_id: str, notice_key: str) -> str:
    """The code that acknowledges a whole bundle, named by its lead notification."""
    return reply_code(f"{alert_id}|{notice_key}|bundle")


def case_reference(alert: AlertRecord) -> str:
    """The episode reference if it looks like one (no spaces or free text), else the
    opaque alert id. Nothing else about the case ever leaves in a message."""
    if alert.episode_ref and _SAFE_CASE_REF.match(alert.episode_ref):
        return alert.episode_ref
    return alert.alert_id


# ---------------------------------------------------------------- inputs
class AlertRaised(_Model):
    type: Literal["raised"] = "raised"
    alert: AlertRecord
    chain: Chain


class AlertResolved(_Model):
    type: Literal["resolved"] = "resolved"
    alert: AlertRecord


class AckReceived(_Model):
    type: Literal["ack"] = "ack"
    command: AckCommand


DeliveryOutcome = Literal["sent", "delivered", "failed", "undelivered", "error"]


class DeliveryResult(_Model):
    type: Literal["delivery"] = "delivery"
    alert_id: str
    key: str
    outcome: DeliveryOutcome
    provider_id: str | None = None
    reason: str = ""
    group: tuple[str, ...] = ()  # the other alerts this alert's page carried (it led the page)
    bundle: tuple[str, ...] = ()  # the other alerts of the bundle this alert led


class Tick(_Model):
    type: Literal["tick"] = "tick"
    alert_id: str


class Expire(_Model):
    """The retention of a resolved alert may be over: if so, its state leaves the table."""

    type: Literal["expire"] = "expire"
    alert_id: str


AnyInput = AlertRaised | AlertResolved | AckReceived | DeliveryResult | Tick | Expire
Input = Annotated[AnyInput, Field(discriminator="type")]


class Envelope(_Model):
    """What travels on the notifier's internal topic, keyed by alert id."""

    at: AwareDatetime
    input: Input

    @property
    def alert_id(self) -> str:
        i = self.input
        return (
            i.alert.alert_id
            if isinstance(i, (AlertRaised, AlertResolved))
            else (i.command.alert_id if isinstance(i, AckReceived) else i.alert_id)
        )

    def to_json(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_json(cls, payload: bytes | str) -> Envelope:
        return cls.model_validate_json(payload)


# ---------------------------------------------------------------- actions
class SendNotification(_Model):
    alert_id: str
    notice: Notice


class Audit(_Model):
    record: AuditRecord


class ForwardAck(_Model):
    """The same acknowledgement, for an alert that went out in this alert's page."""

    command: AckCommand


Action = SendNotification | Audit | ForwardAck


# ---------------------------------------------------------------- the machine
def apply(
    state: EscalationState | None, inp: AnyInput, now: datetime, retention: timedelta = DEFAULT_RETENTION
) -> tuple[EscalationState | None, list[Action]]:
    """``(None, [])`` for a state that does not exist and is not created; a state that
    existed and comes back ``None`` has expired: the shell deletes it (a tombstone)."""
    if state is None and isinstance(inp, AlertRaised | AlertResolved) and too_old(inp.alert, now, retention):
        # Older than the retention: a replay or duplicate of an alert whose state may
        # already have expired. Its own emission time says so; no id is remembered.
        return None, []
    if isinstance(inp, AlertRaised):
        return _raised(state, inp, now)
    if state is None and isinstance(inp, AlertResolved):
        return _resolved_before_raised(inp, now)
    if state is None:
        return None, []  # an ack, receipt or tick for an alert we never paged: nothing to do
    if isinstance(inp, Expire):
        return (None, []) if expired(state, now, retention) else (state, [])
    if isinstance(inp, AlertResolved):
        return _resolved(state, now)
    if isinstance(inp, AckReceived):
        return _ack(state, inp.command, now)
    if isinstance(inp, DeliveryResult):
        return _delivery(state, inp, now)
    return _tick(state, now)


def too_old(alert: AlertRecord, now: datetime, retention: timedelta) -> bool:
    """An alert emitted (processing time) longer than the retention ago is never acted on
    afresh: a replay or duplicate of the alerts topic. Its event time is not the test: a
    child reported today as missing for 40 days has ladder alerts whose rule fired (their
    deadline) 39 days ago, and they must page; alerts raised from a backlog are held
    instead (``PAST_ALERT_HOLD_S``), so an episode already over pages nobody."""
    return now - alert.emitted_at >= retention


def expires_at(state: EscalationState, retention: timedelta) -> datetime | None:
    """When a resolved alert's state may leave the table: the retention after its
    resolution, and never while a notification (its resolution message) is pending.
    None while the alert is not resolved or something is still to be sent."""
    if state.status != "resolved" or any(n.status == "pending" for n in state.notices.values()):
        return None
    return (state.resolved_at or state.started_at) + retention


def expired(state: EscalationState, now: datetime, retention: timedelta) -> bool:
    at = expires_at(state, retention)
    return at is not None and now >= at


def _audit(
    state: EscalationState,
    kind: AuditKind,
    now: datetime,
    ident: str,
    *,
    person: str | None = None,
    channel: Channel | None = None,
    step: int | None = None,
    detail: str = "",
) -> Audit:
    return Audit(
        record=AuditRecord(
            audit_id=f"{state.alert_id}:{kind}:{ident}",
            kind=kind,
            at=now,
            alert_id=state.alert_id,
            child_ref=state.child_ref,
            person=person,
            channel=channel,
            step=step,
            detail=detail,
        )
    )


def _new_state(alert: AlertRecord, status: AlertStatus, chain: Chain | None, now: datetime) -> EscalationState:
    return EscalationState(
        group=f"{alert.child_ref}|{alert.episode_ref}" if alert.episode_ref else "",
        alert_id=alert.alert_id,
        child_ref=alert.child_ref,
        case_ref=case_reference(alert),
        severity=alert.severity,
        rule=alert.rule,
        rule_step=alert.step,
        occurred_at=alert.occurred_at,
        status=status,
        chain=chain,
        started_at=now,
    )


def _raised(
    state: EscalationState | None, inp: AlertRaised, now: datetime
) -> tuple[EscalationState | None, list[Action]]:
    if state is not None:
        return state, []  # replayed or re-emitted: the chain stays the one fixed at the start
    new = _new_state(inp.alert, "active", inp.chain, now)
    first = f" first={inp.chain.first_role}" if inp.chain.first_role else ""
    hold = f" hold={inp.chain.hold_s:g}s" if inp.chain.hold_s > 0 else ""
    actions: list[Action] = [_audit(new, "alert_raised", now, "0", detail=f"policy={inp.chain.policy}{first}{hold}")]
    if inp.chain.hold_s > 0:
        # Held: an episode already over (a backfill's report, then its found) resolves
        # the alert before anyone is paged. The tick at the end of the hold pages step 1.
        return new.model_copy(update={"next_due": now + timedelta(seconds=inp.chain.hold_s)}), actions
    new, paged = _page_step(new, 1, now, reason="start")
    return new, actions + paged


def _resolved_before_raised(inp: AlertResolved, now: datetime) -> tuple[EscalationState, list[Action]]:
    # Out of order (found before reported): remember it, so a late "raised" pages nobody.
    new = _new_state(inp.alert, "resolved", None, now).model_copy(update={"resolved_at": now})
    return new, [_audit(new, "alert_resolved", now, "0", detail="before_raised")]


def _page_step(state: EscalationState, number: int, now: datetime, reason: str) -> tuple[EscalationState, list[Action]]:
    chain = state.chain
    assert chain is not None
    if number > chain.total_steps:
        new = state.model_copy(update={"next_due": None, "exhausted": True})
        return new, [_audit(new, "escalation_step", now, f"{number}:exhausted", step=number, detail="chain_exhausted")]
    step = chain.step(number)
    notices = dict(state.notices)
    actions: list[Action] = [_audit(state, "escalation_step", now, str(number), step=number, detail=reason)]
    for target in step.targets:
        notice = _notice("page", number, target.person, target.contacts, 0, step.ask, now)
        if notice.key not in notices:
            notices[notice.key] = notice
            actions.append(SendNotification(alert_id=state.alert_id, notice=notice))
    new = state.model_copy(
        update={
            "step": number,
            "notices": notices,
            "next_due": now + timedelta(seconds=step.delay_s),
            "first_paged_at": state.first_paged_at or now,
        }
    )
    return new, actions


def _notice(
    kind: Literal["page", "resolution"],
    step: int,
    person: str,
    contacts: tuple[Contact, ...],
    index: int,
    ask: str,
    now: datetime,
) -> Notice:
    contact = contacts[index]
    return Notice(
        key=f"{step}:{person}:{contact.channel}",
        kind=kind,
        step=step,
        person=person,
        channel=contact.channel,
        to=contact.to,
        contact_index=index,
        ask=ask,
        created_at=now,
    )


def _contacts_of(state: EscalationState, person: str) -> tuple[Contact, ...]:
    assert state.chain is not None
    for step in state.chain.steps:
        for target in step.targets:
            if target.person == person:
                return target.contacts
    return ()


def _cancel_pending_pages(notices: dict[str, Notice]) -> dict[str, Notice]:
    return {
        k: (n.model_copy(update={"status": "cancelled"}) if n.kind == "page" and n.status == "pending" else n)
        for k, n in notices.items()
    }


def _take_back_late(state: EscalationState, notices: dict[str, Notice], notice: Notice, now: datetime) -> list[Action]:
    """A page that reached its person after the alert was resolved gets its resolution."""
    if notice.kind != "page" or state.status != "resolved":
        return []
    take_back = _take_back(state, notices, notice.person, now)
    return [take_back] if take_back is not None else []


def _reached(notice: Notice) -> bool:
    """The provider accepted it (a receipt can overtake the "sent" result) and no
    failure receipt came back."""
    return notice.status != "failed" and (notice.sent_at is not None or notice.status == "delivered")


def _tick(state: EscalationState, now: datetime) -> tuple[EscalationState, list[Action]]:
    if state.status != "active" or state.next_due is None or now < state.next_due:
        return state, []
    return _page_step(state, state.step + 1, now, reason="hold_over" if state.step == 0 else "no_ack_in_time")


def _ack(state: EscalationState, command: AckCommand, now: datetime) -> tuple[EscalationState, list[Action]]:
    if command.command_id in state.seen_commands:
        return state, []
    seen = (state.seen_commands + (command.command_id,))[-_MAX_SEEN_COMMANDS:]
    state = state.model_copy(update={"seen_commands": seen})
    if state.status != "active":
        return state, []  # already acknowledged, closed or resolved: one effect only
    if command.action == "escalate":
        return _page_step(state, state.step + 1, now, reason=f"requested_by={command.by}")
    kind: AuditKind = "acknowledged" if command.action == "acknowledge" else "closed"
    forwards: list[Action] = [
        ForwardAck(
            command=command.model_copy(
                update={"command_id": f"{command.command_id}>{member}"[:128], "alert_id": member}
            )
        )
        for member in state.group_members
    ]
    new = state.model_copy(
        update={
            "status": "acknowledged" if command.action == "acknowledge" else "closed",
            "acked_by": command.by,
            "acked_via": command.via,
            "acked_at": command.at,
            "next_due": None,
            "notices": _cancel_pending_pages(state.notices),
        }
    )
    audit = _audit(new, kind, now, "0", person=command.by, step=state.step, detail=f"via={command.via}")
    return new, [audit, *forwards]


def _resolved(state: EscalationState, now: datetime) -> tuple[EscalationState, list[Action]]:
    if state.status == "resolved":
        return state, []
    notices = _cancel_pending_pages(state.notices)
    never_paged = state.step == 0 and state.status == "active"
    actions: list[Action] = [_audit(state, "alert_resolved", now, "0", detail="within_hold" if never_paged else "")]
    for person in state.paged_people():
        action = _take_back(state, notices, person, now)
        if action is not None:
            actions.append(action)
    new = state.model_copy(update={"status": "resolved", "next_due": None, "notices": notices, "resolved_at": now})
    return new, actions


def _take_back(state: EscalationState, notices: dict[str, Notice], person: str, now: datetime) -> Action | None:
    """The resolution for ``person`` if a provider accepted a page for them and they
    have no resolution yet (adds it to ``notices``). A person never reached (every
    channel failed, or the page was withdrawn before it left) is not told."""
    if any(n.person == person and n.kind == "resolution" for n in notices.values()):
        return None
    reached = [n for n in notices.values() if n.person == person and n.kind == "page" and _reached(n)]
    if not reached:
        return None
    contacts = _contacts_of(state, person)
    index = max(reached, key=lambda n: n.created_at).contact_index  # the method that last worked
    notice = _notice("resolution", RESOLUTION_STEP, person, contacts, index, "No action needed.", now)
    notices[notice.key] = notice
    return SendNotification(alert_id=state.alert_id, notice=notice)


def _delivery(state: EscalationState, result: DeliveryResult, now: datetime) -> tuple[EscalationState, list[Action]]:
    # A result only exists for a message that reached the provider, so it counts even
    # when the notice was withdrawn (``cancelled``) by an ack or a resolution while it
    # was being handed over: the audit must say it was sent, and a resolved alert's
    # resolution must follow it.
    notice = state.notices.get(result.key)
    if notice is None:
        return state, []
    notices = dict(state.notices)
    actions: list[Action] = []
    if result.outcome == "sent":
        if notice.sent_at is not None:
            return state, []  # replayed
        status: NoticeStatus = "sent" if notice.status in ("pending", "cancelled") else notice.status
        notices[notice.key] = notice.model_copy(
            update={"status": status, "sent_at": now, "provider_id": result.provider_id}
        )
        members = tuple(dict.fromkeys(state.group_members + result.group))
        kind: AuditKind = "notification_sent" if notice.kind == "page" else "resolution_sent"
        actions.append(
            _audit(state, kind, now, notice.key, person=notice.person, channel=notice.channel, step=notice.step)
        )
        actions += _take_back_late(state, notices, notice, now)
        bundles = {**state.bundles, bundle_code(state.alert_id, notice.key): result.bundle} if result.bundle else None
        update: dict[str, object] = {"notices": notices, "group_members": members}
        if bundles is not None:
            update["bundles"] = bundles
        return state.model_copy(update=update), actions
    if notice.status == "failed":
        return state, []
    if result.outcome == "delivered":
        if notice.status == "delivered":
            return state, []
        notices[notice.key] = notice.model_copy(update={"status": "delivered"})
        actions.append(
            _audit(
                state,
                "delivery_status",
                now,
                f"{notice.key}:delivered",
                person=notice.person,
                channel=notice.channel,
                step=notice.step,
                detail="delivered",
            )
        )
        actions += _take_back_late(state, notices, notice, now)
        return state.model_copy(update={"notices": notices}), actions
    # failed / undelivered / error: this contact method is done; fall back to the next one
    detail = f"{result.outcome}:{result.reason}"[:80]
    notices[notice.key] = notice.model_copy(update={"status": "failed", "detail": detail})
    kind = "delivery_status" if result.outcome in ("failed", "undelivered") else "notification_failed"
    actions.append(
        _audit(
            state,
            kind,
            now,
            f"{notice.key}:failed",
            person=notice.person,
            channel=notice.channel,
            step=notice.step,
            detail=detail,
        )
    )
    contacts = _contacts_of(state, notice.person)
    live = state.status == "active" or notice.kind == "resolution"
    # A page falls back down the person's list; a resolution also tries the methods
    # before the one it went by (a page's failed SMS may work again for the resolution).
    after = list(range(notice.contact_index + 1, len(contacts)))
    order = after + list(range(notice.contact_index)) if notice.kind == "resolution" else after
    for next_index in order if live else ():
        fallback = _notice(notice.kind, notice.step, notice.person, contacts, next_index, notice.ask, now)
        if fallback.key not in notices:
            notices[fallback.key] = fallback
            actions.append(
                _audit(
                    state,
                    "fallback",
                    now,
                    notice.key,
                    person=notice.person,
                    channel=fallback.channel,
                    step=notice.step,
                    detail=f"{notice.channel}->{fallback.channel}",
                )
            )
            actions.append(SendNotification(alert_id=state.alert_id, notice=fallback))
            return state.model_copy(update={"notices": notices}), actions
    new = state.model_copy(update={"notices": notices})
    if notice.kind == "page" and new.status == "active" and notice.step == new.step and _step_unreachable(new):
        # Every contact method of every target of this step failed: waiting out the
        # delay would only lose time, so escalate now.
        new, paged = _page_step(new, new.step + 1, now, reason="step_unreachable")
        actions += paged
    return new, actions


def _step_unreachable(state: EscalationState) -> bool:
    current = [n for n in state.notices.values() if n.kind == "page" and n.step == state.step]
    return bool(current) and all(n.status == "failed" for n in current)


# ------------------------------------------------------------------ SMS replies

_REPLY = re.compile(r"^\s*(\d{3})\s*([aec])\s*$", re.IGNORECASE)
_REPLY_ACTIONS: dict[str, AckAction] = {"a": "acknowledge", "e": "escalate", "c": "close"}
_REPLY_VERBS = {"a": "Acknowledged", "e": "Escalating", "c": "Closed"}


@dataclass(frozen=True)
class SmsReplyDecision:
    """What to answer a person's SMS reply, and the command to issue, if any."""

    text: str
    alert_id: str | None = None
    action: AckAction | None = None
    also: tuple[str, ...] = ()  # the same command for these alerts too (the rest of a bundle)


def parse_sms_reply(body: str) -> tuple[str, str] | None:
    """``"123a"`` -> ("123", "a"); None if it is not a reply code."""
    match = _REPLY.match(body)
    return (match.group(1), match.group(2).lower()) if match else None


def sms_reply(code: str, letter: str, states: list[EscalationState]) -> SmsReplyDecision:
    """GoAlert-style reply: ``states`` are the alerts sent to this person whose reply
    code, or whose bundle's ack-all code, is ``code``. A bundle's code acts on every
    alert it listed (when no open alert has the same code); an alert's code, on exactly
    one open alert; otherwise explain."""
    own = [s for s in states if s.reply_code == code or code not in s.bundles]
    bundles = [s for s in states if code in s.bundles]
    if len(bundles) == 1 and not [s for s in own if s.status == "active"]:
        lead = bundles[0]
        also = lead.bundles[code]
        return SmsReplyDecision(
            f"{_REPLY_VERBS[letter]}: {len(also) + 1} alerts in that message. Thank you.",
            alert_id=lead.alert_id,
            action=_REPLY_ACTIONS[letter],
            also=also,
        )
    states = own
    active = [s for s in states if s.status == "active"]
    if len(active) > 1:
        return SmsReplyDecision(f"Code {code} matches several open alerts; please use the link in the message.")
    if not states:
        return SmsReplyDecision(f"No alert with code {code} was sent to you.")
    if not active:
        s = states[0]
        return SmsReplyDecision(
            f"Case {s.case_ref} is already {s.status}" + (f" by {s.acked_by}." if s.acked_by else ".")
        )
    state = active[0]
    return SmsReplyDecision(
        f"{_REPLY_VERBS[letter]}: case {state.case_ref}. Thank you.",
        alert_id=state.alert_id,
        action=_REPLY_ACTIONS[letter],
    )
