"""Creating Beacon's topics and setting their configuration (partitions, replication,
retention, cleanup policy) on the broker; the topics themselves are in ``beacon.core.topics``."""

from __future__ import annotations

import logging
import time

from kafka import KafkaConsumer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError

from beacon.core.topics import TOPICS, Retention, TopicSpec
from beacon.runtime.kafka import client_config
from beacon.runtime.settings import Settings

log = logging.getLogger(__name__)

DAY_MS = 24 * 3600 * 1000


def retention_days(spec: TopicSpec, settings: Settings) -> int | None:
    """Days a delete-policy topic keeps a record; None for a compacted one."""
    if spec.retention is Retention.COMPACTED:
        return None
    return int(getattr(settings, spec.retention.value))


def min_insync_replicas(settings: Settings) -> int:
    """A write is acknowledged once all but one replica has it: one broker may be lost (or
    restarted) without refusing writes, and no acknowledged record lives on one disk only."""
    return max(1, settings.topic_replication_factor - 1)


def topic_configs(spec: TopicSpec, settings: Settings) -> dict[str, str]:
    """The topic-level configs Beacon sets on ``spec`` (the README's topic table)."""
    configs = {"min.insync.replicas": str(min_insync_replicas(settings))}
    days = retention_days(spec, settings)
    if days is None:
        # A tombstone outlives a worker down as long as an input is kept: a worker that comes
        # back within that time still sees every key that was removed while it was away.
        configs |= {"cleanup.policy": "compact", "delete.retention.ms": str(settings.input_retention_days * DAY_MS)}
    else:
        configs |= {"cleanup.policy": "delete", "retention.ms": str(days * DAY_MS)}
    return configs


def ensure_topics(settings: Settings, specs: tuple[TopicSpec, ...] = TOPICS) -> list[str]:
    """Create the missing topics with their partitions, replication and configs, and set the
    configs of existing ones where they differ; returns the names created. Safe to run
    repeatedly. An existing topic's partition count is never changed (that would move keys
    to other partitions and break one child's order): a difference is logged as an error."""
    admin = KafkaAdminClient(**client_config(settings), client_id="beacon-topics")
    try:
        existing = set(admin.list_topics())
        missing = [s for s in specs if s.name not in existing]
        new = [
            NewTopic(
                name=s.name,
                num_partitions=settings.topic_partitions,
                replication_factor=settings.topic_replication_factor,
                topic_configs=topic_configs(s, settings),
            )
            for s in missing
        ]
        if new:
            try:
                admin.create_topics(new)
            except TopicAlreadyExistsError:
                pass  # another service created it first
        for s in missing:
            log.info("created topic %s (%d partitions)", s.name, settings.topic_partitions)
        if missing:
            _wait_for_leaders(settings, admin, [s.name for s in missing])
        _align_existing(admin, [s for s in specs if s.name in existing], settings)
        return [s.name for s in missing]
    finally:
        admin.close()


def described_topic_configs(admin: KafkaAdminClient, names: list[str]) -> dict[str, dict[str, str]]:
    """Every config of each topic as the broker reports it (DescribeConfigs); a broker that
    does not describe topic configs (the embedded Tansu) gives empty mappings."""
    if not names:
        return {}
    described = admin.describe_configs(
        [ConfigResource(ConfigResourceType.TOPIC, n) for n in names], config_filter="all"
    )
    topics = described.get("topic", {})
    return {n: {key: entry.get("value") for key, entry in topics.get(n, {}).items()} for n in names}


def _align_existing(admin: KafkaAdminClient, specs: list[TopicSpec], settings: Settings) -> None:
    if not specs:
        return
    current = described_topic_configs(admin, [s.name for s in specs])
    changes = []
    for spec in specs:
        if not current[spec.name]:
            continue  # nothing described: nothing to compare with
        wanted = topic_configs(spec, settings)
        differing = {k: v for k, v in wanted.items() if current[spec.name].get(k) != v}
        if differing:
            changes.append(ConfigResource(ConfigResourceType.TOPIC, spec.name, configs=differing))
            log.info("setting topic %s configs %s", spec.name, sorted(differing))
    if changes:
        # Incremental (KIP-339): a plain AlterConfigs resets every key it does not name.
        results = admin.alter_configs(changes, incremental=True).get("topic", {})
        failed = {name: result for name, result in results.items() if result != "OK"}
        if failed:
            raise RuntimeError(f"could not set topic configs: {failed}")
    partitions = {t["name"]: len(t["partitions"]) for t in admin.describe_topics([s.name for s in specs])}
    for name, count in partitions.items():
        if count != settings.topic_partitions:
            log.error("topic %s has %d partitions, settings say %d", name, count, settings.topic_partitions)


def _wait_for_leaders(settings: Settings, admin: KafkaAdminClient, names: list[str], timeout_s: float = 60.0) -> None:
    """Until every partition of ``names`` is served by its leader. CreateTopics answers
    before that: the metadata names a leader at once, but the leader creates its logs a few
    seconds later (120 partitions took ~3 s on a loaded 2-core machine), and until then a
    producer gets NotLeaderForPartition. A ListOffsets is answered only by a serving leader,
    so this asks for every partition's end offset (kafka-python retries until then)."""
    deadline = time.monotonic() + timeout_s
    while True:
        described = admin.describe_topics(names)
        partitions = [
            TopicPartition(t["name"], p["partition_index"])
            for t in described
            if t["error_code"] == 0
            for p in t["partitions"]
            if p["leader_id"] >= 0
        ]
        if len(partitions) == len(names) * settings.topic_partitions:
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"topics without a leader on every partition after {timeout_s:.0f}s: {names}")
        time.sleep(0.1)
    consumer = KafkaConsumer(**client_config(settings), client_id="beacon-topics")
    try:
        consumer.end_offsets(partitions, timeout_ms=int(max(1.0, deadline - time.monotonic()) * 1000))
    finally:
        consumer.close()
