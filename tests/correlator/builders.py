"""Build a child's events tersely for the correlator tests (times in hours from T0)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from beacon.core.alerts import AlertRecord
from beacon.core.events import CloudEvent, build_event, parse_event
from beacon.core.policy import Policy
from beacon.correlator.engine import apply_event, tick
from beacon.correlator.state import ChildState

T0 = datetime(2026, 3, 2, 18, 0, tzinfo=UTC)
CHILD = "CH-TEST-0001"


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def iso(hours: float) -> str:
    return at(hours).isoformat().replace("+00:00", "Z")


class Events:
    """Numbered events for one child: ``ev.reported(0, 'EP1', risk='high')`` etc."""

    def __init__(self, child: str = CHILD, source: str = "urn:beacon:source:test"):
        self.child, self.source, self.count = child, source, 0

    def make(
        self, event_type: str, hours: float, data: dict[str, Any], event_id: str | None = None, by: str | None = None
    ) -> CloudEvent:
        """``by``: the sending organisation (the source's last part), if not this builder's."""
        self.count += 1
        raw = build_event(
            f"beacon.{event_type}.v1",
            self.child,
            data,
            time=iso(hours),
            source=self.source if by is None else f"urn:beacon:source:{by}",
            event_id=event_id or f"e{self.count:03d}",
        )
        return parse_event(raw)

    def reported(
        self,
        hours: float,
        episode: str = "EP1",
        *,
        risk: str = "medium",
        age: int = 15,
        looked_after: bool = False,
        category: str = "missing",
        started: float | None = None,
        council: str | None = "norfolk-cc",
        **kw: Any,
    ) -> CloudEvent:
        data = {
            "episode_ref": episode,
            "category": category,
            "started_at": iso(hours if started is None else started),
            "risk": risk,
            "age_years": age,
            "looked_after": looked_after,
            "reporting_org": "met-police",
        }
        if council:
            data["placing_council"] = council
        return self.make("episode.reported", hours, data, **kw)

    def regraded(self, hours: float, episode: str = "EP1", risk: str = "high", **kw: Any) -> CloudEvent:
        return self.make(
            "episode.risk_regraded", hours, {"episode_ref": episode, "risk": risk, "regraded_at": iso(hours)}, **kw
        )

    def sighting(self, hours: float, episode: str = "EP1", **kw: Any) -> CloudEvent:
        return self.make(
            "episode.sighting", hours, {"episode_ref": episode, "kind": "sighting", "observed_at": iso(hours)}, **kw
        )

    def found(
        self, hours: float, episode: str = "EP1", ended: float | None = None, by: str | None = None, **kw: Any
    ) -> CloudEvent:
        return self.make(
            "episode.found",
            hours,
            {"episode_ref": episode, "outcome": "found", "ended_at": iso(hours if ended is None else ended)},
            by=by,
            **kw,
        )

    def rhi(self, hours: float, episode: str = "EP1", status: str = "completed", **kw: Any) -> CloudEvent:
        data: dict[str, Any] = {"episode_ref": episode, "status": status, "recorded_at": iso(hours)}
        if status in ("declined", "not_held"):
            data["reason"] = "Recorded reason"
        return self.make("return_interview.recorded", hours, data, **kw)

    def cse(self, hours: float, level: str = "medium", **kw: Any) -> CloudEvent:
        return self.make("cse.screened", hours, {"level": level, "screened_at": iso(hours)}, **kw)

    def allocation(self, hours: float, status: str = "unallocated", **kw: Any) -> CloudEvent:
        data: dict[str, Any] = {"status": status, "effective_at": iso(hours)}
        if status == "allocated":
            data["worker_ref"] = "SW-0042"
        return self.make("allocation.changed", hours, data, **kw)

    def placement(self, hours: float, placing: str = "kent-cc", host: str = "medway", **kw: Any) -> CloudEvent:
        return self.make(
            "placement.changed",
            hours,
            {"change": "admission", "effective_at": iso(hours), "placing_council": placing, "host_council": host},
            **kw,
        )

    def corrected(
        self,
        hours: float,
        episode: str = "EP1",
        *,
        started: float | None = None,
        ended: float | None = None,
        by: str = "met-police",  # the reporting force of ``reported``: a party to the episode
        **kw: Any,
    ) -> CloudEvent:
        data: dict[str, Any] = {"episode_ref": episode, "corrected_at": iso(hours)}
        if started is not None:
            data["started_at"] = iso(started)
        if ended is not None:
            data["ended_at"] = iso(ended)
        return self.make("episode.corrected", hours, data, by=by, **kw)

    def discussion(self, hours: float, status: str = "held", episode: str | None = None, **kw: Any) -> CloudEvent:
        data: dict[str, Any] = {"status": status, "recorded_at": iso(hours)}
        if episode is not None:
            data["episode_ref"] = episode
        return self.make("strategy_discussion.recorded", hours, data, **kw)

    def rescue_alert(self, hours: float, episode: str = "EP1", **kw: Any) -> CloudEvent:
        return self.make(
            "child_rescue_alert.activated", hours, {"episode_ref": episode, "activated_at": iso(hours)}, **kw
        )


def _as_read(alerts: list) -> list:
    """Every alert the engine writes must read back, unchanged, as a valid AlertRecord."""
    for alert in alerts:
        assert AlertRecord.from_json(alert.to_json()).to_json() == alert.to_json()
    return alerts


class Run:
    """Feeds events (and wall-clock ticks) through the engine, collecting every record."""

    def __init__(self, policy: Policy, child: str = CHILD):
        self.policy, self.child = policy, child
        self.state = ChildState()
        self.records: list = []
        self.duplicates = 0

    def feed(self, *events: CloudEvent, wall: float | None = None) -> list:
        """Events in this order; ``wall`` (hours): as a worker that has caught up delivers
        them, at that wall-clock time."""
        new = []
        for event in events:
            now = event.time if wall is None else at(wall)
            self.state, outcome = apply_event(
                self.state, event, now, self.policy, wall=None if wall is None else at(wall)
            )
            self.duplicates += outcome.duplicate
            new += outcome.alerts
        self.records += _as_read(new)
        return new

    def tick(self, hours: float) -> list:
        self.state, new = tick(self.child, self.state, at(hours), self.policy)
        self.records += _as_read(new)
        return new

    def raised(self) -> list[tuple[str, str, str]]:
        return [(r.rule, r.step, r.severity.value) for r in self.records if r.status == "raised"]

    def resolved(self) -> list[tuple[str, str]]:
        return [(r.rule, r.step) for r in self.records if r.status == "resolved"]

    def still_open(self) -> list[tuple[str | None, str, str]]:
        """(episode, rule, step) of every alert raised and not resolved."""
        resolved = {r.alert_id for r in self.records if r.status == "resolved"}
        return [
            (r.episode_ref, r.rule, r.step) for r in self.records if r.status == "raised" and r.alert_id not in resolved
        ]
