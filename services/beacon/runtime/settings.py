"""Runtime settings from ``BEACON_*`` environment variables and an optional YAML file.

Validated at start-up: a bad value stops the process with a message naming the
environment variable and the reason (see ``load_settings``).
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

PROJECT_ROOT = Path(__file__).resolve().parents[3]
ENV_PREFIX = "BEACON_"


# ---------------------------------------------------------------- secrets
# One rule for every secret Beacon holds: at least MIN_SECRET_BYTES bytes, not a value
# that has ever been published (a default, an example), not a placeholder.
MIN_SECRET_BYTES = 32
PUBLISHED_SECRETS = frozenset(
    {
        "dev-only-secret-change-me",  # Beacon's own default until issue 11
        "change-me",
        "changeme",
        "secret",
        "password",
    }
)
_MIN_DISTINCT_CHARACTERS = 8  # "aaaa...": long enough, guessable all the same


def secret_problem(value: str) -> str | None:
    """Why ``value`` cannot be a secret, or None if it can."""
    if not value:
        return "not set (generate one: openssl rand -hex 32)"
    if value.strip().lower() in PUBLISHED_SECRETS:
        return "a published default: anyone can forge with it (generate one: openssl rand -hex 32)"
    if len(value.encode()) < MIN_SECRET_BYTES:
        return f"too short: a secret needs at least {MIN_SECRET_BYTES} bytes (generate one: openssl rand -hex 32)"
    if len(set(value)) < _MIN_DISTINCT_CHARACTERS:
        return "a placeholder, not a random secret (generate one: openssl rand -hex 32)"
    return None


def _required_secret(value: SecretStr) -> SecretStr:
    problem = secret_problem(value.get_secret_value())
    if problem:
        raise ValueError(problem)
    return value


def _optional_secret(value: SecretStr) -> SecretStr:
    return _required_secret(value) if value.get_secret_value() else value


# A secret the service cannot run without (default empty: refused until set).
RequiredSecret = Annotated[SecretStr, AfterValidator(_required_secret)]
# A secret whose feature is off while it is empty; once set, the same rule applies.
OptionalSecret = Annotated[SecretStr, AfterValidator(_optional_secret)]


def required_secrets(settings_cls: type[BaseSettings]) -> list[str]:
    """Names of the RequiredSecret fields of ``settings_cls`` (what a deployment must set)."""
    return [
        name
        for name, field in settings_cls.model_fields.items()
        if any(getattr(rule, "func", None) is _required_secret for rule in field.metadata)
    ]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", validate_default=True)

    # Kafka
    kafka_bootstrap_servers: str = Field(
        default="127.0.0.1:9092",
        min_length=1,
        description="Kafka brokers, comma-separated host:port, e.g. kafka-1:9092,kafka-2:9092 (Apache Kafka, Redpanda, MSK).",
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT",
        description="How every Kafka client (workers, ingest, console, CLI tools) connects. Production: "
        "SASL_SSL (TLS, and a SCRAM login per service).",
    )
    kafka_sasl_mechanism: Literal["SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        default="SCRAM-SHA-512", description="SCRAM mechanism of the login (Strimzi's KafkaUser: SCRAM-SHA-512)."
    )
    kafka_sasl_username: str = Field(default="", description="SCRAM user; required with SASL_*.")
    kafka_sasl_password: SecretStr = Field(default=SecretStr(""), description="SCRAM password; required with SASL_*.")
    kafka_ssl_ca_file: Path | None = Field(
        default=None,
        description="PEM file of the CA(s) the brokers' certificates chain to (e.g. Strimzi's cluster CA); "
        "unset: the system's trust store. Host names are always verified.",
    )
    kafka_single_record_batches: bool = Field(
        default=False,
        description="Send every record in its own batch. Needed on the embedded Tansu broker, whose "
        "ListOffsets(latest) is wrong after multi-record batches (Faust would under-read changelogs).",
    )
    topic_partitions: int = Field(
        default=4, ge=1, le=1024, description="Partitions of every topic Beacon creates: the most workers per service."
    )
    topic_replication_factor: int = Field(
        default=1, ge=1, le=7, description="Replicas of every topic Beacon creates (3 on a production cluster)."
    )
    event_retention_days: int = Field(
        default=76 * 365,
        ge=1,
        description="retention.ms of the delete-policy topics Beacon creates: looked-after children's "
        "records are kept to their 75th birthday.",
    )
    audit_retention_days: int = Field(
        default=76 * 365,
        ge=1,
        description="retention.ms of beacon.audit: who was told what, when, and who acknowledged is kept as long "
        "as the case record it explains.",
    )
    dead_letter_retention_days: int = Field(
        default=90,
        ge=1,
        description="retention.ms of beacon.events.dlq: long enough for an operator to act on "
        "BeaconRecordDeadLettered and replay the record; its copy of the refused record is bounded.",
    )
    input_retention_days: int = Field(
        default=7,
        ge=1,
        description="Retention of internal input topics (raw direct-producer events, the notifier's inputs), "
        "read as they arrive: long enough to outlast a worker being down over a long weekend.",
    )
    kafka_fetch_max_wait_ms: int = Field(
        default=50,
        ge=1,
        le=1500,
        description="How long a Faust worker's fetch may wait for records. Faust hard-codes 1500 ms; on Tansu "
        "a parked fetch is not answered early, so every hop waited up to that long.",
    )
    broker_session_timeout_s: float = Field(
        default=10.0, gt=0, description="A worker silent this long leaves its consumer group (its partitions move)."
    )
    broker_heartbeat_interval_s: float = Field(
        default=1.0, gt=0, description="How often a worker tells its consumer group it is alive."
    )
    broker_rebalance_timeout_s: float = Field(
        default=10.0, gt=0, description="How long the group waits for every worker to rejoin in a rebalance."
    )
    consumer_progress_interval_s: float = Field(
        default=5.0, gt=0, description="How often each worker exports its committed offsets and lag."
    )

    # Files
    policy_file: Path = Field(
        default=PROJECT_ROOT / "deploy" / "policies" / "default.yaml",
        description="The council's policy (YAML): thresholds of the correlation rules.",
    )
    data_dir: Path = Field(
        default=PROJECT_ROOT / "var" / "data",
        description="Local state: one folder per worker (table stores), the test clock.",
    )
    outbox_dir: Path = Field(
        default=PROJECT_ROOT / "var" / "outbox",
        description="Dev-mode channel: notifications are written here when no Twilio/SMTP is configured.",
    )
    table_store: str = Field(
        default="memory://",
        pattern=r"^(memory|rocksdb)://",
        description="Faust table store: memory:// (rebuilt from the changelog at start) or rocksdb:// (production).",
    )

    # HTTP
    ingest_port: int = Field(default=8080, ge=1, le=65535, description="HTTP port of the ingest API.")
    console_port: int = Field(default=8081, ge=1, le=65535, description="HTTP port of the web console.")
    notifier_port: int = Field(
        default=8082, ge=1, le=65535, description="HTTP port of the notifier (webhooks, links, ack API, metrics)."
    )
    correlator_port: int = Field(
        default=8083, ge=1, le=65535, description="HTTP port of the correlator (health, metrics)."
    )
    validator_port: int = Field(
        default=8084, ge=1, le=65535, description="HTTP port of the validator (health, metrics)."
    )
    bind_host: str = Field(
        default="127.0.0.1", description="Address every HTTP port listens on (0.0.0.0 in a container)."
    )
    public_base_url: str = Field(default="http://127.0.0.1:8082", description="Base of acknowledgement links.")
    http_header_timeout_s: float = Field(
        default=10.0, gt=0, le=300, description="A request's headers must all arrive within this (else 408)."
    )
    http_body_timeout_s: float = Field(
        default=30.0, gt=0, le=3600, description="A request's body must all arrive within this of its headers."
    )
    http_keep_alive_s: int = Field(default=5, ge=1, le=300, description="An idle kept-alive connection closes.")
    http_bad_auth_burst: int = Field(
        default=20,
        ge=1,
        le=100_000,
        description="Requests with a missing or bad key one client address may make before 429 "
        "(ingest and the notifier API); refilled at BEACON_HTTP_BAD_AUTH_RATE_PER_S.",
    )
    http_bad_auth_rate_per_s: float = Field(
        default=0.5, gt=0, le=1000, description="Requests without a valid key an address regains per second."
    )
    http_max_connections: int = Field(
        default=256, ge=1, le=100_000, description="Open connections per HTTP server; more are refused at once."
    )

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Least severe log level written (JSON lines on stdout)."
    )

    @field_validator("kafka_sasl_username", "kafka_sasl_password")
    @classmethod
    def _sasl_needs_a_login(cls, value: str | SecretStr, info: ValidationInfo) -> str | SecretStr:
        protocol = info.data.get("kafka_security_protocol", "")
        plain = value.get_secret_value() if isinstance(value, SecretStr) else value
        if protocol.startswith("SASL_") and not plain:
            raise ValueError(f"required with BEACON_KAFKA_SECURITY_PROTOCOL={protocol}")
        return value

    @field_validator("kafka_ssl_ca_file")
    @classmethod
    def _ca_file_exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"no such file {str(value)!r}")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get(f"{ENV_PREFIX}CONFIG_FILE")
        if config_file:
            # Environment variables win over the file, so one file serves many deployments.
            sources.append(_OwnKeysYamlSource(settings_cls, yaml_file=config_file))
        return tuple(sources)

    @property
    def bootstrap_servers(self) -> list[str]:
        return [s.strip() for s in self.kafka_bootstrap_servers.split(",") if s.strip()]


class _OwnKeysYamlSource(YamlConfigSettingsSource):
    """One config file may hold the keys of every service; each takes its own.
    Keys that no service knows are refused by ``load_settings``."""

    def __call__(self) -> dict[str, Any]:
        return {k: v for k, v in super().__call__().items() if k in self.settings_cls.model_fields}


class SettingsError(SystemExit):
    """Raised (as exit status 2) with a message naming each bad setting."""


def describe_validation_error(exc: ValidationError, prefix: str = ENV_PREFIX) -> str:
    lines = []
    for err in exc.errors():
        name = ".".join(str(p) for p in err["loc"])
        lines.append(f"  {prefix}{name.upper()}: {err['msg']}")
    return "invalid settings:\n" + "\n".join(lines)


S = TypeVar("S", bound=Settings)


def load_settings(settings_cls: type[S] = Settings, **overrides: object) -> S:  # type: ignore[assignment]
    """Load and validate settings. A service with settings of its own subclasses
    Settings in its folder and passes the subclass here. (Keys of a shared config file that no
    service reads are refused by the CLI before any service starts: ``beacon.registry``.)"""
    config_file = os.environ.get(f"{ENV_PREFIX}CONFIG_FILE")
    if config_file and not Path(config_file).is_file():
        raise SettingsError(f"invalid settings:\n  {ENV_PREFIX}CONFIG_FILE: no such file {config_file!r}")
    try:
        return settings_cls(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise SettingsError(describe_validation_error(exc)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
