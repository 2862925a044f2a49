"""On-call configuration (YAML): people, teams per council, weekly rotations with
overrides, roles, escalation policies and the routes that pick a policy for an alert.

Validated at start-up: a bad file stops the notifier with the key and the reason.
``resolve_chain`` is pure: (config, alert, time) -> the concrete escalation chain,
which the escalation engine then keeps unchanged for the life of the alert.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

import phonenumbers
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from beacon.core.alerts import AlertRecord, Severity
from beacon.core.config_files import load_yaml_model

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z0-9-]{2,}$")
_ID = r"^[a-z0-9][a-z0-9_.-]{0,62}$"


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ContactMethod(_Config):
    channel: Literal["sms", "email"]
    to: str = Field(min_length=3, max_length=254)

    @model_validator(mode="after")
    def _check_address(self) -> ContactMethod:
        if self.channel == "sms":
            try:
                number = phonenumbers.parse(self.to, None)
            except phonenumbers.NumberParseException as exc:
                raise ValueError(f"{self.to!r} is not an E.164 number ({exc})") from None
            e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
            # is_possible (not is_valid): Ofcom's drama range 07700 900xxx is used in
            # examples and tests and is deliberately outside the allocated ranges.
            if e164 != self.to or not phonenumbers.is_possible_number(number):
                raise ValueError(f"{self.to!r} is not an E.164 number (expected e.g. {e164!r})")
        elif not _EMAIL.match(self.to):
            raise ValueError(f"{self.to!r} is not an email address")
        return self


class Person(_Config):
    contacts: tuple[ContactMethod, ...] = Field(
        min_length=1, description="In order of preference: a failed delivery falls back to the next one."
    )


class Override(_Config):
    person: str
    start: AwareDatetime
    end: AwareDatetime

    @model_validator(mode="after")
    def _ordered(self) -> Override:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class Rotation(_Config):
    """Weekly (or n-day) rotation: ``participants[0]`` is on call from ``start``,
    the next one from ``start + shift_days`` (the handover time), and so on."""

    start: AwareDatetime = Field(description="First handover, e.g. a Monday 09:00 local time with offset.")
    shift_days: int = Field(default=7, ge=1, le=31)
    participants: tuple[str, ...] = Field(min_length=1)
    overrides: tuple[Override, ...] = ()

    def on_call(self, at: datetime) -> str:
        for override in self.overrides:
            if override.start <= at < override.end:
                return override.person
        shift = (at - self.start) // timedelta(days=self.shift_days)
        return self.participants[shift % len(self.participants)]


class Team(_Config):
    councils: tuple[str, ...] = Field(default=(), description="Placing councils whose alerts this team takes.")
    rotation: Rotation
    roles: dict[str, str] = Field(default_factory=dict, description="Role name -> person id.")
    oncall_roles: tuple[str, ...] = Field(
        default=(),
        description="Roles the person on call fills (e.g. duty_social_worker): an alert whose policy "
        "names one of them pages whoever is on call.",
    )

    def holder(self, role: str, at: datetime) -> str | None:
        """Who fills ``role`` at ``at``: the on-call person for an on-call role, else the
        named person; None if the team has no such role."""
        if role in self.oncall_roles:
            return self.rotation.on_call(at)
        return self.roles.get(role)


class Target(_Config):
    """Exactly one of: the team's on-call person, a role in the team, a named person."""

    oncall: bool = False
    role: str | None = None
    person: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Target:
        if sum((self.oncall, self.role is not None, self.person is not None)) != 1:
            raise ValueError("a target is exactly one of 'oncall: true', 'role: NAME' or 'person: ID'")
        return self


class PolicyStep(_Config):
    targets: tuple[Target, ...] = Field(min_length=1)
    delay_minutes: float = Field(gt=0, le=24 * 60, description="Wait this long for an ack before the next step.")
    ask: str = Field(
        default="Please acknowledge and take charge of this case.",
        min_length=3,
        max_length=120,
        description="What is asked of the person, shown in the message.",
    )


_DEFAULT_HOLD = {Severity.low: 60.0, Severity.medium: 60.0, Severity.high: 0.0, Severity.critical: 0.0}


class EscalationPolicy(_Config):
    steps: tuple[PolicyStep, ...] = Field(min_length=1)
    repeat: int = Field(default=0, ge=0, le=9, description="Run the whole chain again up to this many times.")
    hold_seconds: dict[Severity, float] = Field(
        default_factory=lambda: dict(_DEFAULT_HOLD),
        description="Per severity: wait this long before the first page; an alert resolved meanwhile "
        "(a backfilled episode that is already over) pages nobody. Severities left out: no wait.",
    )

    group_seconds: float = Field(
        default=2.0,
        ge=0,
        le=60,
        description="Group wait: pages of one episode's alerts raised within this many seconds of "
        "each other leave as one page (highest severity, every reason).",
    )

    @field_validator("hold_seconds")
    @classmethod
    def _hold_bounds(cls, value: dict[Severity, float]) -> dict[Severity, float]:
        for severity, seconds in value.items():
            if not 0 <= seconds <= 900:
                raise ValueError(f"{severity.value}: a hold is 0 to 900 seconds, not {seconds:g}")
        return value

    def hold_for(self, severity: Severity) -> float:
        return self.hold_seconds.get(severity, 0.0)


class RouteMatch(_Config):
    min_severity: Severity | None = None
    rules: tuple[str, ...] = ()

    def matches(self, alert: AlertRecord) -> bool:
        if self.min_severity is not None and alert.severity.rank < self.min_severity.rank:
            return False
        return not self.rules or alert.rule in self.rules


class Route(_Config):
    match: RouteMatch = RouteMatch()
    policy: str


