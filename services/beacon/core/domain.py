"""One reading of the events: episode identity, ranks, and the words people read.

The correlator (correlator/engine.py) and the console (console/projection.py) each fold
the events topic into their own state, for their own job; what an event *means* is
decided here, once, so that an alert, a page and an SMS never disagree:

* which episode an event belongs to (a second report while an episode of the child is
  open is the same episode: an episode cannot open while another is open),
* when an episode is open (reported, and no end recorded),
* the ranks of police risk grades, CSE levels and alert severities,
* the words shown for each of them.

Pure: no I/O, no clock. Both folds read the events topic keyed by child, so they see each
child's events in the same order and so make the same identity decisions.
"""

from __future__ import annotations

from collections.abc import Container, Mapping
from datetime import UTC, datetime, timedelta

from beacon.core.alerts import Severity
from beacon.core.events import (
    ChildFound,
    ChildRescueAlertActivated,
    EpisodeCorrected,
    EpisodeReported,
    ReturnInterviewRecorded,
    RiskRegraded,
)

# ------------------------------------------------------------------ ranks

RISK_RANK: dict[str, int] = {"no_apparent_risk": 0, "low": 1, "medium": 2, "high": 3}
RISK_BY_RANK: dict[int, str] = {rank: grade for grade, rank in RISK_RANK.items()}
CSE_RANK: dict[str, int] = {"none": 0, "low": 1, "medium": 2, "high": 3}
SEVERITIES: tuple[Severity, ...] = tuple(sorted(Severity, key=lambda s: s.rank))  # least severe first

# ------------------------------------------------------------------ words

RISK_LABEL: dict[str, str] = {"no_apparent_risk": "no apparent risk", "low": "low", "medium": "medium", "high": "high"}
CATEGORY_LABEL: dict[str, str] = {
    "missing": "missing",
    "absent": "absent",
    "away_without_authorisation": "away from placement without authorisation",  # the DfE's words
}
SEVERITY_LABEL: dict[Severity, str] = {s: s.value for s in Severity}
NOT_GRADED = "not graded"


def risk_label(grade: str | None) -> str:
    """The words for a police risk grade (``None``: not graded yet)."""
    return RISK_LABEL.get(grade, NOT_GRADED) if grade is not None else NOT_GRADED


def category_label(category: str | None) -> str:
    return CATEGORY_LABEL.get(category, "-") if category is not None else "-"


def severity_label(severity: Severity | str) -> str:
    """The word for an alert's severity, as every page, email and SMS shows it."""
    return SEVERITY_LABEL[Severity(severity)]


# ------------------------------------------------------------------ episode identity

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND = timedelta(seconds=1)


def epoch(ts: datetime) -> int:
    """Whole seconds since the epoch of an aware datetime: the time of a fact. Facts are
    ordered by (epoch(time), event id) in both folds (twice as fast as
    ``int(ts.timestamp())`` with the tzinfo pydantic gives parsed times)."""
    return (ts - _EPOCH) // _SECOND


def records_episode_fact(data: object) -> bool:
    """Whether an event records a fact about its episode, so that the episode exists from
    then on (even before its report: a child found before being reported). A sighting, a
    safe-and-well check, an interview only offered and a strategy discussion mention an
    episode without making one."""
    if isinstance(data, ReturnInterviewRecorded):
        return data.status != "offered"
    return isinstance(data, EpisodeReported | RiskRegraded | ChildFound | EpisodeCorrected | ChildRescueAlertActivated)


def episode_of(aliases: Mapping[str, str], episode_ref: str) -> str:
    """The episode an event's ``episode_ref`` names, after the merges ``aliases`` records
    (merged report's ref -> the episode it was merged into)."""
    return aliases.get(episode_ref, episode_ref)


def episode_of_report(
    aliases: Mapping[str, str],
    known: Container[str],
    open_ref: str | None,
    episode_ref: str,
    reported_before_open_started: bool = False,
) -> str:
    """The episode a report belongs to. A report of an episode not known yet, while
    another episode of the child is open (``open_ref``), is a second report of that open
    episode: the caller records the alias ``episode_ref -> result`` when they differ.
    Except a report made before the open episode started (its event time earlier than the
    open episode's reported start: history imported after a live report, a backfill): it
    cannot be about an absence that had not begun, so it is its own, earlier episode.
    Anything else is the episode it names."""
    ref = episode_of(aliases, episode_ref)
    if open_ref is None or ref in known or reported_before_open_started:
        return ref
    return open_ref


def is_open(reported: bool, ended: bool) -> bool:
    """Missing now: the report has arrived and no end (found, returned, or an end date
    corrected in) is recorded."""
    return reported and not ended


def earlier_report(current: tuple[int, str] | None, candidate: tuple[int, str]) -> bool:
    """Whether a report keyed (epoch(time), event id) is the episode's report rather than
    ``current``: the earliest one is; later ones (resent, or a second report merged in)
    count as re-grades."""
    return current is None or candidate < current
