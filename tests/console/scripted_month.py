"""A scripted month (March 2026) whose figures are known in advance: the events, and the
numbers every report of it must show (unit tests of reports.py and the browser test)."""

from __future__ import annotations

from typing import Any

from beacon.core.events import build_event

MONTH = "2026-03"


def _event(kind: str, child: str, data: dict[str, Any], at: str, event_id: str) -> dict[str, Any]:
    return build_event(kind, child, data, time=at, source="urn:beacon:source:scripted", event_id=event_id)


def _episode(child: str, episode: str, council: str, start: str, end: str | None, category: str = "missing"):
    events = [
        _event(
            "beacon.episode.reported.v1",
            child,
            {
                "episode_ref": episode,
                "category": category,
                "started_at": start,
                "risk": "medium",
                "age_years": 15,
                "looked_after": True,
                "reporting_org": "met-police",
                "placing_council": council,
            },
            start,
            f"rep-{episode}",
        )
    ]
    if end is not None:
        events.append(
            _event(
                "beacon.episode.found.v1",
                child,
                {"episode_ref": episode, "outcome": "returned", "ended_at": end},
                end,
                f"end-{episode}",
            )
        )
    return events


def _interview(child: str, episode: str, status: str, at: str) -> dict[str, Any]:
    data: dict[str, Any] = {"episode_ref": episode, "status": status, "recorded_at": at}
    if status in ("declined", "not_held"):
        data["reason"] = "Child did not want to talk"  # free text: never kept by the console
    return _event("beacon.return_interview.recorded.v1", child, data, at, f"rhi-{episode}-{status}")


def events() -> list[dict[str, Any]]:
    return [
        # Southwark: SM-A twice (a repeat child), one interview in time and one late.
        *_episode("SM-A", "SM-EP-1", "southwark", "2026-03-02T10:00:00Z", "2026-03-02T16:00:00Z"),
        _interview("SM-A", "SM-EP-1", "completed", "2026-03-04T10:00:00Z"),  # 42 h after the return
        *_episode("SM-A", "SM-EP-2", "southwark", "2026-03-10T00:00:00Z", "2026-03-11T00:00:00Z"),
        _interview("SM-A", "SM-EP-2", "completed", "2026-03-15T00:00:00Z"),  # 96 h: late
        *_episode("SM-B", "SM-EP-3", "southwark", "2026-03-05T12:00:00Z", "2026-03-05T14:00:00Z"),
        _interview("SM-B", "SM-EP-3", "declined", "2026-03-06T09:00:00Z"),
        *_episode("SM-C", "SM-EP-4", "southwark", "2026-03-20T18:30:00Z", None),  # still missing
        *_episode("SM-D", "SM-EP-5", "southwark", "2026-02-27T09:00:00Z", "2026-03-01T09:00:00Z"),  # February's
        # Kent: one episode away from placement, interviewed in time.
        *_episode(
            "SM-E", "SM-EP-6", "kent", "2026-03-03T08:00:00Z", "2026-03-03T20:00:00Z", "away_without_authorisation"
        ),
        _interview("SM-E", "SM-EP-6", "completed", "2026-03-05T08:00:00Z"),  # 36 h
    ]


# council, episodes, distinct_children, repeat_children, ended, interviews_within_deadline, median_episode_hours
FIGURES = [
    ("kent", 1, 1, 0, 1, 1, 12.0),
    ("southwark", 4, 3, 1, 3, 1, 6.0),
]
MONTHLY_CSV = (
    "council,episodes,distinct_children,repeat_children,ended,interviews_within_deadline,median_episode_hours\r\n"
    "kent,1,1,0,1,1,12.0\r\n"
    "southwark,4,3,1,3,1,6.0\r\n"
)
SSDA903_SOUTHWARK_CSV = (
    "CHILD,MISSING,MIS_START,MIS_END\r\n"
    "SM-A,M,02/03/2026,02/03/2026\r\n"
    "SM-B,M,05/03/2026,05/03/2026\r\n"
    "SM-A,M,10/03/2026,11/03/2026\r\n"
    "SM-C,M,20/03/2026,\r\n"
)
