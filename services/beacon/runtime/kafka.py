"""Kafka client construction shared by every service, so they all agree on where and how
to connect (bootstrap servers, TLS, SASL/SCRAM), on durability (acks=all) and on the
embedded broker's single-record-batch workaround.

Three client libraries, one set of settings: kafka-python (producers, admin, offset
readers), aiokafka (the console's feed) and Faust (the workers, over aiokafka)."""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING, Any

from kafka import KafkaProducer

from beacon.runtime.settings import Settings

if TYPE_CHECKING:
    import faust.auth


def client_config(settings: Settings) -> dict[str, Any]:
    """kafka-python keyword arguments for any client (producer, consumer, admin)."""
    config: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "security_protocol": settings.kafka_security_protocol,
    }
    if settings.kafka_security_protocol in ("SSL", "SASL_SSL"):
        config["ssl_check_hostname"] = True
        if settings.kafka_ssl_ca_file is not None:
            config["ssl_cafile"] = str(settings.kafka_ssl_ca_file)
    if settings.kafka_security_protocol.startswith("SASL_"):
        config["sasl_mechanism"] = settings.kafka_sasl_mechanism
        config["sasl_plain_username"] = settings.kafka_sasl_username
        config["sasl_plain_password"] = settings.kafka_sasl_password.get_secret_value()
    return config


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context aiokafka and Faust take: the configured CA (or the system's), host
    names verified, TLS 1.2 at least. None when the protocol has no TLS."""
    if settings.kafka_security_protocol not in ("SSL", "SASL_SSL"):
        return None
    ca_file = str(settings.kafka_ssl_ca_file) if settings.kafka_ssl_ca_file is not None else None
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def aiokafka_config(settings: Settings) -> dict[str, Any]:
    """aiokafka keyword arguments for any client."""
    config: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "security_protocol": settings.kafka_security_protocol,
        "ssl_context": ssl_context(settings),
    }
    if settings.kafka_security_protocol.startswith("SASL_"):
        config["sasl_mechanism"] = settings.kafka_sasl_mechanism
        config["sasl_plain_username"] = settings.kafka_sasl_username
        config["sasl_plain_password"] = settings.kafka_sasl_password.get_secret_value()
    return config


def faust_credentials(settings: Settings) -> faust.auth.Credentials | None:
    """Faust's ``broker_credentials``: SASL (over TLS for SASL_SSL), TLS alone, or none."""
    import faust  # only the workers need it; ingest and the CLI tools stay light

    context = ssl_context(settings)
    if settings.kafka_security_protocol.startswith("SASL_"):
        return faust.SASLCredentials(
            username=settings.kafka_sasl_username,
            password=settings.kafka_sasl_password.get_secret_value(),
            ssl_context=context,
            mechanism=settings.kafka_sasl_mechanism,
        )
    if context is not None:
        return faust.SSLCredentials(context)
    return None


def producer_config(settings: Settings) -> dict[str, Any]:
    config: dict[str, Any] = {
        **client_config(settings),
        "acks": "all",
        # Retried until acknowledged or this long (kafka-python's retries are unbounded by
        # default): a fixed 5 retries 100 ms apart gave up within half a second of a leader
        # election or a topic's creation, and the record was lost (seen on Apache Kafka).
        "delivery_timeout_ms": 60_000,  # more than request_timeout_ms (30 s) + linger_ms
        "linger_ms": 5,
        "max_in_flight_requests_per_connection": 1,  # keeps one child's events in order on retry
    }
    if settings.kafka_single_record_batches:
        config["batch_size"] = 1  # the first record always fits: one record per batch
    return config


def make_producer(settings: Settings, **overrides: Any) -> KafkaProducer:
    return KafkaProducer(**{**producer_config(settings), **overrides})


def topic_partitions(settings: Settings, topics: list[str] | tuple[str, ...], client_id: str) -> dict[str, list[int]]:
    """The partitions of each of ``topics`` that exists, from a metadata request that names
    them. A client's own metadata cannot be trusted for this: a consumer holds only the topics
    it was asked about (Tansu's answer happened to list them all, Apache Kafka's lists none:
    the console, then the API-key registry, read nothing on Kafka)."""
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(**client_config(settings), client_id=client_id)
    try:
        described = admin.describe_topics(list(topics))
    finally:
        admin.close()
    return {t["name"]: sorted(p["partition_index"] for p in t["partitions"]) for t in described if not t["error_code"]}
