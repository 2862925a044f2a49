"""The council's policy file (YAML): thresholds that are local choices, never constants.

Statutory rules (e.g. the 72-hour return home interview) have defaults here;
local ones (Norfolk's 3 episodes in 42 days, Kent's 48-hour senior alert) are
expressed in the file. An invalid file stops the service with the key and reason.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from beacon.core.alerts import Severity


class _Policy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RepeatEpisodes(_Policy):
    count: int = Field(default=3, ge=2, le=50, description="Episodes within the window that raise an alert.")
    window_days: int = Field(default=90, ge=1, le=3650)


class LadderStep(_Policy):
    after_hours: float = Field(gt=0, le=24 * 365, description="Still missing this long after the start.")
    severity: Severity
    notify: str = Field(min_length=1, description="Role to notify at this step, e.g. team_manager.")


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


class Policy(_Policy):
    council: str = Field(min_length=1, description="Whose protocol this is.")
    allowed_lateness_minutes: float = Field(
        default=10, ge=0, le=24 * 60, description="How late an event may arrive and still count as on time."
    )
    repeat_episodes: RepeatEpisodes = RepeatEpisodes()
    duration_ladder: DurationLadder = DurationLadder()
    return_interview: ReturnInterview = ReturnInterview()


class PolicyError(SystemExit):
    """Raised (exit status 2) with the file, the key and the reason."""


def load_policy(path: Path) -> Policy:
    try:
        raw = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise PolicyError(f"policy file {path}: cannot read it ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise PolicyError(f"policy file {path}: not valid YAML ({exc})") from None
    if not isinstance(raw, dict):
        raise PolicyError(f"policy file {path}: the top level must be a mapping")
    try:
        return Policy.model_validate(raw)
    except ValidationError as exc:
        reasons = "\n".join(
            f"  {'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}" for err in exc.errors()
        )
        raise PolicyError(f"policy file {path} is invalid:\n{reasons}") from None
