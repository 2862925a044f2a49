"""Settings of the notifier only (``BEACON_*`` like the rest)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr

from beacon.runtime.settings import PROJECT_ROOT, OptionalSecret, RequiredSecret, Settings


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
    notifier_resolved_retention_days: float = Field(
        default=30,
        gt=0,
        le=3650,
        description="How long a resolved alert's escalation stays in the notifier's table after its resolution "
        "(never before its resolution messages left). A replayed or duplicated alert that fired or was emitted "
        "longer ago than this pages nobody.",
    )
    smtp_ca_file: Path | None = Field(default=None, description="Extra CA bundle to trust (e.g. a test server's).")
