"""Demo stream for ``make run``: three stories a duty manager should be told about.

1. A 14-year-old in care with a medium CSE screening is reported missing, high risk:
   triage high and a critical CSE x missing alert; then found (both resolved) and a
   return home interview becomes due.
2. Another child goes missing for the third time in the repeat window: a
   strategy-discussion (repeat episodes) alert.
3. A third child came back four days ago and nobody has recorded a return home
   interview: the correlator's timer raises it as overdue.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from beacon.core.events import build_event


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


def demo_events(now: datetime | None = None) -> list[dict[str, Any]]:
    now = now or datetime.now(UTC)
    police, council = "urn:beacon:source:met-police", "urn:beacon:source:southwark"
    events: list[dict[str, Any]] = []

    def add(event_type: str, child: str, data: dict[str, Any], at: datetime, source: str) -> None:
        events.append(
            build_event(
                event_type, child, data, time=_iso(at), source=source, event_id=f"dmo-{child}-{len(events):03d}"
            )
        )

    alpha = "CH-DMO-0001"
    add(
        "beacon.cse.screened.v1",
        alpha,
        {"level": "medium", "screened_at": _iso(now - timedelta(days=20))},
        now - timedelta(days=20),
        council,
    )
    add(
        "beacon.episode.reported.v1",
        alpha,
        {
            "episode_ref": "DMO-EP-A1",
            "category": "missing",
            "started_at": _iso(now - timedelta(hours=2)),
            "risk": "high",
            "age_years": 14,
            "looked_after": True,
            "reporting_org": "met-police",
            "placing_council": "southwark",
        },
        now - timedelta(hours=1, minutes=45),
        police,
    )

    bravo = "CH-DMO-0002"
    for n, days_ago in enumerate((40, 21, 0), start=1):
        start = now - timedelta(days=days_ago, hours=5)
        add(
            "beacon.episode.reported.v1",
            bravo,
            {
                "episode_ref": f"DMO-EP-B{n}",
                "category": "missing",
                "started_at": _iso(start),
                "risk": "medium",
                "age_years": 15,
                "looked_after": True,
                "reporting_org": "met-police",
                "placing_council": "southwark",
            },
            start + timedelta(minutes=20),
            police,
        )
        if n < 3:
            add(
                "beacon.episode.found.v1",
                bravo,
                {"episode_ref": f"DMO-EP-B{n}", "outcome": "returned", "ended_at": _iso(start + timedelta(hours=9))},
                start + timedelta(hours=9, minutes=10),
                police,
            )
            add(
                "beacon.return_interview.recorded.v1",
                bravo,
                {
                    "episode_ref": f"DMO-EP-B{n}",
                    "status": "completed",
                    "recorded_at": _iso(start + timedelta(hours=30)),
                },
                start + timedelta(hours=30),
                council,
            )

    charlie = "CH-DMO-0003"
    start = now - timedelta(days=4, hours=10)
    add(
        "beacon.episode.reported.v1",
        charlie,
        {
            "episode_ref": "DMO-EP-C1",
            "category": "absent",
            "started_at": _iso(start),
            "risk": "low",
            "age_years": 16,
            "looked_after": False,
            "reporting_org": "met-police",
            "placing_council": "southwark",
        },
        start + timedelta(minutes=30),
        police,
    )
    add(
        "beacon.episode.found.v1",
        charlie,
        {"episode_ref": "DMO-EP-C1", "outcome": "returned", "ended_at": _iso(now - timedelta(days=4))},
        now - timedelta(days=4),
        police,
    )

    add(
        "beacon.episode.found.v1",
        alpha,
        {"episode_ref": "DMO-EP-A1", "outcome": "found", "ended_at": _iso(now - timedelta(minutes=5))},
        now - timedelta(minutes=4),
        police,
    )
    return events


def demo_jsonl() -> str:
    return "".join(json.dumps(e) + "\n" for e in demo_events())
