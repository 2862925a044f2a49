"""Console settings (``BEACON_CONSOLE_*``), on top of the shared Settings."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator

from beacon.core.settings import PROJECT_ROOT, RequiredSecret, Settings


class ConsoleUsersSettings(Settings):
    """What the account tools need (``python -m beacon console-user``): no session secret."""

    console_users_file: Path = Field(
        default=PROJECT_ROOT / "var" / "console" / "users.json",
        description="Staff allowed to log in, with scrypt password hashes "
        "(managed by `python -m beacon console-user`). Re-read on change: no restart needed.",
    )


class ConsoleSettings(ConsoleUsersSettings):
    console_session_secret: RequiredSecret = Field(
        default=SecretStr(""),
        description="Signs session cookies (at least 32 random bytes; the console refuses to start without). "
        "Set the same value on every console instance behind one load balancer.",
    )
    console_session_max_age_s: int = Field(default=12 * 3600, ge=60, description="Idle time before a new login.")
    console_cookie_secure: bool = Field(default=False, description="Send the session cookie over HTTPS only.")
    console_timezone: str = Field(default="Europe/London", description="Time zone the pages show times in.")

    @field_validator("console_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name such as Europe/London)") from None
        return value
