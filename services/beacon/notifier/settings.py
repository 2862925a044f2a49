"""Settings of the notifier only (``BEACON_*`` like the rest)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, ValidationInfo, field_validator

from beacon.runtime.settings import PROJECT_ROOT, OptionalSecret, RequiredSecret, Settings, secret_problem


class OnCallFileSettings(Settings):
    """What the on-call tools need (``python -m beacon oncall check``): no secrets."""

    oncall_file: Path = Field(
        default=PROJECT_ROOT / "deploy" / "oncall" / "example.yaml",
        description="People, teams, rotations, roles and escalation policies (YAML).",
    )


class NotifierSettings(OnCallFileSettings):
    ack_link_secret: RequiredSecret = Field(
        default=SecretStr(""),
        description="Signs acknowledgement links (at least 32 random bytes; the notifier refuses to start without).",
    )
    notifier_api_token: OptionalSecret = Field(
        default=SecretStr(""),
        description="Bearer token for the notifier API (/v1/alerts/...); empty disables the API, "
        "set it must be at least 32 random bytes.",
    )
    notifier_test_clock: bool = Field(
        default=False,
        description='Tests only: mounts GET /test/clock and POST /test/clock/advance, body {"seconds": N}, which '
        "moves the notifier's clock N seconds ahead and answers its new time (not mounted when off: 404).",
    )
    notifier_tick_interval_s: float = Field(default=1.0, gt=0, le=60, description="Escalation timer period.")
    notifier_contact_min_interval_s: float = Field(
        default=60.0,
        ge=0,
        le=3600,
        description="At most one message per contact per this many seconds; "
        "what piles up meanwhile is bundled into one message.",
    )
    notifier_max_bundle: int = Field(
        default=5, ge=1, le=20, description="Notifications bundled into one message at most (oldest first)."
    )
    notifier_send_attempts: int = Field(default=4, ge=1, le=10, description="Tries per message on 5xx/timeouts.")
    notifier_retry_backoff_s: float = Field(default=0.5, gt=0, le=60, description="First retry wait; doubles.")
    notifier_send_timeout_s: float = Field(
        default=10.0, gt=0, le=120, description="How long one attempt to hand a message to Twilio or SMTP may take."
    )
    ack_link_ttl_minutes: float = Field(
        default=24 * 60, gt=0, le=7 * 24 * 60, description="How long an acknowledgement link in a message works."
    )
    notifier_sweep_grace_s: float = Field(
        default=120,
        gt=0,
        le=3600,
        description="An alert on beacon.alerts that no escalation shows this long after Kafka got it is routed "
        "again (then after twice as long, and so on): the safety net under the notifier's consumer group.",
    )
    notifier_sweep_lookback_s: float = Field(
        default=3600,
        ge=0,
        le=7 * 24 * 3600,
        description="How far back each notifier replica starts reading beacon.alerts for that check when it starts.",
    )
    notifier_resolved_retention_days: float = Field(
        default=30,
        gt=0,
        le=3650,
        description="How long a resolved alert's escalation stays in the notifier's table after its resolution "
        "(never before its resolution messages left). A replayed or duplicated alert emitted longer ago than "
        "this pages nobody.",
    )
    smtp_ca_file: Path | None = Field(default=None, description="Extra CA bundle to trust (e.g. a test server's).")

    # Twilio (SMS). Empty account SID means dev mode (file outbox).
    twilio_account_sid: str = Field(
        default="", description="Twilio account SID for SMS; empty: SMS go to the dev-mode outbox."
    )
    twilio_auth_token: SecretStr = Field(
        default=SecretStr(""),
        description="Twilio auth token: authenticates API calls and checks webhook signatures. Required (a strong "
        "secret) once BEACON_TWILIO_ACCOUNT_SID is set.",
    )
    twilio_from_number: str = Field(default="", description="Sender number of every SMS (E.164, e.g. +447700900123).")
    twilio_api_base_url: str = Field(default="", description="Override, e.g. a Prism mock of Twilio's API.")

    # SMTP (email). Empty host means dev mode (file outbox).
    smtp_host: str = Field(default="", description="SMTP server for email; empty: emails go to the dev-mode outbox.")
    smtp_port: int = Field(default=587, ge=1, le=65535, description="SMTP port (587: submission with STARTTLS).")
    smtp_username: str = Field(default="", description="SMTP AUTH user; empty: no AUTH.")
    smtp_password: SecretStr = Field(default=SecretStr(""), description="SMTP AUTH password.")
    smtp_from: str = Field(default="beacon@localhost", description="From address of every email.")
    smtp_starttls: bool = Field(
        default=True, description="Upgrade the SMTP connection with STARTTLS before AUTH (refuse a server without it)."
    )

    @field_validator("twilio_auth_token")
    @classmethod
    def _twilio_token_when_twilio_is_on(cls, value: SecretStr, info: ValidationInfo) -> SecretStr:
        # Twilio signs its webhooks with this token: a weak one lets anyone fake an SMS reply.
        problem = secret_problem(value.get_secret_value()) if info.data.get("twilio_account_sid") else None
        if problem:
            raise ValueError(problem)
        return value
