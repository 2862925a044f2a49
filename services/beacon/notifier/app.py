"""Notifier worker (thin shell around ``escalation.apply``).

Data flow, all keyed by alert id on one internal topic so one agent owns each
alert's state (the ``escalations`` table, changelogged):

    ALERTS  --route_alerts--> inputs (raised + its fixed chain, or resolved)
    ACKS    --route_acks----> inputs (acknowledge / escalate / close)
    timer   ----------------> inputs (tick, when an alert's step delay has passed)
    sender  ----------------> inputs (delivery result: sent / error)
    Twilio status callback -> inputs (delivered / failed / undelivered)
    inputs  --escalate------> table (state + notification ledger), AUDIT, NOTIFICATIONS

Send path: the agent writes a notification as a *pending* ledger entry and flushes
the changelog before the dispatcher sends it; the dispatcher reports the outcome
back as an input, which marks it sent. A crash before the send leaves it pending
and the restarted worker sends it (nothing lost). A crash between the provider
accepting and the "sent" result reaching Kafka (a few milliseconds) also leaves
it pending, so that one message is sent again after the restart: at-least-once,
never zero. Emails carry a deterministic Message-ID so mail clients fold the copy.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import html
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import faust
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

from beacon.core.acks import AckCommand
from beacon.core.alerts import AlertRecord
from beacon.core.decoding import Rejected, safe_decode, send_dead_letter
from beacon.core.faust_app import guarded_timer, make_faust_app
from beacon.core.logs import configure_logging, get_logger
from beacon.core.metrics import (
    ACK_LATENCY,
    END_TO_END_LATENCY,
    ESCALATION_STEPS,
    NOTIFICATIONS,
    NOTIFICATIONS_FAILED,
    UNACKNOWLEDGED_CRITICAL,
)
from beacon.core.notifications import NotificationRecord
from beacon.core.rate_limit import BadCredentialLimiter, retry_after_header
from beacon.core.settings import load_settings
from beacon.core.topics import ACKS, ALERTS, AUDIT, EVENTS_DLQ
from beacon.core.topics import NOTIFICATIONS as NOTIFICATIONS_TOPIC
from beacon.core.topics import NOTIFIER_INPUTS as INPUTS
from beacon.core.wording import reason, reason_words, severity_word
from beacon.notifier.channels import Channel, DeliveryError, Outbox, SmtpEmail, TwilioSms
from beacon.notifier.clock import Clock
from beacon.notifier.dispatch import PendingRef, plan_sends
from beacon.notifier.escalation import (
    AckReceived,
    AlertRaised,
    AlertResolved,
    Audit,
    DeliveryResult,
    Envelope,
    EscalationState,
    ForwardAck,
    Notice,
    SendNotification,
    Tick,
    apply,
    bundle_code,
    parse_sms_reply,
    resolve_chain,
    sms_reply,
)
from beacon.notifier.http_input import Refusal, parse_api_ack, parse_clock_advance
from beacon.notifier.links import LINK_PATH, LinkError, link_tag, make_token, read_token
from beacon.notifier.oncall import load_oncall
from beacon.notifier.settings import NotifierSettings
from beacon.notifier.templates import MessageFields, bundle_email, bundle_sms, render_page

FULL_SCAN_EVERY_S = 5.0
TICK_RESEND_AFTER_S = 5.0

settings = load_settings(NotifierSettings)


configure_logging(settings.log_level)
log = get_logger("notifier")
oncall = load_oncall(settings.oncall_file)
clock = Clock(settings.data_dir / "notifier" / "clock_offset_s" if settings.notifier_test_clock else None)

app = make_faust_app("notifier", settings, settings.notifier_port)
alerts_topic = app.topic(ALERTS, key_serializer="raw", value_serializer="raw")
acks_topic = app.topic(ACKS, key_serializer="raw", value_serializer="raw")
audit_topic = app.topic(AUDIT, key_serializer="raw", value_serializer="raw")
ledger_topic = app.topic(NOTIFICATIONS_TOPIC, key_serializer="raw", value_serializer="raw")
dlq_topic = app.topic(EVENTS_DLQ, key_serializer="raw", value_serializer="raw")
inputs_topic = app.topic(
    INPUTS, key_serializer="raw", value_serializer="raw", internal=True, partitions=settings.topic_partitions
)
escalations = app.Table("escalations", default=None, key_type=str, partitions=settings.topic_partitions)

outbox_file = settings.outbox_dir / "notifications.jsonl"
channels: dict[str, Channel] = {
    "sms": TwilioSms(
        settings.twilio_account_sid,
        settings.twilio_auth_token.get_secret_value(),
        settings.twilio_from_number,
        settings.twilio_api_base_url,
        settings.notifier_send_timeout_s,
        settings.notifier_send_attempts,
        settings.notifier_retry_backoff_s,
    )
    if settings.twilio_account_sid
    else Outbox("sms", outbox_file),
    "email": SmtpEmail(
        settings.smtp_host,
        settings.smtp_port,
        settings.smtp_username,
        settings.smtp_password.get_secret_value(),
        settings.smtp_from,
        settings.smtp_starttls,
        settings.smtp_ca_file,
        settings.notifier_send_timeout_s,
        settings.notifier_send_attempts,
        settings.notifier_retry_backoff_s,
    )
    if settings.smtp_host
    else Outbox("email", outbox_file),
}
# Longest a send can take with every retry, plus a margin; after that it is retried.
STALE_SEND_S = (
    settings.notifier_send_attempts * (settings.notifier_send_timeout_s + 16 * settings.notifier_retry_backoff_s) + 30
)
twilio_validator = RequestValidator(settings.twilio_auth_token.get_secret_value())
base_url = settings.public_base_url.rstrip("/")


class Index:
    """In-process view of the table for the timer and the dispatcher: which notices
    are pending and when each active alert is next due. Maintained by the agent and
    rebuilt from the table every few seconds (after a restart or rebalance too)."""

    def __init__(self) -> None:
        self.pending: dict[tuple[str, str], PendingRef] = {}
        self.due: dict[str, datetime] = {}
        self.in_flight: dict[tuple[str, str], float] = {}  # ref -> loop time the send started
        self.last_sent: dict[tuple[str, str], datetime] = {}
        self.paged_rank: dict[tuple[tuple[str, str], str], int] = {}  # (contact, group) -> highest paged
        self.tick_sent: dict[str, float] = {}
        self.first_page_seen: set[str] = set()
        self.links: dict[str, tuple[str, str]] = {}  # ack link tag -> (alert id, notice key)
        self.wake: asyncio.Event | None = None

    def update(self, state: EscalationState) -> None:
        for key, notice in state.notices.items():
            ref = (state.alert_id, key)
            self.links[link_tag(state.alert_id, key)] = ref
            if notice.status == "pending":
                self.pending[ref] = pending_ref(state, key, notice)
            else:
                self.pending.pop(ref, None)
                self.in_flight.pop(ref, None)
        if state.status == "active" and state.next_due is not None:
            self.due[state.alert_id] = state.next_due
        else:
            self.due.pop(state.alert_id, None)
            self.tick_sent.pop(state.alert_id, None)

    def poke(self) -> None:
        if self.wake is not None:
            self.wake.set()


index = Index()


def pending_ref(state: EscalationState, key: str, notice: Notice) -> PendingRef:
    """What the dispatcher plans with: contact, age, severity and the page group
    (an episode's pages, or its resolutions)."""
    return PendingRef(
        state.alert_id,
        key,
        notice.channel,
        notice.to,
        notice.created_at,
        state.severity.rank,
        f"{notice.kind}|{state.group}" if state.group else "",
        state.chain.group_s if state.chain else 0.0,
    )


def load_state(alert_id: str) -> EscalationState | None:
    raw = escalations.get(alert_id)
    return EscalationState.model_validate(raw) if raw else None


async def send_input(alert_id: str, inp: Any) -> None:
    envelope = Envelope(at=clock.now(), input=inp)
    await inputs_topic.send(key=alert_id.encode(), value=envelope.to_json())


# ------------------------------------------------------------------ agents
@app.agent(alerts_topic)
async def route_alerts(stream: Any) -> None:
    async for event in stream.events():
        alert = safe_decode(event.message.value, AlertRecord.from_json)
        if isinstance(alert, Rejected):
            await send_dead_letter(dlq_topic, event.message, alert, "notifier")
            continue
        if alert.status == "raised":
            # The chain is fixed here, once: who is on call now is who gets paged.
            chain = resolve_chain(oncall, alert, clock.now())
            if alert.notify and chain.first_role is None:
                log.warning("notify_role_unknown", role=alert.notify, team=chain.team, alert_id=alert.alert_id)
            inp: Any = AlertRaised(alert=alert, chain=chain)
        else:
            inp = AlertResolved(alert=alert)
        await send_input(alert.alert_id, inp)


@app.agent(acks_topic)
async def route_acks(stream: Any) -> None:
    async for event in stream.events():
        command = safe_decode(event.message.value, AckCommand.from_json)
        if isinstance(command, Rejected):
            await send_dead_letter(dlq_topic, event.message, command, "notifier")
            continue
        await send_input(command.alert_id, AckReceived(command=command))


@app.agent(inputs_topic)
async def escalate(stream: Any) -> None:
    async for event in stream.events():
        envelope = safe_decode(event.message.value, Envelope.from_json)
        if isinstance(envelope, Rejected):
            await send_dead_letter(dlq_topic, event.message, envelope, "notifier")
            continue
        alert_id = envelope.alert_id
        before = load_state(alert_id)
        now = clock.now()
        after, actions = apply(before, envelope.input, now)
        if after is None or after == before:
            continue
        escalations[alert_id] = after.model_dump(mode="json")
        await record(before, after, actions, now)
        # The intent must be in Kafka before anything is sent (see the module docstring).
        await app.producer.flush()
        index.update(after)
        if any(isinstance(a, SendNotification) for a in actions):
            index.poke()


async def record(before: EscalationState | None, after: EscalationState, actions: list[Any], now: datetime) -> None:
    for action in actions:
        if isinstance(action, ForwardAck):
            await send_input(action.command.alert_id, AckReceived(command=action.command))
        if isinstance(action, Audit):
            rec = action.record
            await audit_topic.send(key=rec.key, value=rec.to_json())
            log.info(
                "audit",
                kind=rec.kind,
                alert_id=rec.alert_id,
                person=rec.person,
                channel=rec.channel,
                step=rec.step,
                detail=rec.detail,
            )
            if rec.kind == "escalation_step" and rec.detail != "chain_exhausted":
                ESCALATION_STEPS.labels(step=str(rec.step)).inc()
            if rec.kind in ("acknowledged", "closed") and after.first_paged_at is not None:
                via = after.acked_via or "unknown"
                ACK_LATENCY.labels(via=via).observe(max(0.0, (now - after.first_paged_at).total_seconds()))
    old = before.notices if before else {}
    for key, notice in after.notices.items():
        if old.get(key) != notice:
            ledger = NotificationRecord(
                alert_id=after.alert_id,
                key=key,
                kind=notice.kind,
                step=notice.step,
                person=notice.person,
                channel=notice.channel,
                status=notice.status,
                at=now,
            )
            await ledger_topic.send(key=ledger.record_key, value=ledger.to_json())


# ------------------------------------------------------------------ timer and dispatcher
_last_full_scan = 0.0


def full_scan() -> None:
    """Rebuild the index from the table and refresh the unacknowledged gauge."""
    counts: dict[tuple[str, str], int] = {}
    pending, due, links = {}, {}, {}
    for alert_id, raw in list(escalations.items()):
        if not raw:
            continue
        state = EscalationState.model_validate(raw)
        for key, notice in state.notices.items():
            links[link_tag(alert_id, key)] = (alert_id, key)
            if notice.status == "pending":
                pending[(alert_id, key)] = pending_ref(state, key, notice)
        if state.status == "active":
            if state.next_due is not None:
                due[alert_id] = state.next_due
            if state.first_paged_at is not None:
                label = (state.severity.value, "true" if state.exhausted else "false")
                counts[label] = counts.get(label, 0) + 1
    index.pending, index.due, index.links = pending, due, links
    # A send whose outcome never came back (e.g. its result could not be produced) is
    # tried again rather than left stalled: at-least-once, never a silent lost page.
    loop_now = asyncio.get_running_loop().time()
    index.in_flight = {
        ref: started for ref, started in index.in_flight.items() if ref in pending and loop_now - started < STALE_SEND_S
    }
    for severity in ("low", "medium", "high", "critical"):
        for exhausted in ("true", "false"):
            UNACKNOWLEDGED_CRITICAL.labels(severity=severity, exhausted=exhausted).set(
                counts.get((severity, exhausted), 0)
            )


@guarded_timer(app, settings.notifier_tick_interval_s, "escalation")
async def escalation_timer() -> None:
    global _last_full_scan
    if app.rebalancing:
        return
    loop_now = asyncio.get_running_loop().time()
    if loop_now - _last_full_scan >= FULL_SCAN_EVERY_S:
        full_scan()
        _last_full_scan = loop_now
        index.poke()
    now = clock.now()
    for alert_id, due in list(index.due.items()):
        if due <= now and loop_now - index.tick_sent.get(alert_id, -1e9) >= TICK_RESEND_AFTER_S:
            index.tick_sent[alert_id] = loop_now
            await send_input(alert_id, Tick(alert_id=alert_id))


@app.task
async def dispatcher() -> None:
    index.wake = asyncio.Event()
    while True:
        try:
            await asyncio.wait_for(index.wake.wait(), timeout=0.5)
        except TimeoutError:
            pass
        index.wake.clear()
        try:
            await dispatch_once()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("loop_failed", loop="dispatcher")


async def dispatch_once() -> None:
    if app.rebalancing:
        return
    ready = [ref for key, ref in index.pending.items() if key not in index.in_flight]
    if not ready:
        return
    now = clock.now()
    plan = plan_sends(
        ready,
        index.last_sent,
        now,
        timedelta(seconds=settings.notifier_contact_min_interval_s),
        settings.notifier_max_bundle,
        index.paged_rank,
    )
    for message in plan.send_now:
        pages: list[list[tuple[EscalationState, Notice]]] = []
        for page in message.pages:
            items: list[tuple[EscalationState, Notice]] = []
            for ref in page.refs:
                state = load_state(ref.alert_id)
                notice = state.notices.get(ref.key) if state else None
                if state is None or notice is None or notice.status != "pending":
                    index.pending.pop((ref.alert_id, ref.key), None)
                    continue
                items.append((state, notice))
            if items:
                pages.append(items)
        if not pages:
            continue
        contact = message.refs[0].contact
        if not message.past_the_limit:  # a page sent early must not hold the others back longer
            index.last_sent[contact] = now
        for page in message.pages:
            if page.refs[0].group:
                key = (contact, page.refs[0].group_key)
                index.paged_rank[key] = max(index.paged_rank.get(key, -1), page.severity_rank)
        started = asyncio.get_running_loop().time()
        index.in_flight.update({(s.alert_id, n.key): started for page in pages for s, n in page})
        asyncio.ensure_future(deliver_guarded(pages, message.more))


def message_fields(state: EscalationState, notice: Notice) -> MessageFields:
    token = make_token(
        settings.ack_link_secret.get_secret_value(),
        state.alert_id,
        notice.key,
        notice.created_at,
        timedelta(minutes=settings.ack_link_ttl_minutes),
    )
    headline, _ = reason_words(state.rule, state.rule_step)
    return MessageFields(
        case_ref=state.case_ref,
        severity=severity_word(state.severity),
        reason=reason(state.rule, state.rule_step),
        reason_headline=headline,
        ask=notice.ask,
        reply_code=state.reply_code,
        ack_url=f"{base_url}{LINK_PATH}{token}",
    )


async def deliver_guarded(pages: list[list[tuple[EscalationState, Notice]]], more: int = 0) -> None:
    """A bug in rendering or a channel must not lose the page silently: report it as a
    failed attempt, so the engine falls back to the next contact method."""
    items = [item for page in pages for item in page]
    try:
        await deliver(pages, more)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("deliver_failed", alerts=[s.alert_id for s, _ in items])
        NOTIFICATIONS_FAILED.labels(channel=items[0][1].channel, reason="internal").inc()
        for s, n in items:
            await send_input(
                s.alert_id, DeliveryResult(alert_id=s.alert_id, key=n.key, outcome="error", reason="internal")
            )


def sent_results(pages: list[list[tuple[EscalationState, Notice]]], provider_id: str) -> list[DeliveryResult]:
    """One "sent" result per notification; a page's lead (its first alert) also learns
    which other alerts went out in its page, so acknowledging it acknowledges them, and
    the bundle's lead which others the bundle listed (its ack-all code)."""
    everyone = tuple(dict.fromkeys(s.alert_id for page in pages for s, _ in page))
    results = []
    for number, page in enumerate(pages):
        lead = page[0][0].alert_id
        others = tuple(dict.fromkeys(s.alert_id for s, _ in page if s.alert_id != lead))
        for i, (s, n) in enumerate(page):
            results.append(
                DeliveryResult(
                    alert_id=s.alert_id,
                    key=n.key,
                    outcome="sent",
                    provider_id=provider_id,
                    group=others if i == 0 else (),
                    bundle=everyone[1:] if number == 0 and i == 0 and len(pages) > 1 else (),
                )
            )
    return results


async def deliver(pages: list[list[tuple[EscalationState, Notice]]], more: int = 0) -> None:
    items = [item for page in pages for item in page]
    first_state, first = items[0]
    channel = channels[first.channel]
    rendered = [render_page(page[0][1].kind, first.channel, [message_fields(s, n) for s, n in page]) for page in pages]
    ack_all = bundle_code(first_state.alert_id, first.key) if len(pages) > 1 and first.kind == "page" else ""
    if first.channel == "sms":
        subject, body = "", bundle_sms([r.body for r in rendered], more, ack_all)
    else:
        bundled = bundle_email(rendered, more, ack_all)
        subject, body = bundled.subject, bundled.body
    refs = ",".join(f"{s.alert_id}|{n.key}" for s, n in items)
    callback = f"{base_url}/webhooks/twilio/status?{urlencode({'refs': refs})}" if channel.mode == "sms" else None
    meta: dict[str, object] = {
        "alert_id": first_state.alert_id,
        "alert_ids": [s.alert_id for s, _ in items],
        "kind": first.kind,
        "step": first.step,
        "person": first.person,
        "ledger_key": f"{first_state.alert_id}:{first.key}",
    }
    try:
        provider_id = await channel.send(first.to, subject, body, callback, meta)
    except DeliveryError as exc:
        NOTIFICATIONS.labels(channel=first.channel, outcome="failed").inc()
        NOTIFICATIONS_FAILED.labels(channel=first.channel, reason=exc.reason).inc()
        log.warning(
            "send_failed",
            channel=first.channel,
            person=first.person,
            reason=exc.reason,
            alerts=[s.alert_id for s, _ in items],
        )
        for s, n in items:
            await send_input(
                s.alert_id, DeliveryResult(alert_id=s.alert_id, key=n.key, outcome="error", reason=exc.reason)
            )
    else:
        NOTIFICATIONS.labels(channel=first.channel, outcome="sent").inc()
        real_now = datetime.now(UTC)
        for s, n in items:
            if n.kind == "page" and s.alert_id not in index.first_page_seen:
                index.first_page_seen.add(s.alert_id)
                END_TO_END_LATENCY.observe(max(0.0, (real_now - s.occurred_at).total_seconds()))
        for result in sent_results(pages, provider_id):
            await send_input(result.alert_id, result)
        log.info(
            "sent", channel=first.channel, mode=channel.mode, person=first.person, alerts=[s.alert_id for s, _ in items]
        )
    await app.producer.flush()


# ------------------------------------------------------------------ HTTP
_used_links: set[str] = set()


def _twilio_signature_ok(request: Any, params: dict[str, str]) -> bool:
    if not settings.twilio_account_sid:
        return False  # no auth token configured: nothing can be verified, refuse everything
    url = base_url + request.path_qs
    return bool(twilio_validator.validate(url, params, request.headers.get("X-Twilio-Signature", "")))


async def _verified_twilio_params(request: Any, hook: str) -> dict[str, str] | int:
    """The webhook's form parameters, or the status refusing it: 415 for a body that is not
    a form (Twilio only sends application/x-www-form-urlencoded), 400 for a form that cannot
    be read, 403 when X-Twilio-Signature does not verify."""
    if request.content_type != "application/x-www-form-urlencoded":
        return 415
    try:
        params = {k: str(v) for k, v in (await request.post()).items()}
    except ValueError:
        return 400
    if not _twilio_signature_ok(request, params):
        log.warning("webhook_forged", hook=hook)
        return 403
    return params


_REFUSED = {400: "malformed form", 403: "forbidden", 415: "send application/x-www-form-urlencoded"}


def _twiml(text: str) -> str:
    response = MessagingResponse()
    response.message(text)
    return str(response)


def _states_for(person: str, code: str) -> list[EscalationState]:
    found = []
    for _, raw in list(escalations.items()):
        if raw:
            state = EscalationState.model_validate(raw)
            if (state.reply_code == code or code in state.bundles) and person in state.paged_people():
                found.append(state)
    return found


@app.page("/webhooks/twilio/sms")
class InboundSms(faust.web.View):
    """Twilio inbound-message webhook: ``<code>a`` acknowledges, ``e`` escalates, ``c`` closes."""

    async def post(self, request: Any) -> Any:
        params = await _verified_twilio_params(request, "sms")
        if isinstance(params, int):
            return self.text(_REFUSED[params], status=params)
        person = oncall.person_by_contact("sms", params.get("From", ""))
        reply = parse_sms_reply(params.get("Body", ""))
        if person is None:
            text = "Beacon does not know this number."
        elif reply is None:
            text = "Reply with the code from the alert, e.g. 123a to acknowledge."
        else:
            code, letter = reply
            decision = sms_reply(code, letter, _states_for(person, code))
            text = decision.text
            if decision.alert_id and decision.action:
                sid = params.get("MessageSid") or hashlib.sha256(repr(sorted(params.items())).encode()).hexdigest()[:32]
                for alert_id in (decision.alert_id, *decision.also):
                    command = AckCommand(
                        command_id=f"sms:{sid}" if alert_id == decision.alert_id else f"sms:{sid}>{alert_id}"[:128],
                        alert_id=alert_id,
                        action=decision.action,
                        by=person,
                        via="sms",
                        at=clock.now(),
                    )  # type: ignore[arg-type]
                    await acks_topic.send(key=command.key, value=command.to_json())
        return self.bytes(_twiml(text).encode(), content_type="text/xml")


@app.page("/webhooks/twilio/status")
class StatusCallback(faust.web.View):
    """Twilio delivery receipts (signed): delivered, or failed/undelivered -> fallback."""

    async def post(self, request: Any) -> Any:
        params = await _verified_twilio_params(request, "status")
        if isinstance(params, int):
            return self.text(_REFUSED[params], status=params)
        status = params.get("MessageStatus", "")
        if status in ("delivered", "failed", "undelivered"):
            NOTIFICATIONS.labels(channel="sms", outcome=status).inc()
            if status != "delivered":
                NOTIFICATIONS_FAILED.labels(channel="sms", reason=f"carrier_{status}").inc()
            for ref in request.query.get("refs", "").split(","):
                alert_id, _, key = ref.partition("|")
                if alert_id and key:
                    await send_input(
                        alert_id,
                        DeliveryResult(
                            alert_id=alert_id,
                            key=key,
                            outcome=status,  # type: ignore[arg-type]
                            provider_id=params.get("MessageSid"),
                            reason=params.get("ErrorCode", "")[:20],
                        ),
                    )
        return self.text("", status=204)


def _page(title: str, message: str, form_action: str | None = None, status: int = 200) -> tuple[str, int]:
    form = (
        (f'<form method="post" action="{html.escape(form_action)}"><button type="submit">Acknowledge</button></form>')
        if form_action
        else ""
    )
    body = (
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>Beacon: {html.escape(title)}</title>"
        f"<meta name=viewport content='width=device-width'></head><body><h1>{html.escape(title)}</h1>"
        f"<p>{html.escape(message)}</p>{form}</body></html>"
    )
    return body, status


@dataclass(frozen=True)
class _LinkTarget:
    alert_id: str
    person: str
    command_id: str


def _find_link(tag: str) -> tuple[str, str] | None:
    """(alert id, notice key) of the notification whose link carries ``tag``."""
    found = index.links.get(tag)
    if found is None:  # not indexed yet (just restarted): look through the table
        for alert_id, raw in list(escalations.items()):
            for key in (raw or {}).get("notices", {}):
                if link_tag(alert_id, key) == tag:
                    return alert_id, key
    return found


def _check_link(token: str) -> tuple[_LinkTarget | None, EscalationState | None, tuple[str, int] | None]:
    try:
        link = read_token(settings.ack_link_secret.get_secret_value(), token, clock.now())
    except LinkError as exc:
        if exc.reason == "expired":
            return (
                None,
                None,
                _page(
                    "Link expired",
                    "This acknowledgement link has expired. Reply to the SMS with the code, or use the console.",
                    status=410,
                ),
            )
        return None, None, _page("Invalid link", "This acknowledgement link is not valid.", status=400)
    found = _find_link(link.tag)
    state = load_state(found[0]) if found else None
    notice = state.notices.get(found[1]) if state and found else None
    if state is None or notice is None:
        return None, None, _page("Unknown alert", "This alert is not known to this notifier.", status=404)
    target = _LinkTarget(alert_id=state.alert_id, person=notice.person, command_id=link.command_id)
    if link.command_id in _used_links or link.command_id in state.seen_commands:
        return target, state, _page("Link already used", "This acknowledgement link has already been used.", status=409)
    if state.status != "active":
        return (
            target,
            state,
            _page("Nothing to acknowledge", f"Case {state.case_ref} is already {state.status}.", status=409),
        )
    return target, state, None


@app.page(LINK_PATH + "{token}")
class AckLinkView(faust.web.View):
    """GET shows a confirmation page (link scanners must not acknowledge); POST acknowledges."""

    async def get(self, request: Any, token: str) -> Any:
        _, state, refusal = _check_link(token)
        if refusal:
            return self.html(refusal[0], status=refusal[1])
        assert state is not None
        body, status = _page(
            f"Acknowledge case {state.case_ref}?",
            f"{severity_word(state.severity)}: {reason(state.rule, state.rule_step)}. "
            "Acknowledging stops the escalation.",
            form_action=f"{base_url}{LINK_PATH}{token}",
        )
        return self.html(body, status=status)

    async def post(self, request: Any, token: str) -> Any:
        target, _, refusal = _check_link(token)
        if refusal:
            return self.html(refusal[0], status=refusal[1])
        assert target is not None
        _used_links.add(target.command_id)
        command = AckCommand(
            command_id=target.command_id,
            alert_id=target.alert_id,
            action="acknowledge",
            by=target.person,
            via="link",
            at=clock.now(),
        )
        await acks_topic.send(key=command.key, value=command.to_json())
        body, status = _page("Acknowledged", "Thank you: the escalation stops and this is recorded.")
        return self.html(body, status=status)


_bad_credentials = BadCredentialLimiter(settings.http_bad_auth_rate_per_s, settings.http_bad_auth_burst)


def _api_authorised(request: Any) -> bool:
    expected = settings.notifier_api_token.get_secret_value()
    given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    return bool(expected) and hmac.compare_digest(given.encode(), expected.encode())


def _api_refusal(view: faust.web.View, request: Any) -> Any:
    """401, or 429 once this address has sent too many requests without the token."""
    wait_s = _bad_credentials.refused(request.remote or "unknown", time.monotonic())
    if wait_s > 0:
        return view.json(
            {"error": "too many requests without a valid token; retry later"},
            status=429,
            headers={"Retry-After": retry_after_header(wait_s)},
        )
    return view.json({"error": "unauthorised"}, status=401)


@app.page("/v1/alerts/{alert_id}/ack")
class ApiAck(faust.web.View):
    async def post(self, request: Any, alert_id: str) -> Any:
        if not _api_authorised(request):
            return _api_refusal(self, request)
        parsed = parse_api_ack(await request.read())  # read already: http_server.aiohttp_body_deadline
        if isinstance(parsed, Refusal):
            return self.json(parsed.body(), status=parsed.status)
        if load_state(alert_id) is None:
            return self.json({"error": "unknown alert"}, status=404)
        action, by = parsed.action, parsed.by
        command_id = (
            parsed.command_id
            or f"api:{hashlib.sha256(f'{alert_id}|{by}|{action}|{clock.now()}'.encode()).hexdigest()[:24]}"
        )
        command = AckCommand(
            command_id=command_id[:128], alert_id=alert_id, action=action, by=by, via="api", at=clock.now()
        )
        await acks_topic.send(key=command.key, value=command.to_json())
        return self.json({"command_id": command.command_id, "status": "accepted"}, status=202)


@app.page("/v1/alerts/{alert_id}")
class ApiAlert(faust.web.View):
    async def get(self, request: Any, alert_id: str) -> Any:
        if not _api_authorised(request):
            return _api_refusal(self, request)
        state = load_state(alert_id)
        if state is None:
            return self.json({"error": "unknown alert"}, status=404)
        return self.json(
            {
                "alert_id": state.alert_id,
                "case_ref": state.case_ref,
                "status": state.status,
                "step": state.step,
                "exhausted": state.exhausted,
                "acked_by": state.acked_by,
                "acked_via": state.acked_via,
                "notices": {
                    k: {"status": n.status, "person": n.person, "channel": n.channel, "step": n.step}
                    for k, n in state.notices.items()
                },
            }
        )


@app.page("/test/clock")
class TestClock(faust.web.View):
    async def get(self, request: Any) -> Any:
        if not settings.notifier_test_clock:
            return self.json({"error": "test clock disabled"}, status=404)
        return self.json({"now": clock.now().isoformat(), "offset_s": clock.offset.total_seconds()})


@app.page("/test/clock/advance")
class TestClockAdvance(faust.web.View):
    """Tests only: move the notifier's clock forward (404 unless BEACON_NOTIFIER_TEST_CLOCK)."""

    async def post(self, request: Any) -> Any:
        if not settings.notifier_test_clock:
            return self.json({"error": "test clock disabled"}, status=404)
        step = parse_clock_advance(await request.read())
        if isinstance(step, Refusal):
            return self.json(step.body(), status=step.status)
        now = clock.advance(step)
        index.tick_sent.clear()
        return self.json({"now": now.isoformat(), "offset_s": clock.offset.total_seconds()})
