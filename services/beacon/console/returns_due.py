"""Returns due: returned children whose return home interview is due or overdue.

Statutory (DfE 2014): a return home interview is offered on every return, within 72 hours
(the deadline is the policy file's ``return_interview.deadline_hours``). A return stays on
this list until an interview is recorded completed, declined (the child refused the offer)
or not held (a recorded decision): an offer alone does not discharge the duty. Pure.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from beacon.console.read_model import EpisodeRow

NO_COUNCIL = "no placing council recorded"


@dataclass(frozen=True)
class ReturnDue:
    child_ref: str
    episode_ref: str
    council: str
    returned_at: datetime
    deadline: datetime
    offered: bool  # an interview has been offered, none held yet

    def overdue(self, now: datetime) -> bool:
        return now >= self.deadline


def returns_due(rows: Iterable[EpisodeRow], now: datetime, deadline_hours: float) -> dict[str, list[ReturnDue]]:
    """Per council (placing council of the episode), most overdue first (earliest deadline)."""
    by_council: dict[str, list[ReturnDue]] = {}
    for row in rows:
        episode = row.episode
        ended = episode.ended_at
        if ended is None or episode.interview_status not in (None, "offered") or ended > now:
            continue
        council = episode.placing_council or NO_COUNCIL
        by_council.setdefault(council, []).append(
            ReturnDue(
                child_ref=row.child_ref,
                episode_ref=episode.episode_ref,
                council=council,
                returned_at=ended,
                deadline=ended + timedelta(hours=deadline_hours),
                offered=episode.interview_status == "offered",
            )
        )
    for dues in by_council.values():
        dues.sort(key=lambda d: (d.deadline, d.child_ref, d.episode_ref))
    return dict(sorted(by_council.items()))
