"""Issue 14, item 1 (pure): resolved escalations expire after the retention, never before
their resolution left; a replayed alert older than the retention pages nobody; the owner's
index and every replica's directory are kept incrementally and stay small."""

from __future__ import annotations

from datetime import timedelta

from beacon.notifier.directory import AlertDirectory
from beacon.notifier.escalation import (
    PAST_ALERT_HOLD_S,
    AlertRaised,
    AlertResolved,
    DeliveryResult,
    Expire,
    SendNotification,
    apply,
    bundle_code,
    expired,
    expires_at,
    reply_code,
)
from beacon.notifier.links import AckLink, LinkError, link_page, link_tag
from beacon.notifier.open_index import BoundedDict, OpenIndex
from notifier.conftest import T0, make_alert
from notifier.test_escalation import CHAIN

RETENTION = timedelta(days=30)
ALERT = make_alert()


def paged_then_resolved():
    state, actions = apply(None, AlertRaised(alert=ALERT, chain=CHAIN), T0)
    page = next(a.notice for a in actions if isinstance(a, SendNotification))
    state, _ = apply(state, DeliveryResult(alert_id=ALERT.alert_id, key=page.key, outcome="sent"), T0)
    resolved = ALERT.model_copy(update={"status": "resolved"})
    state, actions = apply(state, AlertResolved(alert=resolved), T0 + timedelta(hours=1))
    resolution = next(a.notice for a in actions if isinstance(a, SendNotification))
    return state, resolution


def test_a_resolved_alert_expires_only_after_its_resolution_left_and_the_retention():
    state, resolution = paged_then_resolved()
    assert state.status == "resolved" and expires_at(state, RETENTION) is None  # resolution still pending
    later = T0 + timedelta(days=60)
    assert apply(state, Expire(alert_id=ALERT.alert_id), later) == (state, [])
    state, _ = apply(
        state, DeliveryResult(alert_id=ALERT.alert_id, key=resolution.key, outcome="sent"), T0 + timedelta(hours=1)
    )
    assert expires_at(state, RETENTION) == T0 + timedelta(hours=1) + RETENTION
    assert not expired(state, T0 + timedelta(days=30), RETENTION)
    assert apply(state, Expire(alert_id=ALERT.alert_id), T0 + timedelta(days=30)) == (state, [])
    assert apply(state, Expire(alert_id=ALERT.alert_id), T0 + timedelta(days=30, hours=1)) == (None, [])


def test_an_active_or_acknowledged_alert_never_expires():
    state, _ = apply(None, AlertRaised(alert=ALERT, chain=CHAIN), T0)
    assert expires_at(state, RETENTION) is None
    assert apply(state, Expire(alert_id=ALERT.alert_id), T0 + timedelta(days=400))[0] == state


def test_a_replay_of_an_alert_older_than_the_retention_pages_nobody():
    # Its state has expired (None); its own emission time says it is old: nothing happens.
    late = T0 + RETENTION + timedelta(minutes=1)
    assert apply(None, AlertRaised(alert=ALERT, chain=CHAIN), late) == (None, [])
    assert apply(None, AlertResolved(alert=ALERT.model_copy(update={"status": "resolved"})), late) == (None, [])
    # Re-emitted now from reprocessed history (fired longer ago than the retention): held, so
    # the episode's resolution, re-emitted right behind it, arrives before anyone is paged.
    reemitted = ALERT.model_copy(update={"emitted_at": late})
    held, actions = apply(
        None, AlertRaised(alert=reemitted, chain=CHAIN.model_copy(update={"hold_s": PAST_ALERT_HOLD_S})), late
    )
    assert held is not None and not any(isinstance(a, SendNotification) for a in actions)
    resolved = reemitted.model_copy(update={"status": "resolved"})
    _, actions = apply(held, AlertResolved(alert=resolved), late + timedelta(seconds=5))
    assert not any(isinstance(a, SendNotification) for a in actions)
    # Within the retention a (first) raise still pages.
    state, actions = apply(None, AlertRaised(alert=ALERT, chain=CHAIN), T0 + RETENTION - timedelta(minutes=1))
    assert state is not None and any(isinstance(a, SendNotification) for a in actions)


