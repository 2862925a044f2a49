"""On call now: who is on call for each team now and next, from the notifier's on-call file
(parsed by its own parser, notifier/oncall.py), and what each of them has open. Pure."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from beacon.console.projection import AlertView
from beacon.notifier.oncall import OnCallConfig, Rotation

_HORIZON = timedelta(days=366)


@dataclass(frozen=True)
class TeamOnCall:
    team: str
    councils: tuple[str, ...]
    now: str
    next: str | None  # None: nobody else within a year (a rotation of one)
    handover_at: datetime | None
    roles: tuple[tuple[str, str], ...]  # (role, person) named in the team
    open_alerts: tuple[AlertView, ...] = field(default=())  # of the councils this team takes

    @property
    def unacknowledged(self) -> int:
        return sum(1 for a in self.open_alerts if a.needs_attention)


def next_handover(rotation: Rotation, now: datetime) -> tuple[datetime, str] | None:
    """The first time after ``now`` someone else is on call, and who: shift boundaries and
    override edges are the only times the answer can change."""
    current = rotation.on_call(now)
    shift = timedelta(days=rotation.shift_days)
    first_boundary = rotation.start + ((now - rotation.start) // shift + 1) * shift
    # Within as many shifts as there are participants, plus one, someone else's turn comes.
    boundaries = (first_boundary + n * shift for n in range(len(rotation.participants) + 1))
    edges = {o.start for o in rotation.overrides} | {o.end for o in rotation.overrides}
    candidates = [t for t in (*edges, *boundaries) if now < t <= now + _HORIZON]
    for at in sorted(set(candidates)):
        person = rotation.on_call(at)
        if person != current:
            return at, person
    return None


def on_call_now(
    config: OnCallConfig, now: datetime, open_alerts: Iterable[AlertView], councils: frozenset[str] | None = None
) -> list[TeamOnCall]:
    """Every team (only those taking one of ``councils``, or routed one of ``open_alerts``, if
    given; the default team always shows for an administrator's None), with its open alerts routed
    by council as the notifier routes them. ``open_alerts`` must be only those the viewer may see."""
    by_team: dict[str, list[AlertView]] = {}
    for alert in open_alerts:
        by_team.setdefault(config.team_for(alert.council), []).append(alert)
    teams = []
    for name, team in config.teams.items():
        if councils is not None and not set(team.councils) & councils and name not in by_team:
            continue
        handover = next_handover(team.rotation, now)
        teams.append(
            TeamOnCall(
                team=name,
                councils=team.councils,
                now=team.rotation.on_call(now),
                next=handover[1] if handover else None,
                handover_at=handover[0] if handover else None,
                roles=tuple(sorted(team.roles.items())),
                open_alerts=tuple(by_team.get(name, ())),
            )
        )
    return teams


def open_by_person(open_alerts: Iterable[AlertView]) -> dict[str, list[AlertView]]:
    """Open alerts someone has acknowledged (taken charge of), by person."""
    taken: dict[str, list[AlertView]] = {}
    for alert in open_alerts:
        if alert.acknowledged_by:
            taken.setdefault(alert.acknowledged_by, []).append(alert)
    return taken
