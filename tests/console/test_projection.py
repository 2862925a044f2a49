"""The console's projection: a pure fold, tested without Kafka."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta

from beacon.console.projection import (
    ViewState,
    apply,
    missing_now,
    open_alerts,
    open_alerts_of,
    timeline,
)
from beacon.core.acks import AckCommand
from beacon.core.alerts import AlertRecord, Severity, alert_id
from beacon.core.audit import AuditRecord
from beacon.core.events import build_event, parse_event

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
POLICE = "urn:beacon:source:met-police"


def iso(ts: datetime) -> str:
    return ts.isoformat().replace("+00:00", "Z")


def event(event_type: str, child: str, data: dict, at: datetime, event_id: str, source: str = POLICE):
    return parse_event(build_event(event_type, child, data, time=iso(at), source=source, event_id=event_id))


def reported(child: str, episode: str, at: datetime, risk: str = "high", event_id: str | None = None):
    return event(
        "beacon.episode.reported.v1",
        child,
        {
            "episode_ref": episode,
            "category": "missing",
            "started_at": iso(at - timedelta(minutes=30)),
            "risk": risk,
            "age_years": 14,
            "looked_after": True,
            "reporting_org": "met-police",
            "placing_council": "southwark",
        },
        at,
        event_id or f"rep-{episode}",
    )


def found(child: str, episode: str, at: datetime, event_id: str | None = None):
    return event(
        "beacon.episode.found.v1",
        child,
        {"episode_ref": episode, "outcome": "found", "ended_at": iso(at)},
        at,
        event_id or f"fnd-{episode}",
    )


def regraded(child: str, episode: str, at: datetime, risk: str, event_id: str):
    return event(
        "beacon.episode.risk_regraded.v1",
        child,
        {"episode_ref": episode, "risk": risk, "regraded_at": iso(at)},
        at,
        event_id,
    )


def alert(
    child: str,
    episode: str,
    status: str = "raised",
    severity: Severity = Severity.high,
    at: datetime = T0,
    rule: str = "triage",
    step: str = "high",
) -> AlertRecord:
    return AlertRecord(
        alert_id=alert_id(child, episode, rule, step),
        status=status,
        child_ref=child,
        episode_ref=episode,
        rule=rule,
        step=step,
        severity=severity,
        reason="Child reported missing, police risk high",
        council="southwark",
        occurred_at=at,
        emitted_at=at + timedelta(seconds=1),
    )


def audit(
    record_alert: AlertRecord,
    kind: str,
    at: datetime,
    audit_id: str,
    person: str | None = "oncall-1",
    channel: str | None = "sms",
    detail: str = "",
    step: int | None = 1,
) -> AuditRecord:
    return AuditRecord(
        audit_id=audit_id,
        kind=kind,
        at=at,
        alert_id=record_alert.alert_id,
        child_ref=record_alert.child_ref,
        person=person,
        channel=channel,
        step=step,
        detail=detail,
    )


def fold(records) -> ViewState:
    state = ViewState()
    for record in records:
        state = apply(state, record)
    return state


def snapshot(state: ViewState) -> dict:
    """Everything a page shows, in comparable form."""
    return {
        "missing": [
            (
                r.child_ref,
                r.episode.episode_ref,
                r.episode.risk,
                r.episode.started_at,
                tuple(a.alert_id for a in r.open_alerts),
            )
            for r in missing_now(state)
        ],
        "alerts": [(a.alert_id, a.status, a.acknowledged_by) for a in open_alerts(state)],
        "timelines": {ref: [(e.at, e.kind, e.text) for e in timeline(state, ref)] for ref in sorted(state.children)},
    }


def test_a_reported_child_is_missing_now_with_risk_and_start():
    state = fold([reported("CH-1", "EP-1", T0)])
    [row] = missing_now(state)
    assert (row.child_ref, row.episode.episode_ref, row.episode.risk) == ("CH-1", "EP-1", "high")
    assert row.episode.started_at == T0 - timedelta(minutes=30)
    assert row.episode.current_category == "missing"


def test_found_closes_the_episode_and_takes_the_child_off_the_list():
    state = fold([reported("CH-1", "EP-1", T0), found("CH-1", "EP-1", T0 + timedelta(hours=3))])
    assert missing_now(state) == []
    episode = state.children["CH-1"].episodes["EP-1"]
    assert episode.ended_at == T0 + timedelta(hours=3) and not episode.is_open


def test_found_before_reported_ends_closed_whatever_the_arrival_order():
    in_order = [reported("CH-1", "EP-1", T0), found("CH-1", "EP-1", T0 + timedelta(hours=3))]
    state = fold(reversed(in_order))
    assert missing_now(state) == []
    assert [e.text for e in timeline(state, "CH-1")] == [
        "Reported missing by met-police, police risk high",
        "Found: episode closed by met-police",
    ]


def test_a_regrade_that_arrives_before_the_report_still_wins_by_event_time():
    records = [regraded("CH-1", "EP-1", T0 + timedelta(hours=1), "medium", "rg-1"), reported("CH-1", "EP-1", T0)]
    state = fold(records)
    assert missing_now(state)[0].episode.risk == "medium"
    assert [grade for _at, _key, grade in state.children["CH-1"].episodes["EP-1"].risk_history] == ["high", "medium"]


def test_timeline_is_sorted_by_event_time_not_arrival():
    late = regraded("CH-1", "EP-1", T0 + timedelta(hours=2), "medium", "rg-late")
    early = regraded("CH-1", "EP-1", T0 + timedelta(hours=1), "high", "rg-early")
    raised = alert("CH-1", "EP-1", at=T0 + timedelta(minutes=1))
    state = fold([late, raised, reported("CH-1", "EP-1", T0), early])
    assert [e.at for e in timeline(state, "CH-1")] == sorted(e.at for e in timeline(state, "CH-1"))
    assert [e.kind for e in timeline(state, "CH-1")] == ["event", "alert", "event", "event"]


def test_every_arrival_order_gives_the_same_view():
    raised = alert("CH-1", "EP-1", at=T0 + timedelta(minutes=1))
    records = [
        reported("CH-1", "EP-1", T0),
        regraded("CH-1", "EP-1", T0 + timedelta(hours=1), "medium", "rg-1"),
        raised,
        audit(raised, "notification_sent", T0 + timedelta(minutes=2), "au-1"),
        audit(raised, "acknowledged", T0 + timedelta(minutes=5), "au-2", detail="via=sms"),
        reported("CH-2", "EP-2", T0 + timedelta(minutes=10), risk="medium"),
    ]
    expected = snapshot(fold(records))
    for order in itertools.islice(itertools.permutations(records), 0, None, 7):
        assert snapshot(fold(order)) == expected


def test_duplicates_never_duplicate_timeline_entries():
    raised = alert("CH-1", "EP-1")
    paged = audit(raised, "notification_sent", T0 + timedelta(minutes=1), "au-1")
    ack = AckCommand(
        command_id="c-1",
        alert_id=raised.alert_id,
        action="acknowledge",
        by="alice",
        via="console",
        at=T0 + timedelta(minutes=2),
    )
    records = [reported("CH-1", "EP-1", T0), raised, paged, ack]
    once = fold(records)
    twice = fold(records + list(reversed(records)) + records)
    assert snapshot(twice) == snapshot(once)
    assert len(timeline(twice, "CH-1")) == 4
    assert twice.duplicates == 8
    assert len(twice.alerts[raised.alert_id].ack_requests) == 1


def test_a_resend_of_the_same_event_id_from_another_source_is_a_different_event():
    a = reported("CH-1", "EP-1", T0, event_id="same-id")
    b = event(
        "beacon.episode.sighting.v1",
        "CH-1",
        {"episode_ref": "EP-1", "kind": "sighting", "observed_at": iso(T0)},
        T0,
        "same-id",
        source="urn:beacon:source:southwark",
    )
    assert len(timeline(fold([a, b]), "CH-1")) == 2


def test_alert_lifecycle_raised_acknowledged_resolved():
    raised = alert("CH-1", "EP-1")
    state = fold([reported("CH-1", "EP-1", T0), raised])
    view = state.alerts[raised.alert_id]
    assert view.status == "raised" and view.needs_attention
    assert [a.alert_id for a in open_alerts_of(state, "CH-1")] == [raised.alert_id]

    apply(
        state, audit(raised, "acknowledged", T0 + timedelta(minutes=4), "au-ack", person="oncall-2", detail="via=sms")
    )
    assert (view.status, view.acknowledged_by, view.acknowledged_via) == ("acknowledged", "oncall-2", "sms")
    assert view.is_open and not view.needs_attention

    apply(state, alert("CH-1", "EP-1", status="resolved", at=T0 + timedelta(hours=2)))
    assert view.status == "resolved" and open_alerts(state) == []


def test_resolved_before_raised_stays_resolved():
    state = fold([alert("CH-1", "EP-1", status="resolved", at=T0 + timedelta(hours=1)), alert("CH-1", "EP-1")])
    assert open_alerts(state) == []


def test_an_ack_command_marks_the_alert_pending_until_the_notifier_confirms():
    raised = alert("CH-1", "EP-1")
    ack = AckCommand(
        command_id="console:x:alice",
        alert_id=raised.alert_id,
        action="acknowledge",
        by="alice",
        via="console",
        at=T0 + timedelta(minutes=3),
    )
    state = fold([ack, raised])  # the command can even arrive before the alert
    view = state.alerts[raised.alert_id]
    assert view.ack_pending and not view.needs_attention and view.status == "raised"
    assert timeline(state, "CH-1")[-1].text == "Acknowledgement requested by alice via console"
    apply(
        state,
        audit(
            raised,
            "acknowledged",
            T0 + timedelta(minutes=3, seconds=2),
            "au-ack",
            person="alice",
            channel=None,
            detail="via=console",
        ),
    )
    assert view.status == "acknowledged" and not view.ack_pending


def test_paged_whom_and_delivery_status_are_kept_in_time_order():
    raised = alert("CH-1", "EP-1")
    delivered = audit(raised, "delivery_status", T0 + timedelta(minutes=2), "au-2", detail="delivered")
    sent = audit(raised, "notification_sent", T0 + timedelta(minutes=1), "au-1")
    state = fold([raised, delivered, sent])
    assert [(r.kind, r.person, r.channel) for r in state.alerts[raised.alert_id].paged] == [
        ("notification_sent", "oncall-1", "sms"),
        ("delivery_status", "oncall-1", "sms"),
    ]
    texts = [e.text for e in timeline(state, "CH-1")]
    assert "Paged oncall-1 by sms" in texts and "Delivery to oncall-1 by sms: delivered" in texts


def test_dashboard_order_unacknowledged_then_severity_then_risk_then_longest_missing():
    a_medium = alert("CH-A", "EP-A", severity=Severity.medium)
    b_critical = alert("CH-B", "EP-B", severity=Severity.critical)
    c_critical_acked = alert("CH-C", "EP-C", severity=Severity.critical)
    records = [
        reported("CH-A", "EP-A", T0),
        reported("CH-B", "EP-B", T0 + timedelta(hours=1)),
        reported("CH-C", "EP-C", T0),
        reported("CH-D", "EP-D", T0 + timedelta(hours=2), risk="medium"),
        reported("CH-E", "EP-E", T0 + timedelta(hours=3), risk="high"),
        reported("CH-F", "EP-F", T0 + timedelta(hours=1), risk="high"),
        a_medium,
        b_critical,
        c_critical_acked,
        audit(c_critical_acked, "acknowledged", T0 + timedelta(minutes=5), "au-c"),
    ]
    rows = missing_now(fold(records))
    # Unacknowledged alerts first (critical before medium); then acknowledged; then no alerts,
    # high risk before medium, and the longest missing first.
    assert [r.child_ref for r in rows] == ["CH-B", "CH-A", "CH-C", "CH-F", "CH-E", "CH-D"]
    assert [a.alert_id for a in open_alerts(fold(records))] == [
        b_critical.alert_id,
        a_medium.alert_id,
        c_critical_acked.alert_id,
    ]


def test_corrections_amend_dates_and_the_latest_correction_wins():
    correction = lambda at, ended: event(
        "beacon.episode.corrected.v1",
        "CH-1",
        {"episode_ref": "EP-1", "corrected_at": iso(at), "ended_at": iso(ended)},
        at,
        f"cor-{at:%H%M}",
    )
    records = [
        reported("CH-1", "EP-1", T0),
        correction(T0 + timedelta(hours=6), T0 + timedelta(hours=5)),
        correction(T0 + timedelta(hours=4), T0 + timedelta(hours=3)),
    ]
    for order in (records, list(reversed(records))):
        episode = fold(order).children["CH-1"].episodes["EP-1"]
        assert episode.ended_at == T0 + timedelta(hours=5)


def test_free_text_reasons_from_events_are_never_kept():
    secret = "Disclosed to carer that she stays with an adult at 12 Acacia Road"
    interview = event(
        "beacon.return_interview.recorded.v1",
        "CH-1",
        {"episode_ref": "EP-1", "status": "declined", "recorded_at": iso(T0), "reason": secret},
        T0,
        "rhi-1",
        source="urn:beacon:source:southwark",
    )
    state = fold([reported("CH-1", "EP-1", T0 - timedelta(days=1)), interview])
    assert [e.text for e in timeline(state, "CH-1")][-1] == "Return home interview declined"
    assert "Acacia" not in repr(state)


def test_version_moves_only_when_the_view_changes():
    state = fold([reported("CH-1", "EP-1", T0)])
    assert state.version == 1
    apply(state, reported("CH-1", "EP-1", T0))
    assert state.version == 1


def test_large_shuffled_replay_matches_ordered_replay():
    rng = random.Random(7)
    records = []
    for n in range(60):
        child, episode = f"CH-{n:03d}", f"EP-{n:03d}"
        start = T0 + timedelta(minutes=n)
        raised = alert(child, episode, severity=rng.choice(list(Severity)), at=start)
        records += [
            reported(child, episode, start, risk=rng.choice(["low", "medium", "high"])),
            raised,
            audit(raised, "notification_sent", start + timedelta(minutes=1), f"au-{n}"),
        ]
        if n % 3 == 0:
            records.append(found(child, episode, start + timedelta(hours=2)))
            records.append(alert(child, episode, status="resolved", at=start + timedelta(hours=2)))
    shuffled = records + rng.sample(records, len(records) // 2)  # with duplicates
    rng.shuffle(shuffled)
    state = fold(shuffled)
    assert snapshot(state) == snapshot(fold(records))
    assert len(missing_now(state)) == 40
    # The open-now indexes agree with a scan of the whole history.
    assert state.open_episodes == {
        (c.child_ref, e.episode_ref) for c in state.children.values() for e in c.episodes.values() if e.is_open
    }
    assert state.open_alert_ids == {a.alert_id for a in state.alerts.values() if a.is_open}


def test_a_strategy_discussion_about_an_unknown_episode_is_on_the_timeline_only():
    discussion = event(
        "beacon.strategy_discussion.recorded.v1",
        "CH-1",
        {"status": "requested", "recorded_at": iso(T0), "episode_ref": "EP-9"},
        T0,
        "sd-1",
        source="urn:beacon:source:southwark",
    )
    state = fold([discussion])
    assert [e.text for e in timeline(state, "CH-1")] == ["Strategy discussion requested"]
    assert missing_now(state) == [] and state.children["CH-1"].episodes == {}


def test_audit_lines_read_well_for_what_the_notifier_writes():
    raised = alert("CH-1", "EP-1")
    records = [
        audit(raised, "alert_raised", T0, "au-0", person=None, channel=None, step=None, detail="policy=duty"),
        audit(
            raised,
            "escalation_step",
            T0 + timedelta(minutes=15),
            "au-1",
            person=None,
            channel=None,
            step=2,
            detail="no_ack_in_time",
        ),
        audit(raised, "delivery_status", T0 + timedelta(minutes=16), "au-2", detail="undelivered:30003"),
        audit(raised, "fallback", T0 + timedelta(minutes=17), "au-3", channel="email", detail="sms->email"),
        audit(
            raised, "acknowledged", T0 + timedelta(minutes=18), "au-4", person="mgr-1", channel=None, detail="via=link"
        ),
    ]
    state = fold([raised, *records])
    assert [e.text for e in timeline(state, "CH-1") if e.kind == "audit"] == [
        "Escalation started (policy=duty)",
        "Escalation step 2 (no ack in time)",
        "Delivery to oncall-1 by sms: undelivered:30003",
        "Fell back for oncall-1 to email (sms->email)",
        "Acknowledged by mgr-1 via link",
    ]
    assert state.alerts[raised.alert_id].acknowledged_via == "link"


def test_the_timeline_says_which_organisation_closed_or_corrected_the_episode():
    correction = event(
        "beacon.episode.corrected.v1",
        "CH-1",
        {"episode_ref": "EP-1", "corrected_at": iso(T0 + timedelta(hours=4)), "started_at": iso(T0)},
        T0 + timedelta(hours=4),
        "cor-1",
        source="urn:beacon:source:southwark",
    )
    state = fold([reported("CH-1", "EP-1", T0), found("CH-1", "EP-1", T0 + timedelta(hours=3)), correction])
    assert [e.text for e in timeline(state, "CH-1")][1:] == [
        "Found: episode closed by met-police",
        "Episode dates corrected by southwark",
    ]
