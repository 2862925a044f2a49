"""Delivery: what the dispatcher hands to Twilio and SMTP, and the results it reports back.

Send path: the agent writes a notification as a *pending* ledger entry and flushes the
changelog before the dispatcher sends it; the dispatcher reports the outcome back as an
input, which marks it sent. A crash before the send leaves it pending and the restarted
worker (or the replica taking the partition over) sends it: nothing lost. A crash between
the provider accepting and the "sent" result reaching Kafka (a few milliseconds) also
leaves it pending, so that one message is sent again: at-least-once, never zero. Emails
carry a deterministic Message-ID so mail clients fold the copy."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from beacon.core.wording import reason, reason_words, severity_word
from beacon.notifier.channels import DeliveryError
from beacon.notifier.dispatch import plan_sends
from beacon.notifier.escalation import DeliveryResult, EscalationState, Notice, bundle_code
from beacon.notifier.links import LINK_PATH, make_token
from beacon.notifier.runtime import app, base_url, channels, clock, index, load_state, log, send_input, settings
from beacon.notifier.templates import MessageFields, bundle, render_page
from beacon.runtime.metrics import END_TO_END_LATENCY, NOTIFICATIONS, NOTIFICATIONS_FAILED

Items = list[tuple[EscalationState, Notice]]


async def dispatch_once() -> None:
    """Plan what leaves now for each contact (``dispatch.plan_sends``) and start the sends."""
    if app.rebalancing:
        return
    ready = index.ready()
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
        pages: list[Items] = []
        for page in message.pages:
            items: Items = []
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


async def deliver_guarded(pages: list[Items], more: int = 0) -> None:
    """A bug in rendering or a channel must not lose the page silently: report it as a
    failed attempt, so the engine falls back to the next contact method."""
    items = [item for page in pages for item in page]
    try:
        await deliver(pages, more)
    except asyncio.CancelledError:
        raise
    except Exception:  # noqa: BLE001 - logged and reported as a failed attempt
        log.exception("deliver_failed", alerts=[s.alert_id for s, _ in items])
        NOTIFICATIONS_FAILED.labels(channel=items[0][1].channel, reason="internal").inc()
        for s, n in items:
            await send_input(
                s.alert_id, DeliveryResult(alert_id=s.alert_id, key=n.key, outcome="error", reason="internal")
            )


def sent_results(pages: list[Items], provider_id: str) -> list[DeliveryResult]:
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


async def deliver(pages: list[Items], more: int = 0) -> None:
    items = [item for page in pages for item in page]
    first_state, first = items[0]
    channel = channels[first.channel]
    rendered = [render_page(page[0][1].kind, first.channel, [message_fields(s, n) for s, n in page]) for page in pages]
    ack_all = bundle_code(first_state.alert_id, first.key) if len(pages) > 1 and first.kind == "page" else ""
    message = bundle(first.channel, rendered, more, ack_all)
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
        provider_id = await channel.send(first.to, message.subject, message.body, callback, meta)
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
                index.first_page_seen[s.alert_id] = None
                END_TO_END_LATENCY.observe(max(0.0, (real_now - s.occurred_at).total_seconds()))
        for result in sent_results(pages, provider_id):
            await send_input(result.alert_id, result)
        log.info(
            "sent", channel=first.channel, mode=channel.mode, person=first.person, alerts=[s.alert_id for s, _ in items]
        )
    await app.producer.flush()