class OnCallConfig(_Config):
    people: dict[str, Person]
    teams: dict[str, Team] = Field(min_length=1)
    default_team: str = Field(description="Team for alerts whose council no team covers.")
    policies: dict[str, EscalationPolicy] = Field(min_length=1)
    routes: tuple[Route, ...] = Field(min_length=1, description="First match wins; the last should match all.")

    @field_validator("people", "teams", "policies")
    @classmethod
    def _ids(cls, value: dict[str, object]) -> dict[str, object]:
        for key in value:
            if not re.match(_ID, key):
                raise ValueError(f"{key!r} is not a valid id (lower-case letters, digits, _ . -)")
        return value

    @model_validator(mode="after")
    def _references(self) -> OnCallConfig:
        errors: list[str] = []
        if self.default_team not in self.teams:
            errors.append(f"default_team: no team {self.default_team!r}")
        seen_councils: dict[str, str] = {}
        roles_used = {t.role for p in self.policies.values() for s in p.steps for t in s.targets if t.role}
        for name, team in self.teams.items():
            for council in team.councils:
                if council in seen_councils:
                    errors.append(
                        f"teams.{name}.councils: {council!r} is already covered by {seen_councils[council]!r}"
                    )
                seen_councils[council] = name
            for who in team.rotation.participants:
                if who not in self.people:
                    errors.append(f"teams.{name}.rotation.participants: no person {who!r}")
            for i, override in enumerate(team.rotation.overrides):
                if override.person not in self.people:
                    errors.append(f"teams.{name}.rotation.overrides.{i}.person: no person {override.person!r}")
            for role, who in team.roles.items():
                if who not in self.people:
                    errors.append(f"teams.{name}.roles.{role}: no person {who!r}")
            for role in sorted(set(team.oncall_roles) & set(team.roles)):
                errors.append(f"teams.{name}.oncall_roles: {role!r} is also a named role; it must be one or the other")
            for role in sorted(roles_used - set(team.roles)):
                errors.append(f"teams.{name}.roles: missing role {role!r} used by a policy")
        for pname, policy in self.policies.items():
            for i, step in enumerate(policy.steps):
                for j, target in enumerate(step.targets):
                    if target.person and target.person not in self.people:
                        errors.append(f"policies.{pname}.steps.{i}.targets.{j}.person: no person {target.person!r}")
        for i, route in enumerate(self.routes):
            if route.policy not in self.policies:
                errors.append(f"routes.{i}.policy: no policy {route.policy!r}")
        if errors:
            raise ValueError("; ".join(errors))
        return self

    def team_for(self, council: str | None) -> str:
        for name, team in self.teams.items():
            if council in team.councils:
                return name
        return self.default_team

    def policy_for(self, alert: AlertRecord) -> str:
        for route in self.routes:
            if route.match.matches(alert):
                return route.policy
        return self.routes[-1].policy

    def person_by_contact(self, channel: str, to: str) -> str | None:
        for pid, person in self.people.items():
            if any(c.channel == channel and c.to == to for c in person.contacts):
                return pid
        return None


class OnCallConfigError(SystemExit):
    """Raised (exit status 2) naming the file, the key and the reason."""


def overrides_from_ical(text: str) -> list[dict[str, object]]:
    """One-off covers exported from a calendar: each event's SUMMARY is the person
    id, DTSTART/DTEND the window (timezone-aware; a date alone means midnight UTC).
    Recurring events are refused: a rota belongs in ``rotation``, not in overrides."""
    from datetime import date, time

    import icalendar

    try:
        calendar = icalendar.Calendar.from_ical(text)
    except ValueError as exc:
        raise ValueError(f"not a valid iCalendar file ({exc})") from None
    overrides: list[dict[str, object]] = []
    for event in calendar.walk("VEVENT"):
        uid = str(event.get("UID", "?"))
        if event.get("RRULE"):
            raise ValueError(f"event {uid}: recurring events are not supported")
        if event.get("DTSTART") is None or event.get("DTEND") is None:
            raise ValueError(f"event {uid}: needs DTSTART and DTEND")
        bounds = []
        for name in ("DTSTART", "DTEND"):
            value = event.decoded(name)
            if not isinstance(value, datetime) and isinstance(value, date):
                value = datetime.combine(value, time(0), tzinfo=UTC)
            if value.tzinfo is None:
                raise ValueError(f"event {uid}: {name} has no timezone")
            bounds.append(value)
        overrides.append({"person": str(event.get("SUMMARY", "")).strip(), "start": bounds[0], "end": bounds[1]})
    return overrides


def _import_ical_overrides(raw: dict[str, object], base: Path) -> None:
    teams = raw.get("teams")
    if not isinstance(teams, dict):
        return
    for name, team in teams.items():
        rotation = team.get("rotation") if isinstance(team, dict) else None
        if not isinstance(rotation, dict) or "overrides_ical" not in rotation:
            continue
        ics = base / str(rotation.pop("overrides_ical"))
        try:
            imported = overrides_from_ical(ics.read_text())
        except OSError as exc:
            raise OnCallConfigError(
                f"teams.{name}.rotation.overrides_ical: cannot read {ics} ({exc.strerror})"
            ) from None
        except ValueError as exc:
            raise OnCallConfigError(f"teams.{name}.rotation.overrides_ical: {ics}: {exc}") from None
        rotation["overrides"] = list(rotation.get("overrides") or []) + imported


def load_oncall(path: Path) -> OnCallConfig:
    return load_yaml_model(
        path,
        OnCallConfig,
        "on-call file",
        OnCallConfigError,
        prepare=lambda raw: _import_ical_overrides(raw, Path(path).parent),
    )
