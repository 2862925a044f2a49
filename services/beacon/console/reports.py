"""Monthly figures per council and the DfE SSDA903 "Missing" table: pure functions of episodes.

Definitions (stated on the Reports page too):

* an episode counts in the month it started; its council is the placing council;
* distinct children: children with at least one such episode; repeat children: two or more;
* interviews within 72 h: episodes that ended (returned or found) with a return home interview
  recorded *completed* no later than the deadline after the end (offered, declined or not held
  do not count);
* median episode length: over the month's episodes that have ended, in hours;
* SSDA903 ``MISSING``: ``M`` for missing, ``A`` for away from placement without authorisation
  and for the police's "absent" (not where they should be, whereabouts thought known);
  ``MIS_START``/``MIS_END`` are dates as the return expects (dd/mm/yyyy), ``MIS_END`` empty
  while the episode is open.
"""

from __future__ import annotations

import csv
import io
import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import astuple, dataclass, fields
from datetime import UTC, datetime, timedelta

from beacon.console.read_model import EpisodeRow
from beacon.console.returns_due import NO_COUNCIL


@dataclass(frozen=True)
class CouncilMonth:
    council: str
    episodes: int
    distinct_children: int
    repeat_children: int
    ended: int
    interviews_within_deadline: int
    median_episode_hours: float | None


def monthly_figures(rows: Iterable[EpisodeRow], deadline_hours: float = 72) -> list[CouncilMonth]:
    """``rows``: the episodes that started in the month (ReadModel.episodes_started)."""
    by_council: dict[str, list[EpisodeRow]] = {}
    for row in rows:
        if row.episode.started_at is None:
            continue  # a fact about an episode never reported: not an episode of the return
        by_council.setdefault(row.episode.placing_council or NO_COUNCIL, []).append(row)
    figures = []
    for council, council_rows in sorted(by_council.items()):
        per_child = Counter(r.child_ref for r in council_rows)
        lengths = [
            (r.episode.ended_at - r.episode.started_at).total_seconds() / 3600
            for r in council_rows
            if r.episode.ended_at is not None and r.episode.started_at is not None
        ]
        within = sum(
            1
            for r in council_rows
            if r.episode.ended_at is not None
            and r.episode.interview_status == "completed"
            and r.episode.interview_at is not None
            and r.episode.interview_at - r.episode.ended_at <= timedelta(hours=deadline_hours)
        )
        figures.append(
            CouncilMonth(
                council=council,
                episodes=len(council_rows),
                distinct_children=len(per_child),
                repeat_children=sum(1 for n in per_child.values() if n >= 2),
                ended=len(lengths),
                interviews_within_deadline=within,
                median_episode_hours=round(statistics.median(lengths), 1) if lengths else None,
            )
        )
    return figures


SSDA903_COLUMNS = ("CHILD", "MISSING", "MIS_START", "MIS_END")
_MISSING_CODE = {"missing": "M", "away_without_authorisation": "A", "absent": "A"}


def _date(ts: datetime | None) -> str:
    if ts is None:
        return ""
    try:
        return ts.astimezone(UTC).strftime("%d/%m/%Y")
    except (OverflowError, ValueError):  # year 1 or 9999 with an offset: its own date
        return ts.strftime("%d/%m/%Y")


def ssda903_missing(rows: Iterable[EpisodeRow], council: str | None = None) -> list[tuple[str, str, str, str]]:
    """The "Missing" table's rows for the episodes given (of ``council`` as placing council,
    if given), in start order. CHILD is the pseudonymous child reference Beacon holds."""
    table = [
        (r.child_ref, _MISSING_CODE.get(r.episode.current_category or "missing", "M"), r.episode.started_at, r)
        for r in rows
        if r.episode.started_at is not None and (council is None or r.episode.placing_council == council)
    ]
    table.sort(key=lambda t: (t[2], t[0]))
    return [(child, code, _date(start), _date(r.episode.ended_at)) for child, code, start, r in table]


def monthly_figures_csv(figures: Sequence[CouncilMonth]) -> str:
    return to_csv([f.name for f in fields(CouncilMonth)], [astuple(f) for f in figures])


def to_csv(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        # A cell a spreadsheet would run as a formula is quoted as text (CSV injection).
        writer.writerow(["'" + c if isinstance(c, str) and c[:1] in ("=", "+", "-", "@") else c for c in row])
    return out.getvalue()