def test_a_child_reported_today_as_missing_for_forty_days_is_paged():
    # Its ladder alerts fired (their deadline) 39 days ago, longer than the retention, but
    # they were emitted now: event time never makes an alert "old" (a late report is live).
    now = T0 + timedelta(days=40)
    ladder = make_alert().model_copy(update={"occurred_at": T0 + timedelta(days=1), "emitted_at": now})
    state, actions = apply(None, AlertRaised(alert=ladder, chain=CHAIN), now)
    assert state is not None and any(isinstance(a, SendNotification) for a in actions)


def test_the_index_holds_only_what_is_open_and_pops_each_expiry_once():
    index = OpenIndex(RETENTION)
    state, _ = apply(None, AlertRaised(alert=ALERT, chain=CHAIN), T0)
    index.update(state)
    assert set(index.due) == {ALERT.alert_id} and len(index.pending) == 1
    assert index.unacknowledged_counts() == {("high", False): 1}
    assert index.due_alerts(T0 + timedelta(hours=1), loop_now=100.0, resend_after_s=5) == [ALERT.alert_id]
    assert index.due_alerts(T0 + timedelta(hours=1), loop_now=101.0, resend_after_s=5) == []  # not re-ticked at once
    resolved, resolution = paged_then_resolved()
    resolved, _ = apply(resolved, DeliveryResult(alert_id=ALERT.alert_id, key=resolution.key, outcome="sent"), T0)
    index.update(resolved)
    assert index.due == {} and index.pending == {} and index.unacknowledged == {}
    at = expires_at(resolved, RETENTION)
    assert at is not None
    assert index.expired(at - timedelta(seconds=1)) == []
    assert index.expired(at) == [ALERT.alert_id]
    assert index.expired(at + timedelta(days=1)) == []
    index.forget(resolved)
    index.rebuild([resolved])  # as after an assignment: the expiry is scheduled again
    assert index.expired(at) == [ALERT.alert_id]


def test_bounded_dicts_forget_the_oldest_entries():
    seen: BoundedDict[str, None] = BoundedDict(3)
    for n in range(10):
        seen[str(n)] = None
    assert list(seen) == ["7", "8", "9"]


def test_the_directory_finds_alerts_by_id_link_and_reply_code_and_forgets_tombstones():
    directory = AlertDirectory()
    state, _ = apply(None, AlertRaised(alert=ALERT, chain=CHAIN), T0)
    directory.put(state)
    key = next(iter(state.notices))
    person = state.notices[key].person
    assert directory.state(ALERT.alert_id) == state
    assert directory.find_link(link_tag(ALERT.alert_id, key)) == (state, state.notices[key])
    assert directory.reply_candidates(person, reply_code(ALERT.alert_id)) == [state]
    assert directory.reply_candidates("someone-else", reply_code(ALERT.alert_id)) == []
    bundled = state.model_copy(update={"bundles": {bundle_code(ALERT.alert_id, key): ("other",)}})
    directory.put(bundled)
    assert directory.reply_candidates(person, bundle_code(ALERT.alert_id, key)) == [bundled]
    resolved = bundled.model_copy(update={"status": "resolved"})
    other = resolved.model_copy(update={"alert_id": "other-resolved"})
    directory.put(other)
    directory.put(resolved)  # resolved: found only as the last one resolved for its reply
    assert directory.by_reply == {}
    assert directory.reply_candidates(person, reply_code(ALERT.alert_id)) == [resolved]
    directory.apply("other-resolved", None)
    directory.apply(ALERT.alert_id, None)
    assert directory.state(ALERT.alert_id) is None and len(directory) == 0
    assert directory.by_tag == {} and directory.by_reply == {}


def test_the_link_page_decision():
    state, _ = apply(None, AlertRaised(alert=ALERT, chain=CHAIN), T0)
    key = next(iter(state.notices))
    link = AckLink(tag=link_tag(ALERT.alert_id, key), expires_at=T0 + timedelta(days=1))
    found = (state, state.notices[key])
    assert link_page(LinkError("expired"), None, False).status == 410
    assert link_page(LinkError("invalid"), None, False).status == 400
    assert link_page(link, None, False).status == 404
    assert link_page(link, found, True).status == 409
    used = state.model_copy(update={"seen_commands": (link.command_id,)})
    assert link_page(link, (used, state.notices[key]), False).status == 409
    closed = state.model_copy(update={"status": "acknowledged"})
    assert link_page(link, (closed, state.notices[key]), False).title == "Nothing to acknowledge"
    confirm = link_page(link, found, False)
    assert confirm.confirm and confirm.status == 200 and state.case_ref in confirm.title
