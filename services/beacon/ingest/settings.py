"""Settings of the ingest service, the validator and the import tool (``BEACON_INGEST_*``)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from pydantic import AwareDatetime, Field, SecretStr, field_validator, model_validator

from beacon.ingest.references import DEFAULT_ID_PATTERN, DEFAULT_REFERENCE_PATTERN, MIN_KEY_BYTES
from beacon.runtime.settings import Settings

POLICE_TYPES = [
    "beacon.episode.reported.v1",
    "beacon.episode.risk_regraded.v1",
    "beacon.episode.sighting.v1",
    "beacon.episode.found.v1",
    "beacon.episode.safe_and_well_checked.v1",
    "beacon.child_rescue_alert.activated.v1",
    "beacon.episode.corrected.v1",
]
COUNCIL_TYPES = [
    "beacon.return_interview.recorded.v1",
    "beacon.strategy_discussion.recorded.v1",
    "beacon.cse.screened.v1",
    "beacon.placement.changed.v1",
    "beacon.allocation.changed.v1",
    "beacon.episode.corrected.v1",
]


class IngestSettings(Settings):
    ingest_scopes: dict[str, list[str]] = Field(
        default={"police": POLICE_TYPES, "council": COUNCIL_TYPES},
        description="Scope name -> event types a key of that scope may send (JSON in the environment).",
    )
    ingest_source_prefix: str = Field(
        default="urn:beacon:source:",
        description="An accepted event's `source` must be this prefix + the key's source name.",
    )
    ingest_max_batch_events: int = Field(
        default=500, ge=1, le=10_000, description="Events in one POST at most (a larger batch gets 413)."
    )
    ingest_max_body_bytes: int = Field(
        default=1_048_576, ge=1024, description="Request body size at most (a larger body gets 413)."
    )
    ingest_future_tolerance_s: float = Field(
        default=300.0,
        ge=0,
        description="No date-time of an event (`time` or any in `data`) may be more than this far ahead "
        "of the server clock.",
    )
    ingest_earliest_event_time: AwareDatetime = Field(
        default=datetime(1990, 1, 1, tzinfo=UTC),
        description="No date-time of an event (`time` or any in `data`) may be earlier than this.",
    )
    ingest_reference_pattern: str = Field(
        default=DEFAULT_REFERENCE_PATTERN,
        description="Every `subject` and `data.episode_ref` must match this regular expression "
        "(the default lets no name or address through).",
    )
    ingest_id_pattern: str = Field(
        default=DEFAULT_ID_PATTERN, description="Every event `id` must match this regular expression."
    )
    ingest_pseudonym_key: SecretStr = Field(
        default=SecretStr(""),
        description="When set (at least 32 bytes), the doors replace each `subject` and `data.episode_ref` "
        "by its HMAC-SHA256 pseudonym under this key: keep it secret and never change it.",
    )
    ingest_rate_per_s: float = Field(default=50.0, gt=0, description="Per-source sustained events per second.")
    ingest_rate_burst: int = Field(default=1000, ge=1, description="Per-source token-bucket capacity (events).")
    ingest_kafka_timeout_s: float = Field(
        default=10.0, ge=1, description="How long a write may wait for Kafka before the request gets 503."
    )
    ingest_retry_after_s: int = Field(default=5, ge=1, description="Retry-After when Kafka is unavailable.")

    @field_validator("ingest_reference_pattern", "ingest_id_pattern")
    @classmethod
    def _a_regular_expression(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from None
        return value

    @field_validator("ingest_pseudonym_key")
    @classmethod
    def _long_enough(cls, value: SecretStr) -> SecretStr:
        if value.get_secret_value() and len(value.get_secret_value().encode()) < MIN_KEY_BYTES:
            raise ValueError(f"must be at least {MIN_KEY_BYTES} bytes (e.g. `openssl rand -base64 48`)")
        return value

    @model_validator(mode="after")
    def _scopes_name_known_types(self) -> IngestSettings:
        from beacon.core.events import EVENT_TYPES

        for scope, types in self.ingest_scopes.items():
            unknown = sorted(set(types) - set(EVENT_TYPES))
            if unknown:
                raise ValueError(f"scope {scope!r} names unknown event types: {', '.join(unknown)}")
        return self
