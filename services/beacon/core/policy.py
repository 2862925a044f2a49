"""The council's policy file (YAML): thresholds that are local choices, never constants.

Statutory rules (e.g. the 72-hour return home interview) have defaults here;
local ones (Norfolk's 3 episodes in 42 days, Kent's 48-hour senior alert) are
expressed in the file. An invalid file stops the service with the key and reason.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from beacon.core.alerts import Severity
from beacon.core.config_files import load_yaml_model


class _Policy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RepeatEpisodes(_Policy):
    count: int = Field(default=3, ge=2, le=50, description="Episodes within the window that raise an alert.")
    window_days: int = Field(default=90, ge=1, le=3650)
    severity: Severity = Severity.high
    notify: str = Field(default="team_manager", min_length=1, description="Who convenes the strategy discussion.")


class LadderStep(_Policy):
    after_hours: float = Field(gt=0, le=24 * 365, description="Still missing this long after the start.")
    severity: Severity
    notify: str = Field(min_length=1, description="Role to notify at this step, e.g. team_manager.")
    looked_after_only: bool = Field(default=False, description="Only for children in care (Kent's 48 h rule).")


class DurationLadder(_Policy):
    steps: tuple[LadderStep, ...] = (
        LadderStep(after_hours=24, severity=Severity.medium, notify="team_manager"),
        LadderStep(after_hours=48, severity=Severity.high, notify="service_manager"),
        LadderStep(after_hours=72, severity=Severity.high, notify="head_of_service"),
        LadderStep(after_hours=168, severity=Severity.critical, notify="director"),
    )

    @field_validator("steps")
    @classmethod
    def _ascending(cls, steps: tuple[LadderStep, ...]) -> tuple[LadderStep, ...]:
        hours = [s.after_hours for s in steps]
        if hours != sorted(set(hours)):
            raise ValueError("steps must be in strictly ascending order of after_hours")
        return steps


class ReturnInterview(_Policy):
    deadline_hours: float = Field(default=72, gt=0, le=24 * 30, description="Statutory: 72 hours.")
    severity: Severity = Severity.medium
    notify: str = Field(default="team_manager", min_length=1)


RiskGradeName = Literal["no_apparent_risk", "low", "medium", "high"]
CseLevelName = Literal["low", "medium", "high"]


class Triage(_Policy):
    """Severity of a new episode: the police risk grade, raised to a floor by each
    aggravating factor that applies. Child Rescue Alert is always critical."""

    risk_severity: dict[RiskGradeName, Severity] = Field(
        default_factory=lambda: {  # type: ignore[arg-type]  # mypy reads the literal's keys as str
            "no_apparent_risk": Severity.low,
            "low": Severity.low,
            "medium": Severity.medium,
            "high": Severity.high,
        },
        description="Severity for each police risk grade; every grade must be mapped.",
    )
    young_child_max_age: int = Field(default=13, ge=0, le=25, description="'13 and under' counts as young.")
    young_child_min_severity: Severity = Severity.high
    looked_after_min_severity: Severity = Severity.medium
    cse_from_level: CseLevelName = Field(default="medium", description="CSE screening level that aggravates.")
    cse_min_severity: Severity = Severity.high
    notify: dict[Severity, str] = Field(
        default_factory=lambda: {
            Severity.low: "duty_social_worker",
            Severity.medium: "team_manager",
            Severity.high: "team_manager",
            Severity.critical: "service_manager",
        },
        description="Role paged for a triage alert of each severity.",
    )

    @field_validator("risk_severity")
    @classmethod
    def _every_grade(cls, mapping: dict[str, Severity]) -> dict[str, Severity]:
        missing = {"no_apparent_risk", "low", "medium", "high"} - set(mapping)
        if missing:
            raise ValueError(f"every risk grade needs a severity; missing: {', '.join(sorted(missing))}")
        return mapping

    @field_validator("notify")
    @classmethod
    def _every_severity(cls, mapping: dict[Severity, str]) -> dict[Severity, str]:
        missing = set(Severity) - set(mapping)
        if missing:
            raise ValueError(f"every severity needs a role; missing: {', '.join(sorted(s.value for s in missing))}")
        return mapping


class CseMissing(_Policy):
    """A child with CSE risk at or above ``from_level`` is missing: one alert per episode."""

    from_level: CseLevelName = "medium"
    severity: Severity = Severity.critical
    notify: str = Field(default="service_manager", min_length=1)


class Unallocated(_Policy):
    """A child with no allocated worker goes missing, or is de-allocated while missing."""

    enabled: bool = True
    severity: Severity = Severity.high
    notify: str = Field(default="team_manager", min_length=1)


class Corrections(_Policy):
    """Who may amend an episode's dates (``episode.corrected``). Any force or council may
    send ``episode.found``: children are found by other forces."""

    parties_only: bool = Field(
        default=True,
        description="Refuse a correction from an organisation with no part in the episode (its reporting "
        "force, placing council or the host council of the child's placement): it changes nothing and is "
        "dead-lettered with the reason.",
    )


class Policy(_Policy):
    council: str = Field(min_length=1, description="Whose protocol this is.")
    allowed_lateness_minutes: float = Field(
        default=10, ge=0, le=24 * 60, description="How late an event may arrive and still count as on time."
    )
    repeat_episodes: RepeatEpisodes = RepeatEpisodes()
    duration_ladder: DurationLadder = DurationLadder()
    return_interview: ReturnInterview = ReturnInterview()
    triage: Triage = Triage()
    cse_missing: CseMissing = CseMissing()
    unallocated: Unallocated = Unallocated()
    corrections: Corrections = Corrections()
    processed_event_memory: int = Field(
        default=8,
        ge=1,
        le=4096,
        description="Latest event keys remembered per child to skip duplicates cheaply (resends arrive "
        "close together); older duplicates are merged again, which changes nothing.",
    )

    @property
    def longest_window_hours(self) -> float:
        """How far back any rule looks: older closed episodes can be forgotten."""
        ladder = max((s.after_hours for s in self.duration_ladder.steps), default=0)
        return max(self.repeat_episodes.window_days * 24, ladder, self.return_interview.deadline_hours)


class PolicyError(SystemExit):
    """Raised (exit status 2) with the file, the key and the reason."""


def load_policy(path: Path) -> Policy:
    return load_yaml_model(path, Policy, "policy file", PolicyError)
