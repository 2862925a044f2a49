"""Console settings (``BEACON_CONSOLE_*``), on top of the shared Settings."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cryptography.fernet import Fernet
from pydantic import Field, SecretStr, ValidationInfo, field_validator

from beacon.notifier.settings import OnCallFileSettings
from beacon.runtime.settings import OptionalSecret, RequiredSecret, Settings


class ConsoleUsersSettings(Settings):
    """What the account tools need (``python -m beacon console-user``): Kafka, no session secret.
    The users themselves live on the compacted topic ``beacon.console.users``."""


class ConsoleSettings(ConsoleUsersSettings, OnCallFileSettings):
    console_session_secret: RequiredSecret = Field(
        default=SecretStr(""),
        description="Signs session cookies (at least 32 random bytes; the console refuses to start without). "
        "Set the same value on every console instance behind one load balancer.",
    )
    console_session_max_age_s: int = Field(default=12 * 3600, ge=60, description="Idle time before a new login.")
    console_cookie_secure: bool = Field(default=False, description="Send the session cookie over HTTPS only.")
    console_timezone: str = Field(default="Europe/London", description="Time zone the pages show times in.")
    console_history_days: int = Field(
        default=30,
        ge=0,
        le=366,
        description="How long after an episode ends its organisations still see the child "
        "(return home interview, strategy discussion, a repeat episode); see docs/console-access.md.",
    )
    console_notes_key: OptionalSecret = Field(
        default=SecretStr(""),
        description="Encrypts the notes staff write on alerts (a Fernet key: `python -c 'from cryptography.fernet "
        "import Fernet; print(Fernet.generate_key().decode())'`); the same on every instance. Empty: notes are off.",
    )
    console_read_model_file: Path | None = Field(
        default=None,
        description="This instance's read model (SQLite, with the offsets it has read), so a restart resumes "
        "instead of replaying every topic. One file per instance; empty: `BEACON_DATA_DIR`/console/read-model.sqlite3. "
        "Deleting it is safe: the console rebuilds it from the topics.",
    )
    console_returns_due_days: int = Field(
        default=28,
        ge=1,
        le=366,
        description="Returns due lists returns of the last this many days still without an interview.",
    )
    console_read_model_cache_entries: int = Field(
        default=10_000,
        ge=100,
        le=10_000_000,
        description="Children and alerts (each) the read model keeps in memory; the rest are read from the file.",
    )
    console_login_free_failures_per_user: int = Field(
        default=3, ge=1, le=100, description="Wrong passwords for one user name before each attempt must wait."
    )
    console_login_free_failures_per_address: int = Field(
        default=10, ge=1, le=10_000, description="Wrong passwords from one client address before it must wait."
    )
    console_login_backoff_s: float = Field(
        default=1.0, gt=0, le=3600, description="The first wait after the free failures; doubles at each failure."
    )
    console_login_max_backoff_s: float = Field(default=300.0, gt=0, le=86_400, description="The longest wait.")
    console_login_lockout_after: int = Field(
        default=10,
        ge=2,
        le=1000,
        description="Wrong passwords in a row that lock a user name until an admin runs "
        "`python -m beacon console-user unlock NAME`.",
    )

    console_oidc_issuer: str = Field(
        default="",
        description="OpenID Connect issuer URL for single sign-on (e.g. https://login.microsoftonline.com/TENANT/v2.0); "
        "empty: local accounts only. Discovery at ISSUER/.well-known/openid-configuration.",
    )
    console_oidc_client_id: str = Field(default="", description="The console's client id at the OIDC provider.")
    console_oidc_client_secret: SecretStr = Field(
        default=SecretStr(""), description="The console's client secret at the OIDC provider (needed with an issuer)."
    )
    console_oidc_redirect_url: str = Field(
        default="",
        description="The callback URL registered at the provider (https://console.example/login/oidc/callback); "
        "empty: derived from the request, for a console reached directly.",
    )
    console_oidc_organisations_claim: str = Field(
        default="beacon_orgs",
        description="ID token claim holding the user's organisation slugs (a list or a space-separated string); "
        "a token without one is refused.",
    )
    console_oidc_role_claim: str = Field(
        default="beacon_role",
        description="ID token claim holding the role (viewer, responder, coordinator, admin; a list: the highest "
        "wins, e.g. Entra ID app roles in `roles`); none known: viewer.",
    )
    console_oidc_name_claim: str = Field(
        default="preferred_username", description="ID token claim used as the user name (audit, pages); else `sub`."
    )

    @field_validator("console_oidc_client_secret")
    @classmethod
    def _oidc_complete(cls, value: SecretStr, info: ValidationInfo) -> SecretStr:
        if info.data.get("console_oidc_issuer") and not (
            value.get_secret_value() and info.data.get("console_oidc_client_id")
        ):
            raise ValueError("an OIDC issuer needs BEACON_CONSOLE_OIDC_CLIENT_ID and this secret")
        return value

    @property
    def read_model_file(self) -> Path:
        return self.console_read_model_file or self.data_dir / "console" / "read-model.sqlite3"

    @field_validator("console_login_lockout_after")
    @classmethod
    def _lockout_after_the_free_failures(cls, value: int, info: ValidationInfo) -> int:
        free = info.data.get("console_login_free_failures_per_user")
        if free is not None and value <= free:
            raise ValueError(f"must be greater than BEACON_CONSOLE_LOGIN_FREE_FAILURES_PER_USER ({free})")
        return value

    @field_validator("console_notes_key")
    @classmethod
    def _fernet_key(cls, value: SecretStr) -> SecretStr:
        if value.get_secret_value():
            try:
                Fernet(value.get_secret_value().encode())
            except ValueError:
                raise ValueError("must be a Fernet key: 32 random bytes, url-safe base64 (44 characters)") from None
        return value

    @field_validator("console_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name such as Europe/London)") from None
        return value
