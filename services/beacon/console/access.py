"""Who may see which child and do what: the console's one access decision.

Pure (no I/O, no clock): the shell passes ``now``. Every page, fragment, search, count and
action of the console reads the view through ``ScopedView`` (console/app.py builds one per
request from the signed-in principal), so no page can forget the check.

The policy (docs/console-access.md):

- a principal (a console user) belongs to one or more organisations (the slugs events carry
  in ``placing_council``, ``host_council``, ``reporting_org``, and the finding force's source)
  and has one role: viewer < responder < coordinator < admin;
- a child is visible while one of its episodes involves one of the principal's organisations
  and is open, or ended less than ``history`` ago (the return home interview, the strategy
  discussion and a repeat episode need the recent history; older history is for the
  organisations' own case systems, not an on-call console);
- a visible child is shown whole (every episode and alert): the risk picture (repeat
  episodes, CSE, the last placement) is what safeguarding needs, and it is shown only to
  organisations involved now;
- an alert is visible exactly when its child is;
- anything not visible is answered as if it did not exist (404), never 403, so a reference
  typed into a URL or the search box tells nothing about other organisations' children.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import IntEnum
from typing import Any

from fastapi import HTTPException


class Role(IntEnum):
    """Ordered: each role may do what the ones below it may."""

    viewer = 0
    responder = 1  # acknowledge, escalate, close, notes
    coordinator = 2
    admin = 3  # user management

    @classmethod
    def parse(cls, name: str) -> Role:
        try:
            return cls[name]
        except KeyError:
            raise ValueError(f"unknown role {name!r} (one of: {', '.join(r.name for r in cls)})") from None


ROLE_NAMES = tuple(r.name for r in Role)


@dataclass(frozen=True)
class Principal:
    """The signed-in user as the access decision sees them."""

    name: str
    organisations: frozenset[str]
    role: Role

    def has_role(self, needed: Role) -> bool:
        return self.role >= needed


@dataclass(frozen=True)
class Involvement:
    """One episode of a child, reduced to what the access decision reads."""

    organisations: frozenset[str]
    is_open: bool
    ended_at: datetime | None


def child_visible(principal: Principal, episodes: Iterable[Involvement], now: datetime, history: timedelta) -> bool:
    """THE visibility decision: does an episode of this child involve one of the principal's
    organisations, open now or ended within ``history``?"""
    for episode in episodes:
        if not episode.organisations & principal.organisations:
            continue
        if episode.is_open:
            return True
        if episode.ended_at is not None and now - episode.ended_at <= history:
            return True
    return False


class RoleRequired(HTTPException):
    """The user may see the thing but not do this with it (the thing's existence is no secret to them)."""

    def __init__(self, needed: Role):
        super().__init__(status_code=403, detail=f"This needs the {needed.name} role or above; ask an administrator.")


def require_role(principal: Principal, needed: Role) -> None:
    if not principal.has_role(needed):
        raise RoleRequired(needed)


NOT_FOUND_CHILD = "No record of this child reference."
NOT_FOUND_ALERT = "No such alert."


# ------------------------------------------------------------------ the choke point over the projection


def episode_organisations(child: Any, episode: Any) -> frozenset[str]:
    """The organisations an episode of a projection ChildView involves: the report's placing
    council and reporting force, the finding force, and the councils of the child's current
    placement. The read model stores this per episode row (read_model.py) for its queries."""
    candidates = (
        child.placing_council,
        child.host_council,
        episode.reporting_org,
        episode.placing_council,
        episode.found_by,
    )
    return frozenset(o for o in candidates if o)


def involvements(child: Any) -> Iterator[Involvement]:
    """A projection ChildView's episodes as the decision reads them (episode_organisations).
    Lazy: the decision stops at the first episode that lets the principal in."""
    for episode in child.episodes.values():
        yield Involvement(
            organisations=episode_organisations(child, episode),
            is_open=episode.is_open,
            ended_at=episode.ended_at,
        )


class ScopedView:
    """The read model as one principal may see it. Handlers read only through this."""

    def __init__(self, state: Any, principal: Principal, now: datetime, history: timedelta):
        self.state, self.principal, self.now, self.history = state, principal, now, history
        self._decided: dict[str, bool] = {}

    def sees_child(self, child_ref: str | None) -> bool:
        if child_ref is None:
            return False
        if child_ref not in self._decided:
            child = self.state.children.get(child_ref)
            self._decided[child_ref] = child is not None and child_visible(
                self.principal, involvements(child), self.now, self.history
            )
        return self._decided[child_ref]

    def sees_alert(self, alert: Any) -> bool:
        return alert is not None and self.sees_child(alert.child_ref)

    def child(self, child_ref: str) -> Any:
        """The child's view, or 404 whether it does not exist or is not the principal's to see."""
        if not self.sees_child(child_ref):
            raise HTTPException(status_code=404, detail=NOT_FOUND_CHILD)
        return self.state.children[child_ref]

    def alert(self, alert_id: str) -> Any:
        alert = self.state.alerts.get(alert_id)
        if alert is None or not self.sees_alert(alert):
            raise HTTPException(status_code=404, detail=NOT_FOUND_ALERT)
        return alert

    def only_visible(self, rows: Iterable[Any]) -> list[Any]:
        """Rows (missing-now rows, alerts, anything with a ``child_ref``) the principal may see."""
        return [row for row in rows if self.sees_child(row.child_ref)]

    def only_involved(self, rows: Iterable[Any]) -> list[Any]:
        """Episode rows (with ``organisations``, see episode_organisations) that involved one of the
        principal's organisations, whatever the history window: a council's statutory figures
        and its SSDA903 return cover every episode of the period it was involved in."""
        return [row for row in rows if row.organisations & self.principal.organisations]

    # The read model's page queries (read_model.ReadModel), narrowed in SQL, then decided here.

    def returns_awaiting_interview(self, read_model: Any, ended_after: datetime) -> list[Any]:
        """Returns due: children the principal may see now."""
        rows = read_model.returns_awaiting_interview(ended_after, self.principal.organisations)
        return self.only_visible(rows)

    def episodes_started(self, read_model: Any, start: datetime, end: datetime) -> list[Any]:
        """Reports: episodes of the period that involved the principal's organisations."""
        return self.only_involved(read_model.episodes_started(start, end, self.principal.organisations))
