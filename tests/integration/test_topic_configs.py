"""`python -m beacon topics create` on Apache Kafka: each topic's partitions, replication,
retention and cleanup policy, read back with the admin API (DescribeTopics and
DescribeConfigs) and compared with what core/topics.py declares."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from kafka.admin import ConfigResource, ConfigResourceType

from beacon.core.topics import AUDIT, CORRELATOR_CHANGELOG, EVENTS, EVENTS_DLQ, NOTIFIER_INPUTS, TOPICS, Retention
from beacon.runtime.settings import Settings, load_settings
from beacon.runtime.topic_admin import described_topic_configs, topic_configs
from harness.brokers import production_broker_settings
from harness.services import service_env

pytestmark = [pytest.mark.slow, pytest.mark.kafka]


def _topics_create(settings: Settings) -> str:
    env = service_env(**{f: getattr(settings, f) for f in production_broker_settings(1)})
    env["BEACON_KAFKA_BOOTSTRAP_SERVERS"] = settings.kafka_bootstrap_servers
    env["BEACON_TOPIC_REPLICATION_FACTOR"] = str(settings.topic_replication_factor)
    done = subprocess.run(
        [sys.executable, "-m", "beacon", "topics", "create"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _read_back(cluster) -> tuple[dict[str, dict], dict[str, dict[str, str]]]:
    admin = cluster.admin()
    try:
        names = [s.name for s in TOPICS]
        topics = {t["name"]: t for t in admin.describe_topics(names)}
        return topics, described_topic_configs(admin, names)
    finally:
        admin.close()


def _production_settings(cluster) -> Settings:
    return load_settings(
        kafka_bootstrap_servers=cluster.bootstrap, **production_broker_settings(cluster.replication_factor)
    )


def test_topics_create_sets_partitions_replication_retention_and_cleanup_as_declared(kafka_cluster):
    kafka_cluster.reset()
    settings = _production_settings(kafka_cluster)
    assert "created: " in _topics_create(settings)

    topics, configs = _read_back(kafka_cluster)
    assert set(topics) == {s.name for s in TOPICS}
    for spec in TOPICS:
        partitions = topics[spec.name]["partitions"]
        assert len(partitions) == settings.topic_partitions, spec.name
        assert {len(p["replica_nodes"]) for p in partitions} == {settings.topic_replication_factor}, spec.name
        declared = topic_configs(spec, settings)
        assert {k: configs[spec.name][k] for k in declared} == declared, spec.name
        if spec.retention is Retention.COMPACTED:
            assert "retention.ms" not in declared  # compacted state is kept for ever, key by key
        assert configs[spec.name]["min.insync.replicas"] == "1", spec.name  # one node: one replica
    # The kinds the README's topic table names: the system of record kept, inputs short-lived,
    # dead letters and the audit trail for their stated times, state compacted.
    day = 86_400_000
    assert int(configs[EVENTS]["retention.ms"]) == settings.event_retention_days * day
    assert int(configs[NOTIFIER_INPUTS]["retention.ms"]) == settings.input_retention_days * day
    assert int(configs[EVENTS_DLQ]["retention.ms"]) == settings.dead_letter_retention_days * day
    assert int(configs[AUDIT]["retention.ms"]) == settings.audit_retention_days * day
    assert configs[CORRELATOR_CHANGELOG]["cleanup.policy"] == "compact"
    assert int(configs[CORRELATOR_CHANGELOG]["delete.retention.ms"]) == settings.input_retention_days * day


def test_topics_create_repairs_a_topic_config_changed_behind_its_back(kafka_cluster):
    kafka_cluster.reset()
    settings = _production_settings(kafka_cluster)
    _topics_create(settings)
    admin = kafka_cluster.admin()
    try:
        changed = ConfigResource(ConfigResourceType.TOPIC, EVENTS, configs={"retention.ms": "3600000"})
        assert admin.alter_configs([changed], incremental=True) == {"topic": {EVENTS: "OK"}}
    finally:
        admin.close()
    _wait_for_retention(kafka_cluster, EVENTS, "3600000")

    assert "all topics exist" in _topics_create(settings)
    _wait_for_retention(kafka_cluster, EVENTS, str(settings.event_retention_days * 86_400_000))


def _wait_for_retention(cluster, topic: str, expected: str, timeout_s: float = 30.0) -> None:
    """A config change is applied through the metadata log: described a moment later."""
    deadline = time.monotonic() + timeout_s
    while (seen := _read_back(cluster)[1][topic]["retention.ms"]) != expected:
        assert time.monotonic() < deadline, f"{topic} retention.ms is {seen}, expected {expected}"
        time.sleep(0.2)


def test_on_three_nodes_every_topic_has_three_replicas_and_needs_two_in_sync(kafka_cluster_3):
    assert kafka_cluster_3.broker_ids() == {1, 2, 3}
    settings = _production_settings(kafka_cluster_3)
    assert settings.topic_replication_factor == 3  # deploy/k8s/config.yaml's, uncapped here
    _topics_create(settings)
    topics, configs = _read_back(kafka_cluster_3)
    for spec in TOPICS:
        assert {tuple(sorted(p["replica_nodes"])) for p in topics[spec.name]["partitions"]} == {(1, 2, 3)}
        assert configs[spec.name]["min.insync.replicas"] == "2", spec.name
